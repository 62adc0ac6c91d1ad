//! Sharing: grants through the permissions service, shared listings,
//! immediate revocation, and an authorization matrix over every route.

use crate::helpers::{TestApp, User, assert_error, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use spindrive_domain::file::Level;

impl TestApp {
    /// `POST /api/files/:id/permissions` as `token`.
    pub async fn share(&self, token: &str, file: &str, username: &str, level: &str) -> (StatusCode, Value) {
        let body = json!({ "username": username, "permission": level });
        self.call(
            Method::POST,
            &format!("/api/files/{file}/permissions"),
            Some(token),
            Some(body),
        )
        .await
    }

    /// Everything a refusal must leave as it was, in one value.
    fn snapshot(&self) -> String {
        self.sql(
            "SELECT md5(concat_ws('|', \
               (SELECT string_agg(concat_ws(',', id, username, email, role, disabled, quota_bytes, used_bytes), ';' ORDER BY id) FROM users), \
               (SELECT string_agg(concat_ws(',', id, owner_id, file_name, file_path, file_size, content_type, sha256, is_shared, version), ';' ORDER BY id) FROM files), \
               (SELECT string_agg(concat_ws(',', file_id, user_id, permission, is_owner), ';' ORDER BY file_id, user_id) FROM permissions), \
               (SELECT string_agg(md5(data), ';' ORDER BY storage_key, seq) FROM file_chunks), \
               (SELECT count(*) FROM sessions), (SELECT count(*) FROM notifications), (SELECT count(*) FROM uploads)))",
        )
    }
}

#[tokio::test]
async fn grant_change_and_revoke_take_effect_at_once() {
    let app = spawn_app();
    let owner = app.user("owen").await;
    let bea = app.user("bea").await;
    let (_, file) = app.upload(&owner.token, "plan.txt", b"the plan".to_vec()).await;
    let id = file["id"].as_str().unwrap();
    let path = format!("/api/files/{id}");

    let (status, grant) = app.share(&owner.token, id, "BEA", "read").await;
    assert_eq!(status, StatusCode::CREATED, "{grant}");
    assert_eq!(grant["user"]["username"], "bea");
    assert_eq!(grant["permission"], "read");
    assert_eq!(grant["granted_by"]["username"], "owen");
    let (_, shared) = app
        .call(Method::GET, "/api/files?scope=shared", Some(&bea.token), None)
        .await;
    assert_eq!(shared["files"][0]["id"], id);
    assert_eq!(shared["files"][0]["my_permission"], "read");
    assert_eq!(shared["files"][0]["is_shared"], true);
    let rename = json!({ "file_name": "mine.txt" });
    let refused = app
        .call(Method::PATCH, &path, Some(&bea.token), Some(rename.clone()))
        .await;
    assert_error(refused, StatusCode::NOT_FOUND, "not_found");

    // Granting again changes the level (200), at once.
    let (status, grant) = app.share(&owner.token, id, "bea", "write").await;
    assert_eq!((status, &grant["permission"]), (StatusCode::OK, &json!("write")));
    let (status, _) = app
        .call(Method::PATCH, &path, Some(&bea.token), Some(rename))
        .await;
    assert_eq!(status, StatusCode::OK);
    let downgrade = json!({ "permission": "read" });
    let grant_path = format!("/api/files/{id}/permissions/{}", bea.id);
    let (status, grant) = app
        .call(Method::PATCH, &grant_path, Some(&owner.token), Some(downgrade))
        .await;
    assert_eq!((status, &grant["permission"]), (StatusCode::OK, &json!("read")));

    // Revoked: 404 everywhere, and the file is private again.
    let (status, _) = app
        .call(Method::DELETE, &grant_path, Some(&owner.token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for (method, route) in [
        (Method::GET, path.clone()),
        (Method::GET, format!("{path}/content")),
        (Method::GET, format!("{path}/permissions")),
        (
            Method::GET,
            format!("/api/permissions/check?file_id={id}&action=read"),
        ),
    ] {
        let (status, _) = app.call(method.clone(), &route, Some(&bea.token), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {route}");
    }
    let (_, shared) = app
        .call(Method::GET, "/api/files?scope=shared", Some(&bea.token), None)
        .await;
    assert_eq!(shared["files"], json!([]));
    assert_eq!(
        app.sql(&format!("SELECT is_shared FROM files WHERE id = '{id}'")),
        "f"
    );
    // Every change told bea, in the same transaction as the change; unread
    // and minutes apart, each replaced the one before it.
    assert_eq!(
        app.sql(&format!(
            "SELECT string_agg(kind, ',' ORDER BY id) FROM notifications WHERE user_id = {}",
            bea.id
        )),
        "share_revoked"
    );
    assert_eq!(
        app.sql(&format!(
            "SELECT count(*) FROM notifications WHERE user_id <> {}",
            bea.id
        )),
        "0"
    );

    // A grantee's account deleted: its grant goes, and is_shared with it.
    let cid = app.user("cid").await;
    assert_eq!(
        app.share(&owner.token, id, "cid", "read").await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        app.sql(&format!("SELECT is_shared FROM files WHERE id = '{id}'")),
        "t"
    );
    assert_eq!(
        app.delete_user(&owner.token, cid.id).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.sql(&format!("SELECT is_shared FROM files WHERE id = '{id}'")),
        "f"
    );
    assert_eq!(
        app.sql(&format!(
            "SELECT count(*) FROM permissions WHERE file_id = '{id}'"
        )),
        "1"
    );
}

#[tokio::test]
async fn sharing_refuses_what_makes_no_sense() {
    let app = spawn_app();
    let admin = app.user("root").await;
    let owner = app.user("oona").await;
    let reader = app.user("rex").await;
    let off = app.user("off").await;
    app.sql(&format!("UPDATE users SET disabled = true WHERE id = {}", off.id));
    let (_, file) = app.upload(&owner.token, "f.txt", b"f".to_vec()).await;
    let id = file["id"].as_str().unwrap();
    app.share(&owner.token, id, "rex", "delete").await;
    let before = app.snapshot();

    assert_error(
        app.share(&owner.token, id, "ghost", "read").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        app.share(&owner.token, id, "off", "read").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        app.share(&owner.token, id, "rex", "admin").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    assert_error(
        app.share(&owner.token, id, "oona", "read").await,
        StatusCode::CONFLICT,
        "owner_grant",
    );
    assert_error(
        app.share(&admin.token, id, "root", "read").await,
        StatusCode::CONFLICT,
        "cannot_share_with_yourself",
    );
    // A delete grantee may not re-share: only the owner (and admins) decide who sees a file.
    assert_error(
        app.share(&reader.token, id, "root", "read").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let owner_row = format!("/api/files/{id}/permissions/{}", owner.id);
    let revoke_owner = app
        .call(Method::DELETE, &owner_row, Some(&admin.token), None)
        .await;
    assert_error(revoke_owner, StatusCode::CONFLICT, "owner_grant");
    let downgrade_owner = app
        .call(
            Method::PATCH,
            &owner_row,
            Some(&owner.token),
            Some(json!({ "permission": "read" })),
        )
        .await;
    assert_error(downgrade_owner, StatusCode::CONFLICT, "owner_grant");
    let no_grant = format!("/api/files/{id}/permissions/{}", admin.id);
    assert_error(
        app.call(Method::DELETE, &no_grant, Some(&owner.token), None)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_eq!(app.snapshot(), before, "refusals change nothing");

    // The grantee sees its own grant only; the owner and admins see all.
    let list = format!("/api/files/{id}/permissions");
    let (_, own) = app.call(Method::GET, &list, Some(&reader.token), None).await;
    assert_eq!(own["permissions"].as_array().unwrap().len(), 1);
    assert_eq!(own["permissions"][0]["user"]["username"], "rex");
    let (_, all) = app.call(Method::GET, &list, Some(&admin.token), None).await;
    let users: Vec<&str> = all["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["user"]["username"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["oona", "rex"], "the owner's row first");
    assert_eq!(all["permissions"][0]["is_owner"], true);

    let check = |action: &str| format!("/api/permissions/check?file_id={id}&action={action}");
    let (_, can) = app
        .call(Method::GET, &check("delete"), Some(&reader.token), None)
        .await;
    assert_eq!(
        (&can["allowed"], &can["my_permission"]),
        (&json!(true), &json!("delete"))
    );
    let bad = app
        .call(Method::GET, &check("share"), Some(&reader.token), None)
        .await;
    assert_error(bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
}

#[tokio::test]
async fn racing_grants_leave_one_row_and_a_deleted_file_none() {
    let app = spawn_app();
    let admin = app.user("root").await;
    let owner = app.user("olga").await;
    app.user("gus").await;
    for round in 0..20 {
        let (_, file) = app
            .upload(&owner.token, &format!("r{round}"), b"r".to_vec())
            .await;
        let id = file["id"].as_str().unwrap().to_owned();
        let (a, b) = tokio::join!(
            app.share(&owner.token, &id, "gus", "read"),
            app.share(&admin.token, &id, "gus", "write"),
        );
        let statuses = [a.0, b.0];
        assert!(statuses.contains(&StatusCode::CREATED), "{statuses:?}");
        assert_eq!(
            app.sql(&format!(
                "SELECT count(*) FROM permissions WHERE file_id = '{id}' AND NOT is_owner"
            )),
            "1"
        );
        let (grant, deleted) = tokio::join!(
            app.share(&owner.token, &id, "root", "read"),
            app.delete_file(&owner.token, &id),
        );
        assert_eq!(deleted, StatusCode::NO_CONTENT);
        assert!(
            [StatusCode::CREATED, StatusCode::NOT_FOUND].contains(&grant.0),
            "{grant:?}"
        );
        assert_eq!(
            app.sql(&format!(
                "SELECT count(*) FROM permissions WHERE file_id = '{id}'"
            )),
            "0"
        );
    }
}

/// Who calls, in the matrix.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Caller {
    Owner,
    Reader,
    Writer,
    Deleter,
    Stranger,
    Admin,
    Disabled,
    Expired,
    Anonymous,
}

impl Caller {
    const ALL: [Caller; 9] = [
        Caller::Owner,
        Caller::Reader,
        Caller::Writer,
        Caller::Deleter,
        Caller::Stranger,
        Caller::Admin,
        Caller::Disabled,
        Caller::Expired,
        Caller::Anonymous,
    ];

    /// What this caller holds on a matrix file, by the domain's rules.
    fn level(self) -> Option<Level> {
        match self {
            Caller::Owner | Caller::Admin => Some(Level::Delete),
            Caller::Reader => Some(Level::Read),
            Caller::Writer => Some(Level::Write),
            Caller::Deleter => Some(Level::Delete),
            _ => None,
        }
    }

    fn authenticated(self) -> bool {
        !matches!(self, Caller::Disabled | Caller::Expired | Caller::Anonymous)
    }
}

/// What a route asks of its caller.
#[derive(Clone, Copy)]
enum Needs {
    Session,
    Level(Level),
    Share,
    Admin,
}

/// The status the rules give `caller` on a route needing `needs` whose
/// success is `ok`: 401 without a live session, 403 for a non-admin on an
/// admin route, 404 for a file the caller may not act on.
fn expected(caller: Caller, needs: Needs, ok: u16) -> u16 {
    if !caller.authenticated() {
        return 401;
    }
    let allowed = match needs {
        Needs::Session => true,
        Needs::Level(level) => caller.level().is_some_and(|held| held >= level),
        Needs::Share => matches!(caller, Caller::Owner | Caller::Admin),
        Needs::Admin => caller == Caller::Admin,
    };
    match (allowed, needs) {
        (true, _) => ok,
        (false, Needs::Admin) => 403,
        (false, _) => 404,
    }
}

/// A route's request for a cell: (file id, the cast, a user to delete) to
/// (method, path, JSON body).
type MakeRequest = Box<dyn Fn(&str, &Cast, i64) -> (Method, String, Option<Value>)>;

struct Cast {
    users: Vec<(Caller, User)>,
    target: User,
}

impl Cast {
    fn token(&self, caller: Caller) -> Option<&str> {
        self.users
            .iter()
            .find(|(c, _)| *c == caller)
            .map(|(_, u)| u.token.as_str())
    }

    fn user(&self, caller: Caller) -> &User {
        &self.users.iter().find(|(c, _)| *c == caller).unwrap().1
    }
}

#[tokio::test]
async fn the_authorization_matrix_holds_for_every_route_and_caller() {
    let app = spawn_app();
    let mut users = Vec::new();
    for (caller, name) in [
        (Caller::Admin, "root"),
        (Caller::Owner, "own"),
        (Caller::Reader, "reader"),
        (Caller::Writer, "writer"),
        (Caller::Deleter, "deleter"),
        (Caller::Stranger, "stranger"),
        (Caller::Disabled, "disabled"),
        (Caller::Expired, "expired"),
    ] {
        users.push((caller, app.user(name).await));
    }
    let target = app.user("target").await;
    let cast = Cast { users, target };
    app.sql(&format!(
        "UPDATE users SET disabled = true WHERE id = {}",
        cast.user(Caller::Disabled).id
    ));
    app.sql(&format!(
        "UPDATE sessions SET expires_at = (now() AT TIME ZONE 'utc') - interval '1 minute' WHERE user_id = {}",
        cast.user(Caller::Expired).id
    ));

    // Every route of auth (accounts), files, downloads and permissions.
    let routes: Vec<(&str, Needs, u16, MakeRequest)> = vec![
        (
            "GET /api/auth/me",
            Needs::Session,
            200,
            Box::new(|_, _, _| (Method::GET, "/api/auth/me".into(), None)),
        ),
        (
            "GET /api/admin/users",
            Needs::Admin,
            200,
            Box::new(|_, _, _| (Method::GET, "/api/admin/users".into(), None)),
        ),
        (
            "PATCH /api/admin/users/:id",
            Needs::Admin,
            200,
            Box::new(|_, c, _| {
                (
                    Method::PATCH,
                    format!("/api/admin/users/{}", c.target.id),
                    Some(json!({ "quota_bytes": 1 << 30 })),
                )
            }),
        ),
        (
            "DELETE /api/admin/users/:id",
            Needs::Admin,
            204,
            Box::new(|_, _, victim| (Method::DELETE, format!("/api/admin/users/{victim}"), None)),
        ),
        (
            "GET /api/files",
            Needs::Session,
            200,
            Box::new(|_, _, _| (Method::GET, "/api/files?scope=all".into(), None)),
        ),
        (
            "POST /api/files",
            Needs::Session,
            201,
            Box::new(|_, _, _| (Method::POST, "/api/files?name=new.bin".into(), None)),
        ),
        (
            "GET /api/files/:id",
            Needs::Level(Level::Read),
            200,
            Box::new(|f, _, _| (Method::GET, format!("/api/files/{f}"), None)),
        ),
        (
            "PATCH /api/files/:id",
            Needs::Level(Level::Write),
            200,
            Box::new(|f, _, _| {
                (
                    Method::PATCH,
                    format!("/api/files/{f}"),
                    Some(json!({ "file_name": "renamed" })),
                )
            }),
        ),
        (
            "DELETE /api/files/:id",
            Needs::Level(Level::Delete),
            204,
            Box::new(|f, _, _| (Method::DELETE, format!("/api/files/{f}"), None)),
        ),
        (
            "GET /api/files/:id/content",
            Needs::Level(Level::Read),
            200,
            Box::new(|f, _, _| (Method::GET, format!("/api/files/{f}/content"), None)),
        ),
        (
            "HEAD /api/files/:id/content",
            Needs::Level(Level::Read),
            200,
            Box::new(|f, _, _| (Method::HEAD, format!("/api/files/{f}/content"), None)),
        ),
        (
            "PUT /api/files/:id/content",
            Needs::Level(Level::Write),
            200,
            Box::new(|f, _, _| (Method::PUT, format!("/api/files/{f}/content"), None)),
        ),
        (
            "GET /api/files/:id/permissions",
            Needs::Level(Level::Read),
            200,
            Box::new(|f, _, _| (Method::GET, format!("/api/files/{f}/permissions"), None)),
        ),
        (
            "POST /api/files/:id/permissions",
            Needs::Share,
            200,
            Box::new(|f, _, _| {
                (
                    Method::POST,
                    format!("/api/files/{f}/permissions"),
                    Some(json!({ "username": "target", "permission": "write" })),
                )
            }),
        ),
        (
            "PATCH /api/files/:id/permissions/:user_id",
            Needs::Share,
            200,
            Box::new(|f, c, _| {
                (
                    Method::PATCH,
                    format!("/api/files/{f}/permissions/{}", c.target.id),
                    Some(json!({ "permission": "delete" })),
                )
            }),
        ),
        (
            "DELETE /api/files/:id/permissions/:user_id",
            Needs::Share,
            204,
            Box::new(|f, c, _| {
                (
                    Method::DELETE,
                    format!("/api/files/{f}/permissions/{}", c.target.id),
                    None,
                )
            }),
        ),
        (
            "GET /api/permissions/check",
            Needs::Level(Level::Read),
            200,
            Box::new(|f, _, _| {
                (
                    Method::GET,
                    format!("/api/permissions/check?file_id={f}&action=write"),
                    None,
                )
            }),
        ),
    ];

    let owner = cast.token(Caller::Owner).unwrap().to_owned();
    let mut table = format!("{:<44}", "route \\ caller");
    for caller in Caller::ALL {
        table += &format!("{:>10}", format!("{caller:?}"));
    }
    let mut failures = Vec::new();
    let mut victims = 0;
    for (name, needs, ok, request) in &routes {
        table += &format!("\n{name:<44}");
        for caller in Caller::ALL {
            // A fresh file per cell, shared as the callers' names say.
            let (_, file) = app.upload(&owner, "matrix.bin", b"matrix".to_vec()).await;
            let file = file["id"].as_str().unwrap().to_owned();
            for (grantee, level) in [
                ("reader", "read"),
                ("writer", "write"),
                ("deleter", "delete"),
                ("target", "read"),
            ] {
                assert_eq!(
                    app.share(&owner, &file, grantee, level).await.0,
                    StatusCode::CREATED
                );
            }
            let victim = if name.starts_with("DELETE /api/admin") {
                victims += 1;
                app.user(&format!("victim{victims}")).await.id
            } else {
                cast.target.id
            };
            let (method, path, body) = request(&file, &cast, victim);
            let before = app.snapshot();
            let mut builder = reqwest::Client::new().request(method, app.host.url(&path));
            if let Some(token) = match caller {
                Caller::Anonymous => None,
                other => cast.token(other),
            } {
                builder = builder.bearer_auth(token);
            }
            // Content routes take raw bytes.
            let raw = name.starts_with("PUT") || *name == "POST /api/files";
            builder = match (body, raw) {
                (Some(json), _) => builder.json(&json),
                (None, true) => builder.body("new content"),
                (None, false) => builder,
            };
            let status = builder.send().await.unwrap().status().as_u16();
            let want = expected(caller, *needs, *ok);
            table += &format!(
                "{:>10}",
                if status == want {
                    status.to_string()
                } else {
                    format!("{status}!{want}")
                }
            );
            if status != want {
                failures.push(format!("{name} as {caller:?}: {status}, expected {want}"));
            }
            if status >= 400 && app.snapshot() != before {
                failures.push(format!(
                    "{name} as {caller:?}: refused with {status} but the database changed"
                ));
            }
        }
    }
    // Straight to stderr, past the test harness's capture: the matrix is
    // part of every run's output.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\nauthorization matrix (status, or got!expected):\n{table}\n"
    );
    assert!(failures.is_empty(), "{table}\n{}", failures.join("\n"));
}

#[tokio::test]
async fn listing_a_thousand_shared_files_runs_a_bounded_number_of_statements() {
    let app = spawn_app();
    let owner = app.user("many").await;
    let reader = app.user("few").await;
    app.sql(&format!(
        "INSERT INTO files (id, owner_id, file_name, file_path, file_size, sha256) \
         SELECT gen_random_uuid(), {owner}, 'f' || n, 'pg:' || gen_random_uuid(), n, sha256(n::text::bytea) \
         FROM generate_series(1, 1000) n; \
         INSERT INTO permissions (file_id, user_id, permission, granted_by) SELECT id, {reader}, 'read', {owner} FROM files;",
        owner = owner.id,
        reader = reader.id
    ));
    app.sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
    for scope in ["shared", "all"] {
        app.sql("SELECT pg_stat_statements_reset()");
        let (status, page) = app
            .call(
                Method::GET,
                &format!("/api/files?scope={scope}&limit=1000&sort=name"),
                Some(&reader.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["files"].as_array().unwrap().len(), 1000);
        let statements: i64 = app
            .sql(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements \
                 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                 AND query NOT LIKE '%pg_stat_statements%'",
            )
            .parse()
            .unwrap();
        // The caller's session, then the page: not one statement per file.
        assert!(
            (1..=4).contains(&statements),
            "scope={scope}: {statements} statements"
        );
    }
}
