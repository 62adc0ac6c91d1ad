//! The soak's clients: each a user of its own mixing what users do
//! (logins, uploads of 1 KiB to 64 MiB, ranged and whole downloads,
//! listings, renames, shares, transformations, notification reads,
//! deletes), recording every request, and keeping a ledger of what the API
//! acknowledged so that the end can check nothing acknowledged was lost.

use anyhow::{Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};
use spindrive_testkit::hex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest upload, and the smallest.
const MAX_UPLOAD: u64 = 64 << 20;
const MIN_UPLOAD: u64 = 1 << 10;
/// What one client keeps stored at most: it deletes its oldest files to
/// make room, as a user near a budget would.
const CLIENT_BUDGET: u64 = 128 << 20;
/// Largest ranged read.
const MAX_RANGE: u64 = 1 << 20;
/// Whole downloads check files up to this size during the load (all of
/// them are checked at the end).
const MAX_WHOLE_DOWNLOAD: u64 = 8 << 20;
/// Longest pause between a client's requests, in milliseconds.
const THINK_MS: u64 = 1000;
/// Pieces an upload body is generated in.
const PIECE: u64 = 256 << 10;

/// What a request was, for figures per route.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    Login,
    Logout,
    Upload,
    RangedDownload,
    WholeDownload,
    List,
    Metadata,
    Rename,
    Share,
    Transform,
    JobStatus,
    Notifications,
    Delete,
    /// The recovery probe's upload and download.
    Probe,
}

impl Route {
    pub fn name(self) -> &'static str {
        match self {
            Route::Login => "POST /api/auth/login",
            Route::Logout => "POST /api/auth/logout",
            Route::Upload => "POST /api/files",
            Route::RangedDownload => "GET content (Range)",
            Route::WholeDownload => "GET content",
            Route::List => "GET /api/files",
            Route::Metadata => "GET /api/files/:id",
            Route::Rename => "PATCH /api/files/:id",
            Route::Share => "POST permissions",
            Route::Transform => "POST transformations",
            Route::JobStatus => "GET /api/transformations/:id",
            Route::Notifications => "GET /api/notifications",
            Route::Delete => "DELETE /api/files/:id",
            Route::Probe => "probe (upload + download)",
        }
    }
}

/// One request: when it started and finished (since the soak began), and
/// its status (0: no response, or the body was cut).
#[derive(Clone, Copy)]
pub struct Record {
    pub started: Duration,
    pub finished: Duration,
    pub route: Route,
    pub status: u16,
}

impl Record {
    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Every request of the soak, in the order they finished.
pub struct Recorder {
    pub epoch: Instant,
    records: Mutex<Vec<Record>>,
    /// Answers that contradict what was acknowledged (other bytes, a
    /// 404 for a file we hold): each is a lost or corrupted write.
    pub contradictions: Mutex<Vec<String>>,
}

impl Recorder {
    pub fn new() -> Self {
        Recorder {
            epoch: Instant::now(),
            records: Mutex::default(),
            contradictions: Mutex::default(),
        }
    }

    pub fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    fn record(&self, route: Route, started: Instant, status: u16) {
        // Taken under the lock, so the records stay in finishing order.
        let mut records = self.records.lock().unwrap();
        records.push(Record {
            started: started - self.epoch,
            finished: self.now(),
            route,
            status,
        });
    }

    fn contradiction(&self, what: String) {
        eprintln!("soak: {what}");
        self.contradictions.lock().unwrap().push(what);
    }

    /// The requests that finished in `[from, to)`.
    pub fn between(&self, from: Duration, to: Duration) -> Vec<Record> {
        let records = self.records.lock().unwrap();
        let start = records.partition_point(|r| r.finished < from);
        records[start..]
            .iter()
            .take_while(|r| r.finished < to)
            .copied()
            .collect()
    }

