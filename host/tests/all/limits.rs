//! Per-request timeout (epoch interruption) and per-instance memory limit.

use crate::helpers::{client, probe_app};
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_request_over_the_timeout_gets_504_and_a_log_line() {
    let app = probe_app("", "");
    let host = app.host().arg("--request-timeout").arg("500ms").start().unwrap();
    let client = client();
    for action in ["sleep", "busy"] {
        let started = Instant::now();
        let response = client
            .get(host.url(&format!("/probe/{action}?ms=5000")))
            .send()
            .await
            .unwrap();
        let took = started.elapsed();
        assert_eq!(response.status(), 504, "{action}");
        assert!(took < Duration::from_secs(3), "{action} took {took:?}");
    }
    host.stderr
        .wait_for("request timed out after 500ms", Duration::from_secs(5))
        .unwrap();
    let ok = client.get(host.url("/probe/sleep?ms=10")).send().await.unwrap();
    assert_eq!(ok.status(), 200, "short requests still succeed");
}

#[tokio::test]
async fn without_a_timeout_slow_requests_complete() {
    let app = probe_app("", "");
    let host = app.host().start().unwrap();
    let response = client()
        .get(host.url("/probe/busy?ms=1200"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn growing_past_the_memory_limit_fails_the_request_with_a_log_line() {
    let app = probe_app("", "");
    let host = app
        .host()
        .arg("--max-instance-memory")
        .arg((16u64 << 20).to_string())
        .start()
        .unwrap();
    let client = client();
    let small = client.get(host.url("/probe/alloc?mib=1")).send().await.unwrap();
    assert_eq!(small.status(), 200);
    let large = client.get(host.url("/probe/alloc?mib=64")).send().await.unwrap();
    assert_eq!(large.status(), 500);
    host.stderr
        .wait_for("instance memory limit reached", Duration::from_secs(5))
        .unwrap();
}
