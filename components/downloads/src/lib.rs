//! The downloads service (seed File-Downloader-Service): `GET`/`HEAD`
//! stream a file's content chunk by chunk straight from Postgres, with
//! `Range`, `ETag`/`If-None-Match`, `If-Range` and `Last-Modified`; `PUT`
//! replaces the content (Spin routes by path, so this path's writer lives
//! here too, on the same shared upload code as the files service).

use bytes::Bytes;
use futures::stream;
use http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE,
    CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, LAST_MODIFIED, X_CONTENT_TYPE_OPTIONS,
};
use http::{HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;
use spindrive_domain::download::{self, ByteRange};
use spindrive_domain::file::Level;
use spindrive_domain::media_type;
use spindrive_service::auth::authenticated;
use spindrive_service::queue::announce_deliveries;
use spindrive_service::response::{BoxError, Reply, empty, json};
use spindrive_service::router::Route;
use spindrive_service::{ApiError, Caller, Config, Ctx, Db};
use spindrive_store::content::{self, ContentReader};
use spindrive_store::error::StoreError;
use spindrive_store::files::{self, VisibleFile};
use spindrive_store::notifications::FileEvent;

/// How long a download waits to tell the owner before it goes on.
const NOTIFY_PATIENCE: std::time::Duration = std::time::Duration::from_millis(500);

#[derive(Clone, Copy)]
enum Endpoint {
    Download,
    Head,
    Replace,
}

const ROUTES: &[Route<Endpoint>] = &[
    (Method::GET, "/api/files/:id/content", Endpoint::Download),
    (Method::HEAD, "/api/files/:id/content", Endpoint::Head),
    (Method::PUT, "/api/files/:id/content", Endpoint::Replace),
];

#[http_service]
async fn handle(request: Request) -> impl IntoResponse {
    spindrive_service::serve(request, ROUTES, async |endpoint, mut ctx| match endpoint {
        Endpoint::Download => download(&ctx, true).await,
        Endpoint::Head => download(&ctx, false).await,
        Endpoint::Replace => replace(&mut ctx).await,
    })
    .await
}

fn header_value(text: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(text).map_err(ApiError::internal)
}

/// The file in the path, visible to the caller at `level` (404 otherwise).
async fn file_in_path(ctx: &Ctx, level: Level) -> Result<(Db, Caller, VisibleFile), ApiError> {
    let id = ctx.file_id()?;
    let (db, caller) = authenticated(ctx).await?;
    let file = files::visible_at(&db, caller, &id, level).await?;
    Ok((db, caller, file))
}

async fn download(ctx: &Ctx, with_body: bool) -> Result<Reply, ApiError> {
    let (_, caller, file) = file_in_path(ctx, Level::Read).await?;
    let etag = download::etag(&file.sha256);
    let mut reply = http::Response::new(empty());
    let headers = reply.headers_mut();
    headers.insert(ETAG, header_value(&etag)?);
    headers.insert(
        LAST_MODIFIED,
        header_value(&download::http_date(file.updated_at))?,
    );
    headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Behind authentication: never in shared caches, always revalidated.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Should a browser render it anyway, the content runs nothing.
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );

    let not_modified = match ctx.header("if-none-match") {
        Some(header) => download::none_match_hits(header, &etag),
        None => ctx
            .header("if-modified-since")
            .is_some_and(|header| download::not_modified_since(header, file.updated_at)),
    };
    if not_modified {
        *reply.status_mut() = StatusCode::NOT_MODIFIED;
        return Ok(reply);
    }

    let size = file.size as u64;
    let range_applies = ctx
        .header("if-range")
        .is_none_or(|header| download::if_range_holds(header, &etag));
    let range = if range_applies {
        download::byte_range(ctx.header("range"), size)
    } else {
        ByteRange::Full
    };
    let (start, end) = match range {
        ByteRange::Full => (0, size),
        ByteRange::Partial { start, end } => {
            *reply.status_mut() = StatusCode::PARTIAL_CONTENT;
            let content_range = format!("bytes {start}-{end}/{size}");
            reply
                .headers_mut()
                .insert(CONTENT_RANGE, header_value(&content_range)?);
            (start, end + 1)
        }
        ByteRange::Unsatisfiable => {
            let mut refusal = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the file has {size} bytes"),
            )
            .into_reply();
            refusal
                .headers_mut()
                .insert(CONTENT_RANGE, header_value(&format!("bytes */{size}"))?);
            return Ok(refusal);
        }
    };
    let headers = reply.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        header_value(&media_type::served(&file.content_type))?,
    );
    headers.insert(
        CONTENT_DISPOSITION,
        header_value(&download::content_disposition(&file.file_name))?,
    );
    headers.insert(CONTENT_LENGTH, HeaderValue::from(end - start));
    // A download of the whole file by someone else, if the owner asked to
    // be told. Best effort, on a leader connection of its own (the read
    // above may have come from a standby), and brief: the download neither
    // fails nor waits for it while the leader is away.
    if with_body && start == 0 && end == size && caller.id != file.owner_id {
        let tell = std::pin::pin!(tell_owner_of_download(&ctx.config, caller, &file));
        let patience = std::pin::pin!(spin_sdk::time::sleep(NOTIFY_PATIENCE));
        if let futures::future::Either::Right(_) = futures::future::select(tell, patience).await {
            eprintln!(
                "download of {}: telling its owner took over {NOTIFY_PATIENCE:?}, left unfinished",
                file.id.as_ref()
            );
        }
    }
    if with_body && end > start {
        *reply.body_mut() = content_stream(ctx.config.clone(), file, start, end);
    }
    Ok(reply)
}

