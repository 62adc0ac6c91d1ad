//! Schemathesis (pinned in tests/schemathesis/requirements.txt, installed
//! by `make fuzz-tools`) against the served OpenAPI document, as a viewer
//! and as an admin, with every check: no server error, every response as
//! documented, and the document saying exactly what the API accepts (no
//! schema-valid request rejected, no schema-violating one accepted).
//! Bounded here (`SCHEMATHESIS_MAX_EXAMPLES`, default 20 per operation,
//! fixed seed); `make fuzz` runs it longer with fresh seeds.

use crate::helpers::{TestApp, User, run_to_success, spawn_app};
use spindrive_testkit::workspace_root;

async fn fuzz_as(app: &TestApp, role: &str, user: &User) {
    let tool = workspace_root().join(".state/venv/bin/schemathesis");
    assert!(tool.exists(), "run `make fuzz-tools` first");
    let examples = std::env::var("SCHEMATHESIS_MAX_EXAMPLES").unwrap_or_else(|_| "20".into());
    let seed = std::env::var("SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261130".into());
    let report = workspace_root()
        .join(".state/schemathesis")
        .join(&app.db.name)
        .join(role);
    let config = workspace_root().join("tests/schemathesis/schemathesis.toml");
    run_to_success(
        tokio::process::Command::new(tool)
            .arg("--config-file")
            .arg(config)
            .arg("run")
            .arg(app.host.url("/api/openapi.json"))
            .args(["--header", &format!("Authorization: Bearer {}", user.token)])
            .args(["--checks", "all", "--max-examples", &examples, "--seed", &seed])
            // After a file is created, the stateful phase follows links to
            // operations taking its id and reads any 404 as "the file is
            // missing"; but there a 404 may name another row (sharing with an
            // unknown username). Missing files are the API tests' business.
            .args(["--exclude-checks", "ensure_resource_availability"])
            .args(["--workers", "1", "--request-timeout", "30"])
            // Logging out ends the session the rest of the run uses.
            .args(["--exclude-path", "/api/auth/logout"])
            .args(["--report", "junit", "--report-dir"])
            .arg(&report)
            .env("NO_COLOR", "1"),
        std::time::Duration::from_secs(600),
        &format!("schemathesis as {role}"),
    )
    .await;
    // 401 counts as a failure in the run, and the session it ran on holds.
    let (status, me) = app
        .call(reqwest::Method::GET, "/api/auth/me", Some(&user.token), None)
        .await;
    assert_eq!(status, 200, "{role}'s session after the run: {me}");
}

#[tokio::test]
async fn the_api_does_what_its_document_says_as_a_viewer_and_as_an_admin() {
    let app = spawn_app();
    // The first account is the admin; each owns a file to be found.
    let admin = app.user("ada").await;
    let viewer = app.user("bob").await;
    // Carol is the one account the admin's run may change (the config pins
    // the admin operations' id to 3).
    let carol = app.user("carol").await;
    assert_eq!(carol.id, 3);
    for user in [&admin, &viewer] {
        app.upload_file(user, "notes.txt", b"some notes".to_vec()).await;
    }
    // The viewer first: the admin's run may delete or disable the viewer.
    fuzz_as(&app, "viewer", &viewer).await;
    fuzz_as(&app, "admin", &admin).await;
}
