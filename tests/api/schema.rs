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
            // A valid hash, so only the missing user can be what is refused.
            "INSERT INTO sessions (user_id, token_hash, expires_at) VALUES (999, sha256('t'), now())"
                .to_owned(),
            "foreign key",
        ),
    ] {
        assert!(db.psql(&sql).is_err(), "the database refuses a bad {why}");
    }
    // The foreign key case is valid except for the user: with that user it
    // is accepted, so the refusal above was the foreign key's.
    db.psql(
        "INSERT INTO sessions (user_id, token_hash, expires_at) SELECT id, sha256('t'), now() FROM users",
    )
    .unwrap();
    db.psql("DELETE FROM sessions").unwrap();
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

/// Rows as the product stores them under schema `version` (the migrations
/// up to and including it): users, sessions, files with grants, failures.
fn populate(db: &TestDatabase, version: usize) {
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
    db.psql(&format!(
        "INSERT INTO users (username, email, password, role) VALUES ('old', 'old@x.io', '{hash}', 'admin'), ('two', 'two@x.io', '{hash}', 'viewer'); \
         INSERT INTO sessions (user_id, token_hash, expires_at) SELECT id, sha256(username::bytea), now() FROM users; \
         INSERT INTO login_failures (account, client) VALUES ('old', '127.0.0.1');"
    ))
    .unwrap();
    // Schema 4 renamed files.user_id (the seed's owner_id) and writes the
    // owner's grant row itself.
    let owner = if version >= 4 { "owner_id" } else { "user_id" };
    let files = match version {
        1 => format!(
            "INSERT INTO files (id, {owner}, file_name, file_path, file_size) \
             SELECT gen_random_uuid(), id, 'legacy-' || username, '/srv/files/' || username, 42 FROM users"
        ),
        _ => format!(
            "INSERT INTO files (id, {owner}, file_name, file_path, file_size, content_type, sha256) \
             SELECT gen_random_uuid(), id, 'stored-' || username, 'pg:' || gen_random_uuid(), 3, 'text/plain', sha256('abc') FROM users"
        ),
    };
    db.psql(&files).unwrap();
    if version >= 2 {
        // Their bytes, in the content store.
        db.psql("INSERT INTO file_chunks (storage_key, seq, data) SELECT substr(file_path, 4)::uuid, 0, 'abc'::bytea FROM files")
            .unwrap();
    }
    if version < 4 {
        db.psql(&format!(
            "INSERT INTO permissions (file_id, user_id, permission, is_owner, granted_by) \
             SELECT f.id, f.{owner}, 'delete', true, f.{owner} FROM files f"
        ))
        .unwrap();
    }
    db.psql(&format!(
        "INSERT INTO permissions (file_id, user_id, permission, granted_by) \
         SELECT f.id, u.id, 'read', f.{owner} FROM files f JOIN users u ON u.id <> f.{owner}"
    ))
    .unwrap();
}

#[test]
fn every_migration_applies_to_a_database_populated_by_the_schema_before_it() {
    let root = spindrive_testkit::workspace_root().join("migrations");
    let mut versions: Vec<std::path::PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    versions.sort();
    assert!(versions.len() >= 3);
    for upto in 1..versions.len() {
        // The migrations before this one, applied, then the product's rows.
        let before = tempfile::tempdir().unwrap();
        for file in &versions[..upto] {
            std::fs::copy(file, before.path().join(file.file_name().unwrap())).unwrap();
        }
        let db = TestDatabase::create().unwrap();
        spindrive_testkit::run(
            std::process::Command::new(root.join("migrate.sh"))
                .arg(db.url())
                .arg(before.path()),
        )
        .expect("the migrations before apply");
        populate(&db, upto);
        let counts = "SELECT (SELECT count(*) FROM users) || ',' || (SELECT count(*) FROM files) || ',' || \
                      (SELECT count(*) FROM permissions) || ',' || (SELECT count(*) FROM sessions)";
        let held = db.psql(counts).unwrap();
        let next = versions[upto].file_name().unwrap().to_string_lossy().into_owned();
        if let Err(error) = spindrive_testkit::migrate(&db.url()) {
            panic!("{next} fails on a populated database: {error}");
        }
        assert_eq!(db.psql(counts).unwrap(), held, "{next} keeps every row");
        // What later schemas derive from the rows is right.
        assert_eq!(
            db.psql("SELECT bool_and(used_bytes = (SELECT coalesce(sum(file_size), 0) FROM files WHERE owner_id = users.id)) FROM users")
                .unwrap(),
            "t",
            "usage after {next}"
        );
        if next.starts_with("0006") {
            // Text files stored before it are searchable after it.
            assert_eq!(
                db.psql("SELECT count(*) FROM file_texts WHERE words @@ 'abc'::tsquery")
                    .unwrap(),
                "2"
            );
        }
        // Files stay deletable, whatever their path.
        db.psql("DELETE FROM files").unwrap();
    }
}

