//! The API's error: a status, a stable snake_case code and a message for
//! people. Internal causes are logged in the component's output, never sent.

use crate::response::{Reply, json_with_status};
use http::StatusCode;
use serde_json::json;
use spindrive_domain::ValidationError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The invalid field, for 422.
    pub field: Option<&'static str>,
    /// Seconds to wait, for 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401: no valid credentials.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
        )
    }

    /// 403: authenticated, but not allowed.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404: absent, or not visible to the caller.
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    /// 409: conflicts with stored data.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 413: a body over its limit.
    pub fn too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body exceeds {limit} bytes"),
        )
    }

    /// 413 when a declared `Content-Length` is over `limit`.
    pub fn check_length(declared: Option<u64>, limit: u64) -> Result<(), Self> {
        match declared {
            Some(length) if length > limit => Err(Self::too_large(limit)),
            _ => Ok(()),
        }
    }

    /// 429: throttled; try again after `seconds`.
    pub fn throttled(seconds: u64) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            format!("too many attempts; retry in {seconds} s"),
        );
        error.retry_after = Some(seconds.max(1));
        error
    }

    /// 503: try again in a second.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        let mut error = Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message);
        error.retry_after = Some(1);
        error
    }

    /// 507: the content store is full; retry once space is freed.
    pub fn insufficient_storage() -> Self {
        let mut error = Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "insufficient_storage",
            "the content store is full; nothing was stored",
        );
        error.retry_after = Some(60);
        error
    }

    /// 500: our fault. The cause goes to the log, not the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        eprintln!("internal error: {cause}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "something went wrong on our side",
        )
    }

    pub fn into_reply(self) -> Reply {
        let mut body = json!({ "error": { "code": self.code, "message": self.message } });
        if let Some(field) = self.field {
            body["error"]["field"] = field.into();
        }
        let mut reply = json_with_status(self.status, &body);
        if let Some(seconds) = self.retry_after {
            reply
                .headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
        }
        reply
    }
}

/// 422 naming the field.
impl From<ValidationError> for ApiError {
    fn from(error: ValidationError) -> Self {
        let mut api = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            error.to_string(),
        );
        api.field = Some(error.field);
        api
    }
}
