//! The `users` table.

use crate::error::{Constraint, StoreError};
use chrono::NaiveDateTime;
use serde_json::{Value, json};
use spin_sdk::pg::ParameterValue;
use spindrive_domain::account::{Email, Role, Username};
use spindrive_domain::client::ClientKey;
use spindrive_domain::throttle;
use spindrive_domain::time::rfc3339;
use spindrive_service::auth::SESSION_ACCOUNT;
use spindrive_service::db::{Db, DbError, column};

/// An account as the API shows it (never its password hash).
#[derive(Clone, Debug)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub role: Role,
    pub disabled: bool,
    /// Storage allowed, if an administrator set it (else the default).
    pub quota_bytes: Option<i64>,
    /// Storage used by the files the user owns.
    pub used_bytes: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// The columns every `User` is read from.
const USER_COLUMNS: &str =
    "id, username, email, role, disabled, quota_bytes, used_bytes, created_at, updated_at";

/// Unique constraints, as the API reports them.
pub const CONFLICTS: &[Constraint] = &[
    ("users_username_key", "username_taken", "that username is taken"),
    (
        "users_email_key",
        "email_taken",
        "that email is already registered",
    ),
];

impl User {
    fn from_row(row: &spin_sdk::pg::Row) -> Result<Self, StoreError> {
        let role: String = column(row, "role")?;
        Ok(User {
            id: column(row, "id")?,
            username: column(row, "username")?,
            email: column(row, "email")?,
            role: Role::parse(&role).map_err(StoreError::corrupt)?,
            disabled: column(row, "disabled")?,
            quota_bytes: column(row, "quota_bytes")?,
            used_bytes: column(row, "used_bytes")?,
            created_at: column(row, "created_at")?,
            updated_at: column(row, "updated_at")?,
        })
    }

    /// The quota in force: the user's own, or `default`.
    pub fn quota(&self, default: i64) -> i64 {
        self.quota_bytes.unwrap_or(default)
    }

    /// The account as the user and administrators see it (email, storage).
    pub fn to_json(&self, default_quota: i64) -> Value {
        json!({
            "id": self.id,
            "username": self.username,
            "email": self.email,
            "role": self.role.as_str(),
            "disabled": self.disabled,
            "usage": self.used_bytes,
            "quota": self.quota(default_quota),
            "quota_is_default": self.quota_bytes.is_none(),
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        })
    }
}

fn text(value: &str) -> ParameterValue {
    ParameterValue::Str(value.to_owned())
}

/// Why a registration was refused.
pub enum Refusal {
    /// Registration is closed and an account exists already.
    Closed,
    /// This client registered too many accounts lately; retry after the seconds.
    Throttled(u64),
}

/// Seconds since the oldest of this client's registrations in the window.
const RECENT_REGISTRATIONS: &str = "SELECT EXISTS (SELECT 1 FROM users) AS any_user, count(*) AS recent, \
     coalesce(floor(extract(epoch FROM (now() AT TIME ZONE 'utc') - min(registered_at))), 0)::bigint AS oldest_age \
     FROM registrations WHERE client = $1 AND registered_at > (now() AT TIME ZONE 'utc') - make_interval(secs => $2)";

/// Whether `client` may register now: `Ok(whether any account exists)`,
/// or why not. [`create`] asks again under its lock; asking first lets a
/// refused request skip hashing its password.
pub async fn registration_refusal(
    db: &Db,
    registration_open: bool,
    client: &ClientKey,
) -> Result<Result<bool, Refusal>, StoreError> {
    let window = ParameterValue::Floating64(throttle::WINDOW_SECONDS as f64);
    let row = db
        .row(RECENT_REGISTRATIONS, &[text(client.as_ref()), window])
        .await?
        .ok_or_else(|| StoreError::corrupt("count returned no row"))?;
    let any_user: bool = column(&row, "any_user")?;
    if any_user && !registration_open {
        return Ok(Err(Refusal::Closed));
    }
    if let Some(seconds) = throttle::registration_wait(column(&row, "recent")?, column(&row, "oldest_age")?) {
        return Ok(Err(Refusal::Throttled(seconds)));
    }
    Ok(Ok(any_user))
}

