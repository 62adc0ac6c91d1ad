//! Dispatch by method and path to a component's endpoints, declared as a
//! table: `(Method::POST, "/api/auth/login", Endpoint::Login)`. `:name`
//! segments are path parameters. A known path with another method gets 405
//! with `Allow`; anything else 404 — both as JSON errors.

use crate::auth::identify;
use crate::config::Config;
use crate::db::Target;
use crate::error::ApiError;
use crate::request::Ctx;
use crate::response::Reply;
use http::{Method, StatusCode};
use spin_sdk::http::Request;

/// One row of a component's route table.
pub type Route<E> = (Method, &'static str, E);

/// The routes anyone may call. Every other needs a bearer token that opens
/// a session, checked before the handler reads anything else of the
/// request: a request without credentials is 401 whatever else is wrong
/// with it, and learns nothing of the rules its fields would meet.
const PUBLIC: &[(Method, &str)] = &[
    (Method::POST, "/api/auth/register"),
    (Method::POST, "/api/auth/login"),
    (Method::GET, "/api/openapi.json"),
    (Method::GET, "/healthz"),
];

/// The routes a synchronous standby serves, the caller's session and
/// permissions included: downloads, listings and file metadata, the bulk
/// of the reads. A standby there has applied every commit a client has
/// been told of (README, "Read scaling"). Their handlers only read, but
/// for a best-effort notification that opens a leader connection of its
/// own. Every other route stays on the leader, where writes and their
/// read-modify-write checks belong.
const REPLICA_READS: &[(Method, &str)] = &[
    (Method::GET, "/api/files"),
    (Method::GET, "/api/files/:id"),
    (Method::GET, "/api/files/:id/content"),
    (Method::HEAD, "/api/files/:id/content"),
];

fn listed(table: &[(Method, &str)], request: &Request, pattern: &str) -> bool {
    table
        .iter()
        .any(|(method, listed)| method == request.method() && *listed == pattern)
}

/// Whether `request` carries a bearer token of the right form (without
/// one, no database is asked).
fn has_token(request: &Request) -> bool {
    request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(spindrive_domain::token::from_authorization)
        .is_some()
}

/// Matches `path` against `pattern`; returns the decoded parameters.
fn matches(pattern: &'static str, path: &str) -> Option<Vec<(&'static str, String)>> {
    let mut params = Vec::new();
    let mut pattern_parts = pattern.trim_matches('/').split('/');
    let mut path_parts = path.trim_matches('/').split('/');
    loop {
        match (pattern_parts.next(), path_parts.next()) {
            (None, None) => return Some(params),
            (Some(expected), Some(actual)) => {
                if let Some(name) = expected.strip_prefix(':') {
                    if actual.is_empty() {
                        return None;
                    }
                    params.push((name, percent_decode(actual)?));
                } else if expected != actual {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

/// Decodes `%XX` escapes; `None` for a malformed escape or invalid UTF-8.
pub(crate) fn percent_decode(segment: &str) -> Option<String> {
    let input = segment.as_bytes();
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' {
            let hex = input.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Routes `request` through `routes` to `handle`, and renders errors.
/// Every answer is one caller's: never stored by a cache unless the
/// handler says otherwise (downloads revalidate), and never sniffed.
pub async fn serve<E: Copy>(
    request: Request,
    routes: &[Route<E>],
    handle: impl AsyncFnOnce(E, Ctx) -> Result<Reply, ApiError>,
) -> Reply {
    let mut reply = route(request, routes, handle).await;
    let headers = reply.headers_mut();
    headers
        .entry(http::header::CACHE_CONTROL)
        .or_insert(http::HeaderValue::from_static("no-store"));
    headers
        .entry(http::header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(http::HeaderValue::from_static("nosniff"));
    reply
}

async fn route<E: Copy>(
    request: Request,
    routes: &[Route<E>],
    handle: impl AsyncFnOnce(E, Ctx) -> Result<Reply, ApiError>,
) -> Reply {
    let path = request.uri().path().to_owned();
    let mut allowed = Vec::new();
    let mut found = None;
    for (method, pattern, endpoint) in routes {
        if let Some(params) = matches(pattern, &path) {
            if request.method() == method {
                found = Some((*endpoint, params, *pattern));
                break;
            }
            allowed.push(method.as_str());
        }
    }
    let result = match found {
        Some((endpoint, params, pattern)) => {
            let public = listed(PUBLIC, &request, pattern);
            let reads = if listed(REPLICA_READS, &request, pattern) {
                Target::Replica
            } else {
                Target::Leader
            };
            if !public && !has_token(&request) {
                Err(ApiError::unauthorized())
            } else {
                match Config::load().await {
                    Ok(config) => {
                        let mut ctx = Ctx::new(request, params, config, reads);
                        match if public { Ok(()) } else { identify(&mut ctx).await } {
                            Ok(()) => handle(endpoint, ctx).await,
                            Err(error) => Err(error),
                        }
                    }
                    Err(error) => Err(error),
                }
            }
        }
        None if !allowed.is_empty() => {
            let mut reply = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("use {}", allowed.join(", ")),
            )
            .into_reply();
            if let Ok(value) = http::HeaderValue::from_str(&allowed.join(", ")) {
                reply.headers_mut().insert(http::header::ALLOW, value);
            }
            return reply;
        }
        None => Err(ApiError::not_found("route")),
    };
    result.unwrap_or_else(ApiError::into_reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_literals_and_params() {
        assert_eq!(matches("/api/auth/me", "/api/auth/me"), Some(vec![]));
        assert_eq!(matches("/api/auth/me", "/api/auth/me/"), Some(vec![]));
        assert_eq!(matches("/api/auth/me", "/api/auth/you"), None);
        assert_eq!(
            matches("/api/admin/users/:id", "/api/admin/users/42"),
            Some(vec![("id", "42".to_owned())])
        );
        assert_eq!(matches("/api/admin/users/:id", "/api/admin/users/"), None);
        assert_eq!(matches("/api/admin/users/:id", "/api/admin/users/4/x"), None);
        assert_eq!(
            matches("/f/:name", "/f/a%20b"),
            Some(vec![("name", "a b".to_owned())])
        );
        assert_eq!(matches("/f/:name", "/f/%zz"), None);
    }
}
