//! The web UI as the `web` component serves it from the real build
//! (`make ui`): content types, caching, pre-compressed variants,
//! validators, client-side routes, and that it never shadows the API.

use crate::helpers::{TestApp, assert_error, spawn_app};
use regex::Regex;
use reqwest::header::{
    ACCEPT_ENCODING, ALLOW, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_SECURITY_POLICY,
    CONTENT_TYPE, ETAG, HeaderMap, IF_NONE_MATCH,
};
use reqwest::{Method, StatusCode};
use spindrive_testkit::workspace_root;

/// The built file `path` of web/dist.
fn built(path: &str) -> Vec<u8> {
    std::fs::read(workspace_root().join("web/dist").join(path))
        .unwrap_or_else(|e| panic!("web/dist/{path}: {e} (run `make ui`)"))
}

impl TestApp {
    async fn page(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut request = reqwest::Client::new().request(method, self.host.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        (status, headers, response.bytes().await.unwrap().to_vec())
    }
}

fn header(headers: &HeaderMap, name: reqwest::header::HeaderName) -> &str {
    headers.get(&name).map_or("", |v| v.to_str().unwrap())
}

#[tokio::test]
async fn the_ui_is_served_with_types_caching_and_compression() {
    let app = spawn_app();
    let (status, headers, page) = app.page(Method::GET, "/", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page, built("index.html"));
    assert_eq!(header(&headers, CONTENT_TYPE), "text/html; charset=utf-8");
    assert_eq!(header(&headers, CACHE_CONTROL), "no-cache");
    assert!(header(&headers, CONTENT_SECURITY_POLICY).contains("default-src 'self'"));
    assert_eq!(
        header(&headers, "x-content-type-options".parse().unwrap()),
        "nosniff"
    );

    // The script the page loads: named by its hash, cached for a year.
    let page = String::from_utf8(page).unwrap();
    let script = Regex::new(r#"/assets/index-[A-Za-z0-9_-]{8}\.js"#)
        .unwrap()
        .find(&page)
        .expect("a hashed script")
        .as_str();
    let file = &script[1..];
    let (status, headers, body) = app.page(Method::GET, script, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, built(file));
    assert_eq!(header(&headers, CONTENT_TYPE), "text/javascript; charset=utf-8");
    assert_eq!(
        header(&headers, CACHE_CONTROL),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header(&headers, CONTENT_ENCODING), "");
    assert_eq!(header(&headers, CONTENT_LENGTH), body.len().to_string());

    // The smallest variant the client accepts.
    let (_, brotli_headers, brotli) = app
        .page(Method::GET, script, &[("accept-encoding", "gzip, deflate, br")])
        .await;
    assert_eq!(header(&brotli_headers, CONTENT_ENCODING), "br");
    assert_eq!(brotli, built(&format!("{file}.br")));
    assert!(brotli.len() < body.len() / 2);
    let (_, gzip_headers, gzip) = app
        .page(Method::GET, script, &[(ACCEPT_ENCODING.as_str(), "gzip")])
        .await;
    assert_eq!(header(&gzip_headers, CONTENT_ENCODING), "gzip");
    assert_eq!(gzip, built(&format!("{file}.gz")));
    assert_eq!(header(&gzip_headers, "vary".parse().unwrap()), "accept-encoding");

    // Validators: each representation its own ETag; a current copy is 304.
    let etag = header(&headers, ETAG).to_owned();
    assert_ne!(etag, header(&brotli_headers, ETAG));
    assert_eq!(header(&headers, "vary".parse().unwrap()), "accept-encoding");
    let (status, fresh, body) = app
        .page(Method::GET, script, &[(IF_NONE_MATCH.as_str(), &etag)])
        .await;
    assert_eq!((status, body.len()), (StatusCode::NOT_MODIFIED, 0));
    assert_eq!(header(&fresh, ETAG), etag);
    assert_eq!(
        header(&fresh, CACHE_CONTROL),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header(&fresh, "vary".parse().unwrap()), "accept-encoding");
    let (status, _, _) = app
        .page(Method::GET, script, &[(IF_NONE_MATCH.as_str(), "\"stale\"")])
        .await;
    assert_eq!(status, StatusCode::OK);

    // HEAD: the headers of GET, no body (and no complaint from the runtime).
    let (status, headers, body) = app.page(Method::HEAD, script, &[]).await;
    assert_eq!((status, body.len()), (StatusCode::OK, 0));
    assert_eq!(header(&headers, CONTENT_LENGTH), built(file).len().to_string());
    let (status, headers, body) = app.page(Method::HEAD, "/", &[]).await;
    assert_eq!((status, body.len()), (StatusCode::OK, 0));
    assert_eq!(
        header(&headers, CONTENT_LENGTH),
        built("index.html").len().to_string()
    );
    let log = app.host.stderr.text();
    assert!(
        !log.contains("ERROR") && !log.contains("rror processing"),
        "{log}"
    );
}

#[tokio::test]
async fn client_routes_get_the_page_and_nothing_else_is_shadowed() {
    let app = spawn_app();
    for route in [
        "/files",
        "/shared/0b7c1f0e-7f5e-4c9d-9d1e-0c1f2a3b4c5d",
        "/admin/users",
    ] {
        let (status, headers, body) = app.page(Method::GET, route, &[]).await;
        assert_eq!(status, StatusCode::OK, "{route}");
        assert_eq!(header(&headers, CONTENT_TYPE), "text/html; charset=utf-8");
        assert_eq!(body, built("index.html"), "{route}");
    }
    // Missing files, and paths that could name something outside the
    // assets, are 404, never the page.
    for missing in [
        "/assets/index-00000000.js",
        "/favicon.ico",
        "/assets/gone",
        "/report.pdf",
        "/index.html.br",
        "/.env",
        "/%2e%2e/spin.toml",
        "/a%5C..%5Cspin.toml",
    ] {
        let (status, headers, body) = app.page(Method::GET, missing, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
        assert_eq!(header(&headers, CACHE_CONTROL), "no-store", "{missing}");
        assert_eq!(
            header(&headers, CONTENT_SECURITY_POLICY),
            "default-src 'none'; frame-ancestors 'none'"
        );
        assert!(
            String::from_utf8_lossy(&body).contains("\"not_found\""),
            "{missing}"
        );
    }
    // The API keeps its routes; an unknown API path is a JSON 404.
    assert_error(
        app.call(Method::GET, "/api/nothing-here", None, None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        app.call(Method::GET, "/api/files", None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let (status, _, body) = app.page(Method::GET, "/healthz", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !String::from_utf8_lossy(&body).contains("<html"),
        "healthz is auth's"
    );
    // Only GET and HEAD.
    let (status, headers, _) = app.page(Method::POST, "/", &[]).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&headers, ALLOW), "GET, HEAD");
}
