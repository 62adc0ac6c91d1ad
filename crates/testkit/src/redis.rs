//! Redis for tests: the run's shared server (`scripts/with-services.sh`
//! starts it), or a private one per test, with its own port and state
//! directory, for tests that stop and start it.

use anyhow::{Context, Result};
use std::process::Command;

/// A Redis server of one test's own, stopped and removed when dropped.
pub struct RedisServer {
    dir: std::path::PathBuf,
    pub port: u16,
}

impl RedisServer {
    pub fn start() -> Result<Self> {
        let dir = super::state_dir()
            .join("tmp")
            .join(format!("redis-{}", uuid::Uuid::new_v4().simple()));
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let server = RedisServer { dir, port };
        server.script("start")?;
        Ok(server)
    }

    fn script(&self, action: &str) -> Result<String> {
        self.script_with(action, &[])
    }

    fn script_with(&self, action: &str, args: &[&str]) -> Result<String> {
        super::run(
            Command::new(super::workspace_root().join("scripts/redis.sh"))
                .arg(action)
                .args(args)
                .env("REDIS_STATE_DIR", &self.dir)
                .env("REDIS_PORT", self.port.to_string()),
        )
    }

    /// `redis://:<password>@127.0.0.1:<port>`.
    pub fn url(&self) -> Result<String> {
        self.script("url")
    }

    /// A `redis-cli` command (`PUBLISH channel message`, ...); its reply.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        self.script_with("cli", args)
    }

    pub fn stop(&self) -> Result<()> {
        self.script("stop").map(drop)
    }

    /// Starts it again on the same port with the same password (and, as
    /// Redis keeps nothing on disk here, no data).
    pub fn restart(&self) -> Result<()> {
        self.script("start").map(drop)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.script("stop");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The URL of the run's shared Redis.
pub fn shared_redis_url() -> Result<String> {
    std::env::var("SPINDRIVE_TEST_REDIS_URL").context(
        "SPINDRIVE_TEST_REDIS_URL is not set: run the tests through `make test` (scripts/with-services.sh)",
    )
}
