//! `spawn_app`: a migrated database, the host with the product's spin.toml
//! pointed at it, and typed request helpers.

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use spindrive_testkit::{Host, HostBuilder, TestDatabase, app_host, app_host_with_redis};
use std::sync::Mutex;

pub struct TestApp {
    pub db: TestDatabase,
    pub host: Host,
    client: reqwest::Client,
    /// Every response body seen, to check what the API ever reveals.
    pub bodies: Mutex<Vec<String>>,
}

pub fn spawn_app() -> TestApp {
    spawn_app_with(|host| host)
}

/// Like [`spawn_app`], with extra host arguments (variables, limits).
pub fn spawn_app_with(configure: impl FnOnce(HostBuilder) -> HostBuilder) -> TestApp {
    spawn_app_on(app_host, configure)
}

/// Like [`spawn_app_with`], on the Redis at `redis_url` (a test's own).
pub fn spawn_app_with_redis(redis_url: &str, configure: impl FnOnce(HostBuilder) -> HostBuilder) -> TestApp {
    spawn_app_on(|db| app_host_with_redis(db, redis_url), configure)
}

fn spawn_app_on(
    host: impl FnOnce(&TestDatabase) -> anyhow::Result<HostBuilder>,
    configure: impl FnOnce(HostBuilder) -> HostBuilder,
) -> TestApp {
    let db = TestDatabase::create().expect("test database");
    let builder = host(&db).expect("migrated database");
    let host = configure(builder).start().expect("host starts");
    TestApp {
        db,
        host,
        client: reqwest::Client::new(),
        bodies: Mutex::default(),
    }
}

/// A registered, logged-in user.
pub struct User {
    pub id: i64,
    pub password: String,
    pub token: String,
}

impl TestApp {
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut request = self.client.request(method, self.host.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request sent")
    }

    /// Sends a request; returns the status and the JSON body (`null` if empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let response = self.request(method, path, token, body).await;
        let status = response.status();
        let text = response.text().await.expect("body");
        self.bodies.lock().unwrap().push(text.clone());
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON body, got {text:?}"))
        };
        (status, value)
    }

    pub async fn register(&self, username: &str, email: &str, password: &str) -> (StatusCode, Value) {
        let body = json!({ "username": username, "email": email, "password": password });
        self.call(Method::POST, "/api/auth/register", None, Some(body))
            .await
    }

    pub async fn login(&self, login: &str, password: &str) -> (StatusCode, Value) {
        let body = json!({ "login": login, "password": password });
        self.call(Method::POST, "/api/auth/login", None, Some(body)).await
    }

    /// Registers and logs in a user named `username`.
    pub async fn user(&self, username: &str) -> User {
        let password = format!("{username}-secret-pw");
        let (status, registered) = self
            .register(username, &format!("{username}@example.com"), &password)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{registered}");
        let (status, session) = self.login(username, &password).await;
        assert_eq!(status, StatusCode::OK, "{session}");
        User {
            id: registered["id"].as_i64().expect("id"),
            password,
            token: session["token"].as_str().expect("token").to_owned(),
        }
    }

    /// An administrator's change to a user (`PATCH /api/admin/users/:id`).
    pub async fn patch_user(&self, token: &str, user_id: i64, change: Value) -> (StatusCode, Value) {
        let path = format!("/api/admin/users/{user_id}");
        self.call(Method::PATCH, &path, Some(token), Some(change)).await
    }

    /// `DELETE /api/admin/users/:id`; the status.
    pub async fn delete_user(&self, token: &str, user_id: i64) -> StatusCode {
        let path = format!("/api/admin/users/{user_id}");
        self.call(Method::DELETE, &path, Some(token), None).await.0
    }

    /// `DELETE /api/files/:id`; the status.
    pub async fn delete_file(&self, token: &str, file_id: &str) -> StatusCode {
        let path = format!("/api/files/{file_id}");
        self.call(Method::DELETE, &path, Some(token), None).await.0
    }

    /// Every item of a cursor-paged list: `path` (with its query) read
    /// page by page, the items under `key` of each, no page longer than
    /// the path's `limit`; and the last page.
    pub async fn every_page(&self, token: &str, path: &str, key: &str) -> (Vec<Value>, Value) {
        let limit: Option<usize> = path
            .split(['?', '&'])
            .find_map(|pair| pair.strip_prefix("limit="))
            .map(|limit| limit.parse().unwrap());
        let mut items = Vec::new();
        let mut next = path.to_owned();
        for _ in 0..1000 {
            let (status, page) = self.call(Method::GET, &next, Some(token), None).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let list = page[key].as_array().expect("a list");
            assert!(
                limit.is_none_or(|limit| list.len() <= limit),
                "{next}: over the limit"
            );
            items.extend(list.iter().cloned());
            match page["next_cursor"].as_str() {
                Some(cursor) => next = format!("{path}&cursor={cursor}"),
                None => return (items, page),
            }
        }
        panic!("{path}: the pages never ended");
    }

    /// Publishes `message` `times` times on the app's wake-up channel of
    /// `kind` (`transform`, `notify`), as Redis would deliver duplicate or
    /// stray wake-ups.
    pub async fn wake(&self, kind: &str, message: &str, times: usize) {
        let channel = format!("{kind}-{}", self.db.name);
        let mut redis = redis::Client::open(spindrive_testkit::shared_redis_url().unwrap())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        // A host just started may not have subscribed yet: the first wake-up
        // is sent again until someone receives it (PUBLISH counts them).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        for sent in 0..times {
            loop {
                let receivers: i64 = redis::cmd("PUBLISH")
                    .arg(&channel)
                    .arg(message)
                    .query_async(&mut redis)
                    .await
                    .unwrap();
                if receivers > 0 || sent > 0 {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "nobody subscribes to {channel}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }

    /// Runs SQL in the app's database.
    pub fn sql(&self, sql: &str) -> String {
        self.db.psql(sql).expect("psql")
    }
}

/// Asserts an API error: the status and the error code.
pub fn assert_error(actual: (StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(actual.0, status, "{}", actual.1);
    assert_eq!(actual.1["error"]["code"], code, "{}", actual.1);
    assert!(actual.1["error"]["message"].is_string(), "{}", actual.1);
}

/// Runs an outside program against the app for at most `limit`, and fails
/// the test with everything it printed unless it succeeds; its stdout.
pub async fn run_to_success(
    command: &mut tokio::process::Command,
    limit: std::time::Duration,
    what: &str,
) -> String {
    let run = tokio::time::timeout(limit, command.kill_on_drop(true).output())
        .await
        .unwrap_or_else(|_| panic!("{what} ends within {limit:?}"))
        .unwrap_or_else(|error| panic!("{what} cannot start: {error}"));
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "{what} failed:\n{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    stdout
}
