//! Reads served by the synchronous standbys, checked in the failover
//! cluster: downloads that keep going while the leader is killed, the
//! standbys' own sessions, read-your-writes after every upload, and no
//! request authorized by a standby whose replay is held back.

use anyhow::{Context, Result, bail, ensure};
use serde::Serialize;
use sha2::{Digest, Sha256};
use spindrive_testkit::{hex, psql};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Files the download load reads: three chunks each, so one download
/// takes several statements on several pooled connections.
const EXISTING_FILES: u64 = 4;
const EXISTING_BYTES: usize = 3 << 20;

/// A file whose bytes the test knows.
#[derive(Clone)]
pub struct KnownFile {
    pub id: String,
    pub sha256: String,
}

/// Every download of the load: when it finished, and why it failed.
#[derive(Default)]
pub struct DownloadJournal {
    pub events: Vec<(Instant, Result<(), String>)>,
}

/// Uploads `body` as `name`; the file's id once acknowledged.
pub async fn upload(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    name: &str,
    body: Vec<u8>,
) -> Result<String> {
    let response = client
        .post(format!("{base}/api/files?name={name}"))
        .bearer_auth(token)
        .body(body)
        .send()
        .await?;
    ensure!(
        response.status() == reqwest::StatusCode::CREATED,
        "upload: {}",
        response.status()
    );
    let file: serde_json::Value = response.json().await?;
    Ok(file["id"].as_str().context("an id")?.to_owned())
}

/// A successful `GET`'s JSON.
async fn get_json(client: &reqwest::Client, url: &str, token: &str) -> Result<serde_json::Value> {
    Ok(client
        .get(url)
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// The status a `GET` answers.
async fn status_of(client: &reqwest::Client, url: &str, token: &str) -> Result<reqwest::StatusCode> {
    Ok(client.get(url).bearer_auth(token).send().await?.status())
}

/// The files the download load reads, uploaded once.
pub async fn existing_files(base: &str, token: &str) -> Result<Vec<KnownFile>> {
    let client = reqwest::Client::new();
    let mut files = Vec::new();
    for n in 0..EXISTING_FILES {
        let mut body = vec![0u8; EXISTING_BYTES];
        crate::failover::fill_pseudo_random(&mut body, 1000, n);
        let sha256 = hex(&Sha256::digest(&body));
        let id = upload(&client, base, token, &format!("existing-{n}.bin"), body).await?;
        files.push(KnownFile { id, sha256 });
    }
    Ok(files)
}

/// `GET` the file's content; an error unless it is whole and its own.
async fn download_checked(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    file: &KnownFile,
) -> Result<(), String> {
    let response = client
        .get(format!("{base}/api/files/{}/content", file.id))
        .bearer_auth(token)
        .send()
        .await
        .map_err(|error| format!("request: {error}"))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|error| format!("{status}, body: {error}"))?;
    if status != reqwest::StatusCode::OK {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&body)));
    }
    if hex(&Sha256::digest(&body)) != file.sha256 {
        return Err(format!("other bytes ({} of them)", body.len()));
    }
    Ok(())
}

/// One download worker: the known files in turn, until told to stop.
pub async fn download_load(
    base: String,
    token: String,
    files: Vec<KnownFile>,
    journal: Arc<Mutex<DownloadJournal>>,
    stop: Arc<AtomicBool>,
    worker: usize,
) -> Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    for file in files.iter().cycle().skip(worker) {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let outcome = download_checked(&client, &base, &token, file).await;
        if let Err(reason) = &outcome {
            eprintln!("download of {} failed: {reason}", file.id);
        }
        journal.lock().unwrap().events.push((Instant::now(), outcome));
    }
    Ok(())
}

/// The cluster's clock, to ask the standbys what they did since.
pub fn database_now(admin_password: &str) -> Result<String> {
    psql(
        &format!(
            "postgres://postgres:{admin_password}@127.0.0.1:{}/postgres",
            crate::failover::WRITE_PORT
        ),
        "SELECT now()::text",
    )
}

/// spindrive's sessions on each standby that ran a statement since
/// `since` (`database_now`), as the standby's own `pg_stat_activity`
/// shows them (`member2: 5, member3: 4`), and their sum.
pub fn standby_sessions(admin_password: &str, leader: u16, since: &str) -> Result<(String, usize)> {
    let mut shown = Vec::new();
    let mut total = 0;
    for member in crate::failover::MEMBERS.into_iter().filter(|m| *m != leader) {
        let url = format!("postgres://postgres:{admin_password}@127.0.0.1:5544{member}/postgres");
        let count: usize = psql(
            &url,
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = 'spindrive' \
                 AND backend_type = 'client backend' AND state_change >= '{since}'::timestamptz"
            ),
        )?
        .trim()
        .parse()?;
        total += count;
        shown.push(format!("member{member}: {count}"));
    }
    Ok((shown.join(", "), total))
}

/// Fails unless the standbys ran spindrive's statements since `since`:
/// a check of freshness proves nothing if the leader served every read.
pub fn ensure_standbys_served(admin_password: &str, leader: u16, since: &str, what: &str) -> Result<()> {
    let (shown, total) = standby_sessions(admin_password, leader, since)?;
    ensure!(total > 0, "{what}: no standby served a read ({shown})");
    Ok(())
}

