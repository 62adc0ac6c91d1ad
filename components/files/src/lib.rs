//! The files service (seed File-Picker-Service): upload, list, metadata,
//! rename and delete. Content streams into the Postgres content store; the
//! rules of who sees what live in the domain crate.

use http::HeaderValue;
use http::Method;
use http::header::ETAG;
use serde::Deserialize;
use serde_json::json;
use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;
use spindrive_domain::ValidationError;
use spindrive_domain::download;
use spindrive_domain::file::{FileId, FileName, Level};
use spindrive_domain::paging;
use spindrive_service::Caller;
use spindrive_service::auth::authenticated;
use spindrive_service::queue::announce_deliveries;
use spindrive_service::response::{created, json, no_content, with_location};
use spindrive_service::router::Route;
use spindrive_service::{ApiError, Ctx, Db, Reply};
use spindrive_store::content;
use spindrive_store::error::StoreError;
use spindrive_store::files::{self, Listing, Position, Scope, Sort};
use spindrive_store::notifications::FileEvent;

#[derive(Clone, Copy)]
enum Endpoint {
    Upload,
    List,
    Get,
    Rename,
    Delete,
}

const ROUTES: &[Route<Endpoint>] = &[
    (Method::POST, "/api/files", Endpoint::Upload),
    (Method::GET, "/api/files", Endpoint::List),
    (Method::GET, "/api/files/:id", Endpoint::Get),
    (Method::PATCH, "/api/files/:id", Endpoint::Rename),
    (Method::DELETE, "/api/files/:id", Endpoint::Delete),
];

#[http_service]
async fn handle(request: Request) -> impl IntoResponse {
    spindrive_service::serve(request, ROUTES, async |endpoint, mut ctx| match endpoint {
        Endpoint::Upload => upload(&mut ctx).await,
        Endpoint::List => list(&ctx).await,
        Endpoint::Get => get(&ctx).await,
        Endpoint::Rename => rename(&mut ctx).await,
        Endpoint::Delete => delete(&ctx).await,
    })
    .await
}

/// `POST /api/files?name=`: the raw body is the content, streamed.
async fn upload(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let name = FileName::parse(ctx.query("name").unwrap_or_default())?;
    let content_type = ctx.content_type()?;
    ApiError::check_length(ctx.declared_length(), ctx.config.max_upload_bytes)?;
    let (db, caller) = authenticated(ctx).await?;
    let config = &ctx.config.clone();
    let allowance = content::allowance(&db, config, caller.id, 0).await?;
    allowance.check_declared(ctx.declared_length())?;
    let body = ctx
        .take_body()
        .ok_or_else(|| ApiError::internal("body taken twice"))?;
    // The request's connection goes back to the pool while the body arrives.
    drop(db);
    let staged = content::stage(config, caller, body, allowance).await?;
    let db = Db::connect(config).await?;
    let id = content::publish_new(
        &db,
        caller,
        &staged,
        name.as_ref(),
        &content_type,
        config.default_quota_bytes,
        async |_, _| Ok(()),
    )
    .await?;
    let id = FileId::parse(&id).ok_or_else(|| ApiError::internal("the database made an invalid id"))?;
    let file = files::visible(&db, caller, &id)
        .await?
        .ok_or_else(|| ApiError::internal("a published file is not visible to its owner"))?;
    let reply = with_etag(created(&file.to_json()), &file)?;
    with_location(reply, &format!("/api/files/{}", file.id.as_ref()))
}

fn parse_choice<T: for<'de> Deserialize<'de>>(
    value: Option<&str>,
    field: &'static str,
    default: T,
    choices: &str,
) -> Result<T, ApiError> {
    match value {
        None => Ok(default),
        Some(text) => serde_json::from_value(serde_json::Value::String(text.to_owned()))
            .map_err(|_| ValidationError::new(field, format!("must be one of {choices}")).into()),
    }
}

