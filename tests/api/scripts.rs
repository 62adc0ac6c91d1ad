//! The README's commands work wherever the repository is cloned, and the
//! `make up` database keeps every durability setting.

use spindrive_testkit::{psql, run, state_dir, workspace_root};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

/// Runs `pg.sh` from a copy of the scripts at `repo`.
fn pg(repo: &std::path::Path, port: u16, throwaway: bool, action: &str) -> String {
    run(Command::new(repo.join("scripts/pg.sh"))
        .arg(action)
        .env("PG_STATE_DIR", repo.join(".state/pg"))
        .env("PG_PORT", port.to_string())
        .env("PG_THROWAWAY", if throwaway { "1" } else { "0" }))
    .unwrap_or_else(|error| panic!("pg.sh {action}: {error}"))
}

#[test]
fn postgres_starts_from_a_clone_in_a_private_home_and_the_up_server_is_durable() {
    // A clone inside a directory only its owner may enter, as root's home is.
    let home = state_dir()
        .join("tmp")
        .join(format!("home-{}", std::process::id()));
    let repo = home.join("clone");
    std::fs::create_dir_all(repo.join("scripts")).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    for script in ["pg.sh", "install-deps.sh"] {
        std::fs::copy(
            workspace_root().join("scripts").join(script),
            repo.join("scripts").join(script),
        )
        .unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    pg(&repo, port, false, "start");
    let url = pg(&repo, port, false, "url");
    let settings = psql(
        &url,
        "SELECT current_setting('synchronous_commit') || ',' || current_setting('fsync')",
    );
    pg(&repo, port, false, "stop");
    std::fs::remove_dir_all(&home).unwrap();
    assert_eq!(settings.unwrap(), "on,on", "make up's server keeps durability");
}
