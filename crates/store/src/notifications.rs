//! The `notifications` table: what users are told about their files. One
//! function creates them, inside the transaction of the change they tell
//! about (a kind the recipient muted is not written: schema 7); the feed
//! reads them, newest first, each user only their own.

use crate::error::StoreError;
use chrono::NaiveDateTime;
use serde_json::{Value, json};
use spin_sdk::pg::{ParameterValue, Row};
use spindrive_domain::ValidationError;
use spindrive_domain::time::rfc3339;
use spindrive_service::db::{Db, column};

/// A notification to create.
pub struct Notice {
    pub user_id: i64,
    pub kind: &'static str,
    pub message: String,
    pub data: Value,
}

/// Creates a pending notification; its id, or `None` when the recipient
/// muted its kind.
pub async fn create(db: &Db, notice: &Notice) -> Result<Option<i64>, StoreError> {
    let data = serde_json::to_vec(&notice.data).map_err(StoreError::corrupt)?;
    let row = db
        .row(
            "INSERT INTO notifications (user_id, message, kind, data) VALUES ($1, $2, $3, $4) RETURNING id",
            &[
                ParameterValue::Int64(notice.user_id),
                ParameterValue::Str(notice.message.clone()),
                ParameterValue::Str(notice.kind.to_owned()),
                ParameterValue::Jsonb(data),
            ],
        )
        .await?;
    Ok(row.map(|row| column(&row, "id")).transpose()?)
}

/// Something `actor_id` did to a file, told to others (the actor's name
/// is read in the same statement).
pub struct FileEvent<'a> {
    pub file_id: &'a str,
    pub file_name: &'a str,
    pub actor_id: i64,
}

/// `kind` for each user `recipients` selects (`$1` the file, `$2` the
/// actor, `$3` the file's name, `$4` the verb), naming the actor.
const TELL: &str = "INSERT INTO notifications (user_id, message, kind, data) \
     SELECT recipient, format('%s %s “%s”', actor.username, $4::text, $3::text), $5, \
            jsonb_build_object('file_id', $1::uuid::text, 'file_name', $3::text, \
                               'by', jsonb_build_object('id', actor.id, 'username', actor.username)) \
       FROM users actor, ";

impl FileEvent<'_> {
    fn params(&self, verb: &str, kind: &str) -> [ParameterValue; 5] {
        [
            ParameterValue::Uuid(self.file_id.to_owned()),
            ParameterValue::Int64(self.actor_id),
            ParameterValue::Str(self.file_name.to_owned()),
            ParameterValue::Str(verb.to_owned()),
            ParameterValue::Str(kind.to_owned()),
        ]
    }

    /// Tells everyone who owns or holds a grant on the file, but the
    /// actor: `kind`, with `verb` ("replaced", "deleted") in the message.
    /// Before a deletion, which takes the grants with it.
    pub async fn tell_holders(&self, db: &Db, kind: &'static str, verb: &str) -> Result<(), StoreError> {
        db.execute(
            &format!(
                "{TELL}(SELECT user_id AS recipient FROM permissions WHERE file_id = $1 AND user_id <> $2) holders \
                 WHERE actor.id = $2"
            ),
            &self.params(verb, kind),
        )
        .await?;
        Ok(())
    }

    /// Tells the owner (`owner_id`, not the actor) that the actor
    /// downloaded the file; muted unless they asked for it.
    pub async fn tell_owner_of_download(&self, db: &Db, owner_id: i64) -> Result<(), StoreError> {
        let mut params = self.params("downloaded", "file_downloaded").to_vec();
        params.push(ParameterValue::Int64(owner_id));
        db.execute(
            &format!("{TELL}(SELECT $6::bigint AS recipient) owner WHERE actor.id = $2 AND recipient <> $2"),
            &params,
        )
        .await?;
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
    pub read_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

const COLUMNS: &str = "id, kind, message, data::text AS data, status, read_at, created_at";

impl Notification {
    fn from_row(row: &Row) -> Result<Self, StoreError> {
        let data: String = column(row, "data")?;
        Ok(Notification {
            id: column(row, "id")?,
            kind: column(row, "kind")?,
            message: column(row, "message")?,
            data: serde_json::from_str(&data).map_err(StoreError::corrupt)?,
            status: column(row, "status")?,
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
             AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
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

/// Changes the user's preferences with `change`, one change at a time
/// (the user's row is held), and returns them.
pub async fn change_settings(
    db: &Db,
    user_id: i64,
    change: impl FnOnce(Settings) -> Result<Settings, ValidationError>,
) -> Result<Settings, StoreError> {
    db.transaction(async |db| {
        db.execute(
            "SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE",
            &[ParameterValue::Int64(user_id)],
        )
        .await?;
        let changed = change(settings(db, user_id).await?)?;
        save_settings(db, user_id, &changed).await?;
        Ok(changed)
    })
    .await
}

async fn save_settings(db: &Db, user_id: i64, settings: &Settings) -> Result<(), StoreError> {
    let muted = serde_json::to_vec(&settings.muted_kinds).map_err(StoreError::corrupt)?;
    db.execute(
        "INSERT INTO notification_settings (user_id, muted_kinds, webhook_enabled) \
         SELECT $1, coalesce(array_agg(kind), '{}'), $3 FROM jsonb_array_elements_text($2) AS kind \
         ON CONFLICT (user_id) DO UPDATE SET muted_kinds = EXCLUDED.muted_kinds, \
             webhook_enabled = EXCLUDED.webhook_enabled, updated_at = (now() AT TIME ZONE 'utc')",
        &[
            ParameterValue::Int64(user_id),
            ParameterValue::Jsonb(muted),
            ParameterValue::Boolean(settings.webhook_enabled),
        ],
    )
    .await?;
    Ok(())
}
