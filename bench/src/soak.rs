//! The soak: the whole app on a durable Postgres of its own (file content
//! in a tablespace on a size-limited filesystem, as a content volume) and
//! a Redis of its own, under clients mixing what users do
//! (`soak_load`) for a bounded time, sampled every 10 s (host RSS and
//! open descriptors, Postgres connections, requests/s, p99 per route,
//! errors). Faults come in the first third, each reported with what
//! clients saw and how long until the API worked again: the host killed
//! with SIGKILL and restarted, Postgres restarted (fast, then immediate
//! shutdown), Redis restarted, the content volume filled to its limit
//! and freed. Afterwards: every acknowledged upload downloads whole with
//! its SHA-256 and keeps its name, acknowledged deletes stay gone, no job
//! or notification is stuck, nothing staged is left after the sweep, no
//! 5xx but clean 503/507 during faults and none outside them, and the
//! host's RSS grew less than 10 % over the last half (or from the last
//! fault's end, if later). Fails otherwise; figures go to
//! `bench/results/soak.*`.

use crate::soak_load::{self, Client, Held, Ledger, Load, Record, Recorder, Route};
use anyhow::{Result, bail, ensure};
use serde::Serialize;
use sha2::{Digest, Sha256};
use spindrive_testkit::{
    Host, HostBuilder, PrivateServer, RedisServer, TestDatabase, app_host_with_redis, hex, psql, state_dir,
    workspace_root,
};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// The content volume: the tablespace of `file_chunks`. Clients keep at
/// most 128 MiB each; the rest absorbs what deletes leave until vacuumed.
const CONTENT_VOLUME_MIB: u64 = 12 << 10;
/// How long the content volume stays full.
const DISK_FULL_HOLD: Duration = Duration::from_secs(15);
/// The API must work again within this long of each fault's end.
const RECOVERY_LIMIT: Duration = Duration::from_secs(60);
/// Jobs and webhook deliveries must settle within this long of the end.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);
const RSS_GROWTH_LIMIT: f64 = 0.10;
/// The shortest RSS window whose growth is judged against the limit.
const RSS_JUDGED_WINDOW: Duration = Duration::from_secs(300);
/// A job asked for after Redis is back must be done within this long: a
/// wake-up lost while the worker resubscribes waits for the schedule.
const JOB_LIMIT: Duration = Duration::from_secs(SCHEDULE_EVERY.as_secs() + 30);
/// `make up`'s schedule: the sweeps and a wake-up for each worker.
const SCHEDULE_EVERY: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Fault {
    HostKilled,
    PostgresFastRestart,
    PostgresImmediateRestart,
    RedisRestart,
    ContentVolumeFull,
}

/// When each fault starts, as a fraction of the soak: all in the first
/// third, the host's first, so the last half measures one process.
const FAULTS: [(f64, Fault); 5] = [
    (0.08, Fault::HostKilled),
    (0.14, Fault::PostgresFastRestart),
    (0.20, Fault::PostgresImmediateRestart),
    (0.26, Fault::RedisRestart),
    (0.32, Fault::ContentVolumeFull),
];

impl Fault {
    fn describe(self) -> &'static str {
        match self {
            Fault::HostKilled => "host SIGKILL, restarted",
            Fault::PostgresFastRestart => "Postgres restart (fast shutdown)",
            Fault::PostgresImmediateRestart => "Postgres restart (immediate shutdown: crash recovery)",
            Fault::RedisRestart => "Redis restart (nothing persisted)",
            Fault::ContentVolumeFull => "content volume full, then freed",
        }
    }
}

/// A filesystem of fixed size holding the content tablespace: ext4 in a
/// sparse image file on the disk, mounted through a loop device.
struct ContentVolume {
    dir: PathBuf,
}

impl ContentVolume {
    fn mount(mib: u64) -> Result<Self> {
        let tmp = state_dir().join("tmp");
        unmount_leftovers(&tmp)?;
        let dir = tmp.join(format!("content-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let image = dir.with_extension("img");
        std::fs::File::create(&image)?.set_len(mib << 20)?;
        // No blocks reserved for root: Postgres gets the whole volume.
        spindrive_testkit::run(
            Command::new("mkfs.ext4")
                .args(["-q", "-F", "-m", "0"])
                .arg(&image),
        )?;
        let mounted = Command::new("mount")
            .arg("-o")
            .arg("loop")
            .arg(&image)
            .arg(&dir)
            .status()?;
        ensure!(
            mounted.success(),
            "cannot mount the soak's content volume ({} on a loop device) at {}: the soak needs root",
            image.display(),
            dir.display()
        );
        let volume = ContentVolume { dir };
        std::fs::create_dir(volume.tablespace())?;
        spindrive_testkit::run(
            Command::new("chown")
                .arg("postgres:postgres")
                .arg(volume.tablespace()),
        )?;
        Ok(volume)
    }

    fn tablespace(&self) -> PathBuf {
        self.dir.join("tablespace")
    }

    fn filler(&self) -> PathBuf {
        self.dir.join("filler")
    }

    /// Takes every byte the volume has left; how many it took.
    fn fill(&self) -> Result<u64> {
        use std::io::Write;
        // Allocated a piece at a time, as Postgres goes on writing
        // meanwhile; the last bytes are written.
        const PIECE: u64 = 256 << 20;
        std::fs::File::create(self.filler())?;
        let mut allocated = 0u64;
        while Command::new("fallocate")
            .args(["-o", &allocated.to_string(), "-l", &PIECE.to_string()])
            .arg(self.filler())
            .stderr(std::process::Stdio::null())
            .status()?
            .success()
        {
            allocated += PIECE;
        }
        let mut file = std::fs::OpenOptions::new().append(true).open(self.filler())?;
        let block = vec![0xA5u8; 64 << 10];
        let mut written = allocated;
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(error) if error.raw_os_error() == Some(28) => break,
                Err(error) => return Err(error.into()),
            }
        }
        Ok(written)
    }

