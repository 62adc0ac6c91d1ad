-- spindrive schema 8: webhooks. A user registers one endpoint; each
-- notification written while it is active (and the user's webhook switch
-- is on) is `pending` until the deliverer sends it (`sent`) or gives up
-- (`failed`). The row is the truth; Redis messages only wake the deliverer.

CREATE TABLE IF NOT EXISTS notification_webhooks (
    user_id          bigint    PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    url              text      NOT NULL CHECK (length(url) BETWEEN 8 AND 2048),
    -- The signing key itself (HMAC needs it, so it is not hashed): shown
    -- to its user once, when registered, and never read by the API again.
    secret           bytea     NOT NULL CHECK (length(secret) BETWEEN 24 AND 64),
    -- Set when the endpoint answered 410 Gone: nothing is sent until the
    -- user registers it again.
    disabled_at      timestamp,
    disabled_reason  text,
    created_at       timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    updated_at       timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);

ALTER TABLE notifications
    ADD COLUMN IF NOT EXISTS attempts          integer   NOT NULL DEFAULT 0,
    -- When a pending row may be (re)sent; a claim sets it past its lease,
    -- so a deliverer that dies mid-send is retried once the lease ends.
    ADD COLUMN IF NOT EXISTS next_attempt_at   timestamp,
    -- The claim that may finish this delivery.
    ADD COLUMN IF NOT EXISTS run_id            uuid,
    ADD COLUMN IF NOT EXISTS last_error        text,
    ADD COLUMN IF NOT EXISTS sent_at           timestamp;

-- Due deliveries, soonest first.
CREATE INDEX IF NOT EXISTS notifications_due_idx ON notifications (next_attempt_at) WHERE status = 'pending';
DROP INDEX IF EXISTS notifications_status_idx;

-- A notification waits for the webhook only if its recipient has an active
-- endpoint and wants it; otherwise being in the feed is its delivery.
CREATE OR REPLACE FUNCTION notification_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM notification_webhooks w
                 WHERE w.user_id = NEW.user_id AND w.disabled_at IS NULL)
       AND coalesce((SELECT webhook_enabled FROM notification_settings s
                       WHERE s.user_id = NEW.user_id), true) THEN
        NEW.status := 'pending';
        NEW.next_attempt_at := now() AT TIME ZONE 'utc';
    ELSE
        NEW.status := 'sent';
        NEW.next_attempt_at := NULL;
    END IF;
    RETURN NEW;
END $$;
-- Named to fire after notifications_skip_muted (triggers fire by name).
DROP TRIGGER IF EXISTS notifications_webhook_delivery ON notifications;
CREATE TRIGGER notifications_webhook_delivery BEFORE INSERT ON notifications
    FOR EACH ROW EXECUTE FUNCTION notification_delivery();