/// Creates an account; the very first one becomes an admin. Registrations
/// are serialised (one lock), and every rule is checked inside that same
/// transaction: two racing first registrations cannot both become admins,
/// nor both pass a closed registration or a client's last free slot.
pub async fn create(
    db: &Db,
    username: &Username,
    email: &Email,
    password_hash: &str,
    registration_open: bool,
    client: &ClientKey,
) -> Result<Result<User, Refusal>, StoreError> {
    let window = ParameterValue::Floating64(throttle::WINDOW_SECONDS as f64);
    db.transaction(async |db| {
        db.execute("SELECT pg_advisory_xact_lock(hashtext('spindrive.users.create'))", &[])
            .await?;
        let any_user = match registration_refusal(db, registration_open, client).await? {
            Err(refusal) => return Ok(Err(refusal)),
            Ok(any_user) => any_user,
        };
        let row = db
            .row(
                &format!(
                    "INSERT INTO users (username, email, password, role) VALUES ($1, $2, $3, $4) \
                     RETURNING {USER_COLUMNS}"
                ),
                &[
                    text(username.as_ref()),
                    text(email.as_ref()),
                    text(password_hash),
                    text(if any_user { "viewer" } else { "admin" }),
                ],
            )
            .await
            .map_err(|err| StoreError::from_constraint(err, CONFLICTS))?
            .ok_or_else(|| StoreError::corrupt("INSERT returned no row"))?;
        db.execute(
            "DELETE FROM registrations WHERE registered_at <= (now() AT TIME ZONE 'utc') - make_interval(secs => $1)",
            std::slice::from_ref(&window),
        )
        .await?;
        db.execute("INSERT INTO registrations (client) VALUES ($1)", &[text(client.as_ref())])
            .await?;
        User::from_row(&row).map(Ok)
    })
    .await
}

/// The account behind a live session token (not expired, not disabled).
pub async fn by_session(db: &Db, token_hash: [u8; 32]) -> Result<Option<User>, StoreError> {
    let row = db
        .row(
            &format!("SELECT {USER_COLUMNS} FROM {SESSION_ACCOUNT}"),
            &[ParameterValue::Binary(token_hash.to_vec())],
        )
        .await?;
    row.as_ref().map(User::from_row).transpose()
}

/// An enabled account by username (any case): whom a file can be shared
/// with. A disabled account is not found.
pub async fn enabled_by_username(db: &Db, username: &Username) -> Result<Option<User>, StoreError> {
    let row = db
        .row(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE lower(username) = lower($1) AND NOT disabled"),
            &[text(username.as_ref())],
        )
        .await?;
    row.as_ref().map(User::from_row).transpose()
}

pub async fn by_id(db: &Db, id: i64) -> Result<Option<User>, StoreError> {
    let row = db
        .row(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"),
            &[ParameterValue::Int64(id)],
        )
        .await?;
    row.as_ref().map(User::from_row).transpose()
}

/// A login: an account found by username or email (any case), with its
/// password hash.
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

pub async fn credentials_by_login(db: &Db, login: &str) -> Result<Option<Credentials>, StoreError> {
    let row = db
        .row(
            &format!(
                "SELECT {USER_COLUMNS}, password FROM users \
                 WHERE lower(username) = lower($1) OR lower(email) = lower($1) LIMIT 1"
            ),
            &[text(login)],
        )
        .await?;
    row.map(|row| {
        Ok(Credentials {
            user: User::from_row(&row)?,
            password_hash: column(&row, "password")?,
        })
    })
    .transpose()
}

