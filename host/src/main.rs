//! `spindrive-host up`: serve a Spin application like `spin up`.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use spindrive_host::app::{App, InstanceSettings};
use spindrive_host::engine::EngineSettings;
use spindrive_host::manifest::Manifest;
use spindrive_host::pg::PoolSettings;
use spindrive_host::runtime_config::RuntimeConfig;
use spindrive_host::variables::Resolver;
use spindrive_host::{redis, server, startup};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A local runtime for Spin applications: it serves the same spin.toml and
/// the same .wasm components that `spin up` and SpinKube run.
#[derive(Parser)]
#[command(version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load the application in a spin.toml and serve its HTTP triggers.
    Up(UpArgs),
}

#[derive(Args)]
struct UpArgs {
    /// The application manifest.
    #[arg(
        short = 'f',
        long = "from",
        default_value = "spin.toml",
        value_name = "MANIFEST"
    )]
    from: PathBuf,

    /// Address to serve HTTP on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:3000", value_name = "ADDR")]
    listen: SocketAddr,

    /// Set an application variable: NAME=VALUE, NAME=@FILE (the file's
    /// content), or @FILE.json / @FILE.toml (a table of them). Beats
    /// SPIN_VARIABLE_<NAME> in the environment, which beats ./.env, which
    /// beats the manifest default.
    #[arg(long = "variable", value_name = "VARIABLE")]
    variables: Vec<String>,

    /// Wall-clock limit for each request, e.g. 30s or 500ms (default: none,
    /// as in Spin). A request over it gets 504.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    request_timeout: Option<Duration>,

    /// Wall-clock limit for each Redis message a component handles, e.g.
    /// 90s (default: none, as in Spin). Past it the instance is dropped.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    message_timeout: Option<Duration>,

    /// Linear-memory limit of each instance in bytes (default: none, as in
    /// Spin). Growth beyond it fails inside the guest, which usually traps: 500.
    #[arg(long, env = "SPIN_MAX_INSTANCE_MEMORY", value_name = "BYTES")]
    max_instance_memory: Option<usize>,

    /// Requests one wasi:http 0.3 instance serves before it is replaced.
    #[arg(long, default_value_t = 128, value_name = "N")]
    max_instance_reuse_count: usize,

    /// Requests one wasi:http 0.3 instance serves at the same time.
    #[arg(long, default_value_t = 16, value_name = "N")]
    max_instance_concurrent_reuse_count: usize,

    /// How long an idle wasi:http 0.3 instance is kept for reuse.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    idle_instance_timeout: Duration,

    /// Never use the pooling allocator (it is used when the address space allows).
    #[arg(long)]
    disable_pooling: bool,

    /// Instances the pooling allocator holds.
    #[arg(
        long,
        env = "SPIN_MAX_INSTANCE_COUNT",
        default_value_t = 1000,
        value_name = "N"
    )]
    max_instance_count: u32,

    /// Directory of the compiled-code cache, so a restart does not recompile.
    #[arg(long, env = "SPINDRIVE_CACHE_DIR", value_name = "DIR")]
    cache_dir: Option<PathBuf>,

    /// Compile every component at startup, ignoring the cache.
    #[arg(long)]
    disable_cache: bool,

    /// Server connections per Postgres pool (one pool per connection string).
    #[arg(long, env = "SPINDRIVE_PG_POOL_SIZE", default_value_t = 64, value_name = "N")]
    pg_pool_size: usize,

    /// How long a request waits for a free pooled Postgres connection before
    /// `connection-failed` (Spin waits forever).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pg_pool_timeout: Duration,

    /// Postgres connect timeout, unless the connection string sets one.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pg_connect_timeout: Duration,

    /// Spin's runtime configuration (TOML); this host implements its
    /// `[outbound_networking] block_networks`.
    #[arg(long, value_name = "FILE")]
    runtime_config_file: Option<PathBuf>,

    /// Log lines as JSON objects instead of text.
    #[arg(long)]
    json_logs: bool,
}

fn main() -> Result<()> {
    let Command::Up(args) = Cli::parse().command;
    let _log_writer = init_logging(args.json_logs);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(up(args))
}

async fn up(args: UpArgs) -> Result<()> {
    let manifest = Manifest::load(&args.from)?;
    let resolver = Arc::new(Resolver::new(
        manifest.variables.clone(),
        &args.variables,
        &std::env::current_dir()?.join(".env"),
    )?);
    let cache_dir = (!args.disable_cache).then(|| args.cache_dir.clone().unwrap_or_else(default_cache_dir));
    let engine_settings = EngineSettings {
        pooling: args.disable_pooling.then_some(false),
        max_instances: args.max_instance_count,
        cache_dir,
    };
    let runtime_config = match &args.runtime_config_file {
        Some(path) => RuntimeConfig::load(path)?,
        None => RuntimeConfig::default(),
    };
    let instance_settings = InstanceSettings {
        max_reuse: args.max_instance_reuse_count.max(1),
        max_concurrent_reuse: args.max_instance_concurrent_reuse_count.max(1),
        idle_timeout: args.idle_instance_timeout,
        request_timeout: args.request_timeout,
        message_timeout: args.message_timeout,
        max_memory: args.max_instance_memory.or(runtime_config.max_instance_memory),
        blocked_networks: Arc::new(runtime_config.blocked_networks()?),
    };
    let pool_settings = PoolSettings {
        max_size: args.pg_pool_size.max(1),
        wait_timeout: Some(args.pg_pool_timeout),
        connect_timeout: args.pg_connect_timeout,
    };
    let mut app = App::load(
        &manifest,
        resolver,
        &engine_settings,
        &instance_settings,
        pool_settings,
    )?;
    let redis_subscriptions = std::mem::take(&mut app.redis_subscriptions);
    let app = Arc::new(app);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    startup::print_routes(&app, listener.local_addr()?);
    redis::trigger::spawn(redis_subscriptions)?;
    server::serve(app, listener, shutdown_signal()).await
}

fn default_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("spindrive-host")
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) =
        (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
}

/// Logs go to stderr from a writer thread, so request threads never block
/// on the terminal or a pipe. The guard flushes the queue at exit.
fn init_logging(json: bool) -> tracing_appender::non_blocking::WorkerGuard {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,wasmtime=warn,cranelift=warn"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(writer);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
    guard
}
