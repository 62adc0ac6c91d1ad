//! The `notifications` table: what users are told about their files. One
//! function creates them, inside the transaction of the change they tell
//! about (a kind the recipient muted is not written: schema 7); the feed
//! reads them, newest first, each user only their own.

use crate::error::StoreError;
use chrono::NaiveDateTime;
use serde_json::{Map, Value, json};
use spin_sdk::pg::{ParameterValue, Row};
use spindrive_domain::time::rfc3339;
use spindrive_service::db::{Db, column};

/// A notification to create.
pub struct Notice {
    pub user_id: i64,
    pub kind: &'static str,
    pub message: String,
    pub data: Value,
}

/// Creates a notification; its id, or `None` when the recipient muted its
/// kind. It waits for the webhook deliverer (`pending`, noted on `db` so
/// the caller wakes it) when the recipient has an active endpoint.
pub async fn create(db: &Db, notice: &Notice) -> Result<Option<i64>, StoreError> {
    let data = serde_json::to_vec(&notice.data).map_err(StoreError::corrupt)?;
    let row = db
        .row(
            "INSERT INTO notifications (user_id, message, kind, data) VALUES ($1, $2, $3, $4) \
             RETURNING id, status = 'pending' AS awaits_webhook",
            &[
                ParameterValue::Int64(notice.user_id),
                ParameterValue::Str(notice.message.clone()),
                ParameterValue::Str(notice.kind.to_owned()),
                ParameterValue::Jsonb(data),
            ],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    if column::<bool>(&row, "awaits_webhook")? {
        db.note_deliveries_due();
    }
    Ok(Some(column(&row, "id")?))
}

/// Something `actor_id` did to a file, told to others. The file's name and
/// the actor's are read by the statement itself, so they are current.
pub struct FileEvent<'a> {
    pub file_id: &'a str,
    pub actor_id: i64,
}

/// Writes `$4` for each id in the `recipient` set the statement's `WITH`
/// defines (`$1` the file, `$2` the actor, `$3` the verb), and counts the
/// rows that wait for a webhook.
const TELL: &str = "told AS (INSERT INTO notifications (user_id, message, kind, data) \
     SELECT recipient.id, format('%s %s “%s”', actor.username, $3::text, f.file_name), $4, \
            jsonb_build_object('file_id', f.id::text, 'file_name', f.file_name, \
                               'by', jsonb_build_object('id', actor.id, 'username', actor.username)) \
       FROM recipient, files f, users actor WHERE f.id = $1 AND actor.id = $2 RETURNING status) \
     SELECT count(*) FILTER (WHERE status = 'pending') AS awaiting FROM told";

/// Recipients are locked against deletion before anything is written, in
/// id order, and one being deleted right now is skipped: a notification's
/// foreign key then never waits on (or fails for) a user mid-deletion,
/// which would tie this transaction to the deleting one.
const LOCK_RECIPIENTS: &str = "ORDER BY u.id FOR KEY SHARE OF u SKIP LOCKED";

impl FileEvent<'_> {
    /// Tells everyone who owns or holds a grant on the file, but the actor
    /// and disabled accounts: `kind`, with `verb` ("replaced", "deleted")
    /// in the message. Before a deletion, which takes the grants with it.
    pub async fn tell_holders(&self, db: &Db, kind: &'static str, verb: &str) -> Result<(), StoreError> {
        let recipients = format!(
            "SELECT u.id FROM permissions p JOIN users u ON u.id = p.user_id \
               WHERE p.file_id = $1 AND u.id <> $2 AND NOT u.disabled {LOCK_RECIPIENTS}"
        );
        self.tell(db, &recipients, verb, kind).await
    }

    /// Tells the owner that the actor (someone else) downloaded the file,
    /// if they asked for it, at most once an hour per file and downloader.
    pub async fn tell_owner_of_download(&self, db: &Db) -> Result<(), StoreError> {
        let recipients = format!(
            "SELECT u.id FROM files owned JOIN users u ON u.id = owned.owner_id \
               WHERE owned.id = $1 AND u.id <> $2 AND NOT u.disabled \
                 AND NOT $4 = ANY (muted_kinds(u.id)) \
                 AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.user_id = u.id AND n.kind = $4 \
                       AND n.created_at > (now() AT TIME ZONE 'utc') - interval '1 hour' \
                       AND n.data->>'file_id' = $1::uuid::text AND n.data->'by'->>'id' = $2::bigint::text) \
               {LOCK_RECIPIENTS}"
        );
        self.tell(db, &recipients, "downloaded", "file_downloaded").await
    }

    /// Tells each of `recipients` (a query of user ids).
    async fn tell(&self, db: &Db, recipients: &str, verb: &str, kind: &str) -> Result<(), StoreError> {
        let row = db
            .row(
                &format!("WITH recipient AS ({recipients}), {TELL}"),
                &[
                    ParameterValue::Uuid(self.file_id.to_owned()),
                    ParameterValue::Int64(self.actor_id),
                    ParameterValue::Str(verb.to_owned()),
                    ParameterValue::Str(kind.to_owned()),
                ],
            )
            .await?
            .ok_or_else(|| StoreError::corrupt("count returned no row"))?;
        if column::<i64>(&row, "awaiting")? > 0 {
            db.note_deliveries_due();
        }
        Ok(())
    }
}