pub async fn password_hash(db: &Db, id: i64) -> Result<Option<String>, StoreError> {
    let row = db
        .row(
            "SELECT password FROM users WHERE id = $1",
            &[ParameterValue::Int64(id)],
        )
        .await?;
    Ok(row.map(|row| column(&row, "password")).transpose()?)
}

pub async fn set_password(db: &Db, id: i64, password_hash: &str) -> Result<(), DbError> {
    db.execute(
        "UPDATE users SET password = $2, updated_at = (now() AT TIME ZONE 'utc') WHERE id = $1",
        &[ParameterValue::Int64(id), text(password_hash)],
    )
    .await
    .map(drop)
}

pub async fn set_email(db: &Db, id: i64, email: &Email) -> Result<Option<User>, StoreError> {
    let row = db
        .row(
            &format!(
                "UPDATE users SET email = $2, updated_at = (now() AT TIME ZONE 'utc') \
                 WHERE id = $1 RETURNING {USER_COLUMNS}"
            ),
            &[ParameterValue::Int64(id), text(email.as_ref())],
        )
        .await
        .map_err(|err| StoreError::from_constraint(err, CONFLICTS))?;
    row.as_ref().map(User::from_row).transpose()
}

/// What an administrator changes on an account; `None` leaves a field as
/// it is, and `quota_bytes: Some(None)` returns the user to the default.
pub struct AdminChange {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    pub quota_bytes: Option<Option<i64>>,
}

pub async fn update_admin_fields(db: &Db, id: i64, change: &AdminChange) -> Result<Option<User>, StoreError> {
    let row = db
        .row(
            &format!(
                "UPDATE users SET role = coalesce($2, role), disabled = coalesce($3, disabled), \
                 quota_bytes = CASE WHEN $4 THEN $5 ELSE quota_bytes END, \
                 updated_at = (now() AT TIME ZONE 'utc') WHERE id = $1 RETURNING {USER_COLUMNS}"
            ),
            &[
                ParameterValue::Int64(id),
                change.role.map_or(ParameterValue::DbNull, |r| text(r.as_str())),
                change
                    .disabled
                    .map_or(ParameterValue::DbNull, ParameterValue::Boolean),
                ParameterValue::Boolean(change.quota_bytes.is_some()),
                change
                    .quota_bytes
                    .flatten()
                    .map_or(ParameterValue::DbNull, ParameterValue::Int64),
            ],
        )
        .await?;
    row.as_ref().map(User::from_row).transpose()
}

pub async fn delete(db: &Db, id: i64) -> Result<bool, StoreError> {
    Ok(db
        .execute("DELETE FROM users WHERE id = $1", &[ParameterValue::Int64(id)])
        .await?
        > 0)
}

/// Serialises changes to who administers (role, disabled, deletion) until
/// the transaction ends, so concurrent demotions each see the other's
/// outcome and cannot together leave no administrator.
pub async fn lock_administration(db: &Db) -> Result<(), StoreError> {
    db.execute(
        "SELECT pg_advisory_xact_lock(hashtext('spindrive.users.admins'))",
        &[],
    )
    .await?;
    Ok(())
}

/// Enabled administrators left; an admin change may never make it zero.
pub async fn active_admin_count(db: &Db) -> Result<i64, StoreError> {
    let row = db
        .row(
            "SELECT count(*) AS n FROM users WHERE role = 'admin' AND NOT disabled",
            &[],
        )
        .await?
        .ok_or_else(|| StoreError::corrupt("count returned no row"))?;
    Ok(column(&row, "n")?)
}

/// A page of accounts by id, after `after`.
pub async fn page(db: &Db, after: i64, limit: i64) -> Result<Vec<User>, StoreError> {
    let rows = db
        .rows(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE id > $1 ORDER BY id LIMIT $2"),
            &[ParameterValue::Int64(after), ParameterValue::Int64(limit)],
        )
        .await?;
    rows.iter().map(User::from_row).collect()
}
