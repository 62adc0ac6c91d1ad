//! OCR per page: an A4 page at 150 dpi (1240×1754) holding 30 lines of
//! DejaVu Sans, read by the worker's code (decode, both PP-OCRv5 models
//! loaded, detection, recognition, reading order) in the host, compiled to
//! wasm32-wasip2 with SIMD and timed inside the guest, against the same
//! Rust built natively, in the same run; with the peak memory of each and
//! the character error rate of what each read.

use crate::report;
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use spindrive_domain::transform::{TextExtraction, Transformation};
use spindrive_imaging::Limits;
use spindrive_testkit::documents::{a4_page, character_error_rate, report_lines};
use spindrive_testkit::images::encoded;
use spindrive_testkit::{HostBuilder, RssSampler, host_binary, workspace_root};
use std::fmt::Write;
use std::time::{Duration, Instant};

fn median(mut seconds: Vec<f64>) -> f64 {
    seconds.sort_by(f64::total_cmp);
    seconds[seconds.len() / 2]
}

/// A line of `/proc/self/status` in KiB.
fn own_status_kib(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/self/status"))
}

pub fn run(runs: usize) -> Result<()> {
    // `make bench-ocr` sets RTEN_NUM_THREADS=1, so both sides use one core.
    let native_threads = match std::env::var("RTEN_NUM_THREADS") {
        Ok(threads) => format!("{threads} thread(s) (RTEN_NUM_THREADS)"),
        Err(_) => "every physical core (RTEN_NUM_THREADS unset)".to_owned(),
    };
    let lines = report_lines();
    let expected = lines.join("\n");
    let png = encoded(
        image::DynamicImage::ImageRgb8(a4_page(&lines)),
        image::ImageFormat::Png,
    );
    let params = json!({"languages": ["en"]});
    let Transformation::Text(extraction @ TextExtraction::Ocr { .. }) =
        Transformation::parse("ocr", &params)?
    else {
        bail!("ocr parses as something else");
    };
    let models = workspace_root().join("models/ocr");
    let limits = Limits {
        max_input_bytes: u64::MAX,
        max_pixels: 100_000_000,
        max_output_bytes: u64::MAX,
        max_duration: Duration::from_secs(600),
    };

    // Natively first, while this process is small: its peak is then the
    // reading's.
    let resident_before = own_status_kib("VmRSS:")?;
    let mut native_seconds = Vec::with_capacity(runs);
    let mut native_text = String::new();
    for _ in 0..runs {
        let started = Instant::now();
        let page = spindrive_imaging::decode_upright(&png, &limits)?.to_rgb8();
        let engine = spindrive_ocr::Engine::load(&models).context("run `make models` first")?;
        let options = spindrive_ocr::Options {
            latin_only: extraction.latin_only(),
            time_limit: None,
        };
        native_text = engine.read(&page, options)?.text();
        native_seconds.push(started.elapsed().as_secs_f64());
    }
    let native_peak_mib = (own_status_kib("VmHWM:")?.saturating_sub(resident_before)) as f64 / 1024.0;
    let native = median(native_seconds);

    let app = report::one_component_app_with_files("transform-bench", "/...", &[(&models, "/models")])?;
    let host = HostBuilder::new(host_binary(), app.path().join("spin.toml")).start()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let host_idle_mib = host.rss_kib()? as f64 / 1024.0;
    let sampler = RssSampler::start(host.pid());
    let answer: Value = runtime.block_on(async {
        reqwest::Client::new()
            .post(host.url("/"))
            .header("x-type", "ocr")
            .header("x-params", params.to_string())
            .header("x-runs", runs.to_string())
            .body(png.clone())
            .send()
            .await?
            .json()
            .await
    })?;
    let host_peak_mib = sampler.finish() as f64 / 1024.0;
    drop(host);
    let guest: Vec<f64> = serde_json::from_value(answer["seconds"].clone())
        .with_context(|| format!("the fixture answered {answer}"))?;
    let in_host = median(guest);
    let host_text = answer["text"].as_str().unwrap_or_default();
    let ratio = in_host / native;
    let (host_cer, native_cer) = (
        character_error_rate(&expected, host_text),
        character_error_rate(&expected, &native_text),
    );

    let mut table = String::from(
        "| OCR of an A4 page at 150 dpi, 30 lines | in the host (wasm) | native | ratio |\n|---|---|---|---|\n",
    );
    let _ = writeln!(
        table,
        "| time per page | {:.0} ms | {:.0} ms | {ratio:.2} |",
        in_host * 1e3,
        native * 1e3
    );
    let _ = writeln!(
        table,
        "| peak memory while reading | {:.0} MiB (host process; {:.0} MiB idle) | {native_peak_mib:.0} MiB (growth of this process) | |",
        host_peak_mib, host_idle_mib
    );
    let _ = writeln!(
        table,
        "| character error rate | {:.2} % | {:.2} % | |",
        host_cer * 100.0,
        native_cer * 100.0
    );
    let _ = writeln!(
        table,
        "\nMedians of {runs} runs; each run decodes the PNG, loads both models and reads the page, as an \
         `ocr` job does. The host's time is measured inside the guest (the same code, wasm32-wasip2 with \
         `+simd128`, on wasmtime 45), so request handling is not in it. rten runs on one thread in wasm; \
         natively on {native_threads}. Target: at most 2.5× native."
    );
    println!("{table}");
    report::publish_table(
        "ocr",
        "OCR (PP-OCRv5 mobile via rten): time per page in the host vs native, and peak memory (same run)",
        &table,
        &json!({
            "runs": runs,
            "host_seconds": in_host,
            "native_seconds": native,
            "ratio": ratio,
            "host_peak_mib": host_peak_mib,
            "host_idle_mib": host_idle_mib,
            "native_peak_growth_mib": native_peak_mib,
            "host_cer": host_cer,
            "native_cer": native_cer,
            "native_threads": native_threads,
        }),
    )
}