    pub fn all(&self) -> Vec<Record> {
        self.records.lock().unwrap().clone()
    }
}

/// What the clients share.
pub struct Load {
    pub base: String,
    pub recorder: Arc<Recorder>,
    pub stop: AtomicBool,
    pub clients: usize,
    /// Where notifications of webhook users go (the soak's receiver).
    pub webhook_url: String,
    /// Uploads acknowledged, for the progress line.
    pub uploads: AtomicUsize,
}

/// A file a client was told is stored.
#[derive(Clone, Debug)]
pub struct Held {
    pub id: String,
    pub salt: u64,
    pub size: u64,
    /// The acknowledged name, then names of renames whose answer never
    /// came (any of them may be the file's name now).
    pub names: Vec<String>,
}

/// What a client was told, checked at the end.
#[derive(Default)]
pub struct Ledger {
    pub token: String,
    pub held: Vec<Held>,
    /// Deletes the API acknowledged: these must be gone.
    pub deleted: Vec<String>,
    /// Deletes without an answer: either gone or whole.
    pub maybe_deleted: Vec<Held>,
}

/// Byte `i` of the content with `salt`: random-looking, distinct per salt,
/// and computable at any offset (so a ranged read is checked cheaply).
pub fn content(salt: u64, offset: u64, len: usize) -> Vec<u8> {
    let first_word = offset / 8;
    let words = (offset % 8 + len as u64).div_ceil(8);
    let key = splitmix64(salt);
    let mut bytes = Vec::with_capacity(words as usize * 8);
    for word in first_word..first_word + words {
        bytes.extend_from_slice(&splitmix64(key ^ word).to_le_bytes());
    }
    let skip = (offset % 8) as usize;
    bytes.drain(..skip);
    bytes.truncate(len);
    bytes
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The SHA-256 (hex) of the content with `salt` and `size`.
pub fn content_sha256(salt: u64, size: u64) -> String {
    let mut hasher = Sha256::new();
    for offset in (0..size).step_by(PIECE as usize) {
        hasher.update(content(salt, offset, PIECE.min(size - offset) as usize));
    }
    hex(&hasher.finalize())
}

/// The content as a body streamed piece by piece.
fn content_body(salt: u64, size: u64) -> reqwest::Body {
    let pieces = (0..size)
        .step_by(PIECE as usize)
        .map(move |offset| Ok::<_, std::io::Error>(content(salt, offset, PIECE.min(size - offset) as usize)));
    reqwest::Body::wrap_stream(futures::stream::iter(pieces))
}

/// Whether `body` is the file's whole content (hashed off the clients'
/// threads).
async fn whole(file: &Held, body: bytes::Bytes) -> bool {
    let (salt, size) = (file.salt, file.size);
    tokio::task::spawn_blocking(move || hex(&Sha256::digest(&body)) == content_sha256(salt, size))
        .await
        .unwrap_or(false)
}

/// A small xorshift generator: each client's choices, reproducible.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Log-uniform between the two, so small files are common and large
    /// ones regular.
    fn size(&mut self, min: u64, max: u64) -> u64 {
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        let (low, high) = ((min as f64).log2(), (max as f64).log2());
        2f64.powf(low + unit * (high - low)) as u64
    }
}

/// The user name of client `n`.
pub fn username(n: usize) -> String {
    format!("soak-{n}")
}

/// A client: its user, the address it comes from (each client is another
/// user behind the ingress), its dice and what it was told.
pub struct Client {
    load: Arc<Load>,
    n: usize,
    http: reqwest::Client,
    dice: Dice,
    sequence: u64,
    image: String,
    /// The last transformation asked for, while unfinished.
    job: Option<String>,
    ledger: Ledger,
}

impl Client {
    /// Registers the client's user (with a webhook for every eighth),
    /// logs in and uploads the image its transformations read.
    pub async fn sign_up(load: Arc<Load>, n: usize, image: &[u8]) -> Result<Self> {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            format!("10.77.{}.{}", n / 250, n % 250 + 1).parse()?,
        );
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(Duration::from_secs(120))
            .build()?;
        let token = crate::client::sign_in_with(&http, &load.base, &username(n)).await?;
        let file: serde_json::Value = http
            .post(format!("{}/api/files?name=photo-{n}.jpg", load.base))
            .bearer_auth(&token)
            .header("content-type", "image/jpeg")
            .body(image.to_vec())
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        if n.is_multiple_of(8) {
            http.put(format!("{}/api/notifications/webhook", load.base))
                .bearer_auth(&token)
                .json(&serde_json::json!({ "url": format!("{}/{n}", load.webhook_url) }))
                .send()
                .await?
                .error_for_status()?;
            http.patch(format!("{}/api/notifications/preferences", load.base))
                .bearer_auth(&token)
                .json(&serde_json::json!({ "webhook_enabled": true }))
                .send()
                .await?
                .error_for_status()?;
        }
        Ok(Client {
            image: file["id"].as_str().context("an id")?.to_owned(),
            load,
            n,
            http,
            dice: Dice(0x5EED_0000 + n as u64 * 7919),
            sequence: 0,
            job: None,
            ledger: Ledger {
                token,
                ..Ledger::default()
            },
        })
    }

