-- spindrive schema 3: throttling that cannot be sprayed into a lockout,
-- registration limits, storage quotas, and content that is always released.

-- Login failures are pruned as a whole (not per account), by age.
CREATE INDEX IF NOT EXISTS login_failures_failed_at_idx ON login_failures (failed_at);
CREATE INDEX IF NOT EXISTS login_failures_pair_idx ON login_failures (account, client, failed_at);

-- Registrations per client address, for the per-client limit.
CREATE TABLE IF NOT EXISTS registrations (
    id             bigserial   PRIMARY KEY,
    client         varchar(64) NOT NULL,
    registered_at  timestamp   NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);
CREATE INDEX IF NOT EXISTS registrations_client_idx ON registrations (client, registered_at);
CREATE INDEX IF NOT EXISTS registrations_registered_at_idx ON registrations (registered_at);

-- Storage quotas: `quota_bytes` NULL means the deployment's default (a
-- Spin variable); `used_bytes` is the sum of the sizes of the files the
-- user owns, kept by a trigger on every insert, resize, transfer and
-- delete of a file. The trigger's UPDATE locks the owner's row until the
-- publishing transaction ends, so two uploads racing for the last free
-- bytes are serialised and the second sees the first's usage.
ALTER TABLE users ADD COLUMN IF NOT EXISTS quota_bytes bigint CHECK (quota_bytes >= 0);
ALTER TABLE users ADD COLUMN IF NOT EXISTS used_bytes bigint NOT NULL DEFAULT 0;
UPDATE users u SET used_bytes = coalesce((SELECT sum(file_size) FROM files f WHERE f.user_id = u.id), 0);

CREATE OR REPLACE FUNCTION account_file_usage() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE users SET used_bytes = used_bytes - OLD.file_size WHERE id = OLD.user_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE users SET used_bytes = used_bytes + NEW.file_size WHERE id = NEW.user_id;
    END IF;
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS files_account_usage ON files;
CREATE TRIGGER files_account_usage
    AFTER INSERT OR DELETE OR UPDATE OF file_size, user_id ON files
    FOR EACH ROW EXECUTE FUNCTION account_file_usage();

-- An upload in progress belongs to its user: when the user goes, the
-- chunks it staged are released like a deleted file's (the uploads row
-- itself goes by the cascade, so a still-running upload stops).
CREATE OR REPLACE FUNCTION release_user_uploads() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO released_content (storage_key)
    SELECT storage_key FROM uploads WHERE user_id = OLD.id
    ON CONFLICT (storage_key) DO NOTHING;
    RETURN OLD;
END
$$;
DROP TRIGGER IF EXISTS users_release_uploads ON users;
CREATE TRIGGER users_release_uploads
    BEFORE DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION release_user_uploads();

-- The content sweep, one function for every caller: uploads run it, and
-- a schedule does too (a CronJob in Kubernetes, `make up`'s loop), so an
-- idle system still gives space back. Removes uploads idle longer than
-- `stale_seconds` and released content older than `grace_seconds`;
-- returns how many chunks it removed.
CREATE OR REPLACE FUNCTION sweep_content(stale_seconds float8, grace_seconds float8)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    removed bigint := 0;
    n bigint;
BEGIN
    WITH gone AS (
        DELETE FROM uploads
         WHERE last_write_at < (now() AT TIME ZONE 'utc') - make_interval(secs => stale_seconds)
        RETURNING storage_key)
    DELETE FROM file_chunks WHERE storage_key IN (SELECT storage_key FROM gone);
    GET DIAGNOSTICS n = ROW_COUNT;
    removed := removed + n;
    WITH gone AS (
        DELETE FROM released_content
         WHERE released_at < (now() AT TIME ZONE 'utc') - make_interval(secs => grace_seconds)
        RETURNING storage_key)
    DELETE FROM file_chunks WHERE storage_key IN (SELECT storage_key FROM gone);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN removed + n;
END
$$;

-- A file's metadata version, for the strong ETag of `/api/files/:id`
-- (`If-Match` on a rename): bumped by every change to the row.
ALTER TABLE files ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 1;
CREATE OR REPLACE FUNCTION bump_file_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version + 1;
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS files_bump_version ON files;
CREATE TRIGGER files_bump_version
    BEFORE UPDATE ON files
    FOR EACH ROW EXECUTE FUNCTION bump_file_version();
