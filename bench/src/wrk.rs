//! Runs `wrk` and reads its figures.

use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::process::Command;

/// One load measurement.
#[derive(Clone, Debug, Serialize)]
pub struct Load {
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
}

/// `connections` connections (one wrk thread per 8) for `seconds` against `url`.
pub fn run(url: &str, connections: u32, seconds: u32) -> Result<Load> {
    run_with_headers(url, connections, seconds, &[])
}

/// [`run`], sending `headers` (`name: value`) with every request.
pub fn run_with_headers(url: &str, connections: u32, seconds: u32, headers: &[String]) -> Result<Load> {
    let threads = connections.div_ceil(8).clamp(1, 2);
    let output = Command::new("wrk")
        .args(headers.iter().flat_map(|h| ["-H".to_owned(), h.clone()]))
        .args([
            format!("-t{threads}"),
            format!("-c{connections}"),
            format!("-d{seconds}s"),
            "--latency".into(),
            url.into(),
        ])
        .output()
        .context("cannot run wrk (make bench installs it)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&output.stderr));
    }
    parse(&text)
}

fn parse(text: &str) -> Result<Load> {
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix(prefix))
            .map(str::trim)
            .with_context(|| format!("no {prefix:?} in wrk output:\n{text}"))
    };
    let errors = text
        .lines()
        .map(str::trim)
        .filter_map(|line| {
            line.strip_prefix("Non-2xx or 3xx responses:")
                .or_else(|| line.strip_prefix("Socket errors:").map(|_| "1"))
        })
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .sum();
    Ok(Load {
        requests_per_second: field("Requests/sec:")?.parse()?,
        p50_ms: duration_ms(field("50%")?)?,
        p99_ms: duration_ms(field("99%")?)?,
        errors,
    })
}

/// wrk prints `812.00us`, `1.23ms` or `2.01s`.
fn duration_ms(value: &str) -> Result<f64> {
    let (number, scale) = if let Some(n) = value.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = value.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1000.0)
    } else {
        bail!("unexpected wrk duration {value:?}");
    };
    Ok(number.parse::<f64>()? * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_parsed() {
        let text = "Running 1s test @ http://x\n  Latency Distribution\n     50%  812.00us\n     75%    1.00ms\n     90%    1.10ms\n     99%    2.50ms\n  9000 requests in 1.00s\nRequests/sec:   9012.34\nTransfer/sec:      1.00MB\n";
        let load = parse(text).unwrap();
        assert_eq!(load.requests_per_second, 9012.34);
        assert!((load.p50_ms - 0.812).abs() < 1e-9);
        assert_eq!(load.p99_ms, 2.5);
        assert_eq!(load.errors, 0);
    }
}
