//! spindrive's benchmarks: programs, not tests. Each measures the system
//! and a baseline in the same run, prints the figures with their ratio, and
//! writes them to `bench/results/`.

mod native;
mod report;
mod wrk;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The host serving a hello component vs a native hyper hello server.
    Host {
        /// Seconds per measurement.
        #[arg(long, env = "BENCH_SECONDS", default_value_t = 10)]
        seconds: u32,
    },
    /// Serve a native hyper hello (the baseline process).
    NativeHello {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Host { seconds } => host_bench(seconds),
        Command::NativeHello { listen } => native::serve_hello(listen),
    }
}

/// Requests/s and latency of the host's hello vs native hyper, at 1 and 16
/// connections.
fn host_bench(seconds: u32) -> Result<()> {
    let app = report::hello_app()?;
    let host =
        spindrive_testkit::HostBuilder::new(report::host_binary(), app.path().join("spin.toml")).start()?;
    let native = native::NativeHello::start()?;
    let mut rows = Vec::new();
    for connections in [1, 16] {
        let hello = wrk::run(&host.url("/hello"), connections, seconds)?;
        let baseline = wrk::run(&native.url(), connections, seconds)?;
        rows.push(report::Row::compare(
            format!("hello, {connections} conn"),
            hello,
            baseline,
        ));
    }
    report::publish(
        "host",
        "spindrive-host hello component vs native hyper hello (same run)",
        &rows,
    )
}
