//! Redis for tests: a private server per test, with its own port and state
//! directory, started by `scripts/redis.sh`.

use anyhow::Result;
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
        super::run(
            Command::new(super::workspace_root().join("scripts/redis.sh"))
                .arg(action)
                .env("REDIS_STATE_DIR", &self.dir)
                .env("REDIS_PORT", self.port.to_string()),
        )
    }

    /// `redis://:<password>@127.0.0.1:<port>`.
    pub fn url(&self) -> Result<String> {
        self.script("url")
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
