//! User administration: admins only, paged, and never leaving the instance
//! without an enabled administrator.

use crate::helpers::{assert_error, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn viewers_cannot_reach_admin_routes() {
    let app = spawn_app();
    let admin = app.user("admin").await;
    let viewer = app.user("viewer").await;
    let path = format!("/api/admin/users/{}", admin.id);
    for (method, path, body) in [
        (Method::GET, "/api/admin/users".to_owned(), None),
        (Method::PATCH, path.clone(), Some(json!({ "role": "viewer" }))),
        (Method::DELETE, path, None),
    ] {
        let reply = app.call(method, &path, Some(&viewer.token), body).await;
        assert_error(reply, StatusCode::FORBIDDEN, "forbidden");
    }
    assert_eq!(
        app.sql("SELECT role FROM users WHERE username = 'admin'"),
        "admin"
    );
}

#[tokio::test]
async fn admins_list_users_page_by_page() {
    let app = spawn_app();
    let admin = app.user("admin").await;
    for i in 0..4 {
        app.register(&format!("user{i}"), &format!("user{i}@example.com"), "password-x")
            .await;
    }
    let (users, _) = app
        .every_page(&admin.token, "/api/admin/users?limit=2", "users")
        .await;
    assert!(users.iter().all(|u| u["email"].is_string()), "admins see emails");
    let seen: Vec<&str> = users.iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(seen, ["admin", "user0", "user1", "user2", "user3"]);
    let bad = app
        .call(Method::GET, "/api/admin/users?limit=0", Some(&admin.token), None)
        .await;
    assert_error(bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    let forged = app
        .call(
            Method::GET,
            "/api/admin/users?cursor=zzz",
            Some(&admin.token),
            None,
        )
        .await;
    assert_error(forged, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
}

#[tokio::test]
async fn admins_change_roles_and_delete_users() {
    let app = spawn_app();
    let admin = app.user("admin").await;
    let user = app.user("promoted").await;
    let (status, changed) = app
        .call(
            Method::PATCH,
            &format!("/api/admin/users/{}", user.id),
            Some(&admin.token),
            Some(json!({ "role": "admin" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["role"], "admin");
    let invalid = app
        .call(
            Method::PATCH,
            &format!("/api/admin/users/{}", user.id),
            Some(&admin.token),
            Some(json!({ "role": "root" })),
        )
        .await;
    assert_error(invalid, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");

    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/admin/users/{}", user.id),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.sql(&format!("SELECT count(*) FROM users WHERE id = {}", user.id)),
        "0"
    );
    assert_eq!(
        app.sql(&format!(
            "SELECT count(*) FROM sessions WHERE user_id = {}",
            user.id
        )),
        "0"
    );
    for path in [
        format!("/api/admin/users/{}", user.id),
        "/api/admin/users/not-a-number".to_owned(),
    ] {
        let gone = app.call(Method::DELETE, &path, Some(&admin.token), None).await;
        assert_error(gone, StatusCode::NOT_FOUND, "not_found");
    }
}

#[tokio::test]
async fn the_last_enabled_admin_cannot_be_removed() {
    let app = spawn_app();
    let admin = app.user("admin").await;
    let path = format!("/api/admin/users/{}", admin.id);
    for body in [json!({ "role": "viewer" }), json!({ "disabled": true })] {
        let reply = app
            .call(Method::PATCH, &path, Some(&admin.token), Some(body))
            .await;
        assert_error(reply, StatusCode::CONFLICT, "last_admin");
    }
    let reply = app.call(Method::DELETE, &path, Some(&admin.token), None).await;
    assert_error(reply, StatusCode::CONFLICT, "last_admin");
    assert_eq!(
        app.sql("SELECT role || ',' || disabled FROM users"),
        "admin,false"
    );
}
