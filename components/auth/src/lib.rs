//! The auth service (seed Auth-Service): accounts, sessions, and the
//! administration of users. Thin: parse, call the domain and the store,
//! answer.

use http::Method;
use serde::Deserialize;
use serde_json::json;
use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;
use spindrive_domain::account::{Email, Password, Role, Username, verify_password};
use spindrive_domain::fields::{Whole, present};
use spindrive_domain::{ValidationError, paging, time::rfc3339, token};
use spindrive_service::auth::{self, Caller};
use spindrive_service::response::{created, json, json_document, no_content, with_location};
use spindrive_service::router::Route;
use spindrive_service::{ApiError, Ctx, Db, Reply};
use spindrive_store::users::Refusal;
use spindrive_store::{login_failures, sessions, users};

#[derive(Clone, Copy)]
enum Endpoint {
    Register,
    Login,
    Logout,
    Me,
    UpdateMe,
    ChangePassword,
    ListUsers,
    UpdateUser,
    DeleteUser,
    OpenApi,
    Health,
}

const ROUTES: &[Route<Endpoint>] = &[
    (Method::POST, "/api/auth/register", Endpoint::Register),
    (Method::POST, "/api/auth/login", Endpoint::Login),
    (Method::POST, "/api/auth/logout", Endpoint::Logout),
    (Method::GET, "/api/auth/me", Endpoint::Me),
    (Method::PATCH, "/api/auth/me", Endpoint::UpdateMe),
    (Method::PUT, "/api/auth/password", Endpoint::ChangePassword),
    (Method::GET, "/api/admin/users", Endpoint::ListUsers),
    (Method::PATCH, "/api/admin/users/:id", Endpoint::UpdateUser),
    (Method::DELETE, "/api/admin/users/:id", Endpoint::DeleteUser),
    (Method::GET, "/api/openapi.json", Endpoint::OpenApi),
    (Method::GET, "/healthz", Endpoint::Health),
];

/// The API description, kept in the repository beside the code.
const OPENAPI: &str = include_str!("../../../api/openapi.json");

