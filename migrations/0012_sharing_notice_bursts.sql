-- spindrive schema 12: one user sharing and unsharing with another cannot
-- flood their feed. A sharing notification (granted, changed, revoked)
-- replaces the recipient's unread one from the same person about the
-- same file if it is under ten minutes old: the feed shows where things
-- ended (and a webhook not yet sent the older one gets only the newer).
-- And one person's sharing notifications to one recipient stop at 20 an
-- hour: past that the grants still work, and the files are in the
-- recipient's shared list, but nothing more lands in their feed.
CREATE OR REPLACE FUNCTION limit_sharing_notices() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM notifications n
     WHERE n.user_id = NEW.user_id AND n.read_at IS NULL
       AND n.kind IN ('share_granted', 'share_changed', 'share_revoked')
       AND n.data->'by'->'id' = NEW.data->'by'->'id'
       AND n.data->'file_id' = NEW.data->'file_id'
       AND n.created_at > (now() AT TIME ZONE 'utc') - interval '10 minutes';
    IF (SELECT count(*) FROM notifications n
         WHERE n.user_id = NEW.user_id
           AND n.kind IN ('share_granted', 'share_changed', 'share_revoked')
           AND n.data->'by'->'id' = NEW.data->'by'->'id'
           AND n.created_at > (now() AT TIME ZONE 'utc') - interval '1 hour') >= 20 THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS notifications_limit_sharing ON notifications;
CREATE TRIGGER notifications_limit_sharing BEFORE INSERT ON notifications
    FOR EACH ROW WHEN (NEW.kind IN ('share_granted', 'share_changed', 'share_revoked'))
    EXECUTE FUNCTION limit_sharing_notices();
