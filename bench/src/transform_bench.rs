//! Transformations: the image operations of a 4000×3000 JPEG in the host
//! (the worker's code compiled to wasm32-wasip2 with SIMD, timed inside the
//! guest) against the same Rust code built natively, in the same run; then
//! jobs per second through the whole pipeline (API → Postgres → Redis →
//! worker → result file) at 1 and 8 concurrent requesters.

use crate::report;
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use spindrive_domain::transform::Transformation;
use spindrive_imaging::Limits;
use spindrive_testkit::images::encoded;
use spindrive_testkit::{HostBuilder, TestDatabase, app_host, host_binary};
use std::fmt::Write;
use std::time::{Duration, Instant};

/// The operations measured, as the API names them.
fn operations() -> [(&'static str, &'static str, Value); 3] {
    [
        ("thumbnail 256", "thumbnail", json!({"size": 256})),
        ("resize to 1600 wide", "resize", json!({"width": 1600})),
        ("convert to PNG", "convert", json!({"format": "png"})),
    ]
}

/// A photo-like picture: smooth gradients under fine noise, which JPEG
/// encodes about as densely as a real photograph.
fn photo(width: u32, height: u32) -> image::DynamicImage {
    image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(width, height, |x, y| {
        let noise = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)).rotate_left(7) % 24;
        let channel = |base: u32| (base + noise).min(255) as u8;
        image::Rgb([
            channel(x * 230 / width),
            channel(y * 230 / height),
            channel((x + y) * 115 / (width + height) + 60),
        ])
    }))
}

fn median(mut seconds: Vec<f64>) -> f64 {
    seconds.sort_by(f64::total_cmp);
    seconds[seconds.len() / 2]
}

pub fn run(runs: usize, jobs_per_requester: usize) -> Result<()> {
    let jpeg = encoded(photo(4000, 3000), image::ImageFormat::Jpeg);
    let mut table = String::from(
        "| operation (4000×3000 JPEG, 2.9 MB) | in the host (wasm) ms | native ms | ratio |\n|---|---|---|---|\n",
    );
    let mut figures = Vec::new();
    let app = report::one_component_app("transform-bench", "/...")?;
    let host = HostBuilder::new(host_binary(), app.path().join("spin.toml")).start()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let limits = Limits {
        max_input_bytes: u64::MAX,
        max_pixels: 100_000_000,
        max_output_bytes: u64::MAX,
        max_duration: Duration::from_secs(600),
    };
    for (name, kind, params) in operations() {
        let Transformation::Image(operation) = Transformation::parse(kind, &params)? else {
            bail!("{kind} is not an image operation");
        };
        let native = median(
            (0..runs)
                .map(|_| {
                    let started = Instant::now();
                    spindrive_imaging::apply(&jpeg, &operation, &limits)
                        .map(|_| started.elapsed().as_secs_f64())
                })
                .collect::<Result<_, _>>()?,
        );
        let answer: Value = runtime.block_on(async {
            reqwest::Client::new()
                .post(host.url("/"))
                .header("x-type", kind)
                .header("x-params", params.to_string())
                .header("x-runs", runs.to_string())
                .body(jpeg.clone())
                .send()
                .await?
                .json()
                .await
        })?;
        let guest: Vec<f64> = serde_json::from_value(answer["seconds"].clone())
            .with_context(|| format!("the fixture answered {answer}"))?;
        let in_host = median(guest);
        let ratio = in_host / native;
        let _ = writeln!(
            table,
            "| {name} | {:.1} | {:.1} | {ratio:.2} |",
            in_host * 1e3,
            native * 1e3
        );
        figures.push(
            json!({ "operation": name, "host_seconds": in_host, "native_seconds": native, "ratio": ratio }),
        );
    }
    drop(host);
    let _ = writeln!(
        table,
        "\nMedians of {runs} runs each; the host's time is measured inside the guest (the same \
         `spindrive_imaging::apply`, wasm32-wasip2 with `+simd128`, on wasmtime 45), so request \
         handling is not in it. Target: at most 1.5× native.\n"
    );

    let pipeline = runtime.block_on(pipeline(jobs_per_requester))?;
    table.push_str(
        "| pipeline: thumbnail 256 of a 1600×1200 JPEG | jobs | jobs/s | p50 ms (request to complete) | p99 ms |\n|---|---|---|---|---|\n",
    );
    for run in &pipeline {
        let _ = writeln!(
            table,
            "| {} concurrent requesters | {} | {:.1} | {:.0} | {:.0} |",
            run["requesters"],
            run["jobs"],
            run["jobs_per_second"].as_f64().unwrap_or(0.0),
            run["p50_ms"].as_f64().unwrap_or(0.0),
            run["p99_ms"].as_f64().unwrap_or(0.0)
        );
    }
    table.push_str(
        "\nEach requester asks for a job, then follows it (GET every 10 ms) until it is complete. \
         One host runs one worker, and Spin hands it one Redis message at a time, so the jobs of \
         concurrent requesters queue; more workers (SpinKube replicas of the worker app) share \
         the queue through their claims.\n",
    );
    report::publish_table(
        "transform",
        "Transformations: image operations in the host vs native, and jobs/s through the pipeline (same run)",
        &table,
        &json!({ "operations": figures, "pipeline": pipeline }),
    )
}

