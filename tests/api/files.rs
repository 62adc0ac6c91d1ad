//! Files: upload, list, metadata, rename, replace, delete — bytes never
//! lost, mixed or leaked, for any size.

use crate::helpers::{TestApp, assert_error, spawn_app, spawn_app_with};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use spindrive_testkit::{RssSampler, hex, pattern, pattern_chunks, pattern_sha256};
use std::time::Duration;

const CHUNK: usize = 1 << 20;

pub(crate) fn encode(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl TestApp {
    pub async fn upload(
        &self,
        token: &str,
        name: &str,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        self.upload_typed(token, name, "application/x-test", body).await
    }

    pub async fn upload_typed(
        &self,
        token: &str,
        name: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        let response = reqwest::Client::new()
            .post(self.host.url(&format!("/api/files?name={}", encode(name))))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("upload sent");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn download(&self, token: &str, id: &str) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
        let response = self
            .request(
                Method::GET,
                &format!("/api/files/{id}/content"),
                Some(token),
                None,
            )
            .await;
        let status = response.status();
        let headers = response.headers().clone();
        (
            status,
            headers,
            response.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
        )
    }

    pub fn count(&self, table: &str) -> i64 {
        self.sql(&format!("SELECT count(*) FROM {table}"))
            .parse()
            .unwrap()
    }
}

fn pattern_stream(size: u64) -> reqwest::Body {
    reqwest::Body::wrap_stream(pattern_chunks(size))
}

#[tokio::test]
async fn small_and_chunk_edge_sizes_round_trip_byte_for_byte() {
    let app = spawn_app();
    let user = app.user("ada").await;
    for size in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17] {
        let bytes = pattern(7, size);
        let (status, file) = app
            .upload(&user.token, &format!("f{size}.bin"), bytes.clone())
            .await;
        assert_eq!(status, StatusCode::CREATED, "{size}: {file}");
        assert_eq!(file["size"], size as i64);
        assert_eq!(file["sha256"], hex(&Sha256::digest(&bytes)));
        assert_eq!(file["content_type"], "application/x-test");
        assert_eq!(file["my_permission"], "delete");
        assert_eq!(file["is_shared"], false);
        let (status, headers, body) = app.download(&user.token, file["id"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{size}");
        assert_eq!(body, bytes, "{size} bytes come back identical");
        assert_eq!(headers["content-length"], size.to_string());
        assert_eq!(
            headers["etag"],
            format!("\"{}\"", file["sha256"].as_str().unwrap())
        );
        // Not on the allow-list of inert types: served as opaque bytes.
        assert_eq!(headers["content-type"], "application/octet-stream");
        assert_eq!(headers["accept-ranges"], "bytes");
    }
    let chunks: i64 = app.count("file_chunks");
    assert_eq!(chunks, 1 + 1 + 1 + 2 + 4, "content is chunked at 1 MiB");
    assert_eq!(app.count("uploads"), 0, "nothing stays staged");
    assert_eq!(
        app.sql("SELECT count(*) FROM permissions WHERE is_owner AND permission = 'delete'"),
        "6",
        "every upload gets its owner's grant"
    );
}

#[tokio::test]
async fn a_gibibyte_streams_both_ways_with_bounded_host_memory() {
    const SIZE: u64 = 1 << 30;
    let app = spawn_app();
    let user = app.user("big").await;
    app.upload(&user.token, "warmup", vec![1u8; 3 * CHUNK]).await;
    let baseline = app.host.rss_kib().unwrap();

    let sampler = RssSampler::start(app.host.pid());
    let started = std::time::Instant::now();
    let (status, file) = app.upload(&user.token, "one-gib.bin", pattern_stream(SIZE)).await;
    let upload_time = started.elapsed();
    let upload_peak = sampler.finish();
    assert_eq!(status, StatusCode::CREATED, "{file}");
    assert_eq!(
        file["sha256"],
        pattern_sha256(SIZE),
        "the stored hash is the sent bytes' hash"
    );

    let sampler = RssSampler::start(app.host.pid());
    let started = std::time::Instant::now();
    let response = app
        .request(
            Method::GET,
            &format!("/api/files/{}/content", file["id"].as_str().unwrap()),
            Some(&user.token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        received += chunk.len() as u64;
        hasher.update(&chunk);
    }
    let download_time = started.elapsed();
    let download_peak = sampler.finish();
    assert_eq!(received, SIZE);
    assert_eq!(
        hex(&hasher.finalize()),
        pattern_sha256(SIZE),
        "SHA-256 equal on both ends"
    );

    let growth = upload_peak.max(download_peak).saturating_sub(baseline);
    let mib_s = |t: Duration| SIZE as f64 / (1 << 20) as f64 / t.as_secs_f64();
    eprintln!(
        "1 GiB: upload {upload_time:?} ({:.0} MiB/s), download {download_time:?} ({:.0} MiB/s); \
         host RSS {baseline} KiB -> peak {} KiB (growth {growth} KiB)",
        mib_s(upload_time),
        mib_s(download_time),
        upload_peak.max(download_peak)
    );
    assert!(growth < 64 << 10, "host RSS grew by {growth} KiB");
}

#[tokio::test]
async fn an_upload_over_the_limit_is_413_with_nothing_stored() {
    let app = spawn_app_with(|host| host.arg("--variable").arg("max_upload_bytes=1000000"));
    let user = app.user("eve").await;
    // Declared too large: refused before a byte is read.
    let (status, body) = app.upload(&user.token, "big.bin", vec![0u8; 1_000_001]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    // Streamed without a length: refused when the limit is crossed.
    let (status, body) = app
        .upload(&user.token, "big.bin", pattern_stream(3 * CHUNK as u64))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
    for table in ["files", "file_chunks", "uploads", "permissions"] {
        assert_eq!(app.count(table), 0, "{table} holds nothing");
    }
    let (status, _) = app.upload(&user.token, "exact.bin", vec![0u8; 1_000_000]).await;
    assert_eq!(status, StatusCode::CREATED, "exactly the limit is fine");
}

#[tokio::test]
async fn a_full_content_store_is_507_stores_nothing_and_keeps_reads_going() {
    let app = spawn_app();
    let user = app.user("fiona").await;
    let (status, kept) = app.upload(&user.token, "kept.bin", pattern(0, 3 * CHUNK)).await;
    assert_eq!(status, StatusCode::CREATED, "{kept}");
    let kept_id = kept["id"].as_str().unwrap().to_owned();
    let used = app.sql(&format!("SELECT used_bytes FROM users WHERE id = {}", user.id));
    // The disk under file_chunks is full: Postgres fails the chunk's
    // INSERT with 53100 (what `make soak` provokes with a real filesystem).
    app.sql(
        "CREATE FUNCTION disk_is_full() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'could not extend file' USING ERRCODE = 'disk_full'; END $$; \
         CREATE TRIGGER disk_is_full BEFORE INSERT ON file_chunks FOR EACH ROW EXECUTE FUNCTION disk_is_full()",
    );
    for (name, body) in [
        ("small.bin", reqwest::Body::from(b"tiny".to_vec())),
        ("streamed.bin", pattern_stream(4 * CHUNK as u64)),
    ] {
        let (status, body) = app.upload(&user.token, name, body).await;
        assert_error(
            (status, body),
            StatusCode::INSUFFICIENT_STORAGE,
            "insufficient_storage",
        );
    }
    let replace = reqwest::Client::new()
        .put(app.host.url(&format!("/api/files/{kept_id}/content")))
        .bearer_auth(&user.token)
        .body(pattern(7, CHUNK))
        .send()
        .await
        .expect("replacement sent");
    assert_eq!(replace.status(), StatusCode::INSUFFICIENT_STORAGE);
    assert!(replace.headers().contains_key("retry-after"));
    assert_eq!(app.count("uploads"), 0, "failed uploads are removed at once");
    assert_eq!(app.count("files"), 1);
    assert_eq!(
        app.sql(&format!("SELECT used_bytes FROM users WHERE id = {}", user.id)),
        used,
        "nothing counted against the quota"
    );
    // Reads, renames and deletes (which give space back) go on.
    let (status, _, bytes) = app.download(&user.token, &kept_id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, pattern(0, 3 * CHUNK), "the stored file is untouched");
    let (status, list) = app.call(Method::GET, "/api/files", Some(&user.token), None).await;
    assert_eq!(
        (status, list["files"].as_array().unwrap().len()),
        (StatusCode::OK, 1)
    );
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/api/files/{kept_id}"),
            Some(&user.token),
            Some(json!({ "file_name": "renamed.bin" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Space is back: uploads work again.
    app.sql("DROP TRIGGER disk_is_full ON file_chunks");
    let (status, body) = app.upload(&user.token, "after.bin", pattern(0, CHUNK)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn an_upload_aborted_mid_body_never_becomes_visible() {
    let app = spawn_app();
    let user = app.user("frank").await;
    // Send 3 MiB, then fail the body stream: the connection is cut mid-body.
    let chunks = futures::stream::iter(0..4).map(|i| {
        if i < 3 {
            Ok(vec![7u8; CHUNK])
        } else {
            Err(std::io::Error::other("client gave up"))
        }
    });
    let result = reqwest::Client::new()
        .post(app.host.url("/api/files?name=partial.bin"))
        .bearer_auth(&user.token)
        .header("content-length", (10 * CHUNK).to_string())
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    assert!(result.is_err() || result.unwrap().status() != StatusCode::CREATED);
    // The component sees the broken body and removes what it staged.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.count("file_chunks") + app.count("uploads") > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.count("file_chunks"), 0, "staged chunks are removed at once");
    assert_eq!(app.count("uploads"), 0);
    assert_eq!(app.count("files"), 0, "nothing became visible");
    let (_, list) = app.call(Method::GET, "/api/files", Some(&user.token), None).await;
    assert_eq!(list["files"], json!([]));
}

#[tokio::test]
async fn chunks_staged_by_a_crashed_upload_are_swept() {
    let db = spindrive_testkit::TestDatabase::create().unwrap();
    let configure =
        |builder: spindrive_testkit::HostBuilder| builder.arg("--variable").arg("upload_stale_seconds=1");
    let mut host = configure(spindrive_testkit::app_host(&db).unwrap())
        .start()
        .unwrap();
    let client = reqwest::Client::new();
    let register = json!({ "username": "gus", "email": "gus@example.com", "password": "password-gus" });
    client
        .post(host.url("/api/auth/register"))
        .json(&register)
        .send()
        .await
        .unwrap();
    let session: Value = client
        .post(host.url("/api/auth/login"))
        .json(&json!({ "login": "gus", "password": "password-gus" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = session["token"].as_str().unwrap().to_owned();

    // A slow upload: 2 MiB, then it stalls; the host dies meanwhile.
    let (stall_tx, stall_rx) = tokio::sync::oneshot::channel::<()>();
    let chunks = futures::stream::iter(vec![Ok::<_, std::io::Error>(vec![1u8; 2 * CHUNK])]).chain(
        futures::stream::once(async move {
            let _ = stall_rx.await;
            Ok(vec![])
        }),
    );
    let upload = tokio::spawn(
        client
            .post(host.url("/api/files?name=crash.bin"))
            .bearer_auth(&token)
            .body(reqwest::Body::wrap_stream(chunks))
            .send(),
    );
    let staged = || {
        db.psql("SELECT count(*) FROM file_chunks")
            .unwrap()
            .parse::<i64>()
            .unwrap()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while staged() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(staged(), 2, "two chunks staged before the crash");
    std::process::Command::new("kill")
        .args(["-KILL", &host.pid().to_string()])
        .status()
        .unwrap();
    let _ = host.terminate(Duration::from_secs(5));
    drop(stall_tx);
    let _ = upload.await;
    assert_eq!(staged(), 2, "a crash leaves staged chunks behind");
    assert_eq!(
        db.psql("SELECT count(*) FROM files").unwrap(),
        "0",
        "never visible"
    );

    // After the stale period, the next upload's sweep removes them.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let host = configure(spindrive_testkit::app_host(&db).unwrap())
        .start()
        .unwrap();
    let response = client
        .post(host.url("/api/files?name=next.bin"))
        .bearer_auth(&token)
        .body(vec![9u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(staged(), 1, "only the new file's chunk remains");
    assert_eq!(db.psql("SELECT count(*) FROM uploads").unwrap(), "0");
}

#[tokio::test]
async fn concurrent_replace_and_download_never_mix_bytes() {
    let app = spawn_app();
    let user = app.user("hal").await;
    let size = 3 * CHUNK + 5;
    let versions = [vec![b'a'; size], vec![b'b'; size]];
    let (_, file) = app.upload(&user.token, "flip.bin", versions[0].clone()).await;
    let id = file["id"].as_str().unwrap().to_owned();
    let writer = async {
        for round in 1..=8 {
            let response = reqwest::Client::new()
                .put(app.host.url(&format!("/api/files/{id}/content")))
                .bearer_auth(&user.token)
                .body(versions[round % 2].clone())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
    };
    let reader = async {
        let mut seen = [0, 0];
        for _ in 0..24 {
            let (status, headers, body) = app.download(&user.token, &id).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body.len(), size);
            let version = usize::from(body[0] == b'b');
            assert!(body == versions[version], "a download mixed two versions");
            let sha = hex(&Sha256::digest(&body));
            assert_eq!(
                headers["etag"],
                format!("\"{sha}\""),
                "the ETag matches the bytes sent"
            );
            seen[version] += 1;
        }
        seen
    };
    let ((), seen) = tokio::join!(writer, reader);
    assert_eq!(seen[0] + seen[1], 24);
    assert_eq!(app.count("uploads"), 0);

    // The overlap made certain: a download paused after its first bytes,
    // a replacement committed meanwhile, then the rest read. 16 MiB is far
    // more than the socket buffers hold, so most chunks are read from the
    // database after the swap, and must still be the old version's.
    let big = [vec![b'c'; 16 * CHUNK], vec![b'd'; 16 * CHUNK]];
    let (_, file) = app.upload(&user.token, "paused.bin", big[0].clone()).await;
    let id = file["id"].as_str().unwrap().to_owned();
    let mut paused = reqwest::Client::new()
        .get(app.host.url(&format!("/api/files/{id}/content")))
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    let old_etag = paused.headers()["etag"].to_str().unwrap().to_owned();
    let old_key = app.sql(&format!(
        "SELECT substr(file_path, 4) FROM files WHERE id = '{id}'"
    ));
    let mut received = paused.chunk().await.unwrap().unwrap().to_vec();
    let replaced = reqwest::Client::new()
        .put(app.host.url(&format!("/api/files/{id}/content")))
        .bearer_auth(&user.token)
        .body(big[1].clone())
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.status(), StatusCode::OK);
    assert_ne!(replaced.headers()["etag"].to_str().unwrap(), old_etag);
    assert_eq!(
        app.sql(&format!(
            "SELECT count(*) FROM released_content WHERE storage_key = '{old_key}'"
        )),
        "1",
        "the old content was released while the download was open"
    );
    while let Some(bytes) = paused.chunk().await.unwrap() {
        received.extend_from_slice(&bytes);
    }
    assert!(
        received == big[0],
        "the download that overlapped the swap got the old version whole"
    );
    let (_, _, after) = app.download(&user.token, &id).await;
    assert!(after == big[1], "a download after the swap gets the new version");
}

#[tokio::test]
async fn replacing_content_changes_the_etag_and_keeps_the_file() {
    let app = spawn_app();
    let user = app.user("ida").await;
    let (_, file) = app.upload(&user.token, "doc.txt", b"first".to_vec()).await;
    let id = file["id"].as_str().unwrap();
    let response = reqwest::Client::new()
        .put(app.host.url(&format!("/api/files/{id}/content")))
        .bearer_auth(&user.token)
        .header("content-type", "text/plain")
        .body("second version")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let replaced: Value = response.json().await.unwrap();
    assert_eq!(replaced["id"], file["id"]);
    assert_eq!(replaced["size"], 14);
    assert_ne!(replaced["sha256"], file["sha256"]);
    assert_eq!(replaced["content_type"], "text/plain");
    let (_, headers, body) = app.download(&user.token, id).await;
    assert_eq!(body, b"second version");
    assert_eq!(headers["content-type"], "text/plain");
    // The old content is released, kept only for the grace period.
    assert_eq!(app.count("released_content"), 1);
}

#[tokio::test]
async fn deleting_a_file_removes_its_content() {
    let app = spawn_app();
    let user = app.user("joan").await;
    let (_, file) = app
        .upload(&user.token, "gone.bin", vec![3u8; 2 * CHUNK + 1])
        .await;
    let id = file["id"].as_str().unwrap();
    assert_eq!(app.count("file_chunks"), 3);
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/files/{id}"),
            Some(&user.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for table in ["files", "file_chunks", "permissions", "released_content"] {
        assert_eq!(app.count(table), 0, "{table}");
    }
    let gone = app
        .call(Method::GET, &format!("/api/files/{id}"), Some(&user.token), None)
        .await;
    assert_error(gone, StatusCode::NOT_FOUND, "not_found");
    let (status, _, _) = app.download(&user.token, id).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deleting_a_user_releases_their_files_content() {
    let app = spawn_app();
    let admin = app.user("admin").await;
    let user = app.user("kai").await;
    app.upload(&user.token, "a.bin", vec![1u8; 10]).await;
    app.call(
        Method::DELETE,
        &format!("/api/admin/users/{}", user.id),
        Some(&admin.token),
        None,
    )
    .await;
    assert_eq!(app.count("files"), 0);
    assert_eq!(
        app.count("released_content"),
        1,
        "the sweep will remove the orphaned chunks"
    );
}

#[tokio::test]
async fn metadata_can_be_read_and_renamed() {
    let app = spawn_app();
    let user = app.user("lou").await;
    let (_, file) = app.upload(&user.token, "draft.txt", b"x".to_vec()).await;
    let id = file["id"].as_str().unwrap();
    let (status, got) = app
        .call(Method::GET, &format!("/api/files/{id}"), Some(&user.token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, file);
    assert_eq!(got["owner"]["username"], "lou");
    let (status, renamed) = app
        .call(
            Method::PATCH,
            &format!("/api/files/{id}"),
            Some(&user.token),
            Some(json!({ "file_name": "final ✓.txt" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["file_name"], "final ✓.txt");
    let (_, headers, _) = app.download(&user.token, id).await;
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"final _.txt\"; filename*=UTF-8''final%20%E2%9C%93.txt"
    );
    let bad = app
        .call(
            Method::PATCH,
            &format!("/api/files/{id}"),
            Some(&user.token),
            Some(json!({ "file_name": "a/b" })),
        )
        .await;
    assert_error(bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(app.sql("SELECT file_name FROM files"), "final ✓.txt");
}

#[tokio::test]
async fn unicode_and_hostile_names_follow_the_rules() {
    let app = spawn_app();
    let user = app.user("max").await;
    // 255 characters of two bytes each: names count characters.
    for name in ["ünïcødé 🦀.txt", "..x", "report (1).pdf", &"é".repeat(255)] {
        let (status, file) = app.upload(&user.token, name, b"ok".to_vec()).await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {file}");
        assert_eq!(file["file_name"], name);
    }
    for name in ["../x", "a/b", "a\u{0}b", "tab\tname", "", &"é".repeat(256), "."] {
        let (status, body) = app.upload(&user.token, name, b"no".to_vec()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}: {body}");
        assert_eq!(body["error"]["field"], "file_name");
    }
    let missing = app
        .request(Method::POST, "/api/files", Some(&user.token), None)
        .await;
    assert_eq!(
        missing.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "a name is required"
    );
    assert_eq!(app.count("files"), 4);
    assert_eq!(app.count("file_chunks"), 4);
}

#[tokio::test]
async fn strangers_get_404_on_every_route() {
    let app = spawn_app();
    let owner = app.user("owner").await;
    let stranger = app.user("stranger").await;
    let (_, file) = app.upload(&owner.token, "private.txt", b"secret".to_vec()).await;
    let id = file["id"].as_str().unwrap();
    let missing = "00000000-0000-4000-8000-000000000000";
    for target in [id, missing, "not-a-uuid"] {
        let attempts = [
            (Method::GET, format!("/api/files/{target}"), None),
            (
                Method::PATCH,
                format!("/api/files/{target}"),
                Some(json!({ "file_name": "mine.txt" })),
            ),
            (Method::DELETE, format!("/api/files/{target}"), None),
            (Method::GET, format!("/api/files/{target}/content"), None),
            (Method::PUT, format!("/api/files/{target}/content"), None),
        ];
        for (method, path, body) in attempts {
            let response = app
                .request(method.clone(), &path, Some(&stranger.token), body)
                .await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
            let error: Value = response.json().await.unwrap();
            assert_eq!(error["error"]["code"], "not_found");
        }
        let head = app
            .request(
                Method::HEAD,
                &format!("/api/files/{target}/content"),
                Some(&stranger.token),
                None,
            )
            .await;
        assert_eq!(head.status(), StatusCode::NOT_FOUND);
    }
    let (_, list) = app
        .call(Method::GET, "/api/files", Some(&stranger.token), None)
        .await;
    assert_eq!(list["files"], json!([]));
    assert_eq!(
        app.sql("SELECT file_name FROM files"),
        "private.txt",
        "nothing changed"
    );
    // Without a token: 401 before anything else.
    let anonymous = app
        .call(Method::GET, &format!("/api/files/{id}"), None, None)
        .await;
    assert_error(anonymous, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn admins_see_every_file() {
    let app = spawn_app();
    let admin = app.user("admin").await;
    let user = app.user("nia").await;
    let (_, file) = app.upload(&user.token, "n.txt", b"n".to_vec()).await;
    let id = file["id"].as_str().unwrap();
    let (status, seen) = app
        .call(Method::GET, &format!("/api/files/{id}"), Some(&admin.token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["my_permission"], "delete");
    let (_, all) = app
        .call(Method::GET, "/api/files?scope=all", Some(&admin.token), None)
        .await;
    assert_eq!(all["files"].as_array().unwrap().len(), 1);
    let (_, owned) = app
        .call(Method::GET, "/api/files?scope=owned", Some(&admin.token), None)
        .await;
    assert_eq!(owned["files"], json!([]));
}

#[tokio::test]
async fn grants_give_their_level_and_scopes_separate_them() {
    let app = spawn_app();
    let owner = app.user("olly").await;
    let reader = app.user("pam").await;
    let (_, file) = app.upload(&owner.token, "shared.txt", b"hello".to_vec()).await;
    let id = file["id"].as_str().unwrap();
    // Grants are made by the permissions service; here, directly.
    app.sql(&format!(
        "INSERT INTO permissions (file_id, user_id, permission, granted_by) VALUES ('{id}', {}, 'read', {})",
        reader.id, owner.id
    ));
    let (status, seen) = app
        .call(
            Method::GET,
            &format!("/api/files/{id}"),
            Some(&reader.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["my_permission"], "read");
    assert_eq!(seen["is_shared"], true);
    let (_, _, body) = app.download(&reader.token, id).await;
    assert_eq!(body, b"hello");
    for (method, path, body) in [
        (
            Method::PATCH,
            format!("/api/files/{id}"),
            Some(json!({ "file_name": "x" })),
        ),
        (Method::DELETE, format!("/api/files/{id}"), None),
    ] {
        let refused = app.call(method, &path, Some(&reader.token), body).await;
        assert_error(refused, StatusCode::NOT_FOUND, "not_found");
    }
    let (_, shared) = app
        .call(Method::GET, "/api/files?scope=shared", Some(&reader.token), None)
        .await;
    assert_eq!(shared["files"].as_array().unwrap().len(), 1);
    let (_, owned) = app
        .call(Method::GET, "/api/files?scope=owned", Some(&reader.token), None)
        .await;
    assert_eq!(owned["files"], json!([]));
    let (_, owners) = app
        .call(Method::GET, "/api/files?scope=shared", Some(&owner.token), None)
        .await;
    assert_eq!(
        owners["files"],
        json!([]),
        "the owner's own files are not 'shared with' them"
    );
}

#[tokio::test]
async fn paging_returns_each_file_once_while_files_are_added() {
    let app = spawn_app();
    let user = app.user("quinn").await;
    for i in 0..25 {
        app.upload(&user.token, &format!("file-{i:02}.txt"), vec![i as u8; i])
            .await;
    }
    for (sort, order) in [
        ("created_at", "desc"),
        ("name", "asc"),
        ("size", "desc"),
        ("name", "desc"),
    ] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut added = 0;
        loop {
            let mut path = format!("/api/files?limit=4&sort={sort}&order={order}");
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let (status, page) = app.call(Method::GET, &path, Some(&user.token), None).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            seen.extend(
                page["files"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f["id"].as_str().unwrap().to_owned()),
            );
            // Someone keeps uploading between pages.
            app.upload(
                &user.token,
                &format!("late-{sort}-{order}-{added}.txt"),
                b"late".to_vec(),
            )
            .await;
            added += 1;
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        let unique: std::collections::HashSet<_> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "{sort} {order}: no file twice");
        let originals = app.sql("SELECT string_agg(id::text, ',') FROM files WHERE file_name LIKE 'file-%'");
        for id in originals.split(',') {
            assert!(
                seen.iter().any(|s| s == id),
                "{sort} {order}: every original file appears"
            );
        }
    }
}

#[tokio::test]
async fn lists_search_sort_and_validate() {
    let app = spawn_app();
    let user = app.user("rita").await;
    for (name, size) in [
        ("Budget 2026.xlsx", 30),
        ("budget-old.xlsx", 10),
        ("photo.jpg", 20),
        ("100%_done.txt", 5),
    ] {
        app.upload(&user.token, name, vec![0u8; size]).await;
    }
    let names = |list: &Value| -> Vec<String> {
        list["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["file_name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, found) = app
        .call(
            Method::GET,
            "/api/files?q=BUDGET&sort=size&order=asc",
            Some(&user.token),
            None,
        )
        .await;
    assert_eq!(names(&found), ["budget-old.xlsx", "Budget 2026.xlsx"]);
    let (_, literal) = app
        .call(Method::GET, "/api/files?q=%25_", Some(&user.token), None)
        .await;
    assert_eq!(
        names(&literal),
        ["100%_done.txt"],
        "% and _ are matched literally"
    );
    let (_, by_name) = app
        .call(
            Method::GET,
            "/api/files?sort=name&order=asc",
            Some(&user.token),
            None,
        )
        .await;
    assert_eq!(names(&by_name)[0], "100%_done.txt");
    for bad in [
        "scope=mine",
        "sort=owner",
        "order=up",
        "limit=0",
        "limit=1001",
        "cursor=nonsense",
    ] {
        let reply = app
            .call(Method::GET, &format!("/api/files?{bad}"), Some(&user.token), None)
            .await;
        assert_error(reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    }
    let (_, first) = app
        .call(
            Method::GET,
            "/api/files?limit=1&sort=name",
            Some(&user.token),
            None,
        )
        .await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let mismatch = app
        .call(
            Method::GET,
            &format!("/api/files?limit=1&sort=size&cursor={cursor}"),
            Some(&user.token),
            None,
        )
        .await;
    assert_error(mismatch, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
}
