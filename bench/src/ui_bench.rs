//! The web UI's first load and list rendering, in headless Chromium
//! (web/tests/timing.mjs): what a first visit downloads (compressed as
//! served), the time from navigation to the first page of a 1,000-file
//! list drawn beside the time to the login form (the baseline: the same
//! bundle, no API call), and each further page of 50 after "Load more".

use crate::report;
use anyhow::{Context, Result, bail};
use spindrive_testkit::{TestDatabase, app_host, workspace_root};

const FILES: i64 = 1_000;
/// The targets.
const TARGET_FIRST_LOAD_KB: f64 = 200.0;
const TARGET_RENDER_MS: f64 = 100.0;

/// The lister's files, written in bulk (user 1 is the lister).
fn files_sql() -> String {
    format!(
        "SET session_replication_role = replica; \
         INSERT INTO files (id, owner_id, file_name, file_path, file_size, sha256, created_at, updated_at) \
           SELECT gen_random_uuid(), 1, 'report-' || n || '.pdf', 'pg:' || gen_random_uuid(), n * 1000, \
                  '\\x0000000000000000000000000000000000000000000000000000000000000000', \
                  (now() AT TIME ZONE 'utc') - make_interval(secs => n), (now() AT TIME ZONE 'utc') \
           FROM generate_series(1, {FILES}) n; \
         INSERT INTO permissions (file_id, user_id, permission, is_owner, granted_by) \
           SELECT id, 1, 'delete', true, 1 FROM files; \
         UPDATE users SET used_bytes = (SELECT sum(file_size) FROM files) WHERE id = 1; \
         RESET session_replication_role"
    )
}

/// Bytes a first visit transfers: the page, its script and its styles, as
/// gzip (what every browser accepts).
fn first_load_bytes() -> Result<u64> {
    let dist = workspace_root().join("web/dist");
    let page = std::fs::read_to_string(dist.join("index.html")).context("web/dist: run `make ui`")?;
    let mut total = std::fs::metadata(dist.join("index.html.gz"))?.len();
    for asset in page.split('"').filter(|part| part.starts_with("/assets/")) {
        total += std::fs::metadata(dist.join(format!("{}.gz", &asset[1..])))?.len();
    }
    Ok(total)
}

pub fn run(runs: usize) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let db = TestDatabase::create()?;
    let host = app_host(&db)?.start()?;
    let token = runtime.block_on(crate::client::sign_in(&host.url(""), "lister"))?;
    db.psql(&files_sql())?;
    let timing = std::process::Command::new("node")
        .arg(workspace_root().join("web/tests/timing.mjs"))
        .env("BASE_URL", host.url(""))
        .env("TOKEN", &token)
        .env("RUNS", runs.to_string())
        .output()?;
    if !timing.status.success() {
        bail!("timing.mjs failed: {}", String::from_utf8_lossy(&timing.stderr));
    }
    let figures: serde_json::Value = serde_json::from_slice(&timing.stdout)?;
    let number = |key: &str| {
        figures[key]
            .as_f64()
            .with_context(|| format!("{key} in {figures}"))
    };
    let (login, first, next, slowest) = (
        number("login_ms")?,
        number("first_page_ms")?,
        number("next_page_ms")?,
        number("slowest_next_page_ms")?,
    );
    let first_load_kb = first_load_bytes()? as f64 / 1000.0;
    let table = format!(
        "| measure | figure | target |\n|---|---|---|\n\
         | first load (page + script + styles, gzip) | {first_load_kb:.1} KB | ≤ {TARGET_FIRST_LOAD_KB} KB |\n\
         | login form drawn (baseline) | {login:.0} ms | |\n\
         | first page of {FILES} files drawn | {first:.0} ms ({:.2}× the baseline) | |\n\
         | each further page of 50 (median; slowest) | {next:.0} ms; {slowest:.0} ms | ≤ {TARGET_RENDER_MS} ms |\n\n\
         Medians of {runs} fresh browser contexts (nothing cached) in headless Chromium on this machine, \
         from navigation start (`performance.now()`), against the app served by the host with the \
         files in Postgres; a further page is the API request and the drawing of 50 more rows.\n",
        first / login
    );
    report::publish_table(
        "ui",
        "Web UI: first load and list rendering (1,000 files)",
        &table,
        &serde_json::json!({
            "first_load_bytes_gzip": first_load_kb * 1000.0,
            "login_ms": login,
            "first_page_ms": first,
            "next_page_ms": next,
            "slowest_next_page_ms": slowest,
            "files": FILES,
            "runs": runs,
        }),
    )?;
    if first_load_kb > TARGET_FIRST_LOAD_KB {
        bail!("the first load is {first_load_kb:.1} KB, over {TARGET_FIRST_LOAD_KB} KB");
    }
    Ok(())
}
