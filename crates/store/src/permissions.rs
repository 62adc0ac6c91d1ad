//! The `permissions` table: who else may do what with a file. The owner's
//! row is the database's to keep (it follows `files.owner_id`), and
//! `files.is_shared` follows the grants by trigger, in the same
//! transaction as every change here.

use crate::error::{Constraint, StoreError};
use crate::notifications::{self, Notice};
use chrono::NaiveDateTime;
use serde_json::{Value, json};
use spin_sdk::pg::{ParameterValue, Row};
use spindrive_domain::file::{FileId, Level};
use spindrive_domain::time::rfc3339;
use spindrive_service::db::{Db, DbError, column};

/// One grant, as the API shows it.
#[derive(Clone, Debug)]
pub struct Grant {
    pub user_id: i64,
    pub username: String,
    pub permission: Level,
    pub is_owner: bool,
    pub granted_by: Option<(i64, String)>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

const GRANT_COLUMNS: &str = "g.user_id, u.username, g.permission, g.is_owner, g.granted_by, \
     b.username AS granted_by_username, g.created_at, g.updated_at";
const GRANT_FROM: &str =
    "permissions g JOIN users u ON u.id = g.user_id LEFT JOIN users b ON b.id = g.granted_by";

/// A grant the owner's rule refuses (a grant to the owner, or a change to
/// the owner's own row), as the API reports it.
const OWNER_GRANT: &[Constraint] = &[(
    "permissions_owner_grant",
    "owner_grant",
    "the owner holds every right; the owner's access cannot be granted, changed or revoked",
)];

impl Grant {
    fn from_row(row: &Row) -> Result<Self, StoreError> {
        let level: String = column(row, "permission")?;
        let granted_by: Option<i64> = column(row, "granted_by")?;
        let granted_by_username: Option<String> = column(row, "granted_by_username")?;
        Ok(Grant {
            user_id: column(row, "user_id")?,
            username: column(row, "username")?,
            permission: Level::parse(&level).map_err(StoreError::corrupt)?,
            is_owner: column(row, "is_owner")?,
            granted_by: granted_by.zip(granted_by_username),
            created_at: column(row, "created_at")?,
            updated_at: column(row, "updated_at")?,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "user": { "id": self.user_id, "username": self.username },
            "permission": self.permission.as_str(),
            "is_owner": self.is_owner,
            "granted_by": self.granted_by.as_ref().map(|(id, username)| json!({ "id": id, "username": username })),
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        })
    }
}

fn file_param(file: &FileId) -> ParameterValue {
    ParameterValue::Uuid(file.as_ref().to_owned())
}

/// Every grant of a file, the owner's first; or only `only_user`'s.
pub async fn list(db: &Db, file: &FileId, only_user: Option<i64>) -> Result<Vec<Grant>, StoreError> {
    let rows = db
        .rows(
            &format!(
                "SELECT {GRANT_COLUMNS} FROM {GRANT_FROM} WHERE g.file_id = $1 AND ($2::bigint IS NULL OR g.user_id = $2) \
                 ORDER BY g.is_owner DESC, u.username"
            ),
            &[file_param(file), only_user.map_or(ParameterValue::DbNull, ParameterValue::Int64)],
        )
        .await?;
    rows.iter().map(Grant::from_row).collect()
}

/// One user's grant on a file.
pub async fn get(db: &Db, file: &FileId, user_id: i64) -> Result<Option<Grant>, StoreError> {
    Ok(list(db, file, Some(user_id)).await?.into_iter().next())
}

/// What a change to a grant is about, for its notification.
pub struct Sharing<'a> {
    pub file: &'a FileId,
    pub file_name: &'a str,
    pub by_id: i64,
    pub by_username: String,
}