    fn free(&self) -> Result<()> {
        Ok(std::fs::remove_file(self.filler())?)
    }
}

impl Drop for ContentVolume {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
        let _ = std::fs::remove_file(self.dir.with_extension("img"));
    }
}

/// Unmounts and removes the content volumes of soaks that were killed
/// before they could clean up.
fn unmount_leftovers(tmp: &std::path::Path) -> Result<()> {
    let mounts = std::fs::read_to_string("/proc/mounts")?;
    for point in mounts.lines().filter_map(|line| line.split(' ').nth(1)) {
        let point = std::path::Path::new(point);
        if point.parent() == Some(tmp)
            && point
                .file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("content-"))
        {
            eprintln!(
                "soak: unmounting {}, left by a soak that was killed",
                point.display()
            );
            let _ = Command::new("umount").arg("-l").arg(point).status();
            let _ = std::fs::remove_dir(point);
            let _ = std::fs::remove_file(point.with_extension("img"));
        }
    }
    Ok(())
}

/// Everything the soak runs, stopped in this order when dropped.
struct System {
    host: Host,
    db: Arc<TestDatabase>,
    redis: Arc<RedisServer>,
    server: PrivateServer,
    volume: ContentVolume,
    listen: String,
    host_pid: Arc<AtomicU32>,
    /// `spin-compat` warnings the hosts printed (each would misbehave on
    /// real Spin).
    compat_warnings: usize,
}

impl System {
    fn start() -> Result<Self> {
        let volume = ContentVolume::mount(CONTENT_VOLUME_MIB)?;
        let server = PrivateServer::start_durable()?;
        let redis = RedisServer::start()?;
        let admin = server.admin_url()?;
        let db = TestDatabase::create_on(&admin)?;
        psql(
            &admin,
            &format!(
                "CREATE TABLESPACE soak_content LOCATION '{}'",
                volume.tablespace().display()
            ),
        )?;
        let listen = format!("127.0.0.1:{}", free_port()?);
        let builder = Self::builder(&db, &redis, &listen)?;
        // Migrated by now: the chunks move to the content volume.
        db.psql("ALTER TABLE file_chunks SET TABLESPACE soak_content")?;
        let host = builder.start()?;
        let host_pid = Arc::new(AtomicU32::new(host.pid()));
        Ok(System {
            host,
            db: Arc::new(db),
            redis: Arc::new(redis),
            server,
            volume,
            listen,
            host_pid,
            compat_warnings: 0,
        })
    }

    /// The product's spin.toml with the soak's settings: clients are users
    /// behind one ingress (their addresses in `X-Forwarded-For`), webhooks
    /// go to the soak's receiver on 127.0.0.1, and leases are short enough
    /// for the end's drain to see a killed worker's job retried.
    fn builder(db: &TestDatabase, redis: &RedisServer, listen: &str) -> Result<HostBuilder> {
        let mut builder = app_host_with_redis(db, &redis.url()?)?.listen(listen);
        for (key, value) in [
            ("trusted_proxy_hops", "1"),
            ("webhook_allow_private_addresses", "true"),
            ("transform_lease_seconds", "30"),
            // The shortest the deliverer accepts.
            ("notify_lease_seconds", "25"),
        ] {
            builder = builder.arg("--variable").arg(format!("{key}={value}"));
        }
        // Counted into the soak's failures rather than panicking in Drop.
        Ok(builder
            .allow_compat_warnings()
            .arg("--pg-connect-timeout")
            .arg("2s"))
    }

    fn url(&self) -> String {
        format!("http://{}", self.listen)
    }