async fn tell_owner_of_download(config: &Config, caller: Caller, file: &VisibleFile) {
    let event = FileEvent {
        file_id: file.id.as_ref(),
        actor_id: caller.id,
    };
    let failure = match Db::connect(config).await {
        Ok(db) => match event.tell_owner_of_download(&db).await {
            Ok(()) => return announce_deliveries(db).await,
            Err(error) => format!("{error:?}"),
        },
        Err(error) => error.to_string(),
    };
    eprintln!(
        "download of {} not told to its owner: {failure}",
        file.id.as_ref()
    );
}

/// Bytes `start..end` of the file, read one chunk at a time as the client
/// takes them: memory stays at one chunk whatever the file's size. A chunk
/// that has gone (the file was deleted mid-download) ends the body with an
/// error, so the client sees a broken transfer, never wrong bytes.
fn content_stream(
    config: Config,
    file: VisibleFile,
    start: u64,
    end: u64,
) -> spindrive_service::response::ReplyBody {
    let reader = ContentReader::new(config, file, start, end);
    let chunks = stream::unfold(reader, |mut reader| async move {
        let chunk = match reader.next().await? {
            Ok(data) => Ok(http_body::Frame::data(Bytes::from(data))),
            Err(error) => Err(BoxError::from(ApiError::from(error).message)),
        };
        Some((chunk, reader))
    });
    StreamBody::new(chunks).boxed_unsync()
}

/// `PUT`: new content, streamed; readers see the old bytes or the new.
async fn replace(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let content_type = ctx.content_type()?;
    let config = &ctx.config.clone();
    ApiError::check_length(ctx.declared_length(), config.max_upload_bytes)?;
    let (db, caller, file) = file_in_path(ctx, Level::Write).await?;
    // Lost updates: the content read above must still be the file's when
    // the new one is published (checked again by the publishing UPDATE).
    let expected = match ctx.header("if-match") {
        Some(header) if download::if_match_holds(header, &download::etag(&file.sha256)) => {
            Some(file.sha256.as_str())
        }
        Some(_) => return Err(StoreError::PreconditionFailed.into()),
        None => None,
    };
    let allowance = content::allowance(&db, config, file.owner_id, file.size).await?;
    allowance.check_declared(ctx.declared_length())?;
    let body = ctx
        .take_body()
        .ok_or_else(|| ApiError::internal("body taken twice"))?;
    // The request's connection goes back to the pool while the body arrives.
    drop(db);
    let staged = content::stage(config, caller, body, allowance).await?;
    let db = Db::connect(config).await?;
    let replacement = content::Replacement {
        file: &file.id,
        owner_id: file.owner_id,
        expected_sha256: expected,
        content_type: &content_type,
        default_quota: config.default_quota_bytes,
    };
    let event = FileEvent {
        file_id: file.id.as_ref(),
        actor_id: caller.id,
    };
    content::publish_replacement(&db, &staged, &replacement, async |db| {
        event.tell_holders(db, "file_replaced", "replaced").await
    })
    .await?;
    let replaced = files::visible(&db, caller, &file.id)
        .await?
        .ok_or_else(|| ApiError::not_found("file"))?;
    announce_deliveries(db).await;
    let mut reply = json(&replaced.to_json());
    reply
        .headers_mut()
        .insert(ETAG, header_value(&download::etag(&replaced.sha256))?);
    Ok(reply)
}
