//! File throughput: uploads and downloads of 1 MiB, 64 MiB and 1 GiB, one
//! stream and 8 in parallel, against two baselines in the same run: nginx
//! serving the same bytes from disk (downloads) and `psql \copy` of the
//! same bytes, chunked the same way, into a bytea table (uploads).
//!
//! A case moves at least `MIN_CASE_BYTES`: each stream repeats its transfer
//! over one kept-alive connection (one psql session for the COPY baseline),
//! so small files measure throughput rather than one request's latency or a
//! process start.

use crate::report;
use anyhow::{Context, Result, bail};
use futures::StreamExt;
use serde::Serialize;
use spindrive_testkit::{TestDatabase, app_host, pattern, state_dir};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SIZES: [(&str, u64); 3] = [("1 MiB", 1 << 20), ("64 MiB", 64 << 20), ("1 GiB", 1 << 30)];
const PARALLEL: usize = 8;
/// The content store's chunk size, for a like-for-like COPY baseline.
const CHUNK: u64 = 1 << 20;
/// What a case transfers at least, over all its streams and repetitions.
const MIN_CASE_BYTES: u64 = 256 << 20;

#[derive(Serialize)]
struct Case {
    case: String,
    repetitions: u64,
    spindrive_mb_s: f64,
    baseline_mb_s: f64,
    ratio: f64,
}

pub fn run() -> Result<()> {
    let dir = state_dir().join("bench/files");
    std::fs::create_dir_all(&dir)?;
    for (_, size) in SIZES {
        write_pattern_file(&dir.join(format!("{size}.bin")), size)?;
    }
    let db = TestDatabase::create()?;
    let host = app_host(&db)?.arg("--pg-pool-size").arg("32").start()?;
    let nginx = Nginx::start(&dir)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let token = runtime.block_on(crate::client::sign_in(&host.url(""), "bench"))?;
    db.psql(
        "CREATE TABLE copy_chunks (storage_key integer, seq integer, data bytea); \
             ALTER TABLE copy_chunks ALTER COLUMN data SET STORAGE EXTERNAL",
    )?;

    let mut cases = Vec::new();
    for (label, size) in SIZES {
        let file = dir.join(format!("{size}.bin"));
        let copy_file = dir.join(format!("{size}.copy"));
        write_copy_file(&file, &copy_file)?;
        for streams in [1, PARALLEL] {
            let reps = MIN_CASE_BYTES.div_ceil(size * streams as u64);
            let bytes = size * streams as u64 * reps;
            let ids = runtime.block_on(upload_all(&host.url(""), &token, &file, streams, reps));
            let (ids, upload_time) = ids?;
            let copy_time = copy_all(&db, &copy_file, streams, reps)?;
            db.psql("TRUNCATE copy_chunks")?;
            cases.push(case(
                format!("upload {label} x{streams}"),
                reps,
                bytes,
                upload_time,
                copy_time,
            ));

            let urls: Vec<String> = ids
                .iter()
                .map(|id| host.url(&format!("/api/files/{id}/content")))
                .collect();
            let ours = runtime.block_on(download_all(&urls, Some(&token), size, reps))?;
            let nginx_urls = vec![nginx.url(&format!("/{size}.bin")); streams];
            let theirs = runtime.block_on(download_all(&nginx_urls, None, size, reps))?;
            cases.push(case(
                format!("download {label} x{streams}"),
                reps,
                bytes,
                ours,
                theirs,
            ));
        }
        std::fs::remove_file(&copy_file)?;
    }

    let mut table = String::from(
        "| case | repetitions per stream | spindrive MB/s | baseline MB/s | ratio |\n|---|---|---|---|---|\n",
    );
    for c in &cases {
        table.push_str(&format!(
            "| {} | {} | {:.0} | {:.0} | {:.2} |\n",
            c.case, c.repetitions, c.spindrive_mb_s, c.baseline_mb_s, c.ratio
        ));
    }
    report::publish_table(
        "files",
        "File throughput: uploads vs psql \\copy into bytea (1 MiB chunks), downloads vs nginx from disk (same run)",
        &table,
        &serde_json::to_value(&cases)?,
    )
}

fn case(name: String, repetitions: u64, bytes: u64, ours: Duration, baseline: Duration) -> Case {
    let mb_s = |t: Duration| bytes as f64 / 1e6 / t.as_secs_f64();
    Case {
        case: name,
        repetitions,
        spindrive_mb_s: mb_s(ours),
        baseline_mb_s: mb_s(baseline),
        ratio: baseline.as_secs_f64() / ours.as_secs_f64(),
    }
}