    /// Appends the host's output to `.state/soak/host.log` and counts its
    /// `spin-compat` warnings.
    fn save_host_log(&mut self) -> Result<()> {
        use std::io::Write;
        // The output's readers drain the pipes of a host just killed.
        std::thread::sleep(Duration::from_millis(200));
        let dir = state_dir().join("soak");
        std::fs::create_dir_all(&dir)?;
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("host.log"))?;
        let errors = self.host.stderr.text();
        self.compat_warnings += errors.lines().filter(|line| line.contains("spin-compat")).count();
        write!(log, "{}{errors}", self.host.stdout.text())?;
        Ok(())
    }

    fn restart_host(&mut self) -> Result<()> {
        self.host.kill()?;
        self.save_host_log()?;
        self.host = Self::builder(&self.db, &self.redis, &self.listen)?.start()?;
        self.host_pid.store(self.host.pid(), Ordering::Relaxed);
        Ok(())
    }

    fn schedule(&self, stale_seconds: u64) -> Result<()> {
        schedule(&self.db, &self.redis, stale_seconds)
    }

    fn count(&self, sql: &str) -> Result<u64> {
        Ok(self.db.psql(sql)?.parse()?)
    }
}

/// `make up`'s schedule once: the sweeps, then a wake-up on each worker's
/// channel. `stale_seconds` is the sweep's idle limit for uploads and its
/// grace for released content.
fn schedule(db: &TestDatabase, redis: &RedisServer, stale_seconds: u64) -> Result<()> {
    let sweep = Command::new(workspace_root().join("migrations/sweep.sh"))
        .arg(db.url())
        .env("UPLOAD_STALE_SECONDS", stale_seconds.to_string())
        .env("RELEASE_GRACE_SECONDS", stale_seconds.to_string())
        .status()?;
    ensure!(sweep.success(), "the sweep failed");
    for kind in ["transform", "notify"] {
        redis.cli(&["PUBLISH", &format!("{kind}-{}", db.name), "tick"])?;
    }
    Ok(())
}

/// Stops the load and joins the background threads when dropped, however
/// the soak ends: they hold the database and Redis, which stop only once
/// the last holder lets go.
struct Background {
    load: Arc<Load>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for Background {
    fn drop(&mut self) {
        self.load.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One sample of the system under load.
#[derive(Serialize)]
struct Sample {
    at_s: u64,
    /// None when the host was not running at that moment.
    host_rss_mib: Option<f64>,
    host_open_fds: usize,
    pg_connections: Option<u64>,
    requests_per_s: f64,
    /// Non-2xx answers in the interval by status (0: no answer).
    errors: BTreeMap<u16, usize>,
    p99_ms: BTreeMap<&'static str, f64>,
    #[serde(skip)]
    window_end: Duration,
}

/// The figures of `[from, to)`, `to` being now.
fn sample(system_pid: u32, admin: &str, database: &str, recorder: &Recorder, from: Duration) -> Sample {
    let to = recorder.now();
    let records = recorder.between(from, to);
    let mut errors = BTreeMap::new();
    let mut latencies: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    for record in &records {
        if !record.succeeded() {
            *errors.entry(record.status).or_default() += 1;
        }
        latencies
            .entry(record.route.name())
            .or_default()
            .push((record.finished - record.started).as_secs_f64() * 1000.0);
    }
    Sample {
        at_s: to.as_millis() as u64 / 1000,
        host_rss_mib: spindrive_testkit::rss_kib(system_pid)
            .ok()
            .map(|kib| kib as f64 / 1024.0),
        host_open_fds: std::fs::read_dir(format!("/proc/{system_pid}/fd")).map_or(0, |d| d.count()),
        pg_connections: psql(
            admin,
            &format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}'"),
        )
        .ok()
        .and_then(|n| n.parse().ok()),
        requests_per_s: records.len() as f64 / (to - from).as_secs_f64(),
        window_end: to,
        errors,
        p99_ms: latencies
            .into_iter()
            .map(|(route, mut ms)| (route, percentile(&mut ms, 0.99)))
            .collect(),
    }
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * p).round() as usize]
}

/// What clients saw of one fault, and how long until the API worked.
#[derive(Serialize)]
struct FaultReport {
    fault: Fault,
    at_s: f64,
    /// From the fault's start to its end (server back, space returned).
    fault_ms: u64,
    /// From the fault's end until the probe's uploads and downloads
    /// succeeded steadily again.
    recovered_after_end_ms: u64,
    /// A transformation asked for after the fault's end: until it was done.
    job_done_after_end_ms: Option<u64>,
    /// Answers to clients from the fault's start to recovery + 1 s.
    answers: BTreeMap<u16, usize>,
    /// Requests overlapping the fault answered with a 5xx other than 503
    /// and 507: not a clean error.
    unclean: usize,
}

/// When the probe began to succeed steadily after `from`: the first of
/// the first run of [`STEADY`] successful probe requests (an upload and a
/// download each).
fn steady_since(recorder: &Recorder, from: Duration) -> Option<Duration> {
    let probes: Vec<Record> = recorder
        .between(from, recorder.now())
        .into_iter()
        .filter(|r| r.route == Route::Probe && r.started >= from)
        .collect();
    let mut run = 0;
    for (i, probe) in probes.iter().enumerate() {
        run = if probe.succeeded() { run + 1 } else { 0 };
        if run == STEADY {
            return Some(probes[i + 1 - STEADY].finished);
        }
    }
    None
}

