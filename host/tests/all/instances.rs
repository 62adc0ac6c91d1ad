//! Instances as Spin makes them: wasi:http 0.3 instances are reused (up to
//! the reuse count), 0.2 instances are fresh per request.

use crate::helpers::{get_text, probe_app};

async fn counts(host: &spindrive_testkit::Host, requests: usize) -> Vec<u64> {
    let mut seen = Vec::new();
    for _ in 0..requests {
        let text = get_text(host, "/probe/count").await;
        seen.push(text.trim().parse().unwrap());
    }
    seen
}

#[tokio::test]
async fn wasi_http_0_3_instances_are_reused_up_to_the_reuse_count() {
    let app = probe_app("", "");
    let host = app
        .host()
        .arg("--max-instance-reuse-count")
        .arg("3")
        .start()
        .unwrap();
    // Sequential requests land on the same instance until it has served 3.
    assert_eq!(counts(&host, 7).await, [1, 2, 3, 1, 2, 3, 1]);
}

#[tokio::test]
async fn reuse_count_one_gives_a_fresh_instance_per_request() {
    let app = probe_app("", "");
    let host = app
        .host()
        .arg("--max-instance-reuse-count")
        .arg("1")
        .start()
        .unwrap();
    assert_eq!(counts(&host, 4).await, [1, 1, 1, 1]);
}

#[tokio::test]
async fn idle_instances_are_dropped_after_the_idle_timeout() {
    let app = probe_app("", "");
    let host = app
        .host()
        .arg("--idle-instance-timeout")
        .arg("100ms")
        .start()
        .unwrap();
    assert_eq!(counts(&host, 2).await, [1, 2]);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(counts(&host, 1).await, [1]);
}
