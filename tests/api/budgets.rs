//! One job never stops the server: a job that computes for seconds shares
//! the CPU with requests instead of holding it, and access is decided
//! again when its result is published.

use crate::helpers::{TestApp, User, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use spindrive_testkit::images::jpeg_scan_bomb;
use std::time::{Duration, Instant};

/// A thumbnail of a progressive JPEG that repeats one scan a thousand
/// times: seconds of decoding, from a 26 KB file.
async fn slow_thumbnail(app: &TestApp, owner: &User, requester: &User) -> (String, Value) {
    let bomb = app
        .upload_file(owner, "scans.jpg", jpeg_scan_bomb(4096, 1000))
        .await;
    if owner.id != requester.id {
        let (status, grant) = app.share(&owner.token, &bomb, "bob", "read").await;
        assert_eq!(status, StatusCode::CREATED, "{grant}");
    }
    let job = app
        .accepted(requester, &bomb, "thumbnail", json!({"size": 64}))
        .await;
    (bomb, job)
}

/// The job's status, as its requester sees it.
async fn status(app: &TestApp, user: &User, job: &Value) -> String {
    let path = format!("/api/transformations/{}", job["id"].as_str().unwrap());
    let (_, job) = app.call(Method::GET, &path, Some(&user.token), None).await;
    job["status"].as_str().unwrap().to_owned()
}

async fn until_running(app: &TestApp, user: &User, job: &Value) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while status(app, user, job).await == "pending" {
        assert!(Instant::now() < deadline, "the job never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_job_computing_for_seconds_never_stalls_other_requests() {
    let app = spawn_app();
    let ada = app.user("ada").await;
    let (_, job) = slow_thumbnail(&app, &ada, &ada).await;
    until_running(&app, &ada, &job).await;
    let started = Instant::now();
    let mut latencies = Vec::new();
    while status(&app, &ada, &job).await == "running" {
        for (path, token) in [("/healthz", None), ("/api/auth/me", Some(ada.token.as_str()))] {
            // A new connection each time, as a load balancer's probe makes.
            let client = reqwest::Client::new();
            let mut request = client.get(app.host.url(path));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let sent = Instant::now();
            let response = request.send().await.expect("answered");
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            latencies.push(sent.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ran = started.elapsed();
    assert!(
        ran > Duration::from_secs(1),
        "the job must compute for a while to show anything: it ran {ran:?}"
    );
    latencies.sort();
    let (median, worst) = (latencies[latencies.len() / 2], latencies[latencies.len() - 1]);
    eprintln!(
        "{} requests while the job ran {ran:?}: median {median:?}, worst {worst:?}",
        latencies.len()
    );
    assert!(median < Duration::from_millis(100), "median {median:?}");
    assert!(worst < Duration::from_secs(2), "worst {worst:?}");
    assert_eq!(app.finished(&ada, &job).await["status"], "complete");
}

#[tokio::test]
async fn a_grantee_revoked_while_their_job_runs_gets_no_result() {
    let app = spawn_app();
    let (ada, bob) = (app.user("ada").await, app.user("bob").await);
    let (bomb, job) = slow_thumbnail(&app, &ada, &bob).await;
    until_running(&app, &bob, &job).await;
    let grant = format!("/api/files/{bomb}/permissions/{}", bob.id);
    let (status, body) = app.call(Method::DELETE, &grant, Some(&ada.token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let ended = app.finished(&bob, &job).await;
    assert_eq!(
        (ended["status"].as_str(), ended["error"].as_str()),
        (
            Some("failed"),
            Some("the source file is gone or you can no longer read it")
        ),
        "{ended}"
    );
    assert_eq!(
        app.sql(&format!("SELECT count(*) FROM files WHERE owner_id = {}", bob.id)),
        "0",
        "no result for bob"
    );
}
