//! The app's authenticated hot path: `GET /api/auth/me` (token lookup, one
//! query) against the host's hello in the same run, and login latency,
//! which argon2id dominates by design.

use crate::{report, wrk};
use anyhow::Result;
use spindrive_testkit::{HostBuilder, TestDatabase, app_host, host_binary};
use std::time::{Duration, Instant};

const LOGINS: usize = 30;

pub fn run(seconds: u32) -> Result<()> {
    let db = TestDatabase::create()?;
    let app = app_host(&db)?.start()?;
    let hello_app = report::hello_app()?;
    let hello = HostBuilder::new(host_binary(), hello_app.path().join("spin.toml")).start()?;

    let runtime = tokio::runtime::Runtime::new()?;
    let (token, logins) = runtime.block_on(sign_in(&app.url("")))?;

    let me = wrk::run_with_headers(
        &app.url("/api/auth/me"),
        16,
        seconds,
        &[format!("Authorization: Bearer {token}")],
    )?;
    let floor = wrk::run(&hello.url("/hello"), 16, seconds)?;
    let rows = [report::Row::compare(
        "GET /api/auth/me vs hello, 16 conn".into(),
        me,
        floor,
    )];

    let mut sorted = logins.clone();
    sorted.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = logins.iter().map(|d| ms(*d)).sum::<f64>() / logins.len() as f64;
    let note = format!(
        "Login latency over {LOGINS} sequential logins (argon2id m=19 MiB, t=2, p=1, in wasm): \
         mean {mean:.1} ms, p50 {:.1} ms, p99 {:.1} ms.",
        ms(sorted[sorted.len() / 2]),
        ms(sorted[(sorted.len() * 99 / 100).min(sorted.len() - 1)]),
    );
    report::publish(
        "app",
        "spindrive app: authenticated request vs the hello floor (same run)",
        &rows,
        &[note],
    )
}

/// Signs a user in, then times `LOGINS` more logins; returns a token and
/// the login durations.
async fn sign_in(base: &str) -> Result<(String, Vec<Duration>)> {
    let token = crate::client::sign_in(base, "bench").await?;
    let client = reqwest::Client::new();
    let mut durations = Vec::with_capacity(LOGINS);
    for _ in 0..LOGINS {
        let started = Instant::now();
        client
            .post(format!("{base}/api/auth/login"))
            .json(&serde_json::json!({ "login": "bench", "password": crate::client::password("bench") }))
            .send()
            .await?
            .error_for_status()?;
        durations.push(started.elapsed());
    }
    Ok((token, durations))
}