#[test]
fn a_migration_changed_after_it_was_applied_stops_the_run() {
    let root = spindrive_testkit::workspace_root().join("migrations");
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "sql") {
            std::fs::copy(&path, copy.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let db = TestDatabase::create().unwrap();
    let run = || {
        spindrive_testkit::run(
            std::process::Command::new(root.join("migrate.sh"))
                .arg(db.url())
                .arg(copy.path()),
        )
    };
    run().expect("applies");
    run().expect("applied files are skipped");
    let first = copy.path().join("0001_init.sql");
    let mut text = std::fs::read_to_string(&first).unwrap();
    text.push_str("\n-- edited after it was applied\n");
    std::fs::write(&first, text).unwrap();
    let error = run().expect_err("a changed migration is refused");
    assert!(
        format!("{error:#}").contains("0001_init was changed after it was applied"),
        "{error:#}"
    );
}

#[test]
fn the_owner_row_follows_files_owner_id_and_nothing_else_writes_it() {
    let db = TestDatabase::create().unwrap();
    migrate(&db.url());
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
    db.psql(&format!(
        "INSERT INTO users (id, username, email, password) VALUES (1, 'ann', 'ann@x.io', '{hash}'), (2, 'ben', 'ben@x.io', '{hash}'), (3, 'cat', 'cat@x.io', '{hash}'); \
         INSERT INTO files (id, owner_id, file_name, file_path, file_size, sha256) \
         VALUES ('00000000-0000-4000-8000-000000000001', 1, 'f', 'pg:00000000-0000-4000-8000-0000000000f1', 0, sha256(''))"
    ))
    .unwrap();
    let rows = || {
        db.psql("SELECT string_agg(user_id || ':' || permission || ':' || is_owner, ',' ORDER BY user_id) FROM permissions")
            .unwrap()
    };
    let shared = || db.psql("SELECT is_shared FROM files").unwrap();
    assert_eq!(rows(), "1:delete:true", "inserting a file writes its owner's row");
    assert_eq!(shared(), "f");
    db.psql("INSERT INTO permissions (file_id, user_id, permission, granted_by) VALUES ('00000000-0000-4000-8000-000000000001', 2, 'write', 1)")
        .unwrap();
    assert_eq!(shared(), "t", "a grant to someone else shares the file");
    for (sql, why) in [
        (
            "DELETE FROM permissions WHERE user_id = 1",
            "the owner's row cannot be revoked",
        ),
        (
            "UPDATE permissions SET permission = 'read' WHERE user_id = 1",
            "nor downgraded",
        ),
        (
            "INSERT INTO permissions (file_id, user_id, permission, is_owner) VALUES ('00000000-0000-4000-8000-000000000001', 3, 'delete', true)",
            "nor forged",
        ),
        (
            "UPDATE permissions SET user_id = 1 WHERE user_id = 2",
            "nor given to the owner as a grant",
        ),
    ] {
        assert!(db.psql(sql).is_err(), "{why}");
    }
    // A transfer: the new owner's grant becomes the owner row.
    db.psql("UPDATE files SET owner_id = 2").unwrap();
    assert_eq!(rows(), "2:delete:true");
    assert_eq!(shared(), "f", "nobody else holds a grant after the transfer");
    db.psql("DELETE FROM files").unwrap();
    assert_eq!(db.psql("SELECT count(*) FROM permissions").unwrap(), "0");
}