/// Gives `username` read access to `file`.
pub async fn share(
    client: &reqwest::Client,
    base: &str,
    owner_token: &str,
    file: &str,
    username: &str,
) -> Result<()> {
    client
        .post(format!("{base}/api/files/{file}/permissions"))
        .bearer_auth(owner_token)
        .json(&serde_json::json!({ "username": username, "permission": "read" }))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

#[derive(Serialize)]
pub struct ReadYourWrites {
    pub rounds: usize,
    pub failed: usize,
    pub seconds: f64,
}

/// `rounds` times, over `WORKERS` clients: upload a file, download it at
/// once (its SHA-256 checked), then find it in a listing searched by its
/// name. Every step must succeed: a standby that had not applied the
/// upload would answer 404 or leave it out.
pub async fn read_your_writes(base: &str, token: &str, rounds: usize) -> Result<ReadYourWrites> {
    const WORKERS: usize = 4;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..WORKERS {
        let (base, token) = (base.to_owned(), token.to_owned());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut failed = 0;
            for round in (worker..rounds).step_by(WORKERS) {
                let mut body = vec![0u8; 4096];
                crate::failover::fill_pseudo_random(&mut body, 2000 + worker as u64, round as u64);
                let name = format!("ryw-{round}.bin");
                let outcome = async {
                    let id = upload(&client, &base, &token, &name, body.clone()).await?;
                    let file = KnownFile {
                        id: id.clone(),
                        sha256: hex(&Sha256::digest(&body)),
                    };
                    download_checked(&client, &base, &token, &file)
                        .await
                        .map_err(anyhow::Error::msg)?;
                    let listing =
                        get_json(&client, &format!("{base}/api/files?q={name}&scope=owned"), &token).await?;
                    let listed = listing["files"]
                        .as_array()
                        .is_some_and(|files| files.iter().any(|f| f["id"] == id.as_str()));
                    ensure!(listed, "{name} is not listed right after its upload");
                    anyhow::Ok(())
                }
                .await;
                if let Err(error) = outcome {
                    eprintln!("read-your-writes round {round}: {error:#}");
                    failed += 1;
                }
            }
            failed
        }));
    }
    let mut failed = 0;
    for task in tasks {
        failed += task.await?;
    }
    Ok(ReadYourWrites {
        rounds,
        failed,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[derive(Serialize)]
pub struct HeldBackReplay {
    pub delay: String,
    pub revoke_ms: u64,
    pub logout_ms: u64,
    pub requests_after: usize,
    pub authorized_after: usize,
}

/// With every standby's replay held back by `DELAY`, a grantee reads a
/// shared file, the owner revokes the grant, then the grantee logs out:
/// once each call has returned, no request of the grantee's may succeed
/// (a standby serving the read without having applied the change would
/// let it). Each call returns only after the standbys applied it.
pub async fn held_back_replay(
    base: &str,
    owner_token: &str,
    leader: u16,
    admin_password: &str,
) -> Result<HeldBackReplay> {
    const DELAY: &str = "2s";
    const TRIES: usize = 20;
    let client = reqwest::Client::new();
    let grantee_token = crate::client::sign_in(base, "grantee").await?;
    let id = upload(&client, base, owner_token, "shared.bin", b"shared bytes".to_vec()).await?;
    let file = KnownFile {
        id: id.clone(),
        sha256: hex(&Sha256::digest(b"shared bytes")),
    };
    share(&client, base, owner_token, &id, "grantee").await?;
    let grantee = get_json(&client, &format!("{base}/api/auth/me"), &grantee_token).await?;
    let grantee_id = grantee["id"].as_i64().context("the grantee's id")?;
    download_checked(&client, base, &grantee_token, &file)
        .await
        .map_err(anyhow::Error::msg)?;

    let standbys: Vec<u16> = crate::failover::MEMBERS
        .into_iter()
        .filter(|m| *m != leader)
        .collect();
    for member in &standbys {
        crate::failover::Cluster::script(&["apply-delay", &member.to_string(), DELAY])?;
    }
    let outcome = async {
        let mut authorized = 0;
        let mut requests = 0;
        let started = Instant::now();
        client
            .delete(format!("{base}/api/files/{id}/permissions/{grantee_id}"))
            .bearer_auth(owner_token)
            .send()
            .await?
            .error_for_status()?;
        let revoke = started.elapsed();
        let revoked_at = database_now(admin_password)?;
        for _ in 0..TRIES {
            for path in [format!("/api/files/{id}/content"), format!("/api/files/{id}")] {
                let status = status_of(&client, &format!("{base}{path}"), &grantee_token).await?;
                requests += 1;
                if status != reqwest::StatusCode::NOT_FOUND {
                    eprintln!("after the revoke, GET {path} answered {status}");
                    authorized += 1;
                }
            }
        }
        ensure_standbys_served(admin_password, leader, &revoked_at, "after the revoke")?;
        let started = Instant::now();
        client
            .post(format!("{base}/api/auth/logout"))
            .bearer_auth(&grantee_token)
            .send()
            .await?
            .error_for_status()?;
        let logout = started.elapsed();
        let logged_out_at = database_now(admin_password)?;
        for _ in 0..TRIES {
            let status =
                status_of(&client, &format!("{base}/api/files?scope=shared"), &grantee_token).await?;
            requests += 1;
            if status != reqwest::StatusCode::UNAUTHORIZED {
                eprintln!("after the logout, a listing answered {status}");
                authorized += 1;
            }
        }
        ensure_standbys_served(admin_password, leader, &logged_out_at, "after the logout")?;
        anyhow::Ok(HeldBackReplay {
            delay: DELAY.to_owned(),
            revoke_ms: revoke.as_millis() as u64,
            logout_ms: logout.as_millis() as u64,
            requests_after: requests,
            authorized_after: authorized,
        })
    }
    .await;
    for member in &standbys {
        crate::failover::Cluster::script(&["apply-delay", &member.to_string(), "0"])?;
    }
    let figures = outcome?;
    if figures.authorized_after == 0 && figures.revoke_ms < 2000 {
        bail!(
            "the revoke returned after {} ms: the standbys' replay was not held back, so this proves nothing",
            figures.revoke_ms
        );
    }
    Ok(figures)
}
