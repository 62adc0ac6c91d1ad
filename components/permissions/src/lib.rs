//! The permissions service (seed Permission-Service): who else may read,
//! write or delete a file. Owners and administrators grant, change and
//! revoke; a grantee sees only its own grant; anyone may ask what they
//! themselves may do. The rules live in the domain crate, the SQL (and the
//! owner's row, which the database keeps) in the store.

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;
use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;
use spindrive_domain::ValidationError;
use spindrive_domain::account::Username;
use spindrive_domain::file::{FileId, Level};
use spindrive_service::auth::authenticated;
use spindrive_service::queue::announce_deliveries;
use spindrive_service::response::{json, json_with_status, no_content};
use spindrive_service::router::Route;
use spindrive_service::{ApiError, Caller, Ctx, Db, Reply};
use spindrive_store::files::{self, VisibleFile};
use spindrive_store::permissions::{self, Sharing};
use spindrive_store::users;

#[derive(Clone, Copy)]
enum Endpoint {
    List,
    Grant,
    Change,
    Revoke,
    Check,
}

const ROUTES: &[Route<Endpoint>] = &[
    (Method::GET, "/api/files/:id/permissions", Endpoint::List),
    (Method::POST, "/api/files/:id/permissions", Endpoint::Grant),
    (
        Method::PATCH,
        "/api/files/:id/permissions/:user_id",
        Endpoint::Change,
    ),
    (
        Method::DELETE,
        "/api/files/:id/permissions/:user_id",
        Endpoint::Revoke,
    ),
    (Method::GET, "/api/permissions/check", Endpoint::Check),
];

#[http_service]
async fn handle(request: Request) -> impl IntoResponse {
    spindrive_service::serve(request, ROUTES, async |endpoint, mut ctx| match endpoint {
        Endpoint::List => list(&ctx).await,
        Endpoint::Grant => grant(&mut ctx).await,
        Endpoint::Change => change(&mut ctx).await,
        Endpoint::Revoke => revoke(&ctx).await,
        Endpoint::Check => check(&ctx).await,
    })
    .await
}

/// The file in the path as the caller sees it (404 if they cannot).
async fn visible_file(ctx: &Ctx) -> Result<(Db, Caller, VisibleFile), ApiError> {
    let id = ctx.file_id()?;
    let (db, caller) = authenticated(ctx).await?;
    let file = files::visible_at(&db, caller, &id, Level::Read).await?;
    Ok((db, caller, file))
}

/// The file in the path, if the caller may change its grants. Anyone else
/// gets 404, like for a file they cannot see at all.
async fn shareable_file(ctx: &Ctx) -> Result<(Db, Caller, VisibleFile), ApiError> {
    let (db, caller, file) = visible_file(ctx).await?;
    if !file.access.may_share() {
        return Err(ApiError::not_found("file"));
    }
    Ok((db, caller, file))
}

/// Who is changing a grant, for the notification it sends.
async fn sharing<'a>(db: &Db, caller: Caller, file: &'a VisibleFile) -> Result<Sharing<'a>, ApiError> {
    let by = users::by_id(db, caller.id)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    Ok(Sharing {
        file: &file.id,
        file_name: &file.file_name,
        by_id: caller.id,
        by_username: by.username,
    })
}

async fn list(ctx: &Ctx) -> Result<Reply, ApiError> {
    let (db, caller, file) = visible_file(ctx).await?;
    // A grantee sees only its own grant, never who else has access.
    let only = (!file.access.may_share()).then_some(caller.id);
    let grants = permissions::list(&db, &file.id, only).await?;
    Ok(json(&json!({
        "permissions": grants.iter().map(permissions::Grant::to_json).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantForm {
    username: String,
    permission: String,
}

async fn grant(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let form: GrantForm = ctx.json().await?;
    let username = Username::parse(&form.username)?;
    let level = Level::parse(&form.permission)?;
    let (db, caller, file) = shareable_file(ctx).await?;
    let grantee = users::enabled_by_username(&db, &username)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    if grantee.id == caller.id && grantee.id != file.owner_id {
        // Well formed, but at odds with who is asking: a conflict, like the
        // owner's own row.
        return Err(ApiError::conflict(
            "cannot_share_with_yourself",
            "you cannot share a file with yourself",
        ));
    }
    if grantee.id == file.owner_id {
        return Err(permissions::owner_rule().into());
    }
    let sharing = sharing(&db, caller, &file).await?;
    let (grant, created) = permissions::grant(&db, &sharing, grantee.id, level).await?;
    announce_deliveries(db).await;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_with_status(status, &grant.to_json()))
}

/// The `:user_id` of the path; anything else names no grant (404).
fn grantee_id(ctx: &Ctx) -> Result<i64, ApiError> {
    ctx.param("user_id")
        .parse()
        .map_err(|_| ApiError::not_found("grant"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LevelForm {
    permission: String,
}

async fn change(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let form: LevelForm = ctx.json().await?;
    let level = Level::parse(&form.permission)?;
    let user_id = grantee_id(ctx)?;
    let (db, caller, file) = shareable_file(ctx).await?;
    let sharing = sharing(&db, caller, &file).await?;
    let grant = permissions::change(&db, &sharing, user_id, level).await?;
    announce_deliveries(db).await;
    Ok(json(&grant.to_json()))
}

async fn revoke(ctx: &Ctx) -> Result<Reply, ApiError> {
    let user_id = grantee_id(ctx)?;
    let (db, caller, file) = shareable_file(ctx).await?;
    if user_id == file.owner_id {
        return Err(permissions::owner_rule().into());
    }
    let sharing = sharing(&db, caller, &file).await?;
    permissions::revoke(&db, &sharing, user_id).await?;
    announce_deliveries(db).await;
    Ok(no_content())
}

/// `GET /api/permissions/check?file_id=&action=`: what the caller may do.
async fn check(ctx: &Ctx) -> Result<Reply, ApiError> {
    let action = Level::parse(ctx.query("action").unwrap_or_default())
        .map_err(|_| ValidationError::new("action", "must be read, write or delete"))?;
    let id =
        FileId::parse(ctx.query("file_id").unwrap_or_default()).ok_or_else(|| ApiError::not_found("file"))?;
    let (db, caller) = authenticated(ctx).await?;
    let file = files::visible_at(&db, caller, &id, Level::Read).await?;
    Ok(json(&json!({
        "file_id": file.id.as_ref(),
        "action": action.as_str(),
        "allowed": file.access.allows(action),
        "my_permission": file.access.level().map(Level::as_str),
    })))
}
