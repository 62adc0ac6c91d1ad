-- spindrive schema 7: the notification feed. Each user chooses the kinds
-- they are told about; a muted kind is never written, whichever code path
-- (the store, or the SQL of schema 5) creates it.

CREATE TABLE IF NOT EXISTS notification_settings (
    user_id          bigint    PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    -- The user's own choices, {"kind": true|false}; a kind they never
    -- chose follows the default below, even one added later.
    choices          jsonb     NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(choices) = 'object'),
    webhook_enabled  boolean   NOT NULL DEFAULT true,
    updated_at       timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);

-- The kinds a user does not want: those they turned off, and the ones off
-- by default that they did not turn on (a download of their file by
-- someone else: frequent, so asked for).
CREATE OR REPLACE FUNCTION muted_kinds(recipient bigint) RETURNS text[] LANGUAGE sql STABLE AS $$
    WITH mine AS (
        SELECT coalesce((SELECT choices FROM notification_settings WHERE user_id = recipient), '{}') AS choices
    )
    SELECT coalesce(array_agg(kind ORDER BY kind), '{}') FROM (
        SELECT key AS kind FROM mine, jsonb_each(choices) WHERE value = 'false'
        UNION
        SELECT quiet FROM mine, unnest(ARRAY['file_downloaded']) AS quiet WHERE NOT choices ? quiet
    ) muted
$$;

-- A row this trigger fires for is not written.
CREATE OR REPLACE FUNCTION skip_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
DROP TRIGGER IF EXISTS notifications_skip_muted ON notifications;
CREATE TRIGGER notifications_skip_muted BEFORE INSERT ON notifications
    FOR EACH ROW WHEN (NEW.kind = ANY (muted_kinds(NEW.user_id))) EXECUTE FUNCTION skip_row();

-- Without a webhook, delivery means being in the feed: `sent` on arrival.
-- (Webhook delivery will make rows of users with an endpoint `pending`.)
ALTER TABLE notifications ALTER COLUMN status SET DEFAULT 'sent';
UPDATE notifications SET status = 'sent' WHERE status = 'pending';

-- The feed, newest first (the id grows with time), all or unread. (Built in
-- the migration's transaction: notifications wait for it, once.)
CREATE INDEX IF NOT EXISTS notifications_feed_idx ON notifications (user_id, id);
CREATE INDEX IF NOT EXISTS notifications_unread_feed_idx ON notifications (user_id, id) WHERE read_at IS NULL;
DROP INDEX IF EXISTS notifications_unread_idx;
