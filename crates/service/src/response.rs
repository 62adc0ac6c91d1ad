//! Responses: JSON bodies with a status, or empty ones.

use bytes::Bytes;
use http::StatusCode;
use http_body_util::Full;
use serde::Serialize;

/// What handlers return.
pub type Reply = http::Response<Full<Bytes>>;

pub fn json_with_status(status: StatusCode, value: &impl Serialize) -> Reply {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut reply = http::Response::new(Full::new(Bytes::from(body)));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    reply
}

/// 200 with a JSON document that is already text.
pub fn json_document(body: &'static str) -> Reply {
    let mut reply = http::Response::new(Full::new(Bytes::from_static(body.as_bytes())));
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

/// 204.
pub fn no_content() -> Reply {
    let mut reply = http::Response::new(Full::new(Bytes::new()));
    *reply.status_mut() = StatusCode::NO_CONTENT;
    reply
}
