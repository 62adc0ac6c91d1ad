//! The failover test, for real: a three-member Patroni cluster
//! (scripts/failover-cluster.sh) behind HAProxy, spindrive writing to the
//! leader and reading from the synchronous standbys, under a load of
//! uploads and renames and a load of downloads of existing files, then
//! `kill -9` of the leader's Patroni and PostgreSQL. Each round reports the
//! writes' unavailability window (first failed to first succeeded
//! request), the errors clients saw, the downloads and their failures, the
//! standbys' sessions, and the time until the old leader rejoins as a
//! replica; at the end every acknowledged upload must download with its
//! SHA-256 and every acknowledged rename must show in the file's metadata,
//! 1,000 uploads must each download and list at once, and a revoke or a
//! logout must hold while the standbys' replay is held back
//! (`replica_reads`). Fails unless no acknowledged write was lost, no
//! download failed, and the API answered again within 10 s of every kill.

use crate::report;
use anyhow::{Context, Result, bail};
use serde::Serialize;
use sha2::{Digest, Sha256};
use spindrive_testkit::{Host, HostBuilder, hex, host_binary, migrate, psql, state_dir, workspace_root};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const MEMBERS: [u16; 3] = [1, 2, 3];
const WORKERS: usize = 4;
/// Download workers beside the write load.
const DOWNLOADERS: usize = 2;
/// Upload-then-read rounds after the kills.
const READ_YOUR_WRITES_ROUNDS: usize = 1000;
const UPLOAD_BYTES: usize = 16 << 10;
/// The API must answer again within this long after a kill.
const RECOVERY_BUDGET: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
enum Outcome {
    Uploaded { id: String, sha256: String },
    Renamed { id: String, name: String },
    Failed { status: Option<u16> },
}

impl Outcome {
    fn acknowledged(&self) -> bool {
        !matches!(self, Outcome::Failed { .. })
    }
}

/// Every request: when it started, when it finished, how it ended.
#[derive(Default)]
struct Journal {
    events: Vec<Event>,
}

struct Event {
    started: Instant,
    finished: Instant,
    outcome: Outcome,
}

#[derive(Serialize)]
struct Round {
    round: usize,
    killed: String,
    unavailable_ms: u64,
    answering_again_after_kill_ms: u64,
    failed_requests: usize,
    server_errors_5xx: usize,
    old_leader_rejoined_ms: u64,
    downloads: usize,
    download_failures: usize,
    standby_sessions: String,
}

pub struct Cluster;