fn write_pattern_file(path: &Path, size: u64) -> Result<()> {
    if path.metadata().is_ok_and(|m| m.len() == size) {
        return Ok(());
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for offset in (0..size).step_by(CHUNK as usize) {
        out.write_all(&pattern(offset, (size - offset).min(CHUNK) as usize))?;
    }
    Ok(())
}

/// The same bytes as COPY text rows of 1 MiB hex-encoded bytea chunks.
fn write_copy_file(source: &Path, target: &Path) -> Result<()> {
    let bytes = std::fs::read(source)?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(target)?);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut line = Vec::with_capacity(2 * CHUNK as usize + 32);
    for (seq, chunk) in bytes.chunks(CHUNK as usize).enumerate() {
        line.clear();
        line.extend_from_slice(format!("1\t{seq}\t\\\\x").as_bytes());
        for byte in chunk {
            line.push(HEX[usize::from(byte >> 4)]);
            line.push(HEX[usize::from(byte & 15)]);
        }
        line.push(b'\n');
        out.write_all(&line)?;
    }
    Ok(())
}

/// `streams` concurrent psql sessions, each running `\copy` of the same
/// rows `reps` times.
fn copy_all(db: &TestDatabase, copy_file: &Path, streams: usize, reps: u64) -> Result<Duration> {
    let script = copy_file.with_extension("sql");
    let command = format!(
        "\\set ON_ERROR_STOP on\n\\copy copy_chunks FROM '{}'\n",
        copy_file.display()
    );
    std::fs::write(&script, command.repeat(reps as usize))?;
    let started = Instant::now();
    let children: Vec<Child> = (0..streams)
        .map(|_| {
            Command::new("psql")
                .args(["-X", "-q", &db.url(), "-f"])
                .arg(&script)
                .stdout(Stdio::null())
                .spawn()
        })
        .collect::<std::io::Result<_>>()?;
    for mut child in children {
        if !child.wait()?.success() {
            bail!("psql \\copy failed");
        }
    }
    let elapsed = started.elapsed();
    std::fs::remove_file(&script)?;
    Ok(elapsed)
}

/// Uploads `file` `reps` times on each of `streams` concurrent
/// connections; returns each stream's last file id.
async fn upload_all(
    base: &str,
    token: &str,
    file: &Path,
    streams: usize,
    reps: u64,
) -> Result<(Vec<String>, Duration)> {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let uploads = (0..streams).map(|i| {
        let client = client.clone();
        let path: PathBuf = file.to_path_buf();
        async move {
            let mut id = String::new();
            for _ in 0..reps {
                let body = tokio::fs::File::open(&path).await?;
                let stream = tokio_util::io::ReaderStream::with_capacity(body, 256 << 10);
                let created: serde_json::Value = client
                    .post(format!("{base}/api/files?name=bench-{i}.bin"))
                    .bearer_auth(token)
                    .body(reqwest::Body::wrap_stream(stream))
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                id = created["id"].as_str().context("an id")?.to_owned();
            }
            anyhow::Ok(id)
        }
    });
    let ids = futures::future::try_join_all(uploads).await?;
    Ok((ids, started.elapsed()))
}

/// Downloads every URL `reps` times, the URLs concurrently, checking each
/// delivery has `size` bytes.
async fn download_all(urls: &[String], token: Option<&str>, size: u64, reps: u64) -> Result<Duration> {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let downloads = urls.iter().map(|url| {
        let client = &client;
        async move {
            for _ in 0..reps {
                let mut request = client.get(url);
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                let mut body = request.send().await?.error_for_status()?.bytes_stream();
                let mut received = 0u64;
                while let Some(chunk) = body.next().await {
                    received += chunk?.len() as u64;
                }
                anyhow::ensure!(received == size, "{url}: {received} of {size} bytes");
            }
            anyhow::Ok(())
        }
    });
    futures::future::try_join_all(downloads).await?;
    Ok(started.elapsed())
}

/// nginx from Debian serving `root`, stopped on drop.
struct Nginx {
    child: Child,
    port: u16,
}

impl Nginx {
    fn start(root: &Path) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let prefix = state_dir().join("bench/nginx");
        std::fs::create_dir_all(prefix.join("logs"))?;
        let conf = prefix.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "daemon off;\nworker_processes 2;\npid {pid};\nerror_log {prefix}/logs/error.log;\n\
                 events {{ worker_connections 1024; }}\n\
                 http {{ access_log off; sendfile on; tcp_nopush on;\n\
                   server {{ listen 127.0.0.1:{port}; root {root}; }} }}\n",
                pid = prefix.join("nginx.pid").display(),
                prefix = prefix.display(),
                root = root.display(),
            ),
        )?;
        let child = Command::new("nginx")
            .args([
                "-p",
                &prefix.display().to_string(),
                "-c",
                &conf.display().to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start nginx (make bench installs it)")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "nginx did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Nginx { child, port })
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers (SIGKILL would orphan them).
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}
