//! The transformations API (seed File-Transformation-Service). Asking for
//! a transformation of a file you can read records a `pending` job and
//! publishes its id on the queue channel; the Redis-triggered worker
//! (`transform-worker`) claims and runs it. You see your own jobs only.

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;
use spindrive_domain::file::Level;
use spindrive_domain::paging;
use spindrive_domain::transform::{JobStatus, Transformation};
use spindrive_service::auth::authenticated;
use spindrive_service::queue::Queue;
use spindrive_service::response::{json, json_with_status, with_location};
use spindrive_service::router::Route;
use spindrive_service::{ApiError, Ctx, Db, Reply, TransformConfig};
use spindrive_store::files;
use spindrive_store::jobs::{self, Job, JobFilter};

#[derive(Clone, Copy)]
enum Endpoint {
    Create,
    OnFile,
    Mine,
    One,
}

const ROUTES: &[Route<Endpoint>] = &[
    (Method::POST, "/api/files/:id/transformations", Endpoint::Create),
    (Method::GET, "/api/files/:id/transformations", Endpoint::OnFile),
    (Method::GET, "/api/transformations", Endpoint::Mine),
    (Method::GET, "/api/transformations/:id", Endpoint::One),
];

#[http_service]
async fn handle(request: Request) -> impl IntoResponse {
    spindrive_service::serve(request, ROUTES, async |endpoint, mut ctx| match endpoint {
        Endpoint::Create => create(&mut ctx).await,
        Endpoint::OnFile => on_file(&ctx).await,
        Endpoint::Mine => mine(&ctx).await,
        Endpoint::One => one(&ctx).await,
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewJob {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    params: Value,
}

async fn create(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let id = ctx.file_id()?;
    let (db, caller) = authenticated(ctx).await?;
    files::visible_at(&db, caller, &id, Level::Read).await?;
    drop(db);
    let request: NewJob = ctx.json().await?;
    let transformation = Transformation::parse(&request.kind, &request.params)?;
    let settings = TransformConfig::load().await?;
    // Without the queue no worker would ever run the job: say so now
    // rather than accept work that waits for Redis to come back. (No
    // database connection is held while Redis is reached.)
    let queue = Queue::open(&settings.redis, &settings.channel)
        .await
        .ok_or_else(|| {
            ApiError::unavailable(
                "transformations_unavailable",
                "transformations are paused: their queue is unreachable; retry later",
            )
        })?;
    let db = Db::connect(&ctx.config).await?;
    let job = jobs::create(&db, caller.id, &id, &transformation, settings.max_active_jobs).await?;
    drop(db);
    queue.announce(job.id.as_bytes()).await;
    let reply = json_with_status(StatusCode::ACCEPTED, &job.to_json());
    with_location(reply, &format!("/api/transformations/{}", job.id))
}

/// `?status=` and `?limit=` of a list (`?cursor=` is read by `list`).
fn listing(ctx: &Ctx) -> Result<(Option<JobStatus>, i64), ApiError> {
    let status = ctx
        .query("status")
        .filter(|s| !s.is_empty())
        .map(JobStatus::parse)
        .transpose()?;
    Ok((status, paging::limit(ctx.query("limit"))?))
}

async fn list(ctx: &Ctx, db: &Db, filter: &JobFilter<'_>, limit: i64) -> Result<Reply, ApiError> {
    let (page, next_cursor) = jobs::list(db, filter, limit, ctx.query("cursor")).await?;
    Ok(json(&json!({
        "transformations": page.iter().map(Job::to_json).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    })))
}

/// My jobs on a file I can read (404 for a file I cannot).
async fn on_file(ctx: &Ctx) -> Result<Reply, ApiError> {
    let id = ctx.file_id()?;
    let (status, limit) = listing(ctx)?;
    let (db, caller) = authenticated(ctx).await?;
    files::visible_at(&db, caller, &id, Level::Read).await?;
    let filter = JobFilter {
        user_id: caller.id,
        file: Some(&id),
        status,
    };
    list(ctx, &db, &filter, limit).await
}

async fn mine(ctx: &Ctx) -> Result<Reply, ApiError> {
    let (status, limit) = listing(ctx)?;
    let (db, caller) = authenticated(ctx).await?;
    let filter = JobFilter {
        user_id: caller.id,
        file: None,
        status,
    };
    list(ctx, &db, &filter, limit).await
}

/// One of my jobs. Following a stalled job wakes a worker for it (at most
/// once every few seconds), so a job whose wake-up was lost (Redis was
/// down) or whose worker died moves on while someone waits for it,
/// without a scheduler.
async fn one(ctx: &Ctx) -> Result<Reply, ApiError> {
    let (db, caller) = authenticated(ctx).await?;
    let job = jobs::mine(&db, caller.id, ctx.param("id"))
        .await?
        .ok_or_else(|| ApiError::not_found("transformation"))?;
    let wake = job.stalled && jobs::wake_due(&db, &job).await?;
    drop(db);
    if wake {
        let settings = TransformConfig::load().await?;
        if let Some(queue) = Queue::open(&settings.redis, &settings.channel).await {
            queue.announce(job.id.as_bytes()).await;
        }
    }
    Ok(json(&job.to_json()))
}
