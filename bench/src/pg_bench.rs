//! The Postgres benchmark's database and app.

use anyhow::Result;
use spindrive_testkit::{TestDatabase, component_wasm};

/// Server connections per pool, for the host and the native baseline.
pub const POOL_SIZE: usize = 16;

/// A database with 10,000 rows to read and a table to insert into.
pub fn database() -> Result<TestDatabase> {
    let db = TestDatabase::create()?;
    db.psql(
        "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL); \
         INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 10000) AS i; \
         CREATE TABLE events (id bigserial PRIMARY KEY, name text NOT NULL, at timestamp NOT NULL DEFAULT now()); \
         ANALYZE",
    )?;
    Ok(db)
}

/// The pg-bench component on `/...`, reading `db_url`.
pub fn app(db: &TestDatabase) -> Result<tempfile::TempDir> {
    let url = db.url();
    let port = url
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .unwrap_or("5432")
        .to_owned();
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("spin.toml"),
        format!(
            r#"spin_manifest_version = 2
[application]
name = "pg-bench"
[variables]
db_url = {{ default = "{url}" }}
[[trigger.http]]
route = "/..."
component = "pg-bench"
[component.pg-bench]
source = "{source}"
variables = {{ db_url = "{{{{ db_url }}}}" }}
allowed_outbound_hosts = ["postgres://127.0.0.1:{port}"]
"#,
            source = component_wasm("pg-bench").display()
        ),
    )?;
    Ok(dir)
}
