//! The `users` table.

use chrono::NaiveDateTime;
use serde_json::{Value, json};
use spin_sdk::pg::ParameterValue;
use spindrive_domain::account::{Email, Role, Username};
use spindrive_domain::time::rfc3339;
use spindrive_service::ApiError;
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
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// The columns every `User` is read from.
const USER_COLUMNS: &str = "id, username, email, role, disabled, created_at, updated_at";

/// Unique constraints, as the API reports them.
pub const CONFLICTS: &[(&str, &str, &str)] = &[
    ("users_username_key", "username_taken", "that username is taken"),
    (
        "users_email_key",
        "email_taken",
        "that email is already registered",
    ),
];

impl User {
    fn from_row(row: &spin_sdk::pg::Row) -> Result<Self, ApiError> {
        let role: String = column(row, "role")?;
        Ok(User {
            id: column(row, "id")?,
            username: column(row, "username")?,
            email: column(row, "email")?,
            role: Role::parse(&role).map_err(ApiError::internal)?,
            disabled: column(row, "disabled")?,
            created_at: column(row, "created_at")?,
            updated_at: column(row, "updated_at")?,
        })
    }

    /// The JSON the API returns; the email only for the user and admins.
    pub fn to_json(&self, show_email: bool) -> Value {
        let mut user = json!({
            "id": self.id,
            "username": self.username,
            "role": self.role.as_str(),
            "disabled": self.disabled,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        });
        if show_email {
            user["email"] = self.email.clone().into();
        }
        user
    }
}

fn text(value: &str) -> ParameterValue {
    ParameterValue::Str(value.to_owned())
}

/// Creates an account; the very first one becomes an admin. Registrations
/// are serialised so two first registrations cannot both become admins.
pub async fn create(
    db: &Db,
    username: &Username,
    email: &Email,
    password_hash: &str,
) -> Result<User, ApiError> {
    db.transaction(async |db| {
        db.execute("SELECT pg_advisory_xact_lock(hashtext('spindrive.users.create'))", &[])
            .await?;
        let row = db
            .row(
                &format!(
                    "INSERT INTO users (username, email, password, role) \
                     SELECT $1, $2, $3, CASE WHEN EXISTS (SELECT 1 FROM users) THEN 'viewer' ELSE 'admin' END \
                     RETURNING {USER_COLUMNS}"
                ),
                &[text(username.as_ref()), text(email.as_ref()), text(password_hash)],
            )
            .await
            .map_err(|err| err.conflict_on(CONFLICTS))?
            .ok_or_else(|| ApiError::internal("INSERT returned no row"))?;
        User::from_row(&row)
    })
    .await
}

/// Whether any account exists.
pub async fn any_exist(db: &Db) -> Result<bool, ApiError> {
    Ok(db.row("SELECT 1 AS one FROM users LIMIT 1", &[]).await?.is_some())
}

/// The account behind a live session token (not expired, not disabled).
pub async fn by_session(db: &Db, token_hash: [u8; 32]) -> Result<Option<User>, ApiError> {
    let row = db
        .row(
            &format!("SELECT {USER_COLUMNS} FROM {SESSION_ACCOUNT}"),
            &[ParameterValue::Binary(token_hash.to_vec())],
        )
        .await?;
    row.as_ref().map(User::from_row).transpose()
}

pub async fn by_id(db: &Db, id: i64) -> Result<Option<User>, ApiError> {
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

pub async fn credentials_by_login(db: &Db, login: &str) -> Result<Option<Credentials>, ApiError> {
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

pub async fn password_hash(db: &Db, id: i64) -> Result<Option<String>, ApiError> {
    let row = db
        .row(
            "SELECT password FROM users WHERE id = $1",
            &[ParameterValue::Int64(id)],
        )
        .await?;
    row.map(|row| column(&row, "password")).transpose()
}

pub async fn set_password(db: &Db, id: i64, password_hash: &str) -> Result<(), DbError> {
    db.execute(
        "UPDATE users SET password = $2, updated_at = (now() AT TIME ZONE 'utc') WHERE id = $1",
        &[ParameterValue::Int64(id), text(password_hash)],
    )
    .await
    .map(drop)
}

pub async fn set_email(db: &Db, id: i64, email: &Email) -> Result<Option<User>, ApiError> {
    let row = db
        .row(
            &format!(
                "UPDATE users SET email = $2, updated_at = (now() AT TIME ZONE 'utc') \
                 WHERE id = $1 RETURNING {USER_COLUMNS}"
            ),
            &[ParameterValue::Int64(id), text(email.as_ref())],
        )
        .await
        .map_err(|err| err.conflict_on(CONFLICTS))?;
    row.as_ref().map(User::from_row).transpose()
}

/// Changes role and/or disabled; `None` leaves a field as it is.
pub async fn update_admin_fields(
    db: &Db,
    id: i64,
    role: Option<Role>,
    disabled: Option<bool>,
) -> Result<Option<User>, ApiError> {
    let row = db
        .row(
            &format!(
                "UPDATE users SET role = coalesce($2, role), disabled = coalesce($3, disabled), \
                 updated_at = (now() AT TIME ZONE 'utc') WHERE id = $1 RETURNING {USER_COLUMNS}"
            ),
            &[
                ParameterValue::Int64(id),
                role.map_or(ParameterValue::DbNull, |r| text(r.as_str())),
                disabled.map_or(ParameterValue::DbNull, ParameterValue::Boolean),
            ],
        )
        .await?;
    row.as_ref().map(User::from_row).transpose()
}

pub async fn delete(db: &Db, id: i64) -> Result<bool, ApiError> {
    Ok(db
        .execute("DELETE FROM users WHERE id = $1", &[ParameterValue::Int64(id)])
        .await?
        > 0)
}

/// Enabled administrators left; an admin change may never make it zero.
pub async fn active_admin_count(db: &Db) -> Result<i64, ApiError> {
    let row = db
        .row(
            "SELECT count(*) AS n FROM users WHERE role = 'admin' AND NOT disabled",
            &[],
        )
        .await?
        .ok_or_else(|| ApiError::internal("count returned no row"))?;
    column(&row, "n")
}

/// A page of accounts by id, after `after`.
pub async fn page(db: &Db, after: i64, limit: i64) -> Result<Vec<User>, ApiError> {
    let rows = db
        .rows(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE id > $1 ORDER BY id LIMIT $2"),
            &[ParameterValue::Int64(after), ParameterValue::Int64(limit)],
        )
        .await?;
    rows.iter().map(User::from_row).collect()
}
