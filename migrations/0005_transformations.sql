-- spindrive schema 5: transformation jobs that run exactly once. The row is
-- the truth: a worker claims a `pending` job with one conditional UPDATE
-- (a fresh `run_id`, an attempt counted, a lease deadline) and finishes it
-- only while its claim still holds, so duplicate or lost wake-ups can
-- neither run a job twice nor lose it.

ALTER TABLE transformation_jobs ADD COLUMN IF NOT EXISTS attempts integer NOT NULL DEFAULT 0
    CHECK (attempts >= 0);
ALTER TABLE transformation_jobs ADD COLUMN IF NOT EXISTS run_id uuid;
ALTER TABLE transformation_jobs ADD COLUMN IF NOT EXISTS lease_expires_at timestamp;
ALTER TABLE transformation_jobs ADD COLUMN IF NOT EXISTS finished_at timestamp;
-- When someone following a stalled job last woke a worker for it.
ALTER TABLE transformation_jobs ADD COLUMN IF NOT EXISTS woken_at timestamp;
ALTER TABLE transformation_jobs DROP CONSTRAINT IF EXISTS transformation_jobs_params_object;
ALTER TABLE transformation_jobs ADD CONSTRAINT transformation_jobs_params_object
    CHECK (jsonb_typeof(params) = 'object');
ALTER TABLE transformation_jobs DROP CONSTRAINT IF EXISTS transformation_jobs_running_leased;
ALTER TABLE transformation_jobs ADD CONSTRAINT transformation_jobs_running_leased
    CHECK (status <> 'running' OR (run_id IS NOT NULL AND lease_expires_at IS NOT NULL));

-- A job outlives its source: deleting the file ends the job `failed` (in
-- the deleting transaction, below) instead of erasing its record.
ALTER TABLE transformation_jobs ALTER COLUMN file_id DROP NOT NULL;
ALTER TABLE transformation_jobs DROP CONSTRAINT IF EXISTS transformation_jobs_file_id_fkey;
ALTER TABLE transformation_jobs ADD CONSTRAINT transformation_jobs_file_id_fkey
    FOREIGN KEY (file_id) REFERENCES files (id) ON DELETE SET NULL;

CREATE OR REPLACE FUNCTION fail_jobs_of_deleted_file() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH failed AS (
        UPDATE transformation_jobs
           SET status = 'failed', error = 'the source file was deleted', run_id = NULL,
               lease_expires_at = NULL, finished_at = (now() AT TIME ZONE 'utc'),
               updated_at = (now() AT TIME ZONE 'utc')
         WHERE file_id = OLD.id AND status IN ('pending', 'running')
        RETURNING id, user_id, transformation_type, error
    )
    INSERT INTO notifications (user_id, message, kind, data)
    SELECT user_id, format('Your %s failed: %s', transformation_type, error), 'transformation_failed',
           jsonb_build_object('job_id', id, 'file_id', OLD.id,
                              'transformation_type', transformation_type, 'error', error)
      FROM failed;
    RETURN OLD;
END
$$;
DROP TRIGGER IF EXISTS files_fail_jobs ON files;
CREATE TRIGGER files_fail_jobs BEFORE DELETE ON files
    FOR EACH ROW EXECUTE FUNCTION fail_jobs_of_deleted_file();

-- The lists (mine, mine on a file; newest first) and the worker's queue
-- use the indexes of schema 1, scanned backwards where needed.

-- Jobs whose worker stopped (a crash, a killed pod) hold an expired lease:
-- back to `pending` for another attempt, or `failed` once `max_attempts`
-- have been made. Run by every worker wake-up and by the schedule.
CREATE OR REPLACE FUNCTION sweep_transformations(max_attempts integer) RETURNS integer
LANGUAGE sql AS $$
    WITH expired AS (
        UPDATE transformation_jobs
           SET status = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'pending' END,
               error = CASE WHEN attempts >= max_attempts
                            THEN format('gave up after %s attempts: the worker stopped before finishing', attempts)
                       END,
               finished_at = CASE WHEN attempts >= max_attempts THEN (now() AT TIME ZONE 'utc') END,
               run_id = NULL, lease_expires_at = NULL, updated_at = (now() AT TIME ZONE 'utc')
         WHERE status = 'running' AND lease_expires_at < (now() AT TIME ZONE 'utc')
        RETURNING id, user_id, file_id, transformation_type, status, error
    ), told AS (
        INSERT INTO notifications (user_id, message, kind, data)
        SELECT user_id, format('Your %s failed: %s', transformation_type, error), 'transformation_failed',
               jsonb_build_object('job_id', id, 'file_id', file_id,
                                  'transformation_type', transformation_type, 'error', error)
          FROM expired WHERE status = 'failed'
    )
    SELECT count(*)::integer FROM expired
$$;
