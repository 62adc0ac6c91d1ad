//! Accounts and sessions: what a user can do, what they can't, and what the
//! database holds afterwards.

use crate::helpers::{TestApp, assert_error, spawn_app, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::json;
use spindrive_domain::throttle;
use std::time::{Duration, Instant};

#[tokio::test]
async fn register_login_me_and_logout() {
    let app = spawn_app();
    let (status, user) = app
        .register("Ada", "ada@example.com", "correct horse battery")
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert_eq!(user["username"], "ada", "usernames are stored lowercase");
    assert_eq!(user["email"], "ada@example.com");
    assert!(user["created_at"].as_str().unwrap().ends_with('Z'));

    for login in ["ada", "ADA", "Ada@Example.com"] {
        let (status, session) = app.login(login, "correct horse battery").await;
        assert_eq!(status, StatusCode::OK, "login as {login}: {session}");
        assert_eq!(session["token"].as_str().unwrap().len(), 43);
        assert_eq!(session["user"]["id"], user["id"]);
    }
    let (_, session) = app.login("ada", "correct horse battery").await;
    let token = session["token"].as_str().unwrap();

    let (status, me) = app.call(Method::GET, "/api/auth/me", Some(token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["username"], "ada");

    let (status, _) = app
        .call(Method::POST, "/api/auth/logout", Some(token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let after = app.call(Method::GET, "/api/auth/me", Some(token), None).await;
    assert_error(after, StatusCode::UNAUTHORIZED, "unauthorized");
    // Three logins made three sessions; the one logged out is gone.
    assert_eq!(app.sql("SELECT count(*) FROM sessions"), "3");
}

#[tokio::test]
async fn only_the_token_hash_is_stored() {
    let app = spawn_app();
    let user = app.user("bob").await;
    let stored = app.sql("SELECT encode(token_hash, 'hex') FROM sessions");
    assert_eq!(stored.len(), 64);
    assert!(
        !app.sql("SELECT token_hash::text FROM sessions")
            .contains(&user.token)
    );
}

#[tokio::test]
async fn the_first_user_is_an_admin_and_later_ones_viewers() {
    let app = spawn_app();
    let (_, first) = app.register("first", "first@example.com", "password-one").await;
    let (_, second) = app.register("second", "second@example.com", "password-two").await;
    assert_eq!(first["role"], "admin");
    assert_eq!(second["role"], "viewer");
}

#[tokio::test]
async fn concurrent_first_registrations_make_exactly_one_admin() {
    let app = spawn_app();
    let registrations = (0..6).map(|i| {
        let app = &app;
        async move {
            app.register(
                &format!("racer{i}"),
                &format!("racer{i}@example.com"),
                "password-racer",
            )
            .await
        }
    });
    let results = futures::future::join_all(registrations).await;
    assert!(results.iter().all(|(status, _)| *status == StatusCode::CREATED));
    assert_eq!(app.sql("SELECT count(*) FROM users WHERE role = 'admin'"), "1");
}

#[tokio::test]
async fn duplicate_usernames_and_emails_conflict_case_insensitively() {
    let app = spawn_app();
    app.register("carol", "carol@example.com", "password-carol").await;
    let username = app.register("CAROL", "other@example.com", "password-carol").await;
    assert_error(username, StatusCode::CONFLICT, "username_taken");
    let email = app
        .register("carol2", "Carol@Example.COM", "password-carol")
        .await;
    assert_error(email, StatusCode::CONFLICT, "email_taken");
    assert_eq!(app.sql("SELECT count(*) FROM users"), "1");
}

#[tokio::test]
async fn invalid_fields_are_422_naming_the_field_and_store_nothing() {
    let app = spawn_app();
    for (username, email, password, field) in [
        ("ab", "ok@example.com", "long-enough", "username"),
        ("has space", "ok@example.com", "long-enough", "username"),
        ("okname", "not-an-email", "long-enough", "email"),
        ("okname", "ok@example.com", "short", "password"),
        ("okname", "ok@example.com", &"x".repeat(129), "password"),
    ] {
        let result = app.register(username, email, password).await;
        assert_eq!(result.1["error"]["field"], field, "{}", result.1);
        assert_error(result, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    }
    let missing = app
        .call(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({ "username": "x" })),
        )
        .await;
    assert_error(missing, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(app.sql("SELECT count(*) FROM users"), "0");
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let app = spawn_app();
    app.user("dave").await;
    let mut wrong_times = Vec::new();
    let mut unknown_times = Vec::new();
    let mut replies = Vec::new();
    for _ in 0..4 {
        let started = Instant::now();
        replies.push(app.login("dave", "not-the-password").await);
        wrong_times.push(started.elapsed());
        let started = Instant::now();
        replies.push(app.login("nobody", "not-the-password").await);
        unknown_times.push(started.elapsed());
    }
    for reply in &replies {
        assert_eq!(reply, &replies[0], "identical status and body");
    }
    assert_error(
        replies[0].clone(),
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let (wrong, unknown) = (median(&mut wrong_times), median(&mut unknown_times));
    let ratio = wrong.as_secs_f64() / unknown.as_secs_f64();
    eprintln!("login failure medians: wrong password {wrong:?}, unknown user {unknown:?} (ratio {ratio:.2})");
    assert!(
        (0.5..2.0).contains(&ratio),
        "similar timing: {wrong:?} vs {unknown:?}"
    );
}

/// A login from the client `forwarded_for` (the app trusts one proxy hop),
/// with extra headers.
async fn login_as_client(
    app: &TestApp,
    forwarded_for: &str,
    headers: &[(&str, String)],
    login: &str,
    password: &str,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(app.host.url("/api/auth/login"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({ "login": login, "password": password }));
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.unwrap()
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_client_chosen_address_neither_escapes_throttling_nor_breaks_it() {
    let app = spawn_app();
    let user = app.user("erin").await;
    // The client sends its own spin-client-addr, new on every attempt, and
    // sometimes longer than any address: the runtime's own value (appended
    // after it) is the one that counts, and every failure is recorded.
    for attempt in 0..throttle::PAIR_LIMIT {
        let spoofed = if attempt % 2 == 0 {
            format!("10.9.{attempt}.1:80")
        } else {
            "x".repeat(300)
        };
        let response = reqwest::Client::new()
            .post(app.host.url("/api/auth/login"))
            .header("spin-client-addr", spoofed)
            .json(&json!({ "login": "erin", "password": "wrong-password" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    assert_eq!(
        app.sql(
            "SELECT count(*), count(DISTINCT client), min(client) FROM login_failures WHERE account = 'erin'"
        ),
        format!("{}|1|127.0.0.1", throttle::PAIR_LIMIT)
    );
    let response = reqwest::Client::new()
        .post(app.host.url("/api/auth/login"))
        .header("spin-client-addr", "192.0.2.200:1")
        .json(&json!({ "login": "erin", "password": user.password }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait = retry_after(&response);
    assert!((850..=900).contains(&wait), "retry after {wait} s");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_requests");
}

#[tokio::test]
async fn concurrent_guesses_are_all_counted_before_any_is_judged() {
    let app = spawn_app();
    let user = app.user("gina").await;
    use futures::StreamExt;
    let statuses: Vec<StatusCode> = futures::stream::iter(0..40)
        .map(|_| async { app.login("gina", "wrong-password").await.0 })
        .buffer_unordered(16)
        .collect()
        .await;
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    let judged = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!(
        (judged, refused),
        (throttle::PAIR_LIMIT as usize, 40 - throttle::PAIR_LIMIT as usize),
        "exactly the limit of guesses were checked: {statuses:?}"
    );
    assert_eq!(
        app.login("gina", &user.password).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn an_attacker_cannot_lock_the_owner_out() {
    let app = spawn_app_with(|host| host.arg("--variable").arg("trusted_proxy_hops=1"));
    let user = app.user("hana").await;
    // Many attackers (addresses behind the trusted proxy), each failing.
    for attacker in 0..4 {
        let address = format!("203.0.113.{attacker}");
        for _ in 0..throttle::PAIR_LIMIT {
            let response = login_as_client(&app, &address, &[], "hana", "wrong-password").await;
            assert!(
                [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(&response.status()),
                "{}",
                response.status()
            );
        }
        let refused = login_as_client(&app, &address, &[], "hana", &user.password).await;
        assert_eq!(
            refused.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "attacker {address}"
        );
    }
    assert!(
        app.sql("SELECT count(*) FROM login_failures WHERE account = 'hana'")
            .parse::<i64>()
            .unwrap()
            >= throttle::ACCOUNT_SLOWDOWN_FROM
    );
    // The owner, from a client that has not failed, gets in at once, even
    // with a forged X-Forwarded-For prefix naming an attacker.
    let owner = login_as_client(&app, "203.0.113.0, 198.51.100.7", &[], "hana", &user.password).await;
    assert_eq!(owner.status(), StatusCode::OK);
    // An attacker that failed before is slowed down account-wide.
    let slowed = login_as_client(&app, "203.0.113.0", &[], "hana", "another-guess").await;
    assert_eq!(slowed.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&slowed) >= 1);
}

#[tokio::test]
async fn spraying_one_client_over_many_accounts_is_refused() {
    let app = spawn_app_with(|host| host.arg("--variable").arg("trusted_proxy_hops=1"));
    app.user("ivan").await;
    // Failures already recorded for this client on other accounts, plus an
    // hour-old one that must be pruned with the first new failure.
    app.sql(&format!(
        "INSERT INTO login_failures (account, client) \
         SELECT 'sprayed' || n, '203.0.113.50' FROM generate_series(1, {}) n; \
         INSERT INTO login_failures (account, client, failed_at) \
         VALUES ('old-victim', '198.51.100.1', (now() AT TIME ZONE 'utc') - interval '1 hour')",
        throttle::CLIENT_LIMIT - 1
    ));
    let last = login_as_client(&app, "203.0.113.50", &[], "ivan", "wrong-password").await;
    assert_eq!(last.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.sql("SELECT count(*) FROM login_failures WHERE account = 'old-victim'"),
        "0"
    );
    let refused = login_as_client(&app, "203.0.113.50", &[], "someone-else", "x").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another client is unaffected.
    let other = login_as_client(&app, "198.51.100.9", &[], "someone-else", "x").await;
    assert_eq!(other.status(), StatusCode::UNAUTHORIZED);
}

/// Registers user `n` from `client` (an address behind the one trusted
/// proxy); the status.
async fn register_as_client(app: &TestApp, client: &str, n: i64) -> StatusCode {
    reqwest::Client::new()
        .post(app.host.url("/api/auth/register"))
        .header("x-forwarded-for", client)
        .json(&json!({
            "username": format!("u{n}-{}", client.len()),
            "email": format!("u{n}@{}.example", client.len()),
            "password": "long-enough-pw",
        }))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn registrations_are_throttled_per_client() {
    let app = spawn_app_with(|host| host.arg("--variable").arg("trusted_proxy_hops=1"));
    for n in 0..throttle::REGISTRATION_LIMIT {
        assert_eq!(
            register_as_client(&app, "203.0.113.7", n).await,
            StatusCode::CREATED
        );
    }
    assert_eq!(
        register_as_client(&app, "203.0.113.7", throttle::REGISTRATION_LIMIT).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        register_as_client(&app, "198.51.100.25", 0).await,
        StatusCode::CREATED
    );
    assert_eq!(
        app.sql("SELECT count(*) FROM users"),
        (throttle::REGISTRATION_LIMIT + 1).to_string()
    );
}

#[tokio::test]
async fn a_refused_registration_costs_no_password_hash() {
    let app = spawn_app_with(|host| host.arg("--variable").arg("trusted_proxy_hops=1"));
    // One client at its limit already.
    app.sql(&format!(
        "INSERT INTO registrations (client) SELECT '203.0.113.9' FROM generate_series(1, {})",
        throttle::REGISTRATION_LIMIT
    ));
    let cpu_per = async |client: &str, count: i64, expected: StatusCode| {
        let before = app.host.cpu_time().unwrap();
        for n in 0..count {
            assert_eq!(register_as_client(&app, client, n).await, expected);
        }
        (app.host.cpu_time().unwrap() - before) / count as u32
    };
    let hashed = cpu_per("198.51.100.30", 10, StatusCode::CREATED).await;
    let refused = cpu_per("203.0.113.9", 30, StatusCode::TOO_MANY_REQUESTS).await;
    eprintln!("host CPU per registration: {hashed:?} created, {refused:?} refused");
    assert!(
        refused * 4 < hashed,
        "a refusal costs {refused:?} of CPU, a registration {hashed:?}"
    );
}

#[tokio::test]
async fn failed_logins_count_against_the_account_whatever_names_it() {
    let app = spawn_app();
    let user = app.user("kira").await;
    for attempt in 0..throttle::PAIR_LIMIT {
        let login = if attempt % 2 == 0 {
            "kira"
        } else {
            "KIRA@example.com"
        };
        assert_eq!(
            app.login(login, "wrong-password").await.0,
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}"
        );
    }
    for login in ["kira", "kira@example.com"] {
        let (status, body) = app.login(login, &user.password).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{login}: {body}");
    }
}

#[tokio::test]
async fn changing_the_password_revokes_other_sessions() {
    let app = spawn_app();
    let user = app.user("gina").await;
    let (_, other) = app.login("gina", &user.password).await;
    let other = other["token"].as_str().unwrap().to_owned();

    let wrong = app
        .call(
            Method::PUT,
            "/api/auth/password",
            Some(&user.token),
            Some(json!({ "current_password": "nope-nope", "new_password": "a-new-password" })),
        )
        .await;
    assert_error(wrong, StatusCode::FORBIDDEN, "wrong_password");

    let (status, _) = app
        .call(
            Method::PUT,
            "/api/auth/password",
            Some(&user.token),
            Some(json!({ "current_password": user.password, "new_password": "a-new-password" })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .call(Method::GET, "/api/auth/me", Some(&user.token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "the session that changed it stays");
    let revoked = app.call(Method::GET, "/api/auth/me", Some(&other), None).await;
    assert_error(revoked, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_error(
        app.login("gina", &user.password).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    assert_eq!(app.login("gina", "a-new-password").await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_disabled_user_is_locked_out_at_once() {
    let app = spawn_app();
    let admin = app.user("admin").await;
    let user = app.user("hank").await;
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/api/admin/users/{}", user.id),
            Some(&admin.token),
            Some(json!({ "disabled": true })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let me = app
        .call(Method::GET, "/api/auth/me", Some(&user.token), None)
        .await;
    assert_error(me, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_error(
        app.login("hank", &user.password).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    assert_eq!(
        app.sql(&format!(
            "SELECT count(*) FROM sessions WHERE user_id = {}",
            user.id
        )),
        "0"
    );
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let app = spawn_app();
    let user = app.user("ivy").await;
    app.sql("UPDATE sessions SET expires_at = (now() AT TIME ZONE 'utc') - interval '1 second'");
    let me = app
        .call(Method::GET, "/api/auth/me", Some(&user.token), None)
        .await;
    assert_error(me, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn sessions_expire_after_the_configured_lifetime() {
    let app = spawn_app_with(|host| host.arg("--variable").arg("session_lifetime_seconds=3600"));
    let before = app.sql("SELECT (now() AT TIME ZONE 'utc')::text");
    let user = app.user("jill").await;
    let lifetime = app.sql(&format!(
        "SELECT extract(epoch FROM expires_at - '{before}'::timestamp)::integer FROM sessions"
    ));
    let seconds: i64 = lifetime.parse().unwrap();
    assert!((3599..=3605).contains(&seconds), "{seconds}");
    assert_eq!(
        app.call(Method::GET, "/api/auth/me", Some(&user.token), None)
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn missing_or_malformed_tokens_are_401() {
    let app = spawn_app();
    app.user("kim").await;
    for token in [None, Some("garbage"), Some(&*"A".repeat(43))] {
        let reply = app.call(Method::GET, "/api/auth/me", token, None).await;
        assert_error(reply, StatusCode::UNAUTHORIZED, "unauthorized");
    }
}

#[tokio::test]
async fn stored_passwords_are_argon2id_with_owasp_parameters() {
    let app = spawn_app();
    app.user("lena").await;
    let stored = app.sql("SELECT password FROM users");
    assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
    assert!(!stored.contains("lena-secret-pw"));
}

#[tokio::test]
async fn no_response_ever_contains_a_password_hash() {
    let app = spawn_app();
    let admin = app.user("admin").await;
    let user = app.user("mia").await;
    app.call(Method::GET, "/api/auth/me", Some(&user.token), None)
        .await;
    app.call(
        Method::PATCH,
        "/api/auth/me",
        Some(&user.token),
        Some(json!({ "email": "mia@new.example" })),
    )
    .await;
    app.call(Method::GET, "/api/admin/users", Some(&admin.token), None)
        .await;
    app.call(
        Method::PATCH,
        &format!("/api/admin/users/{}", user.id),
        Some(&admin.token),
        Some(json!({ "role": "viewer" })),
    )
    .await;
    let bodies = app.bodies.lock().unwrap();
    assert!(bodies.len() >= 8);
    for body in bodies.iter() {
        assert!(!body.contains("$argon2"), "a response revealed a hash: {body}");
        assert!(
            !body.contains("\"password\""),
            "a response has a password field: {body}"
        );
    }
}

#[tokio::test]
async fn emails_can_be_changed_and_stay_unique() {
    let app = spawn_app();
    app.user("nora").await;
    let user = app.user("olga").await;
    let (status, me) = app
        .call(
            Method::PATCH,
            "/api/auth/me",
            Some(&user.token),
            Some(json!({ "email": "olga@new.example" })),
        )
        .await;
    assert_error((status, me), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    let wrong = app
        .call(
            Method::PATCH,
            "/api/auth/me",
            Some(&user.token),
            Some(json!({ "email": "olga@new.example", "current_password": "not-it-at-all" })),
        )
        .await;
    assert_error(wrong, StatusCode::FORBIDDEN, "wrong_password");
    assert_eq!(
        app.sql("SELECT email FROM users WHERE username = 'olga'"),
        "olga@example.com"
    );
    let (status, me) = app
        .call(
            Method::PATCH,
            "/api/auth/me",
            Some(&user.token),
            Some(json!({ "email": "olga@new.example", "current_password": user.password })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["email"], "olga@new.example");
    let taken = app
        .call(
            Method::PATCH,
            "/api/auth/me",
            Some(&user.token),
            Some(json!({ "email": "NORA@example.com", "current_password": user.password })),
        )
        .await;
    assert_error(taken, StatusCode::CONFLICT, "email_taken");
    let invalid = app
        .call(
            Method::PATCH,
            "/api/auth/me",
            Some(&user.token),
            Some(json!({ "email": "nope", "current_password": user.password })),
        )
        .await;
    assert_error(invalid, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(
        app.sql("SELECT email FROM users WHERE username = 'olga'"),
        "olga@new.example"
    );
}

#[tokio::test]
async fn bodies_over_the_json_limit_are_413() {
    let app = spawn_app_with(|host| host.arg("--variable").arg("max_json_bytes=1024"));
    let big = json!({ "username": "x".repeat(2000), "email": "a@b.co", "password": "long-enough" });
    let reply = app
        .call(Method::POST, "/api/auth/register", None, Some(big.clone()))
        .await;
    assert_error(reply, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    // Without a Content-Length the limit still holds as the body streams in.
    let chunks = futures::stream::iter(
        (0..8)
            .map(|_| Ok::<_, std::io::Error>(vec![b' '; 512]))
            .chain(std::iter::once(Ok(big.to_string().into_bytes()))),
    );
    let response = reqwest::Client::new()
        .post(app.host.url("/api/auth/register"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.sql("SELECT count(*) FROM users"), "0");
}

#[tokio::test]
async fn malformed_json_is_400_and_other_media_types_415() {
    let app = spawn_app();
    let response = reqwest::Client::new()
        .post(app.host.url("/api/auth/login"))
        .header("content-type", "application/json")
        .body("{\"login\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "malformed_json");

    let response = reqwest::Client::new()
        .post(app.host.url("/api/auth/login"))
        .header("content-type", "text/plain")
        .body("login=x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn closed_registration_admits_only_the_first_user() {
    let app = spawn_app_with(|host| host.arg("--variable").arg("registration_open=false"));
    let (status, _) = app.register("owner", "owner@example.com", "password-owner").await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the first user bootstraps the instance"
    );
    let closed = app.register("guest", "guest@example.com", "password-guest").await;
    assert_error(closed, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(app.sql("SELECT count(*) FROM users"), "1");
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let app = spawn_app();
    let missing = app.call(Method::GET, "/api/auth/nothing", None, None).await;
    assert_error(missing, StatusCode::NOT_FOUND, "not_found");
    let response = app.request(Method::GET, "/api/auth/login", None, None).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST");
    let (status, health) = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "ok");
}
