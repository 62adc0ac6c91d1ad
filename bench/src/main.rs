//! spindrive's benchmarks: programs, not tests. Each measures the system
//! and a baseline in the same run, prints the figures with their ratio, and
//! writes them to `bench/results/`.

mod app_bench;
mod client;
mod failover;
mod files_bench;
mod listing_bench;
mod native;
mod ocr_bench;
mod pg_bench;
mod read_scaling_bench;
mod replica_reads;
mod report;
mod soak;
mod soak_load;
mod transform_bench;
mod ui_bench;
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
    /// The app: `GET /api/auth/me` vs the host's hello (the floor), and
    /// login latency (argon2id).
    App {
        /// Seconds per measurement.
        #[arg(long, env = "BENCH_SECONDS", default_value_t = 10)]
        seconds: u32,
    },
    /// The failover test: SIGKILL of the Patroni leader under load, through
    /// HAProxy; fails unless no acknowledged write is lost and the API
    /// answers again within 10 s.
    Failover {
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// File upload and download throughput vs psql \\copy and nginx.
    Files,
    /// Downloads from the leader only vs the synchronous standbys of the
    /// three-member Patroni cluster: MiB/s and PostgreSQL CPU per MiB.
    ReadScaling,
    /// Shared listings: one user among 1,000,000 files vs alone, per scope
    /// and sort, and the plans Postgres chose.
    Listing {
        /// Requests per list.
        #[arg(long, default_value_t = 200)]
        samples: usize,
    },
    /// The host vs native baselines: hello, and a one-row SELECT / INSERT
    /// over a tokio-postgres pool.
    Host {
        /// Seconds per measurement.
        #[arg(long, env = "BENCH_SECONDS", default_value_t = 10)]
        seconds: u32,
    },
    /// Transformations: image operations in the host vs native, and jobs/s
    /// through the whole pipeline at 1 and 8 concurrent requesters.
    Transform {
        /// Runs per operation (the median counts).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Jobs each requester asks for, one after another.
        #[arg(long, default_value_t = 20)]
        jobs: usize,
    },
    /// OCR per page in the host vs native, and peak memory.
    Ocr {
        /// Runs (the median counts).
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// The web UI in headless Chromium: first-load bytes, the first page of
    /// a 1,000-file list vs the login form, and each further page.
    Ui {
        /// Fresh browser contexts (the median counts).
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// The soak: clients mixing every kind of request for a bounded time,
    /// sampled every 10 s, with faults (host SIGKILL, Postgres fast and
    /// immediate restarts, Redis restart, the content volume full), then
    /// checks that nothing acknowledged was lost and nothing was left
    /// stuck or staged. Needs root (it mounts the content volume).
    Soak {
        #[arg(long, env = "SOAK_SECONDS", default_value_t = 600)]
        seconds: u64,
        #[arg(long, env = "SOAK_CLIENTS", default_value_t = 32)]
        clients: usize,
    },
    /// Serve a native hyper hello (the baseline process).
    NativeHello {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
    },
    /// Serve the Postgres benchmark natively: hyper + a tokio-postgres pool.
    NativePg {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        #[arg(long)]
        db_url: String,
        #[arg(long)]
        pool_size: usize,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Host { seconds } => host_bench(seconds),
        Command::App { seconds } => app_bench::run(seconds),
        Command::Files => files_bench::run(),
        Command::Listing { samples } => listing_bench::run(samples),
        Command::Failover { rounds } => failover::run(rounds),
        Command::ReadScaling => read_scaling_bench::run(),
        Command::Transform { runs, jobs } => transform_bench::run(runs, jobs),
        Command::Ocr { runs } => ocr_bench::run(runs),
        Command::Ui { runs } => ui_bench::run(runs),
        Command::Soak { seconds, clients } => soak::run(seconds, clients),
        Command::NativeHello { listen } => native::serve_hello(listen),
        Command::NativePg {
            listen,
            db_url,
            pool_size,
        } => native::serve_pg(listen, &db_url, pool_size),
    }
}

/// Requests/s and latency of the host's hello vs native hyper, and of a
/// one-row SELECT and INSERT per request vs the same over a native
/// tokio-postgres pool of the same size, at 1 and 16 connections.
fn host_bench(seconds: u32) -> Result<()> {
    let app = report::hello_app()?;
    let host =
        spindrive_testkit::HostBuilder::new(spindrive_testkit::host_binary(), app.path().join("spin.toml"))
            .start()?;
    let native = native::Baseline::hello()?;
    let mut rows = Vec::new();
    for connections in [1, 16] {
        let hello = wrk::run(&host.url("/hello"), connections, seconds)?;
        let baseline = wrk::run(&native.url("/hello"), connections, seconds)?;
        rows.push(report::Row::compare(
            format!("hello, {connections} conn"),
            hello,
            baseline,
        ));
    }
    drop((host, native));

    let db = pg_bench::database()?;
    let app = pg_bench::app(&db)?;
    let host =
        spindrive_testkit::HostBuilder::new(spindrive_testkit::host_binary(), app.path().join("spin.toml"))
            .arg("--pg-pool-size")
            .arg(pg_bench::POOL_SIZE.to_string())
            .start()?;
    let native = native::Baseline::pg(&db.url(), pg_bench::POOL_SIZE)?;
    // A pooled connection alone, then one statement on it: the breakdown
    // of where a query's time goes.
    for (case, path) in [
        ("connection only", "/open"),
        ("SELECT by key", "/select?id=4242"),
        ("INSERT", "/insert"),
    ] {
        for connections in [1, 16] {
            let measured = wrk::run(&host.url(path), connections, seconds)?;
            let baseline = wrk::run(&native.url(path), connections, seconds)?;
            rows.push(report::Row::compare(
                format!("{case}, {connections} conn"),
                measured,
                baseline,
            ));
        }
    }
    report::publish(
        "host",
        "spindrive-host vs native baselines (hyper hello; hyper + tokio-postgres pool), same run",
        &rows,
        &[],
    )
}
