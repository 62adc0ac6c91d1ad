-- spindrive schema 11: jobs that end when their requester's access ends,
-- claimed fairly between users, and failed at once when they die while
-- computing.

-- When the job was last claimed: the queue serves first the user whose
-- latest claim is oldest, so one user's hundred queued jobs delay another
-- user's one by at most a job.
ALTER TABLE transformation_jobs ADD COLUMN IF NOT EXISTS claimed_at timestamp;
CREATE INDEX IF NOT EXISTS transformation_jobs_user_claims_idx
    ON transformation_jobs (user_id, claimed_at DESC) WHERE claimed_at IS NOT NULL;

-- Set while the worker computes (decodes, extracts, encodes): its lease
-- is then the job's time limit plus a margin. A lease that runs out in
-- that phase means the instance was stopped there: past its time or
-- memory budget, which a second run would meet again, or (rarely) with
-- its worker. The two look alike here, so the job fails at once, with a
-- reason saying both, rather than spend up to three budgets on a file
-- built to explode; its requester may ask again.
ALTER TABLE transformation_jobs ADD COLUMN IF NOT EXISTS computing_since timestamp;

-- Ends the given jobs `failed` for `reason`, if they are still pending or
-- running, and tells their requesters (but one whose account is being
-- deleted in this transaction); how many ended.
CREATE OR REPLACE FUNCTION fail_transformations(job_ids uuid[], reason text) RETURNS integer
LANGUAGE sql AS $$
    WITH failed AS (
        UPDATE transformation_jobs
           SET status = 'failed', error = reason, run_id = NULL, lease_expires_at = NULL,
               computing_since = NULL, finished_at = (now() AT TIME ZONE 'utc'),
               updated_at = (now() AT TIME ZONE 'utc')
         WHERE id = ANY (job_ids) AND status IN ('pending', 'running')
        RETURNING id, user_id, file_id, transformation_type, error
    ), told AS (
        INSERT INTO notifications (user_id, message, kind, data)
        SELECT user_id, format('Your %s failed: %s', transformation_type, error), 'transformation_failed',
               jsonb_build_object('job_id', id, 'file_id', file_id,
                                  'transformation_type', transformation_type, 'error', error)
          FROM failed WHERE EXISTS (SELECT 1 FROM users u WHERE u.id = failed.user_id)
    )
    SELECT count(*)::integer FROM failed
$$;

-- The pending and running jobs on a file, of a user, or both.
CREATE OR REPLACE FUNCTION unfinished_jobs(of_file uuid, of_user bigint) RETURNS uuid[]
LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- One query per case, each with its index.
    IF of_user IS NULL THEN
        RETURN ARRAY(SELECT id FROM transformation_jobs WHERE file_id = of_file AND status IN ('pending', 'running'));
    ELSIF of_file IS NULL THEN
        RETURN ARRAY(SELECT id FROM transformation_jobs WHERE user_id = of_user AND status IN ('pending', 'running'));
    END IF;
    RETURN ARRAY(SELECT id FROM transformation_jobs
                  WHERE file_id = of_file AND user_id = of_user AND status IN ('pending', 'running'));
END
$$;

CREATE OR REPLACE FUNCTION fail_jobs_of_deleted_file() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM fail_transformations(unfinished_jobs(OLD.id, NULL), 'the source file was deleted');
    RETURN OLD;
END
$$;

-- A grant removed (revoked, or the owner's row when the file changes
-- hands) ends its holder's jobs on that file, unless they may still read
-- it: they own it, administer, or hold it again.
CREATE OR REPLACE FUNCTION fail_jobs_of_revoked_grant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM users u WHERE u.id = OLD.user_id AND u.role = 'admin')
       AND NOT EXISTS (SELECT 1 FROM files f WHERE f.id = OLD.file_id AND f.owner_id = OLD.user_id)
       AND NOT EXISTS (SELECT 1 FROM permissions p WHERE p.file_id = OLD.file_id AND p.user_id = OLD.user_id) THEN
        PERFORM fail_transformations(unfinished_jobs(OLD.file_id, OLD.user_id),
                                     'you can no longer read the source file');
    END IF;
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS permissions_fail_jobs ON permissions;
CREATE TRIGGER permissions_fail_jobs AFTER DELETE ON permissions
    FOR EACH ROW EXECUTE FUNCTION fail_jobs_of_revoked_grant();

-- A disabled account's jobs end with it (and the queue skips them until
-- they do).
CREATE OR REPLACE FUNCTION fail_jobs_of_disabled_user() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM fail_transformations(unfinished_jobs(NULL, NEW.id), 'your account was disabled');
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS users_fail_jobs ON users;
CREATE TRIGGER users_fail_jobs AFTER UPDATE OF disabled ON users
    FOR EACH ROW WHEN (NEW.disabled AND NOT OLD.disabled)
    EXECUTE FUNCTION fail_jobs_of_disabled_user();

-- Jobs whose worker stopped hold an expired lease. Stopped while
-- computing: failed at once (see computing_since).
-- Otherwise (a crash, a killed pod): back to `pending` for another
-- attempt, or `failed` once `max_attempts` have been made. Run by every
-- worker wake-up (following a stalled job sends one) and by the schedule;
-- returns how many went back to `pending` (they wait for a wake-up).
CREATE OR REPLACE FUNCTION sweep_transformations(max_attempts integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    requeued integer;
BEGIN
    PERFORM fail_transformations(
        ARRAY(SELECT id FROM transformation_jobs
               WHERE status = 'running' AND lease_expires_at < (now() AT TIME ZONE 'utc')
                 AND computing_since IS NOT NULL),
        'it stopped while computing: past its time or memory limit, or its worker died');
    PERFORM fail_transformations(
        ARRAY(SELECT id FROM transformation_jobs
               WHERE status = 'running' AND lease_expires_at < (now() AT TIME ZONE 'utc')
                 AND attempts >= max_attempts),
        format('gave up after %s attempts: the worker stopped before finishing', max_attempts));
    UPDATE transformation_jobs
       SET status = 'pending', run_id = NULL, lease_expires_at = NULL,
           updated_at = (now() AT TIME ZONE 'utc')
     WHERE status = 'running' AND lease_expires_at < (now() AT TIME ZONE 'utc');
    GET DIAGNOSTICS requeued = ROW_COUNT;
    RETURN requeued;
END
$$;
