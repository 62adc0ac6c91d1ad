//! Outbound HTTP is allowed only to `allowed_outbound_hosts`.

use crate::helpers::{JsonBody, client, probe_app};
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A local HTTP server answering every request with 204; returns its port.
async fn target_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    port
}

async fn outbound(host: &spindrive_testkit::Host, url: &str) -> Value {
    client()
        .get(host.url(&format!("/probe/outbound?url={url}")))
        .json_body()
        .await
}

#[tokio::test]
async fn allowed_hosts_are_reached_and_others_denied_as_on_spin() {
    let port = target_server().await;
    let app = probe_app(
        r#"allowed_outbound_hosts = ["http://127.0.0.1:{{ target_port }}"]"#,
        &format!("[variables]\ntarget_port = {{ default = \"{port}\" }}"),
    );
    let host = app.host().start().unwrap();

    let allowed = outbound(&host, &format!("http://127.0.0.1:{port}/x")).await;
    assert_eq!(allowed["status"], 204, "{allowed}");

    // No DNS: `localhost` is not the allowed `127.0.0.1`.
    let denied = outbound(&host, &format!("http://localhost:{port}/x")).await;
    assert_eq!(denied["error"], "ErrorCode::HttpRequestDenied", "{denied}");
    let other_port = outbound(&host, &format!("http://127.0.0.1:{}/x", port.wrapping_add(1))).await;
    assert_eq!(
        other_port["error"], "ErrorCode::HttpRequestDenied",
        "{other_port}"
    );

    // Both of Spin's lines; the log line and the plain stderr line reach
    // the output by different paths, in either order.
    for line in [
        format!(
            "To allow this request, add 'allowed_outbound_hosts = [\"http://localhost:{port}\"]' to the manifest component section."
        ),
        format!("Outbound network destination not allowed: http://localhost:{port}"),
    ] {
        host.stderr.wait_for(&line, Duration::from_secs(5)).unwrap();
    }
}

#[tokio::test]
async fn no_allowed_hosts_means_no_outbound_http() {
    let port = target_server().await;
    let app = probe_app("", "");
    let host = app.host().start().unwrap();
    let denied = outbound(&host, &format!("http://127.0.0.1:{port}/x")).await;
    assert_eq!(denied["error"], "ErrorCode::HttpRequestDenied", "{denied}");
}

#[tokio::test]
async fn a_malformed_allowed_host_fails_at_startup() {
    let app = probe_app(r#"allowed_outbound_hosts = ["example.com"]"#, "");
    let output = app.host().expect_startup_failure().unwrap();
    assert!(output.contains("does not contain a scheme"), "{output}");
}