/// Successful probe requests in a row that count as working again: two
/// whole probes.
const STEADY: usize = 4;

/// Runs one fault; its report.
fn inject(
    fault: Fault,
    system: &mut System,
    recorder: &Recorder,
    runtime: &tokio::runtime::Runtime,
    requester: &mut Client,
) -> Result<FaultReport> {
    let start = recorder.now();
    eprintln!("soak: {} at {:.0} s", fault.describe(), start.as_secs_f64());
    match fault {
        Fault::HostKilled => system.restart_host()?,
        Fault::PostgresFastRestart => {
            system.server.stop()?;
            std::thread::sleep(Duration::from_secs(2));
            system.server.restart()?;
        }
        Fault::PostgresImmediateRestart => {
            system.server.stop_immediately()?;
            std::thread::sleep(Duration::from_secs(2));
            system.server.restart()?;
        }
        Fault::RedisRestart => {
            system.redis.stop()?;
            std::thread::sleep(Duration::from_secs(5));
            system.redis.restart()?;
        }
        Fault::ContentVolumeFull => {
            let filled = system.volume.fill()?;
            eprintln!("soak: {} MiB written to fill the content volume", filled >> 20);
            std::thread::sleep(DISK_FULL_HOLD);
            system.volume.free()?;
        }
    }
    let end = recorder.now();
    let deadline = Instant::now() + RECOVERY_LIMIT;
    let recovered = loop {
        if let Some(at) = steady_since(recorder, end) {
            break at;
        }
        if Instant::now() > deadline {
            bail!(
                "{}: the API did not work again within {RECOVERY_LIMIT:?}",
                fault.describe()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let job_done = if fault == Fault::RedisRestart {
        Some(runtime.block_on(requester.transform_and_wait(JOB_LIMIT))?)
    } else {
        None
    };
    // Answers still in flight at recovery land within a second (the
    // 5xx check at the end looks at every request that overlapped).
    std::thread::sleep(Duration::from_secs(1));
    let mut answers = BTreeMap::new();
    for record in recorder.between(start, recovered + Duration::from_secs(1)) {
        if record.route != Route::Probe {
            *answers.entry(record.status).or_default() += 1;
        }
    }
    Ok(FaultReport {
        fault,
        at_s: start.as_secs_f64(),
        fault_ms: (end - start).as_millis() as u64,
        recovered_after_end_ms: recovered.saturating_sub(end).as_millis() as u64,
        job_done_after_end_ms: job_done.map(|d| d.as_millis() as u64),
        answers,
        unclean: 0,
    })
}

/// Webhook deliveries the soak's receiver got, by `webhook-id`: when
/// each came.
type Deliveries = Arc<Mutex<HashMap<String, Vec<Instant>>>>;

/// A receiver that answers 204 to every delivery and counts each id.
async fn webhook_receiver(deliveries: Deliveries) -> Result<String> {
    use hyper_util::rt::TokioIo;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hooks", listener.local_addr()?);
    tokio::spawn(async move {
        loop {
            // A failed accept (out of descriptors) ends no more than itself.
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let deliveries = deliveries.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                        let deliveries = deliveries.clone();
                        async move {
                            let id = request
                                .headers()
                                .get("webhook-id")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned();
                            // Read whole, as a receiver that checks the
                            // signature over it does, before answering.
                            let received = http_body_util::BodyExt::collect(request.into_body())
                                .await
                                .is_ok();
                            let mut answer =
                                hyper::Response::new(http_body_util::Empty::<bytes::Bytes>::new());
                            *answer.status_mut() = if received {
                                deliveries
                                    .lock()
                                    .unwrap()
                                    .entry(id)
                                    .or_default()
                                    .push(Instant::now());
                                hyper::StatusCode::NO_CONTENT
                            } else {
                                hyper::StatusCode::BAD_REQUEST
                            };
                            Ok::<_, std::convert::Infallible>(answer)
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(url)
}

/// How the ledgers held up: each acknowledged file whole and named as
/// acknowledged, each acknowledged delete gone.
#[derive(Serialize, Default)]
struct Verification {
    files_checked: usize,
    bytes_checked: u64,
    deletes_checked: usize,
    unanswered_deletes: usize,
    lost: Vec<String>,
}

async fn verify(base: &str, ledgers: &[Ledger]) -> Result<Verification> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let mut outcome = Verification::default();
    for ledger in ledgers {
        let get = |path: String| {
            client
                .get(format!("{base}{path}"))
                .bearer_auth(&ledger.token)
                .send()
        };
        let whole = |file: &Held, status: u16, body: &[u8]| {
            status == 200 && hex(&Sha256::digest(body)) == soak_load::content_sha256(file.salt, file.size)
        };
        for file in &ledger.held {
            let content = get(format!("/api/files/{}/content", file.id)).await?;
            let status = content.status().as_u16();
            let body = content.bytes().await?;
            outcome.files_checked += 1;
            outcome.bytes_checked += body.len() as u64;
            if !whole(file, status, &body) {
                outcome
                    .lost
                    .push(format!("{}: {status}, {} bytes", file.id, body.len()));
                continue;
            }
            let metadata: serde_json::Value = get(format!("/api/files/{}", file.id)).await?.json().await?;
            if !file
                .names
                .iter()
                .any(|name| metadata["file_name"] == name.as_str())
            {
                outcome.lost.push(format!(
                    "{}: named {}, not one of {:?}",
                    file.id, metadata["file_name"], file.names
                ));
            }
        }
        for id in &ledger.deleted {
            outcome.deletes_checked += 1;
            let status = get(format!("/api/files/{id}")).await?.status();
            if status != reqwest::StatusCode::NOT_FOUND {
                outcome.lost.push(format!("{id}: deleted, but {status}"));
            }
        }
        for file in &ledger.maybe_deleted {
            outcome.unanswered_deletes += 1;
            let content = get(format!("/api/files/{}/content", file.id)).await?;
            let status = content.status().as_u16();
            let body = content.bytes().await?;
            if status != 404 && !whole(file, status, &body) {
                outcome
                    .lost
                    .push(format!("{}: neither gone nor whole ({status})", file.id));
            }
        }
    }
    Ok(outcome)
}

/// What was left after the end's sweep and drain.
#[derive(Serialize)]
struct Leftovers {
    drained_after_ms: u64,
    jobs_unfinished: u64,
    notifications_pending: u64,
    staged_uploads: u64,
    released_content: u64,
    orphan_chunk_keys: u64,
    jobs_complete: u64,
    jobs_failed: u64,
    webhook_deliveries: usize,
    webhook_notifications: usize,
    webhook_redelivered: usize,
    /// For each notification delivered again: how long after the first.
    redelivered_after_s: Vec<f64>,
    webhooks_sent_after_retry: u64,
    /// Recorded as delivered, yet the receiver never had them.
    webhooks_sent_not_received: usize,
}

fn drain(system: &System, deliveries: &Deliveries) -> Result<Leftovers> {
    let started = Instant::now();
    let unfinished = "SELECT count(*) FROM transformation_jobs WHERE status IN ('pending', 'running')";
    let pending = "SELECT count(*) FROM notifications WHERE status = 'pending'";
    loop {
        system.schedule(0)?;
        std::thread::sleep(Duration::from_secs(2));
        if system.count(unfinished)? + system.count(pending)? == 0 || started.elapsed() > DRAIN_LIMIT {
            break;
        }
        std::thread::sleep(Duration::from_secs(3));
    }
    let deliveries = deliveries.lock().unwrap();
    let recorded_sent = system
        .db
        .psql("SELECT id FROM notifications WHERE sent_at IS NOT NULL")?;
    let sent_not_received = recorded_sent
        .lines()
        .filter(|id| !deliveries.contains_key(&format!("ntf_{id}")))
        .count();
    Ok(Leftovers {
        webhooks_sent_not_received: sent_not_received,
        drained_after_ms: started.elapsed().as_millis() as u64,
        jobs_unfinished: system.count(unfinished)?,
        notifications_pending: system.count(pending)?,
        staged_uploads: system.count("SELECT count(*) FROM uploads")?,
        released_content: system.count("SELECT count(*) FROM released_content")?,
        orphan_chunk_keys: system.count(
            "SELECT count(DISTINCT storage_key) FROM file_chunks c \
             WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.file_path = 'pg:' || c.storage_key)",
        )?,
        jobs_complete: system.count("SELECT count(*) FROM transformation_jobs WHERE status = 'complete'")?,
        jobs_failed: system.count("SELECT count(*) FROM transformation_jobs WHERE status = 'failed'")?,
        webhook_deliveries: deliveries.values().map(Vec::len).sum(),
        webhook_notifications: deliveries.len(),
        webhook_redelivered: deliveries.values().filter(|n| n.len() > 1).count(),
        redelivered_after_s: deliveries
            .values()
            .filter(|times| times.len() > 1)
            .map(|times| (times[1] - times[0]).as_secs_f64())
            .collect(),
        webhooks_sent_after_retry: system
            .count("SELECT count(*) FROM notifications WHERE status = 'sent' AND attempts > 1")?,
    })
}

/// Per route over the whole soak: requests, p50/p99, answers that were
/// not 2xx.
#[derive(Serialize)]
struct RouteFigures {
    route: &'static str,
    requests: usize,
    p50_ms: f64,
    p99_ms: f64,
    not_2xx: usize,
}

fn route_figures(records: &[Record]) -> Vec<RouteFigures> {
    let mut by_route: BTreeMap<Route, Vec<&Record>> = BTreeMap::new();
    for record in records {
        by_route.entry(record.route).or_default().push(record);
    }
    by_route
        .into_iter()
        .map(|(route, records)| {
            let mut ms: Vec<f64> = records
                .iter()
                .map(|r| (r.finished - r.started).as_secs_f64() * 1000.0)
                .collect();
            RouteFigures {
                route: route.name(),
                requests: records.len(),
                p50_ms: percentile(&mut ms, 0.5),
                p99_ms: percentile(&mut ms, 0.99),
                not_2xx: records.iter().filter(|r| !r.succeeded()).count(),
            }
        })
        .collect()
}

/// Host RSS growth from `from` (the last half, or later if a fault ran
/// into it) to the end: the mean of the last three samples against the
/// mean of the first three. None with fewer than six samples.
fn rss_growth(samples: &[Sample], from: Duration) -> Option<f64> {
    let rss: Vec<f64> = samples
        .iter()
        .filter(|s| s.window_end >= from)
        .filter_map(|s| s.host_rss_mib)
        .collect();
    if rss.len() < 6 {
        return None;
    }
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len() as f64;
    Some(mean(&rss[rss.len() - 3..]) / mean(&rss[..3]) - 1.0)
}

pub fn run(seconds: u64, clients: usize) -> Result<()> {
    ensure!(
        clients >= 2,
        "the soak needs two clients at least (they share with each other)"
    );
    let runtime = tokio::runtime::Runtime::new()?;
    let deliveries = Deliveries::default();
    let webhook_url = runtime.block_on(webhook_receiver(deliveries.clone()))?;
    let _ = std::fs::remove_file(state_dir().join("soak/host.log"));
    let mut system = System::start()?;
    let admin = system.server.admin_url()?;
    let recorder = Arc::new(Recorder::new());
    let load = Arc::new(Load {
        base: system.url(),
        recorder: recorder.clone(),
        stop: Default::default(),
        clients,
        webhook_url,
        uploads: Default::default(),
    });
    let image = spindrive_testkit::images::encoded(
        image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(1024, 768, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
        })),
        image::ImageFormat::Jpeg,
    );
    // The clients, the recovery probe, and a user who asks for a job
    // after the Redis restart.
    let (workers, probing, mut requester) = runtime.block_on(async {
        // Every user exists before any shares with another.
        let mut signed_up = Vec::new();
        for n in 0..clients {
            signed_up.push(Client::sign_up(load.clone(), n, &image).await?);
        }
        let workers: Vec<_> = signed_up.into_iter().map(|c| tokio::spawn(c.run())).collect();
        let mut probe = Client::sign_up(load.clone(), clients, &image).await?;
        let stop = load.clone();
        let probing = tokio::spawn(async move {
            while !stop.stop.load(Ordering::Relaxed) {
                probe.probe().await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            probe.into_ledger()
        });
        let requester = Client::sign_up(load.clone(), clients + 1, &image).await?;
        anyhow::Ok((workers, probing, requester))
    })?;
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let (samples, recorder, load) = (samples.clone(), recorder.clone(), load.clone());
        let (pid, database) = (system.host_pid.clone(), system.db.name.clone());
        let admin = admin.clone();
        std::thread::spawn(move || {
            let mut from = Duration::ZERO;
            loop {
                std::thread::sleep(SAMPLE_EVERY);
                if load.stop.load(Ordering::Relaxed) {
                    break;
                }
                let s = sample(pid.load(Ordering::Relaxed), &admin, &database, &recorder, from);
                from = s.window_end;
                eprintln!(
                    "soak: {:>4} s  {:>6.0} req/s  host {:>6.1} MiB, {} fds  pg {:?} connections  {} uploads  errors {:?}",
                    s.at_s,
                    s.requests_per_s,
                    s.host_rss_mib.unwrap_or_default(),
                    s.host_open_fds,
                    s.pg_connections,
                    load.uploads.load(Ordering::Relaxed),
                    s.errors
                );
                samples.lock().unwrap().push(s);
            }
        })
    };
    let scheduler = {
        let (db, redis, load) = (system.db.clone(), system.redis.clone(), load.clone());
        std::thread::spawn(move || {
            let mut last = Instant::now();
            while !load.stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                if last.elapsed() >= SCHEDULE_EVERY {
                    // Failing while a server is down, as the schedule's
                    // own would; the next run makes up for it.
                    if let Err(error) = schedule(&db, &redis, 600) {
                        eprintln!("soak: the schedule failed: {error}");
                    }
                    last = Instant::now();
                }
            }
        })
    };

    let background = Background {
        load: load.clone(),
        threads: vec![sampler, scheduler],
    };

    let soak = Duration::from_secs(seconds);
    let faults = (|| {
        let mut faults = Vec::new();
        for (fraction, fault) in FAULTS {
            while recorder.now() < soak.mul_f64(fraction) {
                std::thread::sleep(Duration::from_millis(200));
            }
            faults.push(inject(fault, &mut system, &recorder, &runtime, &mut requester)?);
        }
        while recorder.now() < soak {
            std::thread::sleep(Duration::from_millis(200));
        }
        anyhow::Ok(faults)
    })();
    load.stop.store(true, Ordering::Relaxed);
    let ledgers: Vec<Ledger> = runtime.block_on(async {
        let mut ledgers = Vec::new();
        for worker in workers {
            ledgers.push(worker.await?);
        }
        ledgers.push(probing.await?);
        anyhow::Ok(ledgers)
    })?;
    drop(background);
    let faults = faults?;
    let records = recorder.all();
    eprintln!("soak: load stopped; draining and checking");

    let leftovers = drain(&system, &deliveries)?;
    let verification = runtime.block_on(verify(&system.url(), &ledgers))?;
    let samples = std::mem::take(&mut *samples.lock().unwrap());
    // The last half, or from the last fault's end if it ran into it.
    let quiet_from = faults
        .iter()
        .map(|f| {
            Duration::from_secs_f64(f.at_s) + Duration::from_millis(f.fault_ms + f.recovered_after_end_ms)
        })
        .max()
        .unwrap_or_default()
        .max(Duration::from_secs(seconds / 2));
    let growth = rss_growth(&samples, quiet_from);
    let contradictions = recorder.contradictions.lock().unwrap().clone();
    system.save_host_log()?;
    let compat_warnings = system.compat_warnings;
    drop(system);

    let routes = route_figures(&records);
    let mut faults = faults;
    for fault in &mut faults {
        fault.unclean = records
            .iter()
            .filter(|r| r.status >= 500 && !matches!(r.status, 503 | 507) && covers(fault, r))
            .count();
    }
    let unclean: usize = faults.iter().map(|f| f.unclean).sum();
    // Outside the faults, every request is answered, and never with a 5xx.
    let outside_faults = records
        .iter()
        .filter(|r| (r.status == 0 || r.status >= 500) && !faults.iter().any(|f| covers(f, r)))
        .count();
    let outcome = Outcome {
        seconds,
        clients,
        samples,
        faults,
        routes,
        leftovers,
        verification,
        rss_window_from_s: quiet_from.as_secs(),
        host_rss_growth: growth,
    };
    outcome.publish()?;
    let Outcome {
        leftovers,
        verification,
        ..
    } = outcome;
    let mut failures = Vec::new();
    if !contradictions.is_empty() || !verification.lost.is_empty() {
        failures.push(format!(
            "acknowledged writes lost or changed: {:?} {:?}",
            contradictions, verification.lost
        ));
    }
    if unclean + outside_faults > 0 {
        failures.push(format!(
            "{unclean} unclean 5xx during faults; {outside_faults} requests outside them unanswered or 5xx"
        ));
    }
    if compat_warnings > 0 {
        failures.push(format!(
            "the host printed {compat_warnings} spin-compat warnings (.state/soak/host.log)"
        ));
    }
    if leftovers.webhooks_sent_not_received > 0 {
        failures.push(format!(
            "{} webhook deliveries recorded as sent never reached the receiver",
            leftovers.webhooks_sent_not_received
        ));
    }
    if leftovers.jobs_unfinished + leftovers.notifications_pending > 0 {
        failures.push(format!(
            "{} jobs and {} notifications stuck after the drain",
            leftovers.jobs_unfinished, leftovers.notifications_pending
        ));
    }
    if leftovers.staged_uploads + leftovers.released_content + leftovers.orphan_chunk_keys > 0 {
        failures.push("staged or released content left after the sweep".into());
    }
    // A shorter window tells warm-up (instances, caches) from a leak too
    // poorly to judge: `make test`'s short soak reports it only.
    let judged = Duration::from_secs(seconds).saturating_sub(quiet_from) >= RSS_JUDGED_WINDOW;
    match growth {
        _ if !judged => {}
        None => failures.push("too few samples after the faults to measure the host's RSS growth".into()),
        Some(growth) if growth >= RSS_GROWTH_LIMIT => failures.push(format!(
            "host RSS grew {:.1} % from {} s to the end",
            growth * 100.0,
            quiet_from.as_secs()
        )),
        Some(_) => {}
    }
    if !failures.is_empty() {
        bail!("the soak failed: {}", failures.join("; "));
    }
    Ok(())
}

/// Whether a request overlapped a fault's window (start to recovery).
fn covers(fault: &FaultReport, record: &Record) -> bool {
    let start = Duration::from_secs_f64(fault.at_s);
    let end = start + Duration::from_millis(fault.fault_ms + fault.recovered_after_end_ms + 1000);
    record.finished >= start && record.started <= end
}

/// Everything the soak measured.
#[derive(Serialize)]
struct Outcome {
    seconds: u64,
    clients: usize,
    samples: Vec<Sample>,
    faults: Vec<FaultReport>,
    routes: Vec<RouteFigures>,
    leftovers: Leftovers,
    verification: Verification,
    /// Where the RSS window starts: the last half, or the last fault's end.
    rss_window_from_s: u64,
    host_rss_growth: Option<f64>,
}

impl Outcome {
    /// Prints it and writes `soak.md` and `soak.json`.
    fn publish(&self) -> Result<()> {
        use std::fmt::Write;
        let (seconds, clients, growth) = (self.seconds, self.clients, self.host_rss_growth);
        let (samples, faults, routes) = (&self.samples, &self.faults, &self.routes);
        let (leftovers, verification) = (&self.leftovers, &self.verification);
        let mut table = format!(
            "{clients} clients for {seconds} s, each a user mixing logins, uploads (1 KiB to 64 MiB, log-uniform), ranged and whole downloads, listings, renames, shares, transformations, notification reads and deletes; Postgres durable (fsync, synchronous commits) with file content on a {} GiB volume of its own; Redis; webhooks for every eighth user.\n\n## Faults\n\n| fault | at | lasted | API working again after its end | transformation done after its end | clients' answers meanwhile (status: count; 0 = no answer) | unclean 5xx |\n|---|---|---|---|---|---|---|\n",
            CONTENT_VOLUME_MIB / 1024
        );
        for f in faults {
            let _ = writeln!(
                table,
                "| {} | {:.0} s | {:.1} s | {:.2} s | {} | {} | {} |",
                f.fault.describe(),
                f.at_s,
                f.fault_ms as f64 / 1000.0,
                f.recovered_after_end_ms as f64 / 1000.0,
                f.job_done_after_end_ms
                    .map_or("-".into(), |ms| format!("{:.2} s", ms as f64 / 1000.0)),
                f.answers
                    .iter()
                    .map(|(status, n)| format!("{status}: {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                f.unclean
            );
        }
        table.push_str("\n## Per route, whole soak\n\n| route | requests | p50 ms | p99 ms | not 2xx |\n|---|---|---|---|---|\n");
        for r in routes {
            let _ = writeln!(
                table,
                "| {} | {} | {:.1} | {:.1} | {} |",
                r.route, r.requests, r.p50_ms, r.p99_ms, r.not_2xx
            );
        }
        table.push_str("\n## Every 10 s\n\n| at | req/s | host RSS MiB | host fds | Postgres connections | not 2xx | slowest route p99 |\n|---|---|---|---|---|---|---|\n");
        for s in samples {
            let slowest = s
                .p99_ms
                .iter()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(String::new(), |(route, ms)| format!("{route} {ms:.0} ms"));
            let _ = writeln!(
                table,
                "| {} s | {:.0} | {} | {} | {} | {} | {} |",
                s.at_s,
                s.requests_per_s,
                s.host_rss_mib.map_or("-".into(), |mib| format!("{mib:.1}")),
                s.host_open_fds,
                s.pg_connections.map_or("down".into(), |n| n.to_string()),
                s.errors.values().sum::<usize>(),
                slowest
            );
        }
        let _ = write!(
            table,
            "\n## After the load\n\n- Acknowledged files downloaded whole (SHA-256) and named as acknowledged: {} files, {:.1} MiB; acknowledged deletes gone: {}; deletes without an answer (gone or whole): {}; lost or changed: {}.\n\
         - Drain (sweep and wake-ups until settled): {:.1} s; jobs unfinished {}, notifications pending {}; jobs complete {}, failed {}.\n\
         - Webhooks: {} deliveries of {} notifications, {} delivered more than once ({} sent again after a failed attempt); recorded as sent but never received: {}.\n\
         - After the sweep: {} staged uploads, {} released contents, {} chunk keys without a file.\n\
         - Host RSS from {} s (no fault after it) to the end: {} (limit {:.0} %, judged over {} s or more).\n",
            verification.files_checked,
            verification.bytes_checked as f64 / (1 << 20) as f64,
            verification.deletes_checked,
            verification.unanswered_deletes,
            verification.lost.len(),
            leftovers.drained_after_ms as f64 / 1000.0,
            leftovers.jobs_unfinished,
            leftovers.notifications_pending,
            leftovers.jobs_complete,
            leftovers.jobs_failed,
            leftovers.webhook_deliveries,
            leftovers.webhook_notifications,
            leftovers.webhook_redelivered,
            leftovers.webhooks_sent_after_retry,
            leftovers.webhooks_sent_not_received,
            leftovers.staged_uploads,
            leftovers.released_content,
            leftovers.orphan_chunk_keys,
            self.rss_window_from_s,
            growth.map_or("not measured".into(), |g| format!("{:+.1} %", g * 100.0)),
            RSS_GROWTH_LIMIT * 100.0,
            RSS_JUDGED_WINDOW.as_secs(),
        );
        crate::report::publish_table(
            "soak",
            "Soak: mixed load with faults, then nothing acknowledged lost",
            &table,
            &serde_json::to_value(self)?,
        )
    }
}
