//! Responses: JSON bodies with a status, or empty ones.

use bytes::Bytes;
use http::StatusCode;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use serde::Serialize;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body: whole, or streamed.
pub type ReplyBody = UnsyncBoxBody<Bytes, BoxError>;

/// What handlers return.
pub type Reply = http::Response<ReplyBody>;

/// A body held in memory.
pub fn full(bytes: impl Into<Bytes>) -> ReplyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// No body at all.
pub fn empty() -> ReplyBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

pub fn json_with_status(status: StatusCode, value: &impl Serialize) -> Reply {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut reply = http::Response::new(full(body));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    reply
}

/// 200 with a JSON document that is already text.
pub fn json_document(body: &'static str) -> Reply {
    let mut reply = http::Response::new(full(Bytes::from_static(body.as_bytes())));
    reply.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    reply
}

/// 200 with a JSON body.
pub fn json(value: &impl Serialize) -> Reply {
    json_with_status(StatusCode::OK, value)
}

/// 201 with a JSON body.
pub fn created(value: &impl Serialize) -> Reply {
    json_with_status(StatusCode::CREATED, value)
}

/// `reply` with a `Location` header naming what it created or accepted.
pub fn with_location(mut reply: Reply, location: &str) -> Result<Reply, crate::ApiError> {
    let value = http::HeaderValue::from_str(location).map_err(crate::ApiError::internal)?;
    reply.headers_mut().insert(http::header::LOCATION, value);
    Ok(reply)
}

/// 204.
pub fn no_content() -> Reply {
    let mut reply = http::Response::new(empty());
    *reply.status_mut() = StatusCode::NO_CONTENT;
    reply
}