    /// Mixes requests until told to stop; what it was told.
    pub async fn run(mut self) -> Ledger {
        while !self.load.stop.load(Ordering::Relaxed) {
            // Reads first, as in any file store; an upload in twenty.
            match self.dice.below(100) {
                0..5 => self.upload().await,
                5..38 => self.ranged_download().await,
                38..46 => self.whole_download().await,
                46..56 => self.list().await,
                56..62 => self.metadata().await,
                62..69 => self.rename().await,
                69..74 => self.share().await,
                74..79 => self.transform().await,
                79..84 => self.job_status().await,
                84..94 => self.notifications().await,
                94..98 => self.login().await,
                _ => self.delete_oldest().await,
            };
            // A user's think time between requests (0 to 1 s): 32 users,
            // not 32 loops at full speed: content churn beyond what
            // autovacuum cleans fills the content volume for good (README,
            // "Under fire").
            tokio::time::sleep(Duration::from_millis(self.dice.below(THINK_MS))).await;
        }
        self.into_ledger()
    }

    /// The recovery probe: a 1 KiB upload, then its download, each
    /// recorded as a probe (so both count when telling whether the API
    /// works again).
    pub async fn probe(&mut self) {
        self.sequence += 1;
        let salt = self.dice.next();
        let name = format!("probe-{}.bin", self.sequence);
        let request = self
            .http
            .post(self.url(&format!("/api/files?name={name}")))
            .body(content(salt, 0, 1024));
        let (status, body) = self.exchange(Route::Probe, request).await;
        let file: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let (201, Some(id)) = (status, file["id"].as_str()) else {
            return;
        };
        let held = Held {
            id: id.to_owned(),
            salt,
            size: 1024,
            names: vec![name],
        };
        let request = self.http.get(self.url(&format!("/api/files/{id}/content")));
        let (status, body) = self.exchange(Route::Probe, request).await;
        self.check(
            &held,
            status,
            status != 200 || body == content(salt, 0, 1024),
            "the content",
        );
        self.ledger.held.push(held);
    }

