//! Read scaling: 8 concurrent downloads of 64 MiB files from the
//! three-member Patroni cluster, read from the leader only (the read
//! address set to HAProxy's primary listener, the baseline) and from the
//! synchronous standbys (the read listener), alternating in one run. For
//! each: MiB/s, and the PostgreSQL CPU each member spent per MiB served.
//! Then what it costs the writes: commit latency with `remote_apply` vs
//! `on`.

use crate::failover::{Cluster, MEMBERS, READ_PORT, WRITE_PORT, serve, start_cluster};
use crate::report;
use anyhow::{Context, Result, ensure};
use serde::Serialize;
use spindrive_testkit::state_dir;
use std::time::Instant;

const STREAMS: u64 = 8;
const FILE_BYTES: usize = 64 << 20;
/// Passes per configuration, alternating; the median counts.
const PASSES: usize = 3;

#[derive(Serialize)]
struct Pass {
    mib_per_s: f64,
    leader_cpu_ms_per_mib: f64,
    standbys_cpu_ms_per_mib: f64,
}

#[derive(Serialize)]
struct Figures {
    reads_from: &'static str,
    median: Pass,
    passes: Vec<Pass>,
}

/// CPU seconds a member's PostgreSQL has used: the postmaster, its
/// children alive now, and those it has reaped.
fn member_cpu_seconds(member: u16) -> Result<f64> {
    let dir = state_dir().join(format!("failover/member{member}/data/postmaster.pid"));
    let postmaster: u32 = std::fs::read_to_string(dir)?
        .lines()
        .next()
        .context("an empty postmaster.pid")?
        .trim()
        .parse()?;
    let fields = |pid: u32| -> Option<Vec<u64>> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The fields after the command, which may hold spaces: ppid is
        // the 2nd of them, utime..cstime the 12th to 15th.
        let rest = stat.rsplit_once(')')?.1;
        Some(rest.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect())
    };
    let own = fields(postmaster).context("the postmaster is gone")?;
    let mut ticks: u64 = own[11..15].iter().sum();
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(child) = fields(pid).filter(|f| f.get(1) == Some(&u64::from(postmaster))) {
            ticks += child[11] + child[12];
        }
    }
    // Linux reports CPU time in USER_HZ, 100 a second.
    Ok(ticks as f64 / 100.0)
}

fn cpu_by_member() -> Result<Vec<(u16, f64)>> {
    MEMBERS
        .into_iter()
        .map(|m| Ok((m, member_cpu_seconds(m)?)))
        .collect()
}

/// Every file downloaded at once, one stream each; the bytes must add up.
async fn download_all(base: &str, token: &str, ids: &[String]) -> Result<()> {
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for id in ids {
        let request = client
            .get(format!("{base}/api/files/{id}/content"))
            .bearer_auth(token)
            .send();
        tasks.push(tokio::spawn(async move {
            let response = request.await?.error_for_status()?;
            let mut stream = response;
            let mut bytes = 0;
            while let Some(chunk) = stream.chunk().await? {
                bytes += chunk.len();
            }
            anyhow::Ok(bytes)
        }));
    }
    for task in tasks {
        let bytes = task.await??;
        ensure!(bytes == FILE_BYTES, "a download ended after {bytes} bytes");
    }
    Ok(())
}

/// Milliseconds per commit of a one-row insert, one after another, with
/// `synchronous_commit` at `level` for the session.
async fn commit_ms(password: &str, level: &str) -> Result<f64> {
    const COMMITS: u32 = 500;
    let (client, connection) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={WRITE_PORT} user=postgres password={password} dbname=spindrive"),
        tokio_postgres::NoTls,
    )
    .await?;
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS bench_commits (n int); SET synchronous_commit = {level}"
        ))
        .await?;
    let insert = client.prepare("INSERT INTO bench_commits VALUES ($1)").await?;
    let started = Instant::now();
    for n in 0..COMMITS {
        client.execute(&insert, &[&(n as i32)]).await?;
    }
    Ok(started.elapsed().as_secs_f64() * 1000.0 / f64::from(COMMITS))
}

