//! The notification feed end to end: what sharing, replacing, deleting and
//! downloading tell whom, the feed's paging and read marks, preferences
//! that mute kinds, and that nobody sees another's notifications.

use crate::helpers::{TestApp, User, assert_error, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

impl TestApp {
    /// The user's whole feed (`status`: unread or all), newest first, read
    /// `limit` at a time; and the unread count of the last page.
    async fn feed(&self, user: &User, status: &str, limit: usize) -> (Vec<Value>, i64) {
        let path = format!("/api/notifications?status={status}&limit={limit}");
        let (all, last) = self.every_page(&user.token, &path, "notifications").await;
        (all, last["unread_count"].as_i64().unwrap())
    }

    async fn as_user(&self, method: Method, user: &User, path: &str) -> (StatusCode, Value) {
        self.call(method, path, Some(&user.token), None).await
    }

    async fn kinds(&self, user: &User) -> Vec<String> {
        let (feed, _) = self.feed(user, "all", 50).await;
        feed.iter()
            .map(|n| n["kind"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn preferences(&self, user: &User, change: Value) -> (StatusCode, Value) {
        self.call(
            Method::PATCH,
            "/api/notifications/preferences",
            Some(&user.token),
            Some(change),
        )
        .await
    }

    async fn replace_content(&self, user: &User, file: &str, body: &'static str) -> StatusCode {
        reqwest::Client::new()
            .put(self.host.url(&format!("/api/files/{file}/content")))
            .bearer_auth(&user.token)
            .header("content-type", "text/plain")
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
    }
}

async fn uploaded(app: &TestApp, user: &User, name: &str) -> String {
    let (status, file) = app.upload(&user.token, name, b"first".to_vec()).await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    file["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn changes_to_a_file_are_told_to_everyone_else_who_holds_it() {
    let app = spawn_app();
    let owner = app.user("nora").await;
    let editor = app.user("eddy").await;
    let reader = app.user("rob").await;
    let file = uploaded(&app, &owner, "plan.txt").await;
    for (who, level) in [("eddy", "write"), ("rob", "read")] {
        let (status, _) = app.share(&owner.token, &file, who, level).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    assert_eq!(app.kinds(&editor).await, ["share_granted"]);

    // The editor replaces it: the owner and the reader hear, not the editor.
    assert_eq!(
        app.replace_content(&editor, &file, "second").await,
        StatusCode::OK
    );
    assert_eq!(app.kinds(&owner).await, ["file_replaced"]);
    assert_eq!(app.kinds(&reader).await, ["file_replaced", "share_granted"]);
    assert_eq!(app.kinds(&editor).await, ["share_granted"]);
    let (feed, _) = app.feed(&reader, "all", 50).await;
    assert_eq!(feed[0]["message"], "eddy replaced “plan.txt”");
    assert_eq!(feed[0]["data"]["file_id"], file.as_str());
    assert_eq!(feed[0]["data"]["by"]["username"], "eddy");
    // No webhook: being in the feed is the delivery.
    assert_eq!(feed[0]["delivery"], "sent");

    // Downloads by others are told only to an owner who asked.
    let (status, _, _) = app.download(&reader.token, &file).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.kinds(&owner).await, ["file_replaced"]);
    let (status, preferences) = app
        .preferences(&owner, json!({"kinds": {"file_downloaded": true}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{preferences}");
    assert_eq!(preferences["kinds"]["file_downloaded"], true);
    // Once an hour per file and downloader, however often; the owner's
    // own downloads are nobody's news.
    app.download(&reader.token, &file).await;
    app.download(&reader.token, &file).await;
    app.download(&owner.token, &file).await;
    assert_eq!(app.kinds(&owner).await, ["file_downloaded", "file_replaced"]);

    // The owner deletes it: both grantees hear, the owner does not.
    assert_eq!(app.delete_file(&owner.token, &file).await, StatusCode::NO_CONTENT);
    assert_eq!(app.kinds(&editor).await, ["file_deleted", "share_granted"]);
    assert_eq!(app.kinds(&reader).await[0], "file_deleted");
    assert_eq!(app.kinds(&owner).await, ["file_downloaded", "file_replaced"]);
}

#[tokio::test]
async fn the_feed_pages_marks_read_and_is_only_ever_ones_own() {
    let app = spawn_app();
    let owner = app.user("olive").await;
    let friend = app.user("fay").await;
    let other = app.user("otto").await;
    let mut files = Vec::new();
    for i in 0..7 {
        let file = uploaded(&app, &owner, &format!("f{i}.txt")).await;
        app.share(&owner.token, &file, "fay", "read").await;
        files.push(file);
    }
    let (feed, unread) = app.feed(&friend, "all", 3).await;
    assert_eq!((feed.len(), unread), (7, 7));
    let ids: Vec<i64> = feed.iter().map(|n| n["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    assert_eq!(feed[0]["data"]["file_id"], files[6].as_str());

    let read = |id: i64, user: &User| {
        let path = format!("/api/notifications/{id}/read");
        let token = user.token.clone();
        let app = &app;
        async move { app.call(Method::POST, &path, Some(&token), None).await }
    };
    assert_eq!(read(ids[0], &friend).await.0, StatusCode::NO_CONTENT);
    assert_eq!(read(ids[0], &friend).await.0, StatusCode::NO_CONTENT);
    // Someone else's, or none at all: the same 404.
    assert_error(read(ids[1], &other).await, StatusCode::NOT_FOUND, "not_found");
    assert_error(read(ids[1], &owner).await, StatusCode::NOT_FOUND, "not_found");
    // One spelling per id: no sign, no leading zero.
    for alias in [
        "x",
        &format!("+{}", ids[1]),
        &format!("0{}", ids[1]),
        "-1",
        "99999999999999999999",
    ] {
        let path = format!("/api/notifications/{alias}/read");
        assert_error(
            app.call(Method::POST, &path, Some(&friend.token), None).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
    }
    let (unread_feed, unread) = app.feed(&friend, "unread", 2).await;
    assert_eq!((unread_feed.len(), unread), (6, 6));
    assert!(
        unread_feed
            .iter()
            .all(|n| n["read"] == false && n["id"] != ids[0])
    );
    let (feed, _) = app.feed(&friend, "all", 50).await;
    assert!(feed[0]["read"] == true && feed[0]["read_at"].is_string());

    let (status, _) = app
        .as_user(Method::POST, &friend, "/api/notifications/read-all")
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.feed(&friend, "unread", 50).await, (vec![], 0));
    // Nobody else's feed holds any of it.
    assert!(app.feed(&other, "all", 50).await.0.is_empty());
    assert!(app.feed(&owner, "all", 50).await.0.is_empty());

    let bad = app
        .as_user(Method::GET, &friend, "/api/notifications?status=new")
        .await;
    assert_error(bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    let anonymous = app.call(Method::GET, "/api/notifications", None, None).await;
    assert_eq!(anonymous.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn muted_kinds_are_never_written() {
    let app = spawn_app();
    let owner = app.user("mia").await;
    let friend = app.user("max").await;
    let (status, defaults) = app
        .as_user(Method::GET, &friend, "/api/notifications/preferences")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(defaults["kinds"]["share_granted"], true);
    assert_eq!(defaults["kinds"]["file_downloaded"], false);
    assert_eq!(defaults["webhook_enabled"], true);

    let (status, muted) = app
        .preferences(
            &friend,
            json!({"kinds": {"share_granted": false}, "webhook_enabled": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{muted}");
    assert_eq!(muted["kinds"]["share_granted"], false);
    assert_eq!(muted["webhook_enabled"], false);
    let file = uploaded(&app, &owner, "quiet.txt").await;
    app.share(&owner.token, &file, "max", "read").await;
    app.call(
        Method::PATCH,
        &format!("/api/files/{file}/permissions/{}", friend.id),
        Some(&owner.token),
        Some(json!({"permission": "write"})),
    )
    .await;
    assert_eq!(app.kinds(&friend).await, ["share_changed"]);

    // What is not named stays as it was.
    let (_, kept) = app.preferences(&friend, json!({"kinds": {}})).await;
    assert_eq!(
        (
            kept["kinds"]["share_granted"].clone(),
            kept["webhook_enabled"].clone()
        ),
        (json!(false), json!(false))
    );
    for change in [
        json!({"kinds": {"spam": true}}),
        json!({"kinds": {"share_granted": "yes"}}),
        json!({"webhook_enabled": 1}),
        json!({"colour": "blue"}),
    ] {
        let reply = app.preferences(&friend, change).await;
        assert_error(reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    }
    let (_, unchanged) = app
        .as_user(Method::GET, &friend, "/api/notifications/preferences")
        .await;
    assert_eq!(unchanged, kept);
    // One user's preferences are theirs alone.
    let (_, others) = app
        .as_user(Method::GET, &owner, "/api/notifications/preferences")
        .await;
    assert_eq!(
        (
            others["kinds"]["share_granted"].clone(),
            others["webhook_enabled"].clone()
        ),
        (json!(true), json!(true))
    );
}

#[tokio::test]
async fn sharing_on_and_off_cannot_flood_a_feed() {
    let app = spawn_app();
    let (mallory, vic) = (app.user("mallory").await, app.user("vic").await);
    let file = uploaded(&app, &mallory, "click me.txt").await;
    let grant = format!("/api/files/{file}/permissions/{}", vic.id);
    for _ in 0..25 {
        let (status, _) = app.share(&mallory.token, &file, "vic", "read").await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _) = app.as_user(Method::DELETE, &mallory, &grant).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    // One file: the latest news replaced each earlier unread one.
    let (feed, unread) = app.feed(&vic, "all", 50).await;
    assert_eq!((feed.len(), unread), (1, 1), "{feed:?}");
    assert_eq!(
        feed[0]["message"],
        "mallory stopped sharing “click me.txt” with you"
    );

    // Many files: twenty an hour from one person, then nothing more.
    for n in 0..25 {
        let other = uploaded(&app, &mallory, &format!("bait {n}.txt")).await;
        let (status, _) = app.share(&mallory.token, &other, "vic", "read").await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (feed, _) = app.feed(&vic, "all", 50).await;
    assert_eq!(feed.len(), 20, "{feed:?}");
    let (_, shared) = app
        .as_user(Method::GET, &vic, "/api/files?scope=shared&limit=100")
        .await;
    assert_eq!(shared["files"].as_array().unwrap().len(), 25, "every grant holds");
    // Someone else still gets through.
    let nora = app.user("nora").await;
    let hers = uploaded(&app, &nora, "hello.txt").await;
    app.share(&nora.token, &hers, "vic", "read").await;
    assert_eq!(app.feed(&vic, "all", 50).await.0.len(), 21);
}
