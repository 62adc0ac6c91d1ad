//! One job never stops the server: a job that computes for seconds shares
//! the CPU with requests instead of holding it, one stopped by its budget
//! fails at once, users take turns in the queue, and a job ends with its
//! requester's access.

use crate::helpers::{TestApp, User, spawn_app, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use spindrive_testkit::images::jpeg_scan_bomb;
use std::time::{Duration, Instant};

/// A thumbnail of a progressive JPEG that repeats one scan a thousand
/// times: seconds of decoding, from a 26 KB file. `requester` is the owner
/// or "bob", whom the owner lets read it.
async fn slow_thumbnail(app: &TestApp, owner: &User, requester: &User) -> (String, Value) {
    slow_thumbnail_of(app, owner, requester, 1000).await
}

async fn slow_thumbnail_of(app: &TestApp, owner: &User, requester: &User, scans: usize) -> (String, Value) {
    let bomb = app
        .upload_file(owner, "scans.jpg", jpeg_scan_bomb(4096, scans))
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
    let (_, job) = job_of(app, user, job).await;
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
    // Ended by the revoke itself, while the worker still computes.
    let (status, ended) = job_of(&app, &bob, &job).await;
    assert_eq!(status, StatusCode::OK, "{ended}");
    assert_failed(&ended, "you can no longer read the source file");
    // The worker, once done, publishes nothing.
    after_the_running_job(&app, &ada).await;
    assert_eq!(
        app.sql(&format!("SELECT count(*) FROM files WHERE owner_id = {}", bob.id)),
        "0",
        "no result for bob"
    );
}

/// A job of `user`'s that takes milliseconds: a thumbnail of a small PNG.
async fn quick_job(app: &TestApp, user: &User) -> Value {
    let file = app.upload_png(user, "small.png", 32, 32).await;
    app.accepted(user, &file, "thumbnail", json!({"size": 16})).await
}

/// Starts a slow job of `user`'s and waits until the worker is on it.
async fn worker_busy_with(app: &TestApp, user: &User) -> Value {
    let (_, busy) = slow_thumbnail(app, user, user).await;
    until_running(app, user, &busy).await;
    busy
}

/// Runs a quick job of `user`'s to its end: the worker handles one job at
/// a time, so it is then done with the job it was computing before.
async fn after_the_running_job(app: &TestApp, user: &User) {
    let job = quick_job(app, user).await;
    assert_eq!(app.finished(user, &job).await["status"], "complete");
}

/// `GET /api/transformations/:id`, as `user`.
async fn job_of(app: &TestApp, user: &User, job: &Value) -> (StatusCode, Value) {
    let path = format!("/api/transformations/{}", job["id"].as_str().unwrap());
    app.call(Method::GET, &path, Some(&user.token), None).await
}

fn assert_failed(job: &Value, reason: &str) {
    assert_eq!(
        (job["status"].as_str(), job["error"].as_str()),
        (Some("failed"), Some(reason)),
        "{job}"
    );
}

#[tokio::test]
async fn a_disabled_accounts_queued_jobs_fail_and_never_run() {
    let app = spawn_app();
    let (admin, bob) = (app.user("admin").await, app.user("bob").await);
    // The worker busy with another user's job, bob's waits in the queue.
    let busy = worker_busy_with(&app, &admin).await;
    let queued = quick_job(&app, &bob).await;
    let (status, body) = app
        .patch_user(&admin.token, bob.id, json!({ "disabled": true }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let reason = app.sql(&format!(
        "SELECT status || ',' || error FROM transformation_jobs WHERE id = '{}'",
        queued["id"].as_str().unwrap()
    ));
    assert_eq!(reason, "failed,your account was disabled");
    app.finished(&admin, &busy).await;
    after_the_running_job(&app, &admin).await;
    let id = queued["id"].as_str().unwrap();
    assert_eq!(
        app.sql(&format!(
            "SELECT attempts FROM transformation_jobs WHERE id = '{id}'"
        )),
        "0",
        "never claimed"
    );
    assert_eq!(
        app.sql(&format!("SELECT count(*) FROM files WHERE owner_id = {}", bob.id)),
        "1",
        "no result for bob"
    );
}

#[tokio::test]
async fn users_take_turns_in_the_queue() {
    let app = spawn_app();
    let (ada, bob) = (app.user("ada").await, app.user("bob").await);
    let busy = worker_busy_with(&app, &ada).await;
    let ada_file = app.upload_png(&ada, "a.png", 64, 64).await;
    let mut ada_jobs = Vec::new();
    for size in 10..16 {
        ada_jobs.push(
            app.accepted(&ada, &ada_file, "thumbnail", json!({"size": size}))
                .await,
        );
    }
    let bob_job = quick_job(&app, &bob).await;
    for job in ada_jobs.iter().chain([&busy, &bob_job]) {
        let owner = if std::ptr::eq(job, &bob_job) { &bob } else { &ada };
        assert_eq!(app.finished(owner, job).await["status"], "complete", "{job}");
    }
    // Bob's one job came right after the job that was running when he
    // asked, ahead of the six ada had queued before him.
    let claims_before_bob = app.sql(&format!(
        "SELECT count(*) FROM transformation_jobs \
          WHERE user_id = {} AND claimed_at < (SELECT claimed_at FROM transformation_jobs WHERE id = '{}')",
        ada.id,
        bob_job["id"].as_str().unwrap()
    ));
    assert_eq!(claims_before_bob, "1");
}

#[tokio::test]
async fn a_job_stopped_past_its_limit_fails_at_once_and_is_not_retried() {
    // A second per job, and the runtime stops a message's handler after
    // two: this decode takes longer, and never looks at the clock.
    let limits = ["--variable", "transform_max_seconds=1", "--message-timeout", "2s"];
    let app = spawn_app_with(|host| limits.into_iter().fold(host, |host, arg| host.arg(arg)));
    let ada = app.user("ada").await;
    let (_, job) = slow_thumbnail_of(&app, &ada, &ada, 4000).await;
    until_running(&app, &ada, &job).await;
    let started = Instant::now();
    let ended = app.finished(&ada, &job).await;
    let took = started.elapsed();
    assert_failed(
        &ended,
        "it stopped while computing: past its time or memory limit, or its worker died",
    );
    assert!(took < Duration::from_secs(8), "failed {took:?} after it started");
    assert_eq!(
        app.sql(&format!(
            "SELECT attempts FROM transformation_jobs WHERE id = '{}'",
            job["id"].as_str().unwrap()
        )),
        "1",
        "not retried"
    );
}
