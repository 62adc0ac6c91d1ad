//! What a handler sees of its request.

use crate::config::Config;
use crate::error::ApiError;
use crate::router::percent_decode;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use spin_sdk::http::Request;
use spindrive_domain::client::ClientKey;
use spindrive_domain::file::FileId;

/// A request body as the SDK delivers it.
pub type Body = spin_sdk::wasip3::http_compat::IncomingRequestBody;

/// A routed request.
pub struct Ctx {
    pub method: Method,
    pub headers: HeaderMap,
    pub config: Config,
    params: Vec<(&'static str, String)>,
    query: Vec<(String, String)>,
    body: Option<Body>,
    /// Who is calling, resolved by the router for a route behind a token
    /// before the handler reads anything else.
    pub(crate) caller: Option<crate::auth::Caller>,
    /// Where the route's reads go, as the router's table says.
    pub(crate) reads: crate::db::Target,
}

impl Ctx {
    pub(crate) fn new(
        request: Request,
        params: Vec<(&'static str, String)>,
        config: Config,
        reads: crate::db::Target,
    ) -> Self {
        let (parts, body) = request.into_parts();
        let query = parts
            .uri
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|pair| !pair.is_empty())
            .filter_map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                let decode = |s: &str| percent_decode(&s.replace('+', " "));
                Some((decode(key)?, decode(value)?))
            })
            .collect();
        Ctx {
            method: parts.method,
            headers: parts.headers,
            config,
            params,
            query,
            body: Some(body),
            caller: None,
            reads,
        }
    }

    /// A path parameter of the matched route.
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
            .unwrap_or_default()
    }

    /// A query-string parameter (the first, if repeated).
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Every value of a header, in the order sent.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect()
    }

    /// Who sent the request, for throttling: the address the runtime saw
    /// (its `spin-client-addr`, the last one: a client may send its own
    /// first), or behind `trusted_proxy_hops` proxies the address the
    /// outermost of them put into `X-Forwarded-For`.
    pub fn client(&self) -> ClientKey {
        ClientKey::from_request(
            &self.header_values("spin-client-addr"),
            &self.header_values("x-forwarded-for"),
            self.config.trusted_proxy_hops,
        )
    }

    /// The route's `:id` as a file id; anything else names no file (404).
    pub fn file_id(&self) -> Result<FileId, ApiError> {
        FileId::parse(self.param("id")).ok_or_else(|| ApiError::not_found("file"))
    }

    /// The media type to store for an upload (see
    /// [`spindrive_domain::media_type::stored`]).
    pub fn content_type(&self) -> Result<String, ApiError> {
        Ok(spindrive_domain::media_type::stored(self.header("content-type"))?)
    }

    /// The body's declared `Content-Length`, if any and well-formed.
    pub fn declared_length(&self) -> Option<u64> {
        self.header("content-length").and_then(|value| value.parse().ok())
    }

    /// The raw body, for handlers that stream it.
    pub fn take_body(&mut self) -> Option<Body> {
        self.body.take()
    }

    /// The body as JSON of type `T`: 415 unless JSON, 413 over
    /// `max_json_bytes`, 400 if malformed, 422 if well-formed but wrong.
    pub async fn json<T: DeserializeOwned>(&mut self) -> Result<T, ApiError> {
        let limit = self.config.max_json_bytes;
        if let Some(content_type) = self.header("content-type")
            && !content_type
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        if self.declared_length().is_some_and(|length| length > limit) {
            return Err(ApiError::too_large(limit));
        }
        let mut body = self
            .take_body()
            .ok_or_else(|| ApiError::internal("body read twice"))?;
        let mut bytes = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|_| ApiError::bad_request("bad_body", "the request body could not be read"))?;
            if let Ok(data) = frame.into_data() {
                if bytes.len() as u64 + data.len() as u64 > limit {
                    return Err(ApiError::too_large(limit));
                }
                bytes.extend_from_slice(&data);
            }
        }
        serde_json::from_slice(&bytes).map_err(|err| match err.classify() {
            serde_json::error::Category::Data => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", err.to_string())
            }
            _ => ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {err}")),
        })
    }
}
