//! Test harness shared by the host's tests and the black-box app tests:
//! start `spindrive-host` on a free port with a manifest, read its output,
//! measure it, stop it; find the built fixture components.

pub mod documents;
pub mod images;
mod postgres;
mod redis;

pub use postgres::{
    PrivateServer, TestDatabase, admin_url, app_host, app_host_with_redis, migrate, psql, with_database,
};
pub use redis::{RedisServer, shared_redis_url};

use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The repository root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/testkit sits two levels below the root")
        .to_path_buf()
}

/// Runs a command to its end; its standard output, or an error with its
/// standard error when it fails.
pub fn run(command: &mut Command) -> Result<String> {
    let output = command
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !output.status.success() {
        bail!("{command:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The release build of the host (`make test` builds it first).
pub fn host_binary() -> PathBuf {
    workspace_root().join("target/release/spindrive-host")
}

/// The project's ignored state directory (servers' data, caches).
pub fn state_dir() -> PathBuf {
    workspace_root().join(".state")
}

/// A built wasm component of this workspace (`make` builds them first).
pub fn component_wasm(crate_name: &str) -> PathBuf {
    let path = workspace_root()
        .join("target/wasm32-wasip2/release")
        .join(format!("{}.wasm", crate_name.replace('-', "_")));
    assert!(
        path.exists(),
        "{} is missing: build the components first (`make test` does)",
        path.display()
    );
    path
}

/// Text the host printed, collected as it runs.
#[derive(Clone, Default)]
pub struct Output(Arc<Mutex<String>>);

impl Output {
    fn collect(self, stream: impl Read + Send + 'static) {
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if std::env::var_os("TEST_LOG").is_some() {
                    eprint!("host| {line}");
                }
                self.0.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
    }

    pub fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }

    /// Waits until the output contains `needle`.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.text().contains(needle) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "{needle:?} did not appear within {timeout:?}; output so far:\n{}",
            self.text()
        )
    }
}

/// How to start a host.
pub struct HostBuilder {
    binary: PathBuf,
    manifest: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    workdir: Option<PathBuf>,
    listen: String,
    allow_compat_warnings: bool,
}

impl HostBuilder {
    /// `binary` is the `spindrive-host` executable; `manifest` a spin.toml.
    pub fn new(binary: impl Into<PathBuf>, manifest: impl Into<PathBuf>) -> Self {
        HostBuilder {
            binary: binary.into(),
            manifest: manifest.into(),
            args: Vec::new(),
            envs: Vec::new(),
            workdir: None,
            listen: "127.0.0.1:0".into(),
            allow_compat_warnings: false,
        }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// The host's working directory (where it reads `.env`).
    pub fn workdir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.workdir = Some(dir.into());
        self
    }

    /// The address to serve on (default: a free port of 127.0.0.1), for a
    /// host restarted where its clients know it.
    pub fn listen(mut self, address: impl Into<String>) -> Self {
        self.listen = address.into();
        self
    }

