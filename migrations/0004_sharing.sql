-- spindrive schema 4: sharing. One source of truth for ownership
-- (`files.owner_id`, as the seed names it) with the owner's `permissions`
-- row kept in step by construction, and the indexes shared listings need.

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
                WHERE table_schema = current_schema() AND table_name = 'files' AND column_name = 'user_id') THEN
        ALTER TABLE files RENAME COLUMN user_id TO owner_id;
    END IF;
END
$$;
ALTER INDEX IF EXISTS files_user_id_idx RENAME TO files_owner_created_idx;

-- Storage usage follows the renamed column.
CREATE OR REPLACE FUNCTION account_file_usage() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE users SET used_bytes = used_bytes - OLD.file_size WHERE id = OLD.owner_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE users SET used_bytes = used_bytes + NEW.file_size WHERE id = NEW.owner_id;
    END IF;
    RETURN NULL;
END
$$;

-- The owner's row: exactly one per file, at `delete`, for files.owner_id
-- and nobody else. Rows written before this schema are put right first.
DELETE FROM permissions p USING files f
 WHERE p.file_id = f.id AND (p.is_owner <> (p.user_id = f.owner_id));
INSERT INTO permissions (file_id, user_id, permission, is_owner, granted_by)
SELECT f.id, f.owner_id, 'delete', true, f.owner_id FROM files f
 WHERE NOT EXISTS (SELECT 1 FROM permissions p WHERE p.file_id = f.id AND p.is_owner);
UPDATE permissions SET permission = 'delete' WHERE is_owner AND permission <> 'delete';
CREATE UNIQUE INDEX IF NOT EXISTS permissions_one_owner_key ON permissions (file_id) WHERE is_owner;
ALTER TABLE permissions DROP CONSTRAINT IF EXISTS permissions_owner_delete;
ALTER TABLE permissions ADD CONSTRAINT permissions_owner_delete CHECK (NOT is_owner OR permission = 'delete');

-- Creating a file, or giving it to someone else, writes the owner's row.
-- Only this function may write owner rows (it says so for the length of
-- its own statements with a transaction-local setting the guard reads).
CREATE OR REPLACE FUNCTION sync_owner_grant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('spindrive.owner_sync', 'on', true);
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM permissions WHERE file_id = NEW.id AND (is_owner OR user_id = NEW.owner_id);
    END IF;
    INSERT INTO permissions (file_id, user_id, permission, is_owner, granted_by)
    VALUES (NEW.id, NEW.owner_id, 'delete', true, NEW.owner_id);
    PERFORM set_config('spindrive.owner_sync', 'off', true);
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS files_sync_owner_grant ON files;
CREATE TRIGGER files_sync_owner_grant
    AFTER INSERT OR UPDATE OF owner_id ON files
    FOR EACH ROW EXECUTE FUNCTION sync_owner_grant();

-- Nothing else may create, change or remove an owner row, or grant the
-- owner anything (the owner holds every right already). Deleting the file
-- or the user removes the row with them.
CREATE OR REPLACE FUNCTION guard_owner_grant() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    syncing boolean := coalesce(current_setting('spindrive.owner_sync', true), 'off') = 'on';
BEGIN
    IF syncing THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.is_owner
       AND EXISTS (SELECT 1 FROM files WHERE id = OLD.file_id AND owner_id = OLD.user_id)
       AND EXISTS (SELECT 1 FROM users WHERE id = OLD.user_id) THEN
        RAISE EXCEPTION 'the owner''s grant follows files.owner_id'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'permissions_owner_grant';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    IF NEW.is_owner OR EXISTS (SELECT 1 FROM files WHERE id = NEW.file_id AND owner_id = NEW.user_id) THEN
        RAISE EXCEPTION 'the owner holds every right; grants are for other users'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'permissions_owner_grant';
    END IF;
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS permissions_guard_owner_grant ON permissions;
CREATE TRIGGER permissions_guard_owner_grant
    BEFORE INSERT OR UPDATE OR DELETE ON permissions
    FOR EACH ROW EXECUTE FUNCTION guard_owner_grant();

-- Listings. A user's own files by owner and key (files_owner_*); files
-- shared with a user through their grants (a grant per file, joined by
-- the file's key); an administrator's view of every file by key alone.
CREATE INDEX IF NOT EXISTS permissions_grantee_idx ON permissions (user_id, file_id) WHERE NOT is_owner;
CREATE INDEX IF NOT EXISTS files_created_idx ON files (created_at, id);
CREATE INDEX IF NOT EXISTS files_name_idx ON files (file_name, id);
CREATE INDEX IF NOT EXISTS files_size_idx ON files (file_size, id);