pub fn run() -> Result<()> {
    let (cluster, password) = start_cluster()?;
    let leader = Cluster::leader().context("no leader")?;
    let from_leader = serve(&password, WRITE_PORT)?;
    let from_standbys = serve(&password, READ_PORT)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let base = from_leader.url("");
    let token = runtime.block_on(crate::client::sign_in(&base, "reader"))?;
    let ids = runtime.block_on(async {
        let client = reqwest::Client::new();
        let mut ids = Vec::new();
        for n in 0..STREAMS {
            let mut body = vec![0u8; FILE_BYTES];
            crate::failover::fill_pseudo_random(&mut body, 3000, n);
            ids.push(
                crate::replica_reads::upload(&client, &base, &token, &format!("big-{n}.bin"), body).await?,
            );
        }
        anyhow::Ok(ids)
    })?;

    let mib = (STREAMS as usize * FILE_BYTES) as f64 / f64::from(1 << 20);
    let configurations = [
        ("the leader only", from_leader.url("")),
        ("the synchronous standbys", from_standbys.url("")),
    ];
    let mut passes: Vec<Vec<Pass>> = vec![Vec::new(), Vec::new()];
    for _ in 0..PASSES {
        for (index, (_, base)) in configurations.iter().enumerate() {
            let before = cpu_by_member()?;
            let started = Instant::now();
            runtime.block_on(download_all(base, &token, &ids))?;
            let seconds = started.elapsed().as_secs_f64();
            let after = cpu_by_member()?;
            let spent = |member: u16| {
                let at =
                    |list: &[(u16, f64)]| list.iter().find(|(m, _)| *m == member).map_or(0.0, |(_, s)| *s);
                at(&after) - at(&before)
            };
            let standbys: f64 = MEMBERS.into_iter().filter(|m| *m != leader).map(spent).sum();
            passes[index].push(Pass {
                mib_per_s: mib / seconds,
                leader_cpu_ms_per_mib: spent(leader) * 1000.0 / mib,
                standbys_cpu_ms_per_mib: standbys * 1000.0 / mib,
            });
        }
    }
    // What reads from the standbys cost the writes: waiting for both
    // standbys to apply a commit rather than to have it on disk.
    let mut commits = (Vec::new(), Vec::new());
    for _ in 0..PASSES {
        commits.0.push(runtime.block_on(commit_ms(&password, "on"))?);
        commits
            .1
            .push(runtime.block_on(commit_ms(&password, "remote_apply"))?);
    }
    drop((from_leader, from_standbys));
    drop(cluster);
    let middle = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let (commit_on, commit_applied) = (middle(&mut commits.0), middle(&mut commits.1));

    let median = |list: &[Pass], key: fn(&Pass) -> f64| {
        let mut values: Vec<f64> = list.iter().map(key).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let figures: Vec<Figures> = configurations
        .iter()
        .zip(passes)
        .map(|((name, _), passes)| Figures {
            reads_from: name,
            median: Pass {
                mib_per_s: median(&passes, |p| p.mib_per_s),
                leader_cpu_ms_per_mib: median(&passes, |p| p.leader_cpu_ms_per_mib),
                standbys_cpu_ms_per_mib: median(&passes, |p| p.standbys_cpu_ms_per_mib),
            },
            passes,
        })
        .collect();
    let mut table = format!(
        "{STREAMS} concurrent downloads of {} MiB files (one stream each), {PASSES} passes per configuration, alternating; medians.\n\n\
         | reads from | MiB/s | leader's PostgreSQL CPU per MiB | standbys' PostgreSQL CPU per MiB |\n|---|---|---|---|\n",
        FILE_BYTES >> 20
    );
    for f in &figures {
        table.push_str(&format!(
            "| {} | {:.0} | {:.2} ms | {:.2} ms |\n",
            f.reads_from,
            f.median.mib_per_s,
            f.median.leader_cpu_ms_per_mib,
            f.median.standbys_cpu_ms_per_mib
        ));
    }
    let (leader_only, standbys) = (&figures[0].median, &figures[1].median);
    table.push_str(&format!(
        "\nThroughput with the standbys: {:.2}x the leader only. The leader's CPU per MiB: {:.2} ms -> {:.2} ms.\n\
         All three members, the app and the clients share this machine's cores, so more servers cannot add much \
         throughput here; what the standbys take off the leader is its CPU per MiB, left for writes.\n",
        standbys.mib_per_s / leader_only.mib_per_s,
        leader_only.leader_cpu_ms_per_mib,
        standbys.leader_cpu_ms_per_mib,
    ));
    table.push_str(&format!(
        "\nThe price on writes: a one-row commit takes {commit_applied:.2} ms with `synchronous_commit = remote_apply` \
         (each synchronous standby has applied it) vs {commit_on:.2} ms with `on` (each has it on disk): {:.2}x.\n",
        commit_applied / commit_on
    ));
    report::publish_table(
        "read-scaling",
        "Read scaling: downloads from the leader only vs the synchronous standbys (three-member Patroni cluster)",
        &table,
        &serde_json::json!({
            "configurations": figures,
            "commit_ms": { "on": commit_on, "remote_apply": commit_applied },
        }),
    )
}
