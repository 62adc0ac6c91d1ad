//! Webhooks end to end: a receiver started here checks every delivery's
//! Standard Webhooks signature with HMAC-SHA256 written in this file, and
//! counts deliveries across duplicate wake-ups and a host restart, retries
//! after 500, the stop after 410, and refused private endpoints.

use crate::helpers::{TestApp, User, assert_error, spawn_app, spawn_app_with};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use spindrive_testkit::HostBuilder;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// A webhook receiver on 127.0.0.1: it records every request and answers
/// the queued statuses in turn, then 204.
#[derive(Clone, Default)]
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
    always: Arc<Mutex<Option<u16>>>,
}

impl Receiver {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Receiver {
            url: format!("http://{}/hooks/spindrive", listener.local_addr().unwrap()),
            ..Receiver::default()
        };
        let serving = receiver.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serving.clone().answer(stream));
            }
        });
        receiver
    }

    /// Reads one HTTP/1.1 request (headers, a `content-length` body) and
    /// answers it, closing the connection.
    async fn answer(self, stream: tokio::net::TcpStream) {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        let mut headers = HashMap::new();
        loop {
            line.clear();
            reader.read_line(&mut line).await.unwrap();
            let Some((name, value)) = line.trim_end().split_once(':') else {
                break;
            };
            headers.insert(name.to_ascii_lowercase(), value.trim().to_owned());
        }
        let length: usize = headers.get("content-length").map_or(0, |l| l.parse().unwrap());
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await.unwrap();
        self.received.lock().unwrap().push(Received { headers, body });
        let status = self
            .answers
            .lock()
            .unwrap()
            .pop_front()
            .or(*self.always.lock().unwrap())
            .unwrap_or(204);
        let response = format!("HTTP/1.1 {status} Answer\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        let _ = reader.get_mut().write_all(response.as_bytes()).await;
    }

    /// The receiver's URL by name rather than address.
    fn localhost_url(&self) -> String {
        self.url.replace("127.0.0.1", "localhost")
    }

    fn answer_next(&self, statuses: &[u16]) {
        self.answers.lock().unwrap().extend(statuses);
    }

    fn answer_always(&self, status: u16) {
        *self.always.lock().unwrap() = Some(status);
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `count` requests arrived; all of them.
    async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} deliveries arrived",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A notification's delivery status and attempts.
fn delivery_of(notification: &Value) -> (Option<&str>, Option<i64>) {
    (
        notification["delivery"].as_str(),
        notification["delivery_attempts"].as_i64(),
    )
}

/// HMAC-SHA256 (RFC 2104), written here independently of the product's.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Verifies a delivery as a Standard Webhooks receiver does: the
/// signature over `{id}.{timestamp}.{body}` with the key of `secret`
/// (`whsec_` + base64), a timestamp within five minutes; returns the body.
fn verified(delivery: &Received, secret: &str) -> Value {
    let key = BASE64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let id = &delivery.headers["webhook-id"];
    let timestamp = &delivery.headers["webhook-timestamp"];
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(&delivery.body);
    let expected = format!("v1,{}", BASE64.encode(hmac_sha256(&key, &signed)));
    let signatures = &delivery.headers["webhook-signature"];
    assert!(
        signatures.split(' ').any(|s| s == expected),
        "signature {signatures} is not {expected}"
    );
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!(
        (now - timestamp.parse::<i64>().unwrap()).abs() < 300,
        "stale timestamp"
    );
    assert_eq!(delivery.headers["content-type"], "application/json");
    serde_json::from_slice(&delivery.body).unwrap()
}

impl TestApp {
    async fn register_webhook(&self, user: &User, body: Value) -> (StatusCode, Value) {
        self.call(
            Method::PUT,
            "/api/notifications/webhook",
            Some(&user.token),
            Some(body),
        )
        .await
    }

    /// The user's newest notification.
    async fn newest(&self, user: &User) -> Value {
        let (status, page) = self
            .call(Method::GET, "/api/notifications?limit=1", Some(&user.token), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["notifications"][0].clone()
    }

    /// Waits until the user's newest notification records `attempts` sends.
    async fn recorded(&self, user: &User, attempts: i64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let newest = self.newest(user).await;
            if newest["delivery_attempts"] == attempts && !newest["delivery_error"].is_null() {
                return newest;
            }
            assert!(Instant::now() < deadline, "never recorded: {newest}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the user's newest notification is no longer `pending`.
    async fn settled(&self, user: &User) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let newest = self.newest(user).await;
            if newest["delivery"] != "pending" {
                return newest;
            }
            assert!(Instant::now() < deadline, "never delivered: {newest}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Shares a new file of `owner` with `with`: one notification for them.
    async fn shared_file(&self, owner: &User, with: &str, name: &str) -> String {
        let (status, file) = self.upload(&owner.token, name, b"hello".to_vec()).await;
        assert_eq!(status, StatusCode::CREATED, "{file}");
        let id = file["id"].as_str().unwrap().to_owned();
        let (status, grant) = self.share(&owner.token, &id, with, "read").await;
        assert_eq!(status, StatusCode::CREATED, "{grant}");
        id
    }
}

/// Local receivers are on 127.0.0.1, so these apps allow private
/// endpoints; retries come after a second.
fn local_webhooks(host: HostBuilder) -> HostBuilder {
    host.arg("--variable")
        .arg("webhook_allow_private_addresses=true")
        .arg("--variable")
        .arg("notify_retry_schedule=1s,1s")
}

#[tokio::test]
async fn deliveries_are_signed_and_sent_once_across_duplicate_wake_ups_and_a_restart() {
    let mut app = spawn_app_with(local_webhooks);
    let ada = app.user("ada").await;
    let bob = app.user("bob").await;
    let receiver = Receiver::start().await;
    let bobs_receiver = Receiver::start().await;

    // Registering shows the secret once; reading the endpoint never does.
    let (status, hook) = app.register_webhook(&ada, json!({ "url": receiver.url })).await;
    assert_eq!(status, StatusCode::OK, "{hook}");
    let secret = hook["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_") && BASE64.decode(&secret[6..]).unwrap().len() >= 24);
    assert_eq!(
        (hook["url"].as_str(), hook["active"].as_bool()),
        (Some(&*receiver.url), Some(true))
    );
    let (status, shown) = app
        .call(Method::GET, "/api/notifications/webhook", Some(&ada.token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        shown.get("secret").is_none() && !shown.to_string().contains(&secret[6..]),
        "{shown}"
    );
    let (status, _) = app
        .register_webhook(&bob, json!({ "url": bobs_receiver.url }))
        .await;
    assert_eq!(status, StatusCode::OK);

    app.shared_file(&bob, "ada", "plan.txt").await;
    let delivered = receiver.wait_for(1).await;
    let body = verified(&delivered[0], &secret);
    let notice = app.settled(&ada).await;
    assert_eq!(body["type"], "share_granted");
    assert_eq!(body["data"]["id"], notice["id"]);
    assert_eq!(body["data"]["message"], notice["message"]);
    assert_eq!(body["data"]["details"]["file_name"], "plan.txt");
    assert_eq!(
        delivered[0].headers["webhook-id"],
        format!("ntf_{}", notice["id"])
    );
    assert_eq!(delivery_of(&notice), (Some("sent"), Some(1)), "{notice}");

    // Duplicate and stray wake-ups find nothing more to send.
    app.wake("notify", "deliver", 20).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.received().len(), 1, "sent once");

    // A send that failed is retried after the host restarts, and only the
    // retry is sent.
    receiver.answer_next(&[500]);
    app.shared_file(&bob, "ada", "draft.txt").await;
    receiver.wait_for(2).await;
    let failed_once = app.recorded(&ada, 1).await;
    assert_eq!(
        failed_once["delivery_error"], "the endpoint answered 500",
        "{failed_once}"
    );
    app.host.kill().unwrap();
    app.host = local_webhooks(spindrive_testkit::app_host(&app.db).unwrap())
        .start()
        .unwrap();
    app.wake("notify", "deliver", 3).await;
    let delivered = receiver.wait_for(3).await;
    let retried = app.settled(&ada).await;
    assert_eq!(delivery_of(&retried), (Some("sent"), Some(2)), "{retried}");
    assert_eq!(
        delivered[1].headers["webhook-id"],
        delivered[2].headers["webhook-id"]
    );
    assert_eq!(
        verified(&delivered[2], &secret)["data"]["details"]["file_name"],
        "draft.txt"
    );
    app.wake("notify", "deliver", 5).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.received().len(), 3, "nothing sent twice");

    // Each user's deliveries go to their own endpoint only; the owner's
    // receiver heard nothing of Ada's notifications.
    assert!(bobs_receiver.received().is_empty());
    let (status, _) = app
        .call(
            Method::DELETE,
            "/api/notifications/webhook",
            Some(&bob.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_error(
        app.call(Method::GET, "/api/notifications/webhook", Some(&bob.token), None)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let showing = app
        .bodies
        .lock()
        .unwrap()
        .iter()
        .filter(|body| body.contains(&secret[6..]))
        .count();
    assert_eq!(showing, 1, "the secret is shown when registered, never again");
    assert!(
        !app.host.stderr.text().contains(&secret[6..]),
        "the secret is never logged"
    );
}

#[tokio::test]
async fn failures_are_retried_on_the_schedule_then_fail_and_410_turns_the_webhook_off() {
    let app = spawn_app_with(local_webhooks);
    let ada = app.user("ada").await;
    let bob = app.user("bob").await;
    let receiver = Receiver::start().await;
    let (_, hook) = app.register_webhook(&ada, json!({ "url": receiver.url })).await;
    let secret = hook["secret"].as_str().unwrap().to_owned();

    // 500 every time: the first send and two retries (schedule 1s,1s).
    receiver.answer_always(500);
    let started = Instant::now();
    app.shared_file(&bob, "ada", "a.txt").await;
    let delivered = receiver.wait_for(3).await;
    let failed = app.settled(&ada).await;
    assert!(started.elapsed() >= Duration::from_millis(1600), "retries waited");
    assert_eq!(
        (
            failed["delivery"].as_str(),
            failed["delivery_attempts"].as_i64(),
            failed["delivery_error"].as_str()
        ),
        (Some("failed"), Some(3), Some("the endpoint answered 500")),
        "{failed}"
    );
    for delivery in &delivered {
        verified(delivery, &secret);
        assert_eq!(delivery.headers["webhook-id"], format!("ntf_{}", failed["id"]));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received().len(), 3, "no fourth send");

    // 410 Gone: this one fails and the endpoint is off; later ones are
    // delivered by the feed alone.
    *receiver.always.lock().unwrap() = None;
    receiver.answer_next(&[410]);
    app.shared_file(&bob, "ada", "b.txt").await;
    receiver.wait_for(4).await;
    let gone = app.settled(&ada).await;
    assert_eq!(delivery_of(&gone), (Some("failed"), Some(1)));
    let (_, hook) = app
        .call(Method::GET, "/api/notifications/webhook", Some(&ada.token), None)
        .await;
    assert_eq!(hook["active"], false, "{hook}");
    assert!(
        hook["disabled_reason"].as_str().unwrap().contains("410"),
        "{hook}"
    );
    app.shared_file(&bob, "ada", "c.txt").await;
    assert_eq!(app.newest(&ada).await["delivery"], "sent");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.received().len(), 4, "nothing sent after 410");

    // Registering again turns it back on, with a secret of the user's.
    let own = format!("whsec_{}", BASE64.encode([7u8; 32]));
    let (status, hook) = app
        .register_webhook(&ada, json!({ "url": receiver.url, "secret": own }))
        .await;
    assert_eq!(
        (status, hook["active"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{hook}"
    );
    app.shared_file(&bob, "ada", "d.txt").await;
    let delivered = receiver.wait_for(5).await;
    assert_eq!(
        verified(&delivered[4], &own)["data"]["details"]["file_name"],
        "d.txt"
    );
}

#[tokio::test]
async fn private_endpoints_are_refused_when_registered_and_after_resolution() {
    let app = spawn_app();
    let ada = app.user("ada").await;
    for url in [
        "http://127.0.0.1:9000/hook",
        "http://localhost:9000/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.8/hook",
        "http://[::ffff:192.168.1.1]/hook",
        "http://intranet/hook",
        "ftp://example.com/hook",
        "https://user:pw@example.com/hook",
        "not a url",
    ] {
        assert_error(
            app.register_webhook(&ada, json!({ "url": url })).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        );
    }
    for secret in ["whsec_c2hvcnQ=", "plain-text-secret-that-is-long-enough", ""] {
        assert_error(
            app.register_webhook(
                &ada,
                json!({ "url": "https://hooks.example.com/x", "secret": secret }),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        );
    }
    assert_error(
        app.call(Method::GET, "/api/notifications/webhook", Some(&ada.token), None)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // A name is checked after resolution by the runtime: with Spin's
    // block_networks = ["private"], `localhost` is never connected to,
    // even where registering it is allowed.
    let (app, _config) = blocking_app("\"private\"");
    let ada = app.user("ada").await;
    let bob = app.user("bob").await;
    let receiver = Receiver::start().await;
    let (status, _) = app
        .register_webhook(&ada, json!({ "url": receiver.localhost_url() }))
        .await;
    assert_eq!(status, StatusCode::OK);
    app.shared_file(&bob, "ada", "secret-plan.txt").await;
    let refused = app.settled(&ada).await;
    assert_eq!(delivery_of(&refused), (Some("failed"), Some(2)), "{refused}");
    assert!(
        refused["delivery_error"]
            .as_str()
            .unwrap()
            .contains("private or otherwise blocked"),
        "{refused}"
    );
    assert!(
        receiver.received().is_empty(),
        "nothing reached the private address"
    );
    assert!(app.host.stderr.text().contains("destination_ip_prohibited"));

    // Where the receiver's network is not blocked, a name is resolved and
    // connected to by the checking connector, and the delivery arrives.
    let (app, _config) = blocking_app("\"10.0.0.0/8\"");
    let ada = app.user("ada").await;
    let bob = app.user("bob").await;
    let (_, hook) = app
        .register_webhook(&ada, json!({ "url": receiver.localhost_url() }))
        .await;
    app.shared_file(&bob, "ada", "open-plan.txt").await;
    let delivered = receiver.wait_for(1).await;
    let body = verified(&delivered[0], hook["secret"].as_str().unwrap());
    assert_eq!(body["data"]["details"]["file_name"], "open-plan.txt");
    assert_eq!(app.settled(&ada).await["delivery"], "sent");
    assert!(!app.host.stderr.text().contains("destination_ip_prohibited"));
}

/// An app whose runtime configuration blocks `networks` (TOML array
/// items), allowing private endpoints to be registered; the file lives as
/// long as the second value.
fn blocking_app(networks: &str) -> (TestApp, tempfile::NamedTempFile) {
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        format!("[outbound_networking]\nblock_networks = [{networks}]\n"),
    )
    .unwrap();
    let path = config.path().to_str().unwrap().to_owned();
    let app = spawn_app_with(|host| {
        host.arg("--runtime-config-file")
            .arg(path)
            .arg("--variable")
            .arg("webhook_allow_private_addresses=true")
            .arg("--variable")
            .arg("notify_retry_schedule=200ms")
    });
    (app, config)
}

#[tokio::test]
async fn what_waits_for_a_webhook_is_settled_when_it_goes_and_attempts_are_capped() {
    // Retries an hour apart: a failed send stays pending.
    let app = spawn_app_with(|host| {
        host.arg("--variable")
            .arg("webhook_allow_private_addresses=true")
            .arg("--variable")
            .arg("notify_retry_schedule=1h")
    });
    let ada = app.user("ada").await;
    let bob = app.user("bob").await;
    let receiver = Receiver::start().await;
    receiver.answer_always(500);
    app.register_webhook(&ada, json!({ "url": receiver.url })).await;
    let switch = |on: bool| json!({ "webhook_enabled": on });

    // Switching webhooks off delivers what waited by the feed, at once,
    // and later notifications are not sent.
    app.shared_file(&bob, "ada", "one.txt").await;
    app.recorded(&ada, 1).await;
    let (status, _) = app
        .call(
            Method::PATCH,
            "/api/notifications/preferences",
            Some(&ada.token),
            Some(switch(false)),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let settled = app.newest(&ada).await;
    assert_eq!(
        (settled["delivery"].as_str(), &settled["delivery_error"]),
        (Some("sent"), &Value::Null),
        "{settled}"
    );
    app.shared_file(&bob, "ada", "two.txt").await;
    assert_eq!(app.newest(&ada).await["delivery"], "sent");

    // Removing the endpoint does the same.
    app.call(
        Method::PATCH,
        "/api/notifications/preferences",
        Some(&ada.token),
        Some(switch(true)),
    )
    .await;
    app.shared_file(&bob, "ada", "three.txt").await;
    app.recorded(&ada, 1).await;
    let (status, _) = app
        .call(
            Method::DELETE,
            "/api/notifications/webhook",
            Some(&ada.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.newest(&ada).await["delivery"], "sent");
    assert_eq!(
        receiver.received().len(),
        2,
        "one send each while the webhook was on"
    );

    // A deliverer that died mid-send on the last attempt (simulated: the
    // row at the cap, its lease run out) is not sent again: it fails.
    app.register_webhook(&ada, json!({ "url": receiver.url })).await;
    app.shared_file(&bob, "ada", "four.txt").await;
    let pending = app.recorded(&ada, 1).await;
    app.sql(&format!(
        "UPDATE notifications SET attempts = 2, run_id = gen_random_uuid(), \
             next_attempt_at = (now() AT TIME ZONE 'utc') - interval '1 second' WHERE id = {}",
        pending["id"]
    ));
    app.wake("notify", "deliver", 2).await;
    let failed = app.settled(&ada).await;
    assert_eq!(failed["delivery"], "failed", "{failed}");
    assert!(
        failed["delivery_error"].as_str().unwrap().contains("500"),
        "{failed}"
    );
    assert_eq!(receiver.received().len(), 3, "not sent past the cap");
}
