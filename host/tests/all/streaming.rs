//! Bodies stream both ways: 256 MiB through a guest with bounded host RSS.

use crate::helpers::{client, probe_app};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use spindrive_testkit::{RssSampler, hex, pattern_chunks, pattern_sha256};

const SIZE: u64 = 256 << 20;
/// What the host may grow by while 256 MiB pass through it.
const RSS_BUDGET_KIB: u64 = 48 << 10;

/// The bytes a body carried and their hex SHA-256.
async fn digest_body(response: reqwest::Response) -> (u64, String) {
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        total += chunk.len() as u64;
        hasher.update(&chunk);
    }
    (total, hex(&hasher.finalize()))
}

#[tokio::test]
async fn a_256_mib_body_streams_through_a_guest_both_ways_with_bounded_rss() {
    let app = probe_app("", "");
    let host = app.host().start().unwrap();
    let client = client();
    // Warm up an instance so the baseline includes it.
    client
        .post(host.url("/probe/echo"))
        .body(vec![0u8; 1 << 20])
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let baseline = host.rss_kib().unwrap();

    let sampler = RssSampler::start(host.pid());
    let response = client
        .post(host.url("/probe/echo"))
        .body(reqwest::Body::wrap_stream(pattern_chunks(SIZE)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (echoed, digest) = digest_body(response).await;
    let upload_peak = sampler.finish();
    assert_eq!(echoed, SIZE);
    assert_eq!(digest, pattern_sha256(SIZE), "the echo is byte-identical");

    let sampler = RssSampler::start(host.pid());
    let response = client
        .get(host.url(&format!("/probe/generate?bytes={SIZE}")))
        .send()
        .await
        .unwrap();
    let (downloaded, digest) = digest_body(response).await;
    let download_peak = sampler.finish();
    assert_eq!(downloaded, SIZE);
    assert_eq!(digest, pattern_sha256(SIZE));

    let growth = upload_peak.max(download_peak).saturating_sub(baseline);
    eprintln!(
        "RSS baseline {baseline} KiB; peak upload {upload_peak} KiB, download {download_peak} KiB; growth {growth} KiB"
    );
    assert!(
        growth < RSS_BUDGET_KIB,
        "host RSS grew by {growth} KiB moving 256 MiB"
    );
}

#[tokio::test]
async fn a_response_sent_before_the_body_was_read_reaches_the_client() {
    // `/probe/hello` answers without reading the body: the host must drain
    // the unread 64 MiB (lingering close) instead of resetting the
    // connection under the client's feet, as a 413 on a big upload does.
    let app = probe_app("", "");
    let host = app.host().start().unwrap();
    for _ in 0..3 {
        let response = client()
            .post(host.url("/probe/hello"))
            .body(vec![0u8; 64 << 20])
            .send()
            .await
            .expect("the early response arrives, not a broken pipe");
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "hello\n");
    }
}
