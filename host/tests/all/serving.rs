//! Serving behaviour: both wasi:http versions, failures, logs, WASI
//! context, graceful shutdown and the compiled-code cache.

use crate::helpers::{JsonBody, TestApp, client, get_text, probe_app};
use serde_json::Value;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

#[tokio::test]
async fn wasi_http_0_2_components_are_served_with_streamed_bodies() {
    let app = TestApp::new(
        r#"
spin_manifest_version = 2
[application]
name = "legacy"
[[trigger.http]]
route = "/legacy/..."
component = "legacy"
[component.legacy]
source = "{legacy}"
"#,
    );
    let host = app.host().start().unwrap();
    let body = vec![7u8; 3 << 20];
    let report: Value = client()
        .post(host.url("/legacy/upload?x=1"))
        .body(body)
        .json_body()
        .await;
    assert_eq!(report["path"], "/legacy/upload?x=1");
    assert_eq!(report["body_bytes"], 3 << 20);
    let names: Vec<&str> = report["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| pair[0].as_str().unwrap())
        .collect();
    assert!(names.contains(&"spin-path-info"), "{names:?}");
    assert!(
        !names.contains(&"host"),
        "0.2 guests do not see Host, as on Spin: {names:?}"
    );
}

#[tokio::test]
async fn a_trapping_guest_gets_500_with_an_empty_body_and_a_log_line() {
    let app = probe_app("", "");
    let host = app.host().start().unwrap();
    let response = client().get(host.url("/probe/trap")).send().await.unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(response.text().await.unwrap(), "");
    host.stderr
        .wait_for("Error processing request", Duration::from_secs(5))
        .unwrap();
    // The instance is replaced; the next request works.
    let again = client().get(host.url("/probe/hello")).send().await.unwrap();
    assert_eq!(again.text().await.unwrap(), "hello\n");
}

#[tokio::test]
async fn a_non_utf8_header_value_gets_500_as_on_spin() {
    let app = probe_app("", "");
    let host = app.host().start().unwrap();
    let value = reqwest::header::HeaderValue::from_bytes(b"caf\xe9").unwrap();
    let response = client()
        .get(host.url("/probe/x"))
        .header("x-latin1", value)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
}

#[tokio::test]
async fn each_request_gets_one_access_log_line() {
    let app = probe_app("", "");
    let host = app.host().start().unwrap();
    get_text(&host, "/probe/hello").await;
    client().get(host.url("/nowhere")).send().await.unwrap();
    host.stderr
        .wait_for("path=/nowhere component=- status=404", Duration::from_secs(5))
        .unwrap();
    let log = host.stderr.text();
    let line = log
        .lines()
        .find(|l| l.contains("path=/probe/hello"))
        .expect("an access log line");
    for field in [
        "method=GET",
        "component=probe",
        "status=200",
        "duration_ms=",
        "bytes=6",
        "complete=true",
    ] {
        assert!(line.contains(field), "{field} missing in {line}");
    }
}

#[tokio::test]
async fn the_access_log_tells_a_delivered_body_from_an_abandoned_one() {
    let app = probe_app("", "");
    let host = app.host().start().unwrap();
    // With and without a Content-Length (hyper stops polling a body once
    // it has written the length it declared).
    for (query, bytes) in [
        ("bytes=3000000", 3_000_000),
        ("bytes=3000001&declare=1", 3_000_001),
    ] {
        let delivered = client()
            .get(host.url(&format!("/probe/generate?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(delivered.bytes().await.unwrap().len(), bytes);
        host.stderr
            .wait_for(&format!("bytes={bytes} complete=true"), Duration::from_secs(5))
            .unwrap();
    }
    // The client reads the start of 256 MiB and hangs up.
    let address = host.url("").trim_start_matches("http://").to_owned();
    let mut abandoned = std::net::TcpStream::connect(&address).unwrap();
    write!(
        abandoned,
        "GET /probe/generate?bytes=268435456 HTTP/1.1\r\nhost: {address}\r\n\r\n"
    )
    .unwrap();
    let mut start = [0u8; 65536];
    abandoned.read_exact(&mut start).unwrap();
    assert!(start.starts_with(b"HTTP/1.1 200"));
    drop(abandoned);
    host.stderr
        .wait_for("complete=false", Duration::from_secs(10))
        .unwrap();
}

#[tokio::test]
async fn component_output_goes_to_the_host_log_prefixed_with_its_id() {
    let app = probe_app("", "");
    let host = app.host().start().unwrap();
    get_text(&host, "/probe/log").await;
    host.stderr
        .wait_for("[probe] stdout line from the guest", Duration::from_secs(5))
        .unwrap();
    host.stderr
        .wait_for("[probe] stderr line from the guest", Duration::from_secs(5))
        .unwrap();
}

#[tokio::test]
async fn environment_and_read_only_files_come_from_the_manifest() {
    let app = probe_app(
        r#"files = [{ source = "assets", destination = "/static" }, "notes.txt"]
environment = { GREETING = "bonjour" }"#,
        "",
    );
    std::fs::create_dir_all(app.dir.path().join("assets")).unwrap();
    std::fs::write(app.dir.path().join("assets/a.txt"), "from assets").unwrap();
    std::fs::write(app.dir.path().join("notes.txt"), "from notes").unwrap();
    let host = app.host().start().unwrap();
    let client = client();
    let env: Value = client.get(host.url("/probe/env?name=GREETING")).json_body().await;
    assert_eq!(env["value"], "bonjour");
    for (path, content) in [("/static/a.txt", "from assets"), ("/notes.txt", "from notes")] {
        let file: Value = client
            .get(host.url(&format!("/probe/file?path={path}")))
            .json_body()
            .await;
        assert_eq!(file["read"], format!("Ok({content:?})"), "{path}");
        assert_eq!(file["write_failed"], true, "{path} must be read-only");
    }
    assert_eq!(
        std::fs::read_to_string(app.dir.path().join("notes.txt")).unwrap(),
        "from notes"
    );
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish() {
    let app = probe_app("", "");
    let mut host = app.host().start().unwrap();
    let slow = tokio::spawn(client().get(host.url("/probe/sleep?ms=1500")).send());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = host.terminate(Duration::from_secs(20)).unwrap();
    let response = slow.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "slept\n");
    assert!(status.success(), "clean exit after SIGTERM: {status}");
}

#[tokio::test]
async fn compiled_code_is_cached_across_restarts() {
    let cache = tempfile::tempdir().unwrap();
    let app = probe_app("", "");
    let cold_start = Instant::now();
    let host = app
        .host()
        .env("SPINDRIVE_CACHE_DIR", cache.path().display().to_string())
        .start()
        .unwrap();
    let cold = cold_start.elapsed();
    drop(host);
    let entries = || walk_count(cache.path());
    let cached = entries();
    assert!(cached > 0, "the cache holds compiled code");
    let warm_start = Instant::now();
    let _host = app
        .host()
        .env("SPINDRIVE_CACHE_DIR", cache.path().display().to_string())
        .start()
        .unwrap();
    let warm = warm_start.elapsed();
    assert_eq!(entries(), cached, "a restart compiles nothing new");
    eprintln!("startup: cold {cold:?}, warm {warm:?}");
}

fn walk_count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        walk_count(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