/// Grants `user_id` `level` on a file, or changes the level of the grant
/// it has (one row per user and file, whoever races), and tells the user;
/// returns the grant and whether it is new.
pub async fn grant(
    db: &Db,
    sharing: &Sharing<'_>,
    user_id: i64,
    level: Level,
) -> Result<(Grant, bool), StoreError> {
    db.transaction(async |db| {
        let row = db
            .row(
                "INSERT INTO permissions (file_id, user_id, permission, granted_by) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (file_id, user_id) DO UPDATE \
                 SET permission = EXCLUDED.permission, granted_by = EXCLUDED.granted_by, \
                     updated_at = (now() AT TIME ZONE 'utc') \
                 RETURNING (xmax = 0) AS created, (SELECT permission FROM permissions \
                     WHERE file_id = $1 AND user_id = $2) AS before",
                &[
                    file_param(sharing.file),
                    ParameterValue::Int64(user_id),
                    ParameterValue::Str(level.as_str().to_owned()),
                    ParameterValue::Int64(sharing.by_id),
                ],
            )
            .await
            .map_err(|err| missing_file_or(err, OWNER_GRANT))?
            .ok_or_else(|| StoreError::corrupt("upsert returned no row"))?;
        let created: bool = column(&row, "created")?;
        let before: Option<String> = column(&row, "before")?;
        let unchanged = !created && before.as_deref() == Some(level.as_str());
        if !unchanged {
            let event = if created {
                Event::Granted(level)
            } else {
                Event::Changed(level)
            };
            notifications::create(db, &notice(sharing, user_id, event)).await?;
        }
        let grant = get(db, sharing.file, user_id)
            .await?
            .ok_or_else(|| StoreError::corrupt("a grant just written is missing"))?;
        Ok((grant, created))
    })
    .await
}

/// Changes the level of an existing grant (404 if there is none).
pub async fn change(db: &Db, sharing: &Sharing<'_>, user_id: i64, level: Level) -> Result<Grant, StoreError> {
    db.transaction(async |db| {
        let changed = db
            .execute(
                "UPDATE permissions SET permission = $3, granted_by = $4, updated_at = (now() AT TIME ZONE 'utc') \
                 WHERE file_id = $1 AND user_id = $2 AND permission IS DISTINCT FROM $3",
                &[
                    file_param(sharing.file),
                    ParameterValue::Int64(user_id),
                    ParameterValue::Str(level.as_str().to_owned()),
                    ParameterValue::Int64(sharing.by_id),
                ],
            )
            .await
            .map_err(|err| StoreError::from_constraint(err, OWNER_GRANT))?;
        let grant = get(db, sharing.file, user_id).await?.ok_or(StoreError::NotFound("grant"))?;
        if grant.is_owner {
            return Err(owner_rule());
        }
        if changed > 0 {
            notifications::create(db, &notice(sharing, user_id, Event::Changed(level))).await?;
        }
        Ok(grant)
    })
    .await
}

/// Removes a grant and tells its user (404 if there is none; the owner's
/// row cannot be removed).
pub async fn revoke(db: &Db, sharing: &Sharing<'_>, user_id: i64) -> Result<(), StoreError> {
    db.transaction(async |db| {
        let removed = db
            .execute(
                "DELETE FROM permissions WHERE file_id = $1 AND user_id = $2",
                &[file_param(sharing.file), ParameterValue::Int64(user_id)],
            )
            .await
            .map_err(|err| StoreError::from_constraint(err, OWNER_GRANT))?;
        if removed == 0 {
            return Err(StoreError::NotFound("grant"));
        }
        notifications::create(db, &notice(sharing, user_id, Event::Revoked)).await?;
        Ok(())
    })
    .await
}

/// What happened to a user's access, for the notification that tells them.
enum Event {
    Granted(Level),
    Changed(Level),
    Revoked,
}

fn notice(sharing: &Sharing<'_>, user_id: i64, event: Event) -> Notice {
    let (by, file) = (&sharing.by_username, sharing.file_name);
    let (kind, message, level) = match event {
        Event::Granted(level) => (
            "share_granted",
            format!("{by} shared “{file}” with you ({})", level.as_str()),
            Some(level),
        ),
        Event::Changed(level) => (
            "share_changed",
            format!("{by} changed your access to “{file}” to {}", level.as_str()),
            Some(level),
        ),
        Event::Revoked => (
            "share_revoked",
            format!("{by} stopped sharing “{file}” with you"),
            None,
        ),
    };
    Notice {
        user_id,
        kind,
        message,
        data: json!({
            "file_id": sharing.file.as_ref(),
            "file_name": file,
            "permission": level.map(Level::as_str),
            "by": { "id": sharing.by_id, "username": by },
        }),
    }
}

/// A grant on a file deleted meanwhile is a missing file (the foreign key
/// refused it); a rule of the owner's row is a conflict.
fn missing_file_or(error: DbError, constraints: &[Constraint]) -> StoreError {
    if error.code() == Some("23503") {
        return StoreError::NotFound("file");
    }
    StoreError::from_constraint(error, constraints)
}

/// 409: the owner's row is not a grant to change.
pub fn owner_rule() -> StoreError {
    let (_, code, message) = OWNER_GRANT[0];
    StoreError::Conflict { code, message }
}