    /// Asks for a thumbnail of the client's image until one is accepted,
    /// then follows the job; how long until it was done.
    pub async fn transform_and_wait(&mut self, limit: Duration) -> Result<Duration> {
        let started = Instant::now();
        let job = loop {
            let request = self
                .http
                .post(self.url(&format!("/api/files/{}/transformations", self.image)))
                .json(&serde_json::json!({ "type": "thumbnail", "params": { "size": 64 } }));
            let (status, body) = self.exchange(Route::Transform, request).await;
            let job: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            if let (202, Some(id)) = (status, job["id"].as_str()) {
                break id.to_owned();
            }
            anyhow::ensure!(started.elapsed() < limit, "no transformation accepted: {status}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        loop {
            let request = self.http.get(self.url(&format!("/api/transformations/{job}")));
            let (_, body) = self.exchange(Route::JobStatus, request).await;
            let state: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            match state["status"].as_str() {
                Some("complete") => return Ok(started.elapsed()),
                Some("failed") => anyhow::bail!("the transformation failed: {}", state["error"]),
                _ => anyhow::ensure!(
                    started.elapsed() < limit,
                    "the transformation was not done within {limit:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What the client was told.
    pub fn into_ledger(self) -> Ledger {
        self.ledger
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.load.base)
    }

    /// Sends the request, reads the whole answer and records it; the
    /// status (0 when no complete answer came) and the body.
    async fn exchange(&self, route: Route, request: reqwest::RequestBuilder) -> (u16, bytes::Bytes) {
        let started = Instant::now();
        let answer = match request.bearer_auth(&self.ledger.token).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                response
                    .bytes()
                    .await
                    .map(|body| (status, body))
                    .unwrap_or_default()
            }
            Err(_) => (0, bytes::Bytes::new()),
        };
        self.load.recorder.record(route, started, answer.0);
        answer
    }

    fn pick(&mut self) -> Option<Held> {
        let n = self.ledger.held.len() as u64;
        (n > 0).then(|| self.ledger.held[self.dice.below(n) as usize].clone())
    }

    async fn upload(&mut self) -> u16 {
        let size = self.dice.size(MIN_UPLOAD, MAX_UPLOAD);
        while self.ledger.held.iter().map(|h| h.size).sum::<u64>() + size > CLIENT_BUDGET {
            if self.delete_oldest().await != 204 {
                return 0;
            }
        }
        self.sequence += 1;
        let salt = self.dice.next();
        let name = format!("soak-{}-{}.bin", self.n, self.sequence);
        let expected = tokio::task::spawn_blocking(move || content_sha256(salt, size))
            .await
            .expect("hashing");
        let request = self
            .http
            .post(self.url(&format!("/api/files?name={name}")))
            .body(content_body(salt, size));
        let (status, body) = self.exchange(Route::Upload, request).await;
        if status == 201 {
            let file: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            if file["sha256"] != expected.as_str() {
                self.load
                    .recorder
                    .contradiction(format!("upload {name}: the server stored other bytes: {file}"));
            }
            if let Some(id) = file["id"].as_str() {
                self.load.uploads.fetch_add(1, Ordering::Relaxed);
                self.ledger.held.push(Held {
                    id: id.to_owned(),
                    salt,
                    size,
                    names: vec![name],
                });
            }
        }
        status
    }

    async fn ranged_download(&mut self) -> u16 {
        let Some(file) = self.pick() else {
            return self.list().await;
        };
        let start = self.dice.below(file.size);
        let len = 1 + self.dice.below(MAX_RANGE.min(file.size - start));
        let request = self
            .http
            .get(self.url(&format!("/api/files/{}/content", file.id)))
            .header("range", format!("bytes={start}-{}", start + len - 1));
        let (status, body) = self.exchange(Route::RangedDownload, request).await;
        let right = match status {
            206 => body == content(file.salt, start, len as usize),
            // The whole file instead of the range: still its own bytes.
            200 => whole(&file, body).await,
            _ => true,
        };
        self.check(&file, status, right, "a range");
        status
    }

    async fn whole_download(&mut self) -> u16 {
        let Some(file) = self.pick().filter(|f| f.size <= MAX_WHOLE_DOWNLOAD) else {
            return self.list().await;
        };
        let request = self
            .http
            .get(self.url(&format!("/api/files/{}/content", file.id)));
        let (status, body) = self.exchange(Route::WholeDownload, request).await;
        let right = status != 200 || whole(&file, body).await;
        self.check(&file, status, right, "the content");
        status
    }

    /// A 404 for a held file, or other bytes than it holds, contradicts
    /// what the API acknowledged.
    fn check(&self, file: &Held, status: u16, bytes_match: bool, what: &str) {
        if status == 404 {
            self.load.recorder.contradiction(format!(
                "{}: {what}: 404 for a file the API acknowledged",
                file.id
            ));
        } else if !bytes_match {
            self.load
                .recorder
                .contradiction(format!("{}: {what} came back with other bytes", file.id));
        }
    }

    async fn list(&mut self) -> u16 {
        let scope = ["owned", "shared", "all"][self.dice.below(3) as usize];
        let request = self
            .http
            .get(self.url(&format!("/api/files?scope={scope}&limit=50")));
        self.exchange(Route::List, request).await.0
    }

    async fn metadata(&mut self) -> u16 {
        let Some(file) = self.pick() else {
            return self.list().await;
        };
        let request = self.http.get(self.url(&format!("/api/files/{}", file.id)));
        let (status, _) = self.exchange(Route::Metadata, request).await;
        self.check(&file, status, true, "metadata");
        status
    }

    async fn rename(&mut self) -> u16 {
        let Some(file) = self.pick() else {
            return self.list().await;
        };
        self.sequence += 1;
        let name = format!("renamed-{}-{}.bin", self.n, self.sequence);
        let request = self
            .http
            .patch(self.url(&format!("/api/files/{}", file.id)))
            .json(&serde_json::json!({ "file_name": name }));
        let (status, _) = self.exchange(Route::Rename, request).await;
        self.check(&file, status, true, "a rename");
        if let Some(held) = self.ledger.held.iter_mut().find(|h| h.id == file.id) {
            if status == 200 {
                held.names = vec![name];
            } else if !(400..500).contains(&status) {
                held.names.push(name);
            }
        }
        status
    }

    async fn share(&mut self) -> u16 {
        let Some(file) = self.pick() else {
            return self.list().await;
        };
        let other = (self.n + 1 + self.dice.below(self.load.clients as u64 - 1) as usize) % self.load.clients;
        let permission = ["read", "write", "delete"][self.dice.below(3) as usize];
        let request = self
            .http
            .post(self.url(&format!("/api/files/{}/permissions", file.id)))
            .json(&serde_json::json!({ "username": username(other), "permission": permission }));
        let (status, _) = self.exchange(Route::Share, request).await;
        self.check(&file, status, true, "a share");
        status
    }

    /// Asks for a transformation of the client's image, unless its last
    /// one is still unfinished: then it looks at that one instead (a user
    /// waits for a result before asking for another).
    async fn transform(&mut self) -> u16 {
        if self.job.is_some() {
            return self.job_status().await;
        }
        let kind = match self.dice.below(3) {
            0 => serde_json::json!({ "type": "thumbnail", "params": { "size": 128 } }),
            1 => serde_json::json!({ "type": "resize", "params": { "width": 320, "fit": "contain" } }),
            _ => serde_json::json!({ "type": "convert", "params": { "format": "png" } }),
        };
        let request = self
            .http
            .post(self.url(&format!("/api/files/{}/transformations", self.image)))
            .json(&kind);
        let (status, body) = self.exchange(Route::Transform, request).await;
        let job: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        self.job = job["id"].as_str().map(str::to_owned);
        status
    }

    /// Follows the unfinished job; once done, its result is deleted (the
    /// user took it), so results do not pile up on the content volume.
    async fn job_status(&mut self) -> u16 {
        let Some(job) = self.job.clone() else {
            return self.notifications().await;
        };
        let request = self.http.get(self.url(&format!("/api/transformations/{job}")));
        let (status, body) = self.exchange(Route::JobStatus, request).await;
        let state: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        match state["status"].as_str() {
            Some("complete") => {
                self.job = None;
                if let Some(result) = state["result_file_id"].as_str() {
                    let request = self.http.delete(self.url(&format!("/api/files/{result}")));
                    self.exchange(Route::Delete, request).await;
                }
            }
            Some("failed") => self.job = None,
            _ => {}
        }
        status
    }

    async fn notifications(&mut self) -> u16 {
        let request = self.http.get(self.url("/api/notifications?status=unread"));
        self.exchange(Route::Notifications, request).await.0
    }

    /// A new session, then the old one logged out.
    async fn login(&mut self) -> u16 {
        let name = username(self.n);
        let request = self
            .http
            .post(self.url("/api/auth/login"))
            .json(&serde_json::json!({ "login": name, "password": crate::client::password(&name) }));
        let (status, body) = self.exchange(Route::Login, request).await;
        let session: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if let Some(token) = session["token"].as_str() {
            let old = std::mem::replace(&mut self.ledger.token, token.to_owned());
            let logout = self.http.post(self.url("/api/auth/logout")).bearer_auth(old);
            let started = Instant::now();
            let status = logout.send().await.map_or(0, |r| r.status().as_u16());
            self.load.recorder.record(Route::Logout, started, status);
        }
        status
    }

    async fn delete_oldest(&mut self) -> u16 {
        if self.ledger.held.is_empty() {
            return self.list().await;
        }
        let file = self.ledger.held.remove(0);
        let request = self.http.delete(self.url(&format!("/api/files/{}", file.id)));
        let (status, _) = self.exchange(Route::Delete, request).await;
        match status {
            204 => self.ledger.deleted.push(file.id),
            404 => self.check(&file, status, true, "a delete"),
            // Refused: still held.
            400..500 => self.ledger.held.insert(0, file),
            // No answer, or a failure that may have come after the commit.
            _ => self.ledger.maybe_deleted.push(file),
        }
        status
    }
}
