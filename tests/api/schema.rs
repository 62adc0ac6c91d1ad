//! The schema: applied by one mechanism, recorded, idempotent, and holding
//! its own invariants even against direct SQL.

use spindrive_testkit::TestDatabase;

fn migrate(url: &str) {
    spindrive_testkit::migrate(url).expect("migrations apply");
}

#[test]
fn migrations_apply_in_order_once_and_rerun_safely() {
    let db = TestDatabase::create().unwrap();
    migrate(&db.url());
    let applied = db
        .psql("SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations")
        .unwrap();
    let files: Vec<String> = std::fs::read_dir(spindrive_testkit::workspace_root().join("migrations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|name| name.strip_suffix(".sql").map(str::to_owned))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(applied, files.join(","));
    migrate(&db.url());
    assert_eq!(
        db.psql("SELECT count(*) FROM schema_migrations").unwrap(),
        files.len().to_string(),
        "a re-run applies nothing twice"
    );
}

#[test]
fn the_database_enforces_the_invariants() {
    let db = TestDatabase::create().unwrap();
    migrate(&db.url());
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
    db.psql(&format!(
        "INSERT INTO users (username, email, password) VALUES ('amy', 'amy@x.io', '{hash}')"
    ))
    .unwrap();
    for (sql, why) in [
        (
            format!("INSERT INTO users (username, email, password) VALUES ('AMY', 'b@x.io', '{hash}')"),
            "username case",
        ),
        (
            format!("INSERT INTO users (username, email, password) VALUES ('amy2', 'AMY@X.IO', '{hash}')"),
            "email case",
        ),
        (
            format!(
                "INSERT INTO users (username, email, password, role) VALUES ('x1', 'x1@x.io', '{hash}', 'root')"
            ),
            "role",
        ),
        (
            "INSERT INTO users (username, email, password) VALUES ('x2', 'x2@x.io', 'plaintext')".to_owned(),
            "hash",
        ),
        (
            "INSERT INTO sessions (user_id, token_hash, expires_at) VALUES (999, '\\x00', now())".to_owned(),
            "foreign key",
        ),
    ] {
        assert!(db.psql(&sql).is_err(), "the database refuses a bad {why}");
    }
    // Deleting a user removes what hangs off it.
    db.psql(
        "INSERT INTO sessions (user_id, token_hash, expires_at) SELECT id, sha256('t'), now() FROM users",
    )
    .unwrap();
    db.psql("DELETE FROM users").unwrap();
    assert_eq!(db.psql("SELECT count(*) FROM sessions").unwrap(), "0");
    // No timestamptz anywhere: Spin 4.0.2 cannot read it.
    assert_eq!(
        db.psql("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' AND data_type = 'timestamp with time zone'")
            .unwrap(),
        "0"
    );
}
