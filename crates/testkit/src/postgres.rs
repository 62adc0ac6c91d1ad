//! Postgres for tests: a fresh database per test on the project's test
//! server, or a private server a test may stop and start.

use anyhow::{Context, Result, bail};
use std::process::Command;

/// The admin URL of the test server (`scripts/with-services.sh` sets it).
pub fn admin_url() -> String {
    std::env::var("SPINDRIVE_TEST_DATABASE_URL").unwrap_or_else(|_| {
        let file = super::state_dir().join("pg-test/url");
        std::fs::read_to_string(&file)
            .map(|url| url.trim().to_owned())
            .unwrap_or_else(|_| {
                panic!(
                    "no test database: run tests through `make test` (missing {})",
                    file.display()
                )
            })
    })
}

/// Runs `sql` with psql against `url`; returns the unaligned output.
pub fn psql(url: &str, sql: &str) -> Result<String> {
    let output = Command::new("psql")
        .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
        .output()
        .context("cannot run psql")?;
    if !output.status.success() {
        bail!("psql failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("a URL with a database path");
    format!("{base}/{database}")
}

/// A uuid-named database, dropped when the test ends.
pub struct TestDatabase {
    pub name: String,
    admin: String,
}

impl TestDatabase {
    pub fn create() -> Result<Self> {
        Self::create_on(&admin_url())
    }

    pub fn create_on(admin: &str) -> Result<Self> {
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        psql(admin, &format!("CREATE DATABASE \"{name}\""))?;
        Ok(TestDatabase {
            name,
            admin: admin.to_owned(),
        })
    }

    /// The database's URL (as the admin user).
    pub fn url(&self) -> String {
        with_database(&self.admin, &self.name)
    }

    /// Runs SQL in this database.
    pub fn psql(&self, sql: &str) -> Result<String> {
        psql(&self.url(), sql)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = psql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
        );
    }
}

/// Applies the project's migrations with its one mechanism.
pub fn migrate(url: &str) -> Result<()> {
    super::run(Command::new(super::workspace_root().join("migrations/migrate.sh")).arg(url))
        .context("migrations failed")
        .map(drop)
}

/// A host serving the product's spin.toml against `db` (migrated first)
/// and the run's shared Redis, on wake-up channels of the test's own.
pub fn app_host(db: &TestDatabase) -> Result<super::HostBuilder> {
    app_host_with_redis(db, &super::redis::shared_redis_url()?)
}

/// [`app_host`] with the Redis at `redis_url` (`redis://:password@host:port`).
pub fn app_host_with_redis(db: &TestDatabase, redis_url: &str) -> Result<super::HostBuilder> {
    migrate(&db.url())?;
    // postgres://user:password@host:port/database
    let url = url::Url::parse(&db.url())?;
    let redis = url::Url::parse(redis_url)?;
    let text = |value: Option<&str>| value.unwrap_or_default().to_owned();
    let port = url
        .port()
        .context("the test database URL has no port")?
        .to_string();
    let variables = [
        ("db_host", text(url.host_str())),
        ("db_port", port.clone()),
        // One server: reads go where writes go.
        ("db_read_host", text(url.host_str())),
        ("db_read_port", port),
        ("db_name", url.path().trim_start_matches('/').to_owned()),
        ("db_user", url.username().to_owned()),
        ("db_password", text(url.password())),
        ("db_sslmode", "disable".to_owned()),
        ("redis_host", text(redis.host_str())),
        (
            "redis_port",
            redis.port().context("the Redis URL has no port")?.to_string(),
        ),
        ("redis_password", text(redis.password())),
        ("transform_channel", format!("transform-{}", db.name)),
        ("notify_channel", format!("notify-{}", db.name)),
    ];
    let root = super::workspace_root();
    let mut builder = super::HostBuilder::new(super::host_binary(), root.join("spin.toml"));
    for (key, value) in variables {
        builder = builder.arg("--variable").arg(format!("{key}={value}"));
    }
    Ok(builder)
}

/// A Postgres server of the test's own, for tests that stop and start it.
pub struct PrivateServer {
    dir: std::path::PathBuf,
    pub port: u16,
    /// Test settings (no fsync, asynchronous commits), not production's.
    throwaway: bool,
}

impl PrivateServer {
    /// With the test settings: fast, and nothing to lose.
    pub fn start() -> Result<Self> {
        Self::start_with(true)
    }

    /// With production's durability (fsync, synchronous commits), for a
    /// test that crashes it and counts what was lost.
    pub fn start_durable() -> Result<Self> {
        Self::start_with(false)
    }

    fn start_with(throwaway: bool) -> Result<Self> {
        let dir = super::state_dir()
            .join("tmp")
            .join(uuid::Uuid::new_v4().simple().to_string());
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let server = PrivateServer { dir, port, throwaway };
        server.pg("start")?;
        Ok(server)
    }

    fn pg(&self, action: &str) -> Result<String> {
        super::run(&mut self.script(action))
    }

    fn script(&self, action: &str) -> Command {
        let mut command = Command::new(super::workspace_root().join("scripts/pg.sh"));
        command
            .arg(action)
            .env("PG_STATE_DIR", &self.dir)
            .env("PG_PORT", self.port.to_string())
            .env("PG_THROWAWAY", if self.throwaway { "1" } else { "0" });
        command
    }

    /// A fast shutdown: sessions are ended, everything is written.
    pub fn stop(&self) -> Result<()> {
        self.pg("stop").map(drop)
    }

    /// An immediate shutdown: every process quits at once, as in a
    /// crash; the next start recovers from the WAL.
    pub fn stop_immediately(&self) -> Result<()> {
        super::run(self.script("stop").env("PG_STOP_MODE", "immediate")).map(drop)
    }

    pub fn restart(&self) -> Result<()> {
        self.pg("start").map(drop)
    }

    /// The admin URL of this server.
    pub fn admin_url(&self) -> Result<String> {
        self.pg("url")
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = self.pg("stop");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
