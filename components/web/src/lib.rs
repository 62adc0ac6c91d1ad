//! The web UI: serves the built assets that spin.toml mounts at `/` of
//! this component (`web/dist`) on the catch-all route `/...`, which every
//! more specific route (`/api/...`, `/healthz`) outranks. A path under
//! `/api/` that no service routes is a JSON 404, never the UI's page.

use http::header::{
    ACCEPT_ENCODING, ALLOW, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_SECURITY_POLICY,
    CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY,
};
use http::{HeaderValue, Method, StatusCode};
use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;
use spindrive_service::ApiError;
use spindrive_service::response::{Reply, empty, full};
use spindrive_webassets::{self as assets, Encoding};

/// What the UI's page may load and do: only this origin's scripts, styles
/// and API; previews of downloaded files as `blob:` URLs; never framed.
const PAGE_POLICY: &str = "default-src 'self'; img-src 'self' blob: data:; frame-src blob:; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Every other response (scripts, styles, errors) runs nothing if opened
/// as a document.
const ASSET_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

#[http_service]
async fn handle(request: Request) -> impl IntoResponse {
    let path = request.uri().path();
    let mut reply = if path == "/api" || path.starts_with("/api/") {
        ApiError::not_found("route").into_reply()
    } else if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut reply = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "use GET or HEAD",
        )
        .into_reply();
        reply
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        reply
    } else {
        serve(&request).unwrap_or_else(ApiError::into_reply)
    };
    let headers = reply.headers_mut();
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers
        .entry(CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(ASSET_POLICY));
    // An error may not outlive a deployment in a cache (an asset missing
    // on an old replica during a rollout).
    headers
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    // HEAD keeps the body: the runtime checks it against Content-Length,
    // and the server does not send it.
    reply
}

fn serve(request: &Request) -> Result<Reply, ApiError> {
    let not_found = || ApiError::not_found("file");
    let path = assets::asset_path(request.uri().path()).ok_or_else(not_found)?;
    let (path, bytes) = match read(&path) {
        Some(bytes) => (path, bytes),
        None if assets::is_client_route(&path) => (
            assets::INDEX.to_owned(),
            read(assets::INDEX).ok_or_else(not_found)?,
        ),
        None => return Err(not_found()),
    };
    let header = |name| {
        request
            .headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    // The smallest variant the client takes, if the build made it.
    let (encoding, bytes) = assets::accepted_encodings(header(ACCEPT_ENCODING))
        .into_iter()
        .find_map(|encoding| {
            read(&format!("{path}{}", encoding.suffix())).map(|bytes| (Some(encoding), bytes))
        })
        .unwrap_or((None, bytes));
    let etag = assets::etag(&bytes);
    let fresh = assets::not_modified(header(IF_NONE_MATCH), &etag);
    let mut reply = if fresh {
        let mut reply = http::Response::new(empty());
        *reply.status_mut() = StatusCode::NOT_MODIFIED;
        reply
    } else {
        let length = bytes.len();
        let mut reply = http::Response::new(full(bytes));
        reply
            .headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(length));
        reply
    };
    let headers = reply.headers_mut();
    headers.insert(ETAG, value(&etag)?);
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static(assets::cache_control(&path)),
    );
    headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    headers.insert(CONTENT_TYPE, value(&assets::content_type(&path))?);
    if let Some(encoding) = encoding {
        headers.insert(
            CONTENT_ENCODING,
            HeaderValue::from_static(Encoding::token(encoding)),
        );
    }
    if path == assets::INDEX {
        headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_POLICY));
    }
    Ok(reply)
}

/// An asset's bytes from the files mount; `None` if there is no such file.
fn read(path: &str) -> Option<Vec<u8>> {
    std::fs::read(format!("/{path}")).ok()
}

fn value(text: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(text).map_err(ApiError::internal)
}