/// `GET /api/files`: the caller's files, searched (by name, and with
/// `content=true` by their text too, best match first), sorted, paged.
async fn list(ctx: &Ctx) -> Result<Reply, ApiError> {
    let scope = parse_choice(ctx.query("scope"), "scope", Scope::All, "owned, shared, all")?;
    let content = match ctx.query("content") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ValidationError::new("content", "must be true or false").into()),
    };
    let sort = parse_choice(
        ctx.query("sort"),
        "sort",
        if content { Sort::Relevance } else { Sort::CreatedAt },
        "name, created_at, size, relevance",
    )?;
    match (content, sort) {
        (true, Sort::Relevance) | (false, Sort::Name | Sort::CreatedAt | Sort::Size) => {}
        (true, _) => {
            return Err(ValidationError::new("sort", "a content search is ordered by relevance").into());
        }
        (false, _) => {
            return Err(
                ValidationError::new("sort", "relevance orders a content search (content=true)").into(),
            );
        }
    }
    let descending = match ctx.query("order") {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(_) => return Err(ValidationError::new("order", "must be asc or desc").into()),
    };
    let query = ctx.query("q").filter(|q| !q.is_empty()).map(str::to_owned);
    if query.as_ref().is_some_and(|q| q.chars().count() > 255) {
        return Err(ValidationError::new("q", "must be at most 255 characters").into());
    }
    // PostgreSQL text cannot hold NUL.
    if query.as_ref().is_some_and(|q| q.contains('\0')) {
        return Err(ValidationError::new("q", "must not contain NUL").into());
    }
    if content && query.is_none() {
        return Err(ValidationError::new("q", "a content search needs words to find").into());
    }
    let after = ctx
        .query("cursor")
        .map(paging::decode_cursor::<Position>)
        .transpose()?;
    let limit = paging::limit(ctx.query("limit"))?;
    let listing = Listing {
        scope,
        sort,
        descending,
        query,
        content,
        after,
    };
    if let Some(after) = &listing.after
        && (after.scope, after.sort, after.descending, &after.query)
            != (listing.scope, listing.sort, listing.descending, &listing.query)
    {
        return Err(ValidationError::new("cursor", "belongs to another list").into());
    }
    let (db, caller) = authenticated(ctx).await?;
    let rows = files::page(&db, caller, &listing, paging::rows_to_fetch(limit)).await?;
    let (page, next_cursor) = paging::page(rows, limit, |file| files::position_after(file, &listing));
    Ok(json(&json!({
        "files": page.iter().map(files::VisibleFile::to_json).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    })))
}

/// The metadata's strong ETag on a reply, for `If-Match` on a rename.
fn with_etag(mut reply: Reply, file: &files::VisibleFile) -> Result<Reply, ApiError> {
    let etag = HeaderValue::from_str(&file.metadata_etag()).map_err(ApiError::internal)?;
    reply.headers_mut().insert(ETAG, etag);
    Ok(reply)
}

/// The file in the path, visible to the caller at `level` (404 otherwise).
async fn file_in_path(ctx: &Ctx, level: Level) -> Result<(Db, Caller, files::VisibleFile), ApiError> {
    let id = ctx.file_id()?;
    let (db, caller) = authenticated(ctx).await?;
    let file = files::visible_at(&db, caller, &id, level).await?;
    Ok((db, caller, file))
}

async fn get(ctx: &Ctx) -> Result<Reply, ApiError> {
    let (_, _, file) = file_in_path(ctx, Level::Read).await?;
    with_etag(json(&file.to_json()), &file)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenameForm {
    file_name: String,
}

async fn rename(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let form: RenameForm = ctx.json().await?;
    let name = FileName::parse(&form.file_name)?;
    let (db, caller, file) = file_in_path(ctx, Level::Write).await?;
    // The version read above must still be the file's when it is renamed.
    let expected = match ctx.header("if-match") {
        Some(header) if download::if_match_holds(header, &file.metadata_etag()) => Some(file.version),
        Some(_) => return Err(StoreError::PreconditionFailed.into()),
        None => None,
    };
    files::rename(&db, &file.id, &name, expected).await?;
    let renamed = files::visible(&db, caller, &file.id)
        .await?
        .ok_or_else(|| ApiError::not_found("file"))?;
    with_etag(json(&renamed.to_json()), &renamed)
}

async fn delete(ctx: &Ctx) -> Result<Reply, ApiError> {
    let (db, caller, file) = file_in_path(ctx, Level::Delete).await?;
    let deletion = FileEvent {
        file_id: file.id.as_ref(),
        actor_id: caller.id,
    };
    // The content the row pointed to when it went, not the one read
    // above: a replacement may have published in between.
    let storage_key = files::delete(&db, &file.id, &deletion)
        .await?
        .ok_or_else(|| ApiError::not_found("file"))?;
    content::remove_released(&db, &storage_key).await?;
    announce_deliveries(db).await;
    Ok(no_content())
}