impl Cluster {
    pub fn script(args: &[&str]) -> Result<String> {
        let output = Command::new(workspace_root().join("scripts/failover-cluster.sh"))
            .args(args)
            .output()
            .context("cannot run failover-cluster.sh")?;
        if !output.status.success() {
            bail!(
                "failover-cluster.sh {args:?} failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    fn start() -> Result<String> {
        let output = Self::script(&["start"])?;
        output.lines().last().map(str::to_owned).context("no admin URL")
    }

    pub fn leader() -> Option<u16> {
        MEMBERS.into_iter().find(|n| rest_ok(*n, "primary"))
    }

    /// SIGKILL of the member's Patroni and its postmaster (Patroni
    /// double-forks PostgreSQL, so both must go).
    fn kill(member: u16) -> Result<()> {
        let dir = state_dir().join(format!("failover/member{member}"));
        let postmaster = std::fs::read_to_string(dir.join("data/postmaster.pid"))
            .ok()
            .and_then(|text| text.lines().next().map(str::to_owned));
        let config = state_dir().join(format!("failover/member{member}.yml"));
        Command::new("pkill")
            .arg("-KILL")
            .arg("-f")
            .arg(config.as_os_str())
            .status()?;
        if let Some(pid) = postmaster {
            Command::new("kill").args(["-KILL", &pid]).status()?;
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Self::script(&["stop"]);
    }
}

/// Whether `member` streams from the current leader (the leader's own
/// view: a replica that merely started may still need pg_rewind).
fn streaming(member: u16) -> bool {
    let Some(leader) = Cluster::leader() else {
        return false;
    };
    let Ok(output) = Command::new("curl")
        .args(["-sf", "-m", "1", &format!("http://127.0.0.1:5844{leader}/")])
        .output()
    else {
        return false;
    };
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
    status["replication"].as_array().is_some_and(|replicas| {
        replicas
            .iter()
            .any(|r| r["application_name"] == format!("member{member}") && r["state"] == "streaming")
    })
}

fn rest_ok(member: u16, path: &str) -> bool {
    let url = format!("http://127.0.0.1:5844{member}/{path}");
    std::process::Command::new("curl")
        .args(["-sf", "-o", "/dev/null", "-m", "1", &url])
        .status()
        .is_ok_and(|s| s.success())
}

/// A fresh cluster with the spindrive database migrated; its
/// superuser's password.
pub fn start_cluster() -> Result<(Cluster, String)> {
    let cluster = Cluster;
    let admin = Cluster::start()?;
    psql(&admin, "CREATE DATABASE spindrive")?;
    let database_url = spindrive_testkit::with_database(&admin, "spindrive");
    migrate(&database_url)?;
    let password = admin
        .strip_prefix("postgres://postgres:")
        .and_then(|rest| rest.split_once('@'))
        .map(|(password, _)| password.to_owned())
        .context("admin URL")?;
    Ok((cluster, password))
}

/// HAProxy's listeners: writes to the primary, reads to the synchronous
/// standbys (scripts/failover-cluster.sh).
pub const WRITE_PORT: &str = "55440";
pub const READ_PORT: &str = "55439";

/// The app over the cluster, writing through HAProxy's primary listener
/// and reading through `read_port`.
pub fn serve(password: &str, read_port: &str) -> Result<Host> {
    let mut host = HostBuilder::new(host_binary(), workspace_root().join("spin.toml"));
    for (key, value) in [
        ("db_host", "127.0.0.1"),
        ("db_port", WRITE_PORT),
        ("db_read_host", "127.0.0.1"),
        ("db_read_port", read_port),
        ("db_name", "spindrive"),
        ("db_user", "postgres"),
        ("db_password", password),
        ("db_sslmode", "disable"),
        // No Redis here: transformations are not under test, and their
        // worker only retries its subscription in the background.
        ("redis_password", ""),
    ] {
        host = host.arg("--variable").arg(format!("{key}={value}"));
    }
    host.arg("--pg-connect-timeout").arg("2s").start()
}

pub fn run(rounds: usize) -> Result<()> {
    let (cluster, password) = start_cluster()?;
    let host = serve(&password, READ_PORT)?;
    let base = host.url("");

    let runtime = tokio::runtime::Runtime::new()?;
    let token = runtime.block_on(crate::client::sign_in(&base, "loader"))?;
    let journal = Arc::new(Mutex::new(Journal::default()));
    let existing = runtime.block_on(crate::replica_reads::existing_files(&base, &token))?;
    // One download worker reads as a grantee: its permission is checked on
    // the standby, and the owner is told of its downloads on the leader.
    let viewer = runtime.block_on(async {
        let viewer = crate::client::sign_in(&base, "viewer").await?;
        let client = reqwest::Client::new();
        for file in &existing {
            crate::replica_reads::share(&client, &base, &token, &file.id, "viewer").await?;
        }
        anyhow::Ok(viewer)
    })?;
    let downloads = Arc::new(Mutex::new(crate::replica_reads::DownloadJournal::default()));
    let mut figures = Vec::new();

    for round in 1..=rounds {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let round_started = crate::replica_reads::database_now(&password)?;
        let downloads_before = downloads.lock().unwrap().events.len();
        let workers: Vec<_> = (0..WORKERS)
            .map(|worker| {
                runtime.spawn(load(
                    base.clone(),
                    token.clone(),
                    journal.clone(),
                    stop.clone(),
                    worker,
                ))
            })
            .collect();
        let downloaders: Vec<_> = (0..DOWNLOADERS)
            .map(|worker| {
                runtime.spawn(crate::replica_reads::download_load(
                    base.clone(),
                    if worker == 0 {
                        token.clone()
                    } else {
                        viewer.clone()
                    },
                    existing.clone(),
                    downloads.clone(),
                    stop.clone(),
                    worker,
                ))
            })
            .collect();
        std::thread::sleep(Duration::from_secs(2));
        let leader = Cluster::leader().context("no leader before the kill")?;
        let (standby_sessions, sessions) =
            crate::replica_reads::standby_sessions(&password, leader, &round_started)?;
        if sessions == 0 {
            bail!("round {round}: no standby served spindrive under the download load");
        }
        let killed_at = Instant::now();
        Cluster::kill(leader)?;
        eprintln!("round {round}: killed member{leader} (leader)");

        // Wait until writes have failed and then succeeded again steadily.
        let deadline = killed_at + Duration::from_secs(60);
        let (unavailable, answering_again) = loop {
            std::thread::sleep(Duration::from_millis(100));
            if let Some(window) = recovery(&journal.lock().unwrap(), killed_at) {
                break window;
            }
            if Instant::now() > deadline {
                bail!("round {round}: writes did not come back within 60 s of the kill");
            }
        };

        Cluster::script(&["start-member", &leader.to_string()])?;
        let restarted = Instant::now();
        while !streaming(leader) {
            if restarted.elapsed() > Duration::from_secs(60) {
                bail!("round {round}: member{leader} did not rejoin within 60 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let rejoined = restarted.elapsed();
        // The next round starts from a whole cluster: every member streaming.
        while !MEMBERS
            .iter()
            .all(|m| Some(*m) == Cluster::leader() || streaming(*m))
        {
            if restarted.elapsed() > Duration::from_secs(60) {
                bail!("round {round}: the cluster did not become whole again within 60 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_secs(1));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for worker in workers.into_iter().chain(downloaders) {
            runtime.block_on(worker)??;
        }
        let round_downloads = &downloads.lock().unwrap().events[downloads_before..];
        // Downloads went on while the writes could not: some finished
        // between the kill and the writes' return.
        let writes_back = killed_at + answering_again;
        if !round_downloads
            .iter()
            .any(|(at, outcome)| outcome.is_ok() && *at > killed_at && *at < writes_back)
        {
            bail!("round {round}: no download finished while the writes were unavailable");
        }

        let journal = journal.lock().unwrap();
        let failed: Vec<&Event> = journal
            .events
            .iter()
            .filter(|e| e.finished >= killed_at && matches!(e.outcome, Outcome::Failed { .. }))
            .collect();
        figures.push(Round {
            round,
            killed: format!("member{leader}"),
            unavailable_ms: unavailable.as_millis() as u64,
            answering_again_after_kill_ms: answering_again.as_millis() as u64,
            failed_requests: failed.len(),
            server_errors_5xx: failed
                .iter()
                .filter(|e| matches!(e.outcome, Outcome::Failed { status: Some(s) } if s >= 500))
                .count(),
            old_leader_rejoined_ms: rejoined.as_millis() as u64,
            downloads: round_downloads.len(),
            download_failures: round_downloads
                .iter()
                .filter(|(_, outcome)| outcome.is_err())
                .count(),
            standby_sessions,
        });
    }

    let acknowledged: Vec<Outcome> = journal
        .lock()
        .unwrap()
        .events
        .iter()
        .filter(|e| e.outcome.acknowledged())
        .map(|e| e.outcome.clone())
        .collect();
    let uploads = acknowledged
        .iter()
        .filter(|o| matches!(o, Outcome::Uploaded { .. }))
        .count();
    let renames = acknowledged.len() - uploads;
    let lost = runtime.block_on(count_lost(&base, &token, &acknowledged))?;
    let leader = Cluster::leader().context("no leader after the rounds")?;
    let started = crate::replica_reads::database_now(&password)?;
    let read_your_writes = runtime.block_on(crate::replica_reads::read_your_writes(
        &base,
        &token,
        READ_YOUR_WRITES_ROUNDS,
    ))?;
    crate::replica_reads::ensure_standbys_served(&password, leader, &started, "read-your-writes")?;
    let held_back = runtime.block_on(crate::replica_reads::held_back_replay(
        &base, &token, leader, &password,
    ))?;
    drop(host);
    drop(cluster);

    let mut table = String::from(
        "| round | killed | writes unavailable (first failed to first succeeded) | answering again after kill | failed writes | 5xx | downloads (failed) | standbys' sessions serving the round before the kill | old leader rejoined as replica |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in &figures {
        table.push_str(&format!(
            "| {} | {} | {:.2} s | {:.2} s | {} | {} | {} ({}) | {} | {:.2} s |\n",
            r.round,
            r.killed,
            r.unavailable_ms as f64 / 1000.0,
            r.answering_again_after_kill_ms as f64 / 1000.0,
            r.failed_requests,
            r.server_errors_5xx,
            r.downloads,
            r.download_failures,
            r.standby_sessions,
            r.old_leader_rejoined_ms as f64 / 1000.0
        ));
    }
    table.push_str(&format!(
        "\n{uploads} uploads and {renames} renames acknowledged over {} rounds; {lost} lost (each acknowledged file downloaded and its SHA-256 checked, each acknowledged rename read back).\n",
        figures.len()
    ));
    table.push_str(&format!(
        "\nDownloads of existing files (3 MiB; {DOWNLOADERS} clients, the owner and a grantee) read from the synchronous standbys through HAProxy's read listener, the leader's death included.\n\
         \nRead-your-writes: {} rounds of upload, immediate download (SHA-256 checked) and a listing that must show it, over 4 clients: {} failed ({:.1} s).\n\
         \nStandbys' replay held back by {} (`recovery_min_apply_delay`): the revoke returned after {} ms and the logout after {} ms (each waits until the standbys applied it); {} requests of the grantee after them, {} authorized.\n",
        read_your_writes.rounds,
        read_your_writes.failed,
        read_your_writes.seconds,
        held_back.delay,
        held_back.revoke_ms,
        held_back.logout_ms,
        held_back.requests_after,
        held_back.authorized_after,
    ));
    report::publish_table(
        "failover",
        "Failover: SIGKILL of the Patroni leader (Patroni + PostgreSQL) under a load of uploads and renames, through HAProxy",
        &table,
        &serde_json::json!({
            "rounds": figures,
            "acknowledged_uploads": uploads,
            "acknowledged_renames": renames,
            "lost": lost,
            "read_your_writes": read_your_writes,
            "held_back_replay": held_back,
        }),
    )?;
    if lost > 0 {
        bail!("{lost} acknowledged writes were lost");
    }
    let failed_downloads: usize = figures.iter().map(|r| r.download_failures).sum();
    if failed_downloads > 0 {
        bail!("{failed_downloads} downloads of existing files failed");
    }
    if figures.iter().any(|r| r.downloads == 0) {
        bail!("a round ran no download");
    }
    if read_your_writes.failed > 0 {
        bail!("{} upload-then-read rounds failed", read_your_writes.failed);
    }
    if held_back.authorized_after > 0 {
        bail!(
            "{} requests were authorized after the revoke or logout had returned",
            held_back.authorized_after
        );
    }
    if let Some(slow) = figures
        .iter()
        .find(|r| r.answering_again_after_kill_ms > RECOVERY_BUDGET.as_millis() as u64)
    {
        bail!(
            "round {}: the API answered again only after {} ms",
            slow.round,
            slow.answering_again_after_kill_ms
        );
    }
    Ok(())
}

/// (first failure to first success, kill to first success) once a request
/// has failed after `killed_at` and three requests started after that
/// failure have succeeded. Requests already in flight at the failure do
/// not count: they may have committed before the kill.
fn recovery(journal: &Journal, killed_at: Instant) -> Option<(Duration, Duration)> {
    let failed_at = journal
        .events
        .iter()
        .filter(|e| e.finished >= killed_at && matches!(e.outcome, Outcome::Failed { .. }))
        .map(|e| e.finished)
        .min()?;
    let mut later: Vec<&Event> = journal.events.iter().filter(|e| e.started > failed_at).collect();
    later.sort_by_key(|e| e.finished);
    let first_success = later.iter().position(|e| e.outcome.acknowledged())?;
    let steady = later[first_success..].iter().take(3);
    if later.len() < first_success + 3 || !steady.clone().all(|e| e.outcome.acknowledged()) {
        return None;
    }
    let succeeded_at = later[first_success].finished;
    Some((succeeded_at - failed_at, succeeded_at - killed_at))
}

/// One load worker: uploads random files and renames each one it got
/// acknowledged, until told to stop, journaling every acknowledged write
/// (id with its hash or new name) and every failure.
async fn load(
    base: String,
    token: String,
    journal: Arc<Mutex<Journal>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    worker: usize,
) -> Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let record = |started: Instant, outcome: Outcome| {
        journal.lock().unwrap().events.push(Event {
            started,
            finished: Instant::now(),
            outcome,
        });
    };
    let mut sequence = 0u64;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        sequence += 1;
        let mut body = vec![0u8; UPLOAD_BYTES];
        fill_pseudo_random(&mut body, worker as u64, sequence);
        let sha256 = hex(&Sha256::digest(&body));
        let started = Instant::now();
        let response = client
            .post(format!("{base}/api/files?name=load-{worker}-{sequence}.bin"))
            .bearer_auth(&token)
            .body(body)
            .send()
            .await;
        let uploaded = match response {
            Ok(response) if response.status() == reqwest::StatusCode::CREATED => {
                let file: serde_json::Value = response.json().await?;
                let id = file["id"].as_str().context("an id")?.to_owned();
                anyhow::ensure!(file["sha256"] == sha256, "the server hashed other bytes");
                record(
                    started,
                    Outcome::Uploaded {
                        id: id.clone(),
                        sha256,
                    },
                );
                id
            }
            failed => {
                record(started, failure(failed));
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };

        let name = format!("renamed-{worker}-{sequence}.bin");
        let started = Instant::now();
        let response = client
            .patch(format!("{base}/api/files/{uploaded}"))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "file_name": name }))
            .send()
            .await;
        match response {
            Ok(response) if response.status() == reqwest::StatusCode::OK => {
                record(started, Outcome::Renamed { id: uploaded, name });
            }
            failed => {
                record(started, failure(failed));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    Ok(())
}

/// A request that was not acknowledged: its status, if it got one.
fn failure(response: reqwest::Result<reqwest::Response>) -> Outcome {
    Outcome::Failed {
        status: response.ok().map(|r| r.status().as_u16()),
    }
}

/// Deterministic pseudo-random bytes (xorshift), distinct per upload.
pub fn fill_pseudo_random(buffer: &mut [u8], worker: u64, sequence: u64) {
    let mut state = (worker << 32) ^ sequence ^ 0x9E37_79B9_7F4A_7C15;
    for byte in buffer.iter_mut() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state as u8;
    }
}

/// Acknowledged writes the API does not show: uploads whose content is
/// missing or other, renames whose name did not stick.
async fn count_lost(base: &str, token: &str, acknowledged: &[Outcome]) -> Result<usize> {
    let client = &reqwest::Client::new();
    let get = |path: String| async move {
        let response = client
            .get(format!("{base}{path}"))
            .bearer_auth(token)
            .send()
            .await?;
        anyhow::Ok((response.status() == reqwest::StatusCode::OK).then_some(response))
    };
    let mut lost = 0;
    for write in acknowledged {
        let kept = match write {
            Outcome::Uploaded { id, sha256 } => match get(format!("/api/files/{id}/content")).await? {
                Some(content) => hex(&Sha256::digest(&content.bytes().await?)) == *sha256,
                None => false,
            },
            Outcome::Renamed { id, name } => match get(format!("/api/files/{id}")).await? {
                Some(file) => file.json::<serde_json::Value>().await?["file_name"] == name.as_str(),
                None => false,
            },
            Outcome::Failed { .. } => true,
        };
        if !kept {
            eprintln!("lost: {write:?}");
            lost += 1;
        }
    }
    Ok(lost)
}