    /// The test expects `spin-compat` warnings (it checks them itself).
    pub fn allow_compat_warnings(mut self) -> Self {
        self.allow_compat_warnings = true;
        self
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .arg("up")
            .arg("--from")
            .arg(&self.manifest)
            .args(["--listen", &self.listen])
            .args(&self.args)
            .env("SPINDRIVE_CACHE_DIR", state_dir().join("wasmtime-cache"))
            .env(
                "RUST_LOG",
                std::env::var("HOST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(dir) = &self.workdir {
            command.current_dir(dir);
        }
        command
    }

    /// Starts the host and waits until it serves.
    pub fn start(self) -> Result<Host> {
        let (mut child, stdout, stderr) = self.spawn()?;
        let deadline = Instant::now() + Duration::from_secs(120);
        let url = loop {
            if let Some(line) = stdout.text().lines().find_map(|l| l.strip_prefix("Serving ")) {
                break line.trim().to_owned();
            }
            if let Some(status) = child.try_wait()? {
                bail!(
                    "host exited with {status} before serving:\n{}{}",
                    stdout.text(),
                    stderr.text()
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("host did not start serving within 120 s:\n{}", stderr.text());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ok(Host {
            child,
            url,
            stdout,
            stderr,
            allow_compat_warnings: self.allow_compat_warnings,
        })
    }

    /// Runs the host expecting it to fail at startup; returns its output.
    pub fn expect_startup_failure(self) -> Result<String> {
        let (mut child, stdout, stderr) = self.spawn()?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = child.try_wait()? {
                // Give the reader threads a moment to drain the pipes.
                std::thread::sleep(Duration::from_millis(100));
                if status.success() {
                    bail!("host exited successfully; expected a startup failure");
                }
                return Ok(format!("{}{}", stdout.text(), stderr.text()));
            }
            if stdout.text().contains("Serving ") {
                let _ = child.kill();
                bail!("host started serving; expected a startup failure");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("host neither failed nor served within 120 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn spawn(&self) -> Result<(Child, Output, Output)> {
        let mut child = self
            .command()
            .spawn()
            .with_context(|| format!("cannot start {}", self.binary.display()))?;
        let stdout = Output::default();
        let stderr = Output::default();
        stdout.clone().collect(child.stdout.take().context("no stdout")?);
        stderr.clone().collect(child.stderr.take().context("no stderr")?);
        Ok((child, stdout, stderr))
    }
}

/// A running host; killed when dropped. Unless allowed, any `spin-compat`
/// warning it printed fails the test.
pub struct Host {
    child: Child,
    url: String,
    pub stdout: Output,
    pub stderr: Output,
    allow_compat_warnings: bool,
}

impl Host {
    /// `http://127.0.0.1:<port>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The host's resident memory in KiB.
    pub fn rss_kib(&self) -> Result<u64> {
        rss_kib(self.pid())
    }

    /// The CPU time the host has used so far, user and system, every
    /// thread (10 ms resolution).
    pub fn cpu_time(&self) -> Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))?;
        // After the command name (in parentheses, which may hold spaces):
        // state is field 3, utime and stime are fields 14 and 15.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .context("no command name in /proc stat")?
            .1
            .split_whitespace()
            .collect();
        let ticks = |index: usize| -> Result<u64> {
            fields
                .get(index - 3)
                .and_then(|field| field.parse().ok())
                .context("no CPU times in /proc stat")
        };
        // /proc counts in USER_HZ, 100 a second on Linux whatever the kernel's own tick.
        Ok(Duration::from_millis((ticks(14)? + ticks(15)?) * 10))
    }

    /// SIGKILL, as a crash would; waits until it is gone.
    pub fn kill(&mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("host still running {timeout:?} after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.allow_compat_warnings && !std::thread::panicking() {
            let log = self.stderr.text();
            assert!(
                !log.contains("spin-compat"),
                "the host printed a spin-compat warning: this component would misbehave on real Spin\n{log}"
            );
        }
    }
}

/// The resident memory of process `pid` in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc status")
}

/// Samples a host's RSS in the background and keeps the peak.
pub struct RssSampler {
    peak: Arc<Mutex<u64>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    pub fn start(pid: u32) -> Self {
        let peak = Arc::new(Mutex::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (peak, stop) = (peak.clone(), stop.clone());
            move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok(kib) = rss_kib(pid) {
                        let mut peak = peak.lock().unwrap();
                        *peak = (*peak).max(kib);
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        });
        RssSampler {
            peak,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops sampling; returns the peak RSS in KiB.
    pub fn finish(mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        *self.peak.lock().unwrap()
    }
}

/// Byte `i` of the fixtures' test pattern.
pub fn pattern_byte(i: u64) -> u8 {
    (i % 251) as u8
}

/// `len` bytes of the test pattern starting at `offset`.
pub fn pattern(offset: u64, len: usize) -> Vec<u8> {
    (offset..offset + len as u64).map(pattern_byte).collect()
}

/// The pieces a streamed test body is sent in.
const PATTERN_PIECE: usize = 256 << 10;

/// The first `size` bytes of the test pattern as a body stream, generated
/// piece by piece so that no test holds a large body in memory.
pub fn pattern_chunks(size: u64) -> impl futures::Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static {
    use futures::StreamExt;
    futures::stream::iter((0..size).step_by(PATTERN_PIECE)).map(move |offset| {
        Ok(pattern(
            offset,
            (size - offset).min(PATTERN_PIECE as u64) as usize,
        ))
    })
}

/// The hex SHA-256 of the first `size` bytes of the test pattern.
pub fn pattern_sha256(size: u64) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for offset in (0..size).step_by(PATTERN_PIECE) {
        hasher.update(pattern(
            offset,
            (size - offset).min(PATTERN_PIECE as u64) as usize,
        ));
    }
    hex(&hasher.finalize())
}

/// Lowercase hex, as the API writes SHA-256 digests.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