#[http_service]
async fn handle(request: Request) -> impl IntoResponse {
    spindrive_service::serve(request, ROUTES, async |endpoint, mut ctx| match endpoint {
        Endpoint::Register => register(&mut ctx).await,
        Endpoint::Login => login(&mut ctx).await,
        Endpoint::Logout => logout(&ctx).await,
        Endpoint::Me => me(&ctx).await,
        Endpoint::UpdateMe => update_me(&mut ctx).await,
        Endpoint::ChangePassword => change_password(&mut ctx).await,
        Endpoint::ListUsers => list_users(&ctx).await,
        Endpoint::UpdateUser => update_user(&mut ctx).await,
        Endpoint::DeleteUser => delete_user(&ctx).await,
        Endpoint::OpenApi => Ok(json_document(OPENAPI)),
        Endpoint::Health => Ok(json(&json!({ "status": "ok" }))),
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Registration {
    username: String,
    email: String,
    password: String,
}

async fn register(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let form: Registration = ctx.json().await?;
    let username = Username::parse(&form.username)?;
    let email = Email::parse(&form.email)?;
    let password = Password::parse(&form.password, "password")?;
    let db = Db::connect(&ctx.config).await?;
    let config = &ctx.config;
    let client = ctx.client();
    // A refusal costs a query, not a password hash (tens of milliseconds
    // of CPU).
    users::registration_refusal(&db, config.registration_open, &client)
        .await?
        .map_err(refused)?;
    let hash = password.hash();
    let user = users::create(&db, &username, &email, &hash, config.registration_open, &client)
        .await?
        .map_err(refused)?;
    with_location(created(&user.to_json(config.default_quota_bytes)), "/api/auth/me")
}

fn refused(refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::Closed => ApiError::forbidden("registration is closed; ask an administrator"),
        Refusal::Throttled(seconds) => ApiError::throttled(seconds),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginForm {
    login: String,
    password: String,
}

/// The same reply, after the same work, for an unknown login, a wrong
/// password and a disabled account.
fn invalid_credentials() -> ApiError {
    ApiError::new(
        http::StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "the login or the password is wrong",
    )
}

async fn login(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let form: LoginForm = ctx.json().await?;
    if form.login.is_empty() || form.login.chars().count() > 254 {
        return Err(ValidationError::new("login", "must be 1 to 254 characters").into());
    }
    let login = form.login.trim().to_lowercase();
    // No account has an empty name, NUL in one (PostgreSQL text cannot
    // hold it), or one over 254 characters (lowercasing can lengthen); the
    // answer is the same as for any unknown login.
    if login.is_empty() || login.contains('\0') || login.chars().count() > 254 {
        return Err(invalid_credentials());
    }
    let client = ctx.client();
    let db = Db::connect(&ctx.config).await?;
    let found = users::credentials_by_login(&db, &login).await?;
    // Failures count against the account, whether it was named by its
    // username or its email (the same key as password confirmations);
    // an unknown login against itself.
    let account = found
        .as_ref()
        .map_or(login.as_str(), |credentials| credentials.user.username.as_str())
        .to_owned();
    // Counted as a failure before the password is even looked at.
    login_failures::begin(&db, &account, &client).await?;
    let password_ok = verify_password(&form.password, found.as_ref().map(|c| c.password_hash.as_str()));
    let user = match found {
        Some(credentials) if password_ok && !credentials.user.disabled => credentials.user,
        _ => return Err(invalid_credentials()),
    };
    login_failures::succeeded(&db, &account, &client).await?;
    sessions::purge_expired(&db).await?;
    let issued = token::issue();
    let expires_at = sessions::create(&db, &user, &issued, ctx.config.session_lifetime_seconds).await?;
    Ok(json(&json!({
        "token": issued.token,
        "expires_at": rfc3339(expires_at),
        "user": user.to_json(ctx.config.default_quota_bytes),
    })))
}

async fn logout(ctx: &Ctx) -> Result<Reply, ApiError> {
    let (db, _) = auth::authenticated(ctx).await?;
    let hash = auth::token_hash(ctx).ok_or_else(ApiError::unauthorized)?;
    sessions::revoke(&db, hash).await?;
    Ok(no_content())
}

/// One query: the session resolves straight to the account.
async fn me(ctx: &Ctx) -> Result<Reply, ApiError> {
    let hash = auth::token_hash(ctx).ok_or_else(ApiError::unauthorized)?;
    let db = Db::connect(&ctx.config).await?;
    let user = users::by_session(&db, hash)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    Ok(json(&user.to_json(ctx.config.default_quota_bytes)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileChange {
    #[serde(default, deserialize_with = "present")]
    email: Option<String>,
    /// Required with a new email: whoever holds a stolen token must not be
    /// able to move the account's address (and with it, password resets).
    #[serde(default, deserialize_with = "present")]
    current_password: Option<String>,
}

async fn update_me(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let change: ProfileChange = ctx.json().await?;
    let email = change.email.as_deref().map(Email::parse).transpose()?;
    let (db, caller) = auth::authenticated(ctx).await?;
    let user = match email {
        Some(email) => {
            let current = change
                .current_password
                .as_deref()
                .ok_or_else(|| ValidationError::new("current_password", "is required to change the email"))?;
            confirm_password(ctx, &db, caller, current).await?;
            users::set_email(&db, caller.id, &email).await?
        }
        None => users::by_id(&db, caller.id).await?,
    };
    Ok(json(
        &user
            .ok_or_else(ApiError::unauthorized)?
            .to_json(ctx.config.default_quota_bytes),
    ))
}

/// 403 unless `password` is the caller's (the request is well formed, the
/// caller not allowed); guesses are throttled like logins.
async fn confirm_password(ctx: &Ctx, db: &Db, caller: Caller, password: &str) -> Result<(), ApiError> {
    let user = users::by_id(db, caller.id)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let client = ctx.client();
    login_failures::begin(db, &user.username, &client).await?;
    let stored = users::password_hash(db, caller.id).await?;
    if !verify_password(password, stored.as_deref()) {
        return Err(ApiError::new(
            http::StatusCode::FORBIDDEN,
            "wrong_password",
            "current_password is not the account's password",
        ));
    }
    Ok(login_failures::succeeded(db, &user.username, &client).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

async fn change_password(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let change: PasswordChange = ctx.json().await?;
    let new_password = Password::parse(&change.new_password, "new_password")?;
    let (db, caller) = auth::authenticated(ctx).await?;
    confirm_password(ctx, &db, caller, &change.current_password).await?;
    let keep = auth::token_hash(ctx);
    let hash = new_password.hash();
    db.transaction(async |db| {
        users::set_password(db, caller.id, &hash).await?;
        sessions::revoke_all_but(db, caller.id, keep).await
    })
    .await?;
    Ok(no_content())
}

async fn admin(ctx: &Ctx) -> Result<(Db, Caller), ApiError> {
    let (db, caller) = auth::authenticated(ctx).await?;
    caller.require_admin()?;
    Ok((db, caller))
}

async fn list_users(ctx: &Ctx) -> Result<Reply, ApiError> {
    let limit = paging::limit(ctx.query("limit"))?;
    let after: i64 = match ctx.query("cursor") {
        Some(cursor) => paging::decode_cursor(cursor)?,
        None => 0,
    };
    let (db, _) = admin(ctx).await?;
    let rows = users::page(&db, after, paging::rows_to_fetch(limit)).await?;
    let (page, next_cursor) = paging::page(rows, limit, |user| user.id);
    Ok(json(&json!({
        "users": page.iter().map(|u| u.to_json(ctx.config.default_quota_bytes)).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    })))
}

/// An id from the path; anything that is not one names no user (404).
fn user_id(ctx: &Ctx) -> Result<i64, ApiError> {
    ctx.param("id").parse().map_err(|_| ApiError::not_found("user"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminChange {
    #[serde(default, deserialize_with = "present")]
    role: Option<String>,
    #[serde(default, deserialize_with = "present")]
    disabled: Option<bool>,
    /// Absent: unchanged; `null`: back to the default; a number: bytes.
    #[serde(default, deserialize_with = "present")]
    quota_bytes: Option<Option<Whole<i64>>>,
}

/// Refuses a change that would leave no enabled administrator.
async fn keep_an_admin(db: &Db) -> Result<(), ApiError> {
    if users::active_admin_count(db).await? == 0 {
        return Err(ApiError::conflict(
            "last_admin",
            "that would leave no enabled administrator",
        ));
    }
    Ok(())
}

async fn update_user(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let form: AdminChange = ctx.json().await?;
    let quota_bytes = form.quota_bytes.map(|bytes| bytes.map(|Whole(bytes)| bytes));
    if quota_bytes.flatten().is_some_and(|bytes| bytes < 0) {
        return Err(ValidationError::new("quota_bytes", "must be a number of bytes, at least 0").into());
    }
    let change = users::AdminChange {
        role: form.role.as_deref().map(Role::parse).transpose()?,
        disabled: form.disabled,
        quota_bytes,
    };
    let id = user_id(ctx)?;
    let (db, _) = admin(ctx).await?;
    let user = db
        .transaction(async |db| {
            users::lock_administration(db).await?;
            let user = users::update_admin_fields(db, id, &change)
                .await?
                .ok_or_else(|| ApiError::not_found("user"))?;
            keep_an_admin(db).await?;
            if user.disabled {
                sessions::revoke_all_but(db, id, None).await?;
            }
            Ok::<_, ApiError>(user)
        })
        .await?;
    Ok(json(&user.to_json(ctx.config.default_quota_bytes)))
}

async fn delete_user(ctx: &Ctx) -> Result<Reply, ApiError> {
    let id = user_id(ctx)?;
    let (db, _) = admin(ctx).await?;
    db.transaction(async |db| {
        users::lock_administration(db).await?;
        if !users::delete(db, id).await? {
            return Err(ApiError::not_found("user"));
        }
        keep_an_admin(db).await
    })
    .await?;
    Ok(no_content())
}
