//! Downloads: every Range form against a reference computed here, the
//! validators, and HEAD.

use crate::helpers::spawn_app;
use reqwest::{Method, StatusCode};
use spindrive_testkit::pattern;

/// What a correct server answers for `range` on `body`: status, the
/// Content-Range header, the bytes.
fn reference(range: Option<&str>, body: &[u8]) -> (StatusCode, Option<String>, Vec<u8>) {
    let size = body.len() as u64;
    let full = (StatusCode::OK, None, body.to_vec());
    let unsatisfiable = (
        StatusCode::RANGE_NOT_SATISFIABLE,
        Some(format!("bytes */{size}")),
        Vec::new(),
    );
    let Some(spec) = range.and_then(|r| r.strip_prefix("bytes=")) else {
        return full;
    };
    if spec.contains(',') {
        return full;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return full;
    };
    let parse = |s: &str| s.parse::<u64>().ok();
    let (start, end) = match (a.is_empty(), b.is_empty()) {
        (true, false) => match parse(b) {
            Some(n) if n > 0 && size > 0 => (size.saturating_sub(n), size - 1),
            Some(_) => return unsatisfiable,
            None => return full,
        },
        (false, true) => match parse(a) {
            Some(start) if start < size => (start, size - 1),
            Some(_) => return unsatisfiable,
            None => return full,
        },
        (false, false) => match (parse(a), parse(b)) {
            (Some(start), Some(end)) if start <= end && start >= size => return unsatisfiable,
            (Some(start), Some(end)) if start <= end => (start, end.min(size - 1)),
            _ => return full,
        },
        (true, true) => return full,
    };
    (
        StatusCode::PARTIAL_CONTENT,
        Some(format!("bytes {start}-{end}/{size}")),
        body[start as usize..=end as usize].to_vec(),
    )
}

#[tokio::test]
async fn every_range_form_matches_the_reference() {
    let app = spawn_app();
    let user = app.user("ray").await;
    let sizes = [0usize, 1, 10, (1 << 20) + 3];
    for size in sizes {
        let body = pattern(11, size);
        let (_, file) = app.upload(&user.token, &format!("r{size}"), body.clone()).await;
        let id = file["id"].as_str().unwrap();
        let last = size.saturating_sub(1);
        let mut ranges: Vec<String> = [
            "bytes=0-0",
            "bytes=0-",
            "bytes=-1",
            "bytes=-0",
            "bytes=-100000000",
            "bytes=5-2",
            "bytes=x-y",
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=",
            "bytes=-",
            "bytes=1048575-1048577",
            "bytes=1048576-",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        ranges.extend([
            format!("bytes={last}-{last}"),
            format!("bytes={last}-"),
            format!("bytes={size}-"),
            format!("bytes={}-{}", size + 1, size + 10),
            format!("bytes=3-{}", size + 100),
        ]);
        for range in ranges.iter().map(|r| Some(r.as_str())).chain([None]) {
            let mut request = reqwest::Client::new()
                .get(app.host.url(&format!("/api/files/{id}/content")))
                .bearer_auth(&user.token);
            if let Some(range) = range {
                request = request.header("range", range);
            }
            let response = request.send().await.unwrap();
            let (status, content_range, bytes) = reference(range, &body);
            assert_eq!(response.status(), status, "size {size}, {range:?}");
            assert_eq!(
                response
                    .headers()
                    .get("content-range")
                    .map(|v| v.to_str().unwrap().to_owned()),
                content_range,
                "size {size}, {range:?}"
            );
            if status != StatusCode::RANGE_NOT_SATISFIABLE {
                assert_eq!(response.headers()["content-length"], bytes.len().to_string());
                assert_eq!(
                    response.bytes().await.unwrap().to_vec(),
                    bytes,
                    "size {size}, {range:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_matching_etag_gets_304_and_if_range_guards_ranges() {
    let app = spawn_app();
    let user = app.user("sue").await;
    let body = pattern(0, 1000);
    let (_, file) = app.upload(&user.token, "v.bin", body.clone()).await;
    let id = file["id"].as_str().unwrap();
    let url = app.host.url(&format!("/api/files/{id}/content"));
    let client = reqwest::Client::new();
    let first = client.get(&url).bearer_auth(&user.token).send().await.unwrap();
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let last_modified = first.headers()["last-modified"].to_str().unwrap().to_owned();
    assert!(last_modified.ends_with(" GMT"), "{last_modified}");

    for validator in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
        "*".into(),
    ] {
        let response = client
            .get(&url)
            .bearer_auth(&user.token)
            .header("if-none-match", &validator)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{validator}");
        assert_eq!(response.headers()["etag"], etag.as_str());
        assert!(response.bytes().await.unwrap().is_empty());
    }
    let changed = client
        .get(&url)
        .bearer_auth(&user.token)
        .header("if-none-match", "\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);

    // If-Modified-Since, and If-None-Match overriding it (RFC 9110 13.1.3).
    for (since, none_match, expected) in [
        (last_modified.as_str(), None, StatusCode::NOT_MODIFIED),
        ("Mon, 01 Jan 2024 00:00:00 GMT", None, StatusCode::OK),
        ("not a date", None, StatusCode::OK),
        (last_modified.as_str(), Some("\"stale\""), StatusCode::OK),
    ] {
        let mut request = client
            .get(&url)
            .bearer_auth(&user.token)
            .header("if-modified-since", since);
        if let Some(tag) = none_match {
            request = request.header("if-none-match", tag);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            expected,
            "If-Modified-Since {since}, If-None-Match {none_match:?}"
        );
    }

    for (if_range, expected) in [
        (etag.clone(), StatusCode::PARTIAL_CONTENT),
        // A date is never trusted: two replacements within its second
        // could splice two versions into one resumed download.
        (last_modified.clone(), StatusCode::OK),
        ("\"stale\"".to_owned(), StatusCode::OK),
        (format!("W/{etag}"), StatusCode::OK),
    ] {
        let response = client
            .get(&url)
            .bearer_auth(&user.token)
            .header("range", "bytes=10-19")
            .header("if-range", &if_range)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "If-Range {if_range}");
        let bytes = response.bytes().await.unwrap();
        let want = if expected == StatusCode::OK {
            &body[..]
        } else {
            &body[10..20]
        };
        assert_eq!(&bytes[..], want);
    }
}

#[tokio::test]
async fn head_answers_the_headers_without_the_body() {
    let app = spawn_app();
    let user = app.user("tom").await;
    let (_, file) = app.upload(&user.token, "h.bin", vec![5u8; 1234]).await;
    let id = file["id"].as_str().unwrap();
    let response = app
        .request(
            Method::HEAD,
            &format!("/api/files/{id}/content"),
            Some(&user.token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-length"], "1234");
    assert_eq!(
        response.headers()["etag"],
        format!("\"{}\"", file["sha256"].as_str().unwrap())
    );
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    assert!(response.bytes().await.unwrap().is_empty());
}
