-- spindrive schema 7: the notification feed. Each user chooses the kinds
-- they are told about; a muted kind is never written, whichever code path
-- (the store's one function, or the SQL of schema 5) creates it.

CREATE TABLE IF NOT EXISTS notification_settings (
    user_id          bigint    PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    muted_kinds      text[]    NOT NULL,
    webhook_enabled  boolean   NOT NULL DEFAULT true,
    updated_at       timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);

-- The kinds a user does not want: their choice, or else the default (a
-- download of their file by someone else: frequent, so asked for).
CREATE OR REPLACE FUNCTION muted_kinds(recipient bigint) RETURNS text[] LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT muted_kinds FROM notification_settings WHERE user_id = recipient),
                    ARRAY['file_downloaded'])
$$;

-- A row this trigger fires for is not written.
CREATE OR REPLACE FUNCTION skip_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
DROP TRIGGER IF EXISTS notifications_skip_muted ON notifications;
CREATE TRIGGER notifications_skip_muted BEFORE INSERT ON notifications
    FOR EACH ROW WHEN (NEW.kind = ANY (muted_kinds(NEW.user_id))) EXECUTE FUNCTION skip_row();

-- The feed, newest first (the id grows with time), all or unread.
CREATE INDEX IF NOT EXISTS notifications_feed_idx ON notifications (user_id, id);
CREATE INDEX IF NOT EXISTS notifications_unread_feed_idx ON notifications (user_id, id) WHERE read_at IS NULL;
DROP INDEX IF EXISTS notifications_unread_idx;