/// A notification as its recipient sees it.
#[derive(Clone, Debug)]
pub struct Notification {
    pub id: i64,
    pub kind: String,
    pub message: String,
    pub data: Value,
    pub status: String,
    /// Webhook sends so far, and why the last one failed.
    pub attempts: i32,
    pub last_error: Option<String>,
    pub read_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

const COLUMNS: &str =
    "id, kind, message, data::text AS data, status, attempts, last_error, read_at, created_at";

impl Notification {
    fn from_row(row: &Row) -> Result<Self, StoreError> {
        let data: String = column(row, "data")?;
        Ok(Notification {
            id: column(row, "id")?,
            kind: column(row, "kind")?,
            message: column(row, "message")?,
            data: serde_json::from_str(&data).map_err(StoreError::corrupt)?,
            status: column(row, "status")?,
            attempts: column(row, "attempts")?,
            last_error: column(row, "last_error")?,
            read_at: column(row, "read_at")?,
            created_at: column(row, "created_at")?,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "kind": self.kind,
            "message": self.message,
            "data": self.data,
            "read": self.read_at.is_some(),
            "read_at": self.read_at.map(rfc3339),
            "delivery": self.status,
            "delivery_attempts": self.attempts,
            "delivery_error": self.last_error,
            "created_at": rfc3339(self.created_at),
        })
    }
}

/// Up to `rows` of the user's notifications older than `before` (an id),
/// newest first; unread ones only if asked.
pub async fn feed(
    db: &Db,
    user_id: i64,
    unread_only: bool,
    before: Option<i64>,
    rows: i64,
) -> Result<Vec<Notification>, StoreError> {
    let unread = if unread_only { " AND read_at IS NULL" } else { "" };
    db.rows(
        &format!(
            "SELECT {COLUMNS} FROM notifications WHERE user_id = $1{unread} \
             AND id < coalesce($2::bigint, 9223372036854775807) ORDER BY id DESC LIMIT $3"
        ),
        &[
            ParameterValue::Int64(user_id),
            before.map_or(ParameterValue::DbNull, ParameterValue::Int64),
            ParameterValue::Int64(rows),
        ],
    )
    .await?
    .iter()
    .map(Notification::from_row)
    .collect()
}

/// How many of the user's notifications are unread.
pub async fn unread_count(db: &Db, user_id: i64) -> Result<i64, StoreError> {
    let row = db
        .row(
            "SELECT count(*) AS unread FROM notifications WHERE user_id = $1 AND read_at IS NULL",
            &[ParameterValue::Int64(user_id)],
        )
        .await?
        .ok_or_else(|| StoreError::corrupt("count returned no row"))?;
    Ok(column(&row, "unread")?)
}

/// Marks one of the user's notifications read (again: no change); 404 if
/// it is not theirs.
pub async fn mark_read(db: &Db, user_id: i64, id: i64) -> Result<(), StoreError> {
    let found = db
        .execute(
            "UPDATE notifications SET read_at = coalesce(read_at, (now() AT TIME ZONE 'utc')) \
             WHERE id = $1 AND user_id = $2",
            &[ParameterValue::Int64(id), ParameterValue::Int64(user_id)],
        )
        .await?;
    if found == 0 {
        Err(StoreError::NotFound("notification"))
    } else {
        Ok(())
    }
}

/// Marks every unread notification of the user read.
pub async fn mark_all_read(db: &Db, user_id: i64) -> Result<(), StoreError> {
    db.execute(
        "UPDATE notifications SET read_at = (now() AT TIME ZONE 'utc') WHERE user_id = $1 AND read_at IS NULL",
        &[ParameterValue::Int64(user_id)],
    )
    .await?;
    Ok(())
}

/// A user's notification preferences.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub muted_kinds: Vec<String>,
    pub webhook_enabled: bool,
}

/// The user's preferences, defaults filled in.
pub async fn settings(db: &Db, user_id: i64) -> Result<Settings, StoreError> {
    let row = db
        .row(
            "SELECT array_to_json(muted_kinds($1))::text AS muted, \
                    coalesce((SELECT webhook_enabled FROM notification_settings WHERE user_id = $1), true) AS webhook",
            &[ParameterValue::Int64(user_id)],
        )
        .await?
        .ok_or_else(|| StoreError::corrupt("SELECT returned no row"))?;
    let muted: String = column(&row, "muted")?;
    Ok(Settings {
        muted_kinds: serde_json::from_str(&muted).map_err(StoreError::corrupt)?,
        webhook_enabled: column(&row, "webhook")?,
    })
}

/// Records the user's choices (`{"kind": true|false}`, checked by
/// `notification::check_choices`), merged into those they made before, and
/// the webhook switch if given; one statement, so concurrent changes each
/// keep what the other did not touch. Switching webhooks off delivers
/// what waited for the webhook by the feed.
pub async fn change_settings(
    db: &Db,
    user_id: i64,
    choices: &Map<String, Value>,
    webhook_enabled: Option<bool>,
) -> Result<Settings, StoreError> {
    let choices = serde_json::to_vec(choices).map_err(StoreError::corrupt)?;
    db.transaction(async |db| {
        db.execute(
            "INSERT INTO notification_settings (user_id, choices, webhook_enabled) \
         VALUES ($1, $2, coalesce($3, true)) \
         ON CONFLICT (user_id) DO UPDATE SET choices = notification_settings.choices || EXCLUDED.choices, \
             webhook_enabled = coalesce($3, notification_settings.webhook_enabled), \
             updated_at = (now() AT TIME ZONE 'utc')",
            &[
                ParameterValue::Int64(user_id),
                ParameterValue::Jsonb(choices),
                webhook_enabled.map_or(ParameterValue::DbNull, ParameterValue::Boolean),
            ],
        )
        .await?;
        if webhook_enabled == Some(false) {
            crate::webhooks::settle_without_webhook(db, user_id).await?;
        }
        settings(db, user_id).await
    })
    .await
}