/// Jobs per second at 1 and 8 concurrent requesters.
async fn pipeline(jobs_per_requester: usize) -> Result<Vec<Value>> {
    let db = TestDatabase::create()?;
    let app = app_host(&db)?.start()?;
    let base = app.url("");
    let token = crate::client::sign_in(&base, "bench").await?;
    let client = reqwest::Client::new();
    let upload: Value = client
        .post(format!("{base}/api/files?name=photo.jpg"))
        .bearer_auth(&token)
        .header("content-type", "image/jpeg")
        .body(encoded(photo(1600, 1200), image::ImageFormat::Jpeg))
        .send()
        .await?
        .json()
        .await?;
    let file = upload["id"].as_str().context("upload failed")?.to_owned();
    let mut results = Vec::new();
    for requesters in [1usize, 8] {
        let started = Instant::now();
        let latencies = futures::future::try_join_all((0..requesters).map(|_| {
            let (client, base, token, file) = (&client, &base, &token, &file);
            async move {
                let mut latencies = Vec::with_capacity(jobs_per_requester);
                for _ in 0..jobs_per_requester {
                    latencies.push(one_job(client, base, token, file).await?);
                }
                anyhow::Ok(latencies)
            }
        }))
        .await?;
        let elapsed = started.elapsed().as_secs_f64();
        let mut all: Vec<f64> = latencies.into_iter().flatten().collect();
        all.sort_by(f64::total_cmp);
        let jobs = all.len();
        results.push(json!({
            "requesters": requesters,
            "jobs": jobs,
            "jobs_per_second": jobs as f64 / elapsed,
            "p50_ms": all[jobs / 2] * 1e3,
            "p99_ms": all[(jobs * 99 / 100).min(jobs - 1)] * 1e3,
        }));
    }
    Ok(results)
}

/// Asks for a thumbnail and follows it to completion; the seconds taken.
async fn one_job(client: &reqwest::Client, base: &str, token: &str, file: &str) -> Result<f64> {
    let started = Instant::now();
    let job: Value = client
        .post(format!("{base}/api/files/{file}/transformations"))
        .bearer_auth(token)
        .json(&json!({"type": "thumbnail", "params": {"size": 256}}))
        .send()
        .await?
        .json()
        .await?;
    let id = job["id"]
        .as_str()
        .with_context(|| format!("not accepted: {job}"))?;
    loop {
        let job: Value = client
            .get(format!("{base}/api/transformations/{id}"))
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        match job["status"].as_str() {
            Some("complete") => return Ok(started.elapsed().as_secs_f64()),
            Some("failed") => bail!("job failed: {job}"),
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}
