-- spindrive schema 2: file content in Postgres.
--
-- Content is split into chunks (bytea, STORAGE EXTERNAL: already-compressed
-- data is not compressed again) under a storage key; `files.file_path` is
-- `pg:<storage key>`. An upload stages its chunks under a key listed in
-- `uploads`, then publishes content and metadata in one short transaction,
-- so no transaction ever spans a streamed body. Content no file refers to
-- any more is listed in `released_content` (by a trigger, whatever removed
-- the reference) and swept after a grace period that lets downloads
-- already streaming it finish.

ALTER TABLE files ADD COLUMN IF NOT EXISTS content_type varchar(255) NOT NULL DEFAULT 'application/octet-stream';
-- Files from schema 1 predate the content store, so neither their digest
-- nor their bytes are in it: they keep their path as it was (for an
-- operator to import) and an all-zero digest that no content has. Only new
-- paths must name the store.
ALTER TABLE files ADD COLUMN IF NOT EXISTS sha256 bytea;
UPDATE files SET sha256 = decode(repeat('00', 32), 'hex') WHERE sha256 IS NULL;
ALTER TABLE files ALTER COLUMN sha256 SET NOT NULL;
ALTER TABLE files DROP CONSTRAINT IF EXISTS files_sha256_check;
ALTER TABLE files ADD CONSTRAINT files_sha256_check CHECK (length(sha256) = 32);
ALTER TABLE files DROP CONSTRAINT IF EXISTS files_file_path_check;
ALTER TABLE files ADD CONSTRAINT files_file_path_check CHECK (file_path ~ '^pg:[0-9a-f-]{36}$') NOT VALID;

CREATE TABLE IF NOT EXISTS uploads (
    storage_key    uuid      PRIMARY KEY,
    user_id        bigint    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    started_at     timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    -- Bumped with every chunk; an upload idle too long is abandoned.
    last_write_at  timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);
CREATE INDEX IF NOT EXISTS uploads_last_write_at_idx ON uploads (last_write_at);

CREATE TABLE IF NOT EXISTS file_chunks (
    storage_key  uuid    NOT NULL,
    seq          integer NOT NULL CHECK (seq >= 0),
    data         bytea   NOT NULL,
    PRIMARY KEY (storage_key, seq)
);
ALTER TABLE file_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE IF NOT EXISTS released_content (
    storage_key  uuid      PRIMARY KEY,
    released_at  timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);
CREATE INDEX IF NOT EXISTS released_content_released_at_idx ON released_content (released_at);

CREATE OR REPLACE FUNCTION release_file_content() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (TG_OP = 'DELETE' OR NEW.file_path IS DISTINCT FROM OLD.file_path) AND OLD.file_path LIKE 'pg:%' THEN
        INSERT INTO released_content (storage_key)
        VALUES (substr(OLD.file_path, 4)::uuid)
        ON CONFLICT (storage_key) DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS files_release_content ON files;
CREATE TRIGGER files_release_content
    AFTER DELETE OR UPDATE OF file_path ON files
    FOR EACH ROW EXECUTE FUNCTION release_file_content();

-- files.is_shared is true exactly while a grant to someone other than the
-- owner exists, whoever changes the grants.
CREATE OR REPLACE FUNCTION refresh_file_is_shared() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.file_id ELSE NEW.file_id END;
BEGIN
    UPDATE files
       SET is_shared = EXISTS (SELECT 1 FROM permissions WHERE file_id = changed AND NOT is_owner)
     WHERE id = changed;
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS permissions_refresh_is_shared ON permissions;
CREATE TRIGGER permissions_refresh_is_shared
    AFTER INSERT OR UPDATE OR DELETE ON permissions
    FOR EACH ROW EXECUTE FUNCTION refresh_file_is_shared();

-- Listing: by owner in every sort order, and name search.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS files_owner_name_idx ON files (user_id, file_name, id);
CREATE INDEX IF NOT EXISTS files_owner_size_idx ON files (user_id, file_size, id);
CREATE INDEX IF NOT EXISTS files_name_trgm_idx ON files USING gin (file_name gin_trgm_ops);
