//! Settings, read from Spin variables once per instance. An instance lives
//! for at most a bounded number of requests (128 on Spin) and a second
//! idle, so a changed provider value is picked up within moments, without
//! paying a dozen host calls on every request.

use crate::error::ApiError;
use spin_sdk::variables;

#[derive(Clone)]
pub struct Config {
    db_host: String,
    db_port: String,
    /// Where reads that may be served by a synchronous standby go
    /// (`db_read_host`/`db_read_port`; the write address when unset).
    db_read_host: String,
    db_read_port: String,
    db_name: String,
    db_user: String,
    db_password: String,
    db_sslmode: String,
    /// Largest JSON request body accepted.
    pub max_json_bytes: u64,
    /// Largest file upload accepted.
    pub max_upload_bytes: u64,
    /// Absolute lifetime of a session token.
    pub session_lifetime_seconds: i64,
    /// Whether anyone may register (the first user always may).
    pub registration_open: bool,
    /// An upload idle this long is abandoned and swept.
    pub upload_stale_seconds: i64,
    /// Replaced content stays this long for downloads already reading it.
    pub release_grace_seconds: i64,
    /// Proxies in front of the app whose `X-Forwarded-For` entries are
    /// trusted (0: the peer address is the client).
    pub trusted_proxy_hops: usize,
    /// Storage per user unless an administrator set another.
    pub default_quota_bytes: i64,
    /// How long a request waits for a pooled database connection.
    pub db_checkout_timeout: std::time::Duration,
}

/// Everything but the password, which never reaches a log.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("db_host", &self.db_host)
            .field("db_port", &self.db_port)
            .field("db_read_host", &self.db_read_host)
            .field("db_read_port", &self.db_read_port)
            .field("db_name", &self.db_name)
            .field("db_user", &self.db_user)
            .field("db_password", &"<redacted>")
            .field("db_sslmode", &self.db_sslmode)
            .field("max_json_bytes", &self.max_json_bytes)
            .field("max_upload_bytes", &self.max_upload_bytes)
            .field("session_lifetime_seconds", &self.session_lifetime_seconds)
            .field("registration_open", &self.registration_open)
            .field("upload_stale_seconds", &self.upload_stale_seconds)
            .field("release_grace_seconds", &self.release_grace_seconds)
            .field("trusted_proxy_hops", &self.trusted_proxy_hops)
            .field("default_quota_bytes", &self.default_quota_bytes)
            .field("db_checkout_timeout", &self.db_checkout_timeout)
            .finish()
    }
}

pub(crate) async fn get(name: &str) -> Result<String, ApiError> {
    variables::get(name)
        .await
        .map_err(|err| ApiError::internal(format!("variable {name}: {err}")))
}

pub(crate) async fn number<T: std::str::FromStr>(name: &str) -> Result<T, ApiError> {
    get(name)
        .await?
        .trim()
        .parse()
        .map_err(|_| ApiError::internal(format!("variable {name} is not a number")))
}

/// This instance's settings, once read.
static LOADED: std::sync::OnceLock<Config> = std::sync::OnceLock::new();

impl Config {
    pub async fn load() -> Result<Self, ApiError> {
        if let Some(config) = LOADED.get() {
            return Ok(config.clone());
        }
        let config = Self::read().await?;
        Ok(LOADED.get_or_init(|| config).clone())
    }

    async fn read() -> Result<Self, ApiError> {
        Ok(Config {
            db_host: get("db_host").await?,
            db_port: get("db_port").await?,
            db_read_host: get("db_read_host").await?,
            db_read_port: get("db_read_port").await?,
            db_name: get("db_name").await?,
            db_user: get("db_user").await?,
            db_password: get("db_password").await?,
            db_sslmode: get("db_sslmode").await?,
            max_json_bytes: number("max_json_bytes").await?,
            max_upload_bytes: number("max_upload_bytes").await?,
            session_lifetime_seconds: number("session_lifetime_seconds").await?,
            registration_open: get("registration_open").await?.trim() == "true",
            upload_stale_seconds: number("upload_stale_seconds").await?,
            release_grace_seconds: number("release_grace_seconds").await?,
            trusted_proxy_hops: number("trusted_proxy_hops").await?,
            default_quota_bytes: number("default_quota_bytes").await?,
            db_checkout_timeout: std::time::Duration::from_millis(number("db_checkout_timeout_ms").await?),
        })
    }

    /// The leader's libpq key/value connection string.
    pub fn db_address(&self) -> String {
        self.address(&self.db_host, &self.db_port)
    }

    /// The read address's connection string, if it is not the leader's.
    pub fn db_read_address(&self) -> Option<String> {
        (self.db_read_host != self.db_host || self.db_read_port != self.db_port)
            .then(|| self.address(&self.db_read_host, &self.db_read_port))
    }

    /// A libpq key/value connection string, values quoted and escaped.
    fn address(&self, host: &str, port: &str) -> String {
        let quote = |value: &str| format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"));
        format!(
            "host={} port={} dbname={} user={} password={} sslmode={}",
            quote(host),
            quote(port),
            quote(&self.db_name),
            quote(&self.db_user),
            quote(&self.db_password),
            quote(&self.db_sslmode),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(read_host: &str, read_port: &str) -> Config {
        Config {
            db_host: "db".into(),
            db_port: "5432".into(),
            db_read_host: read_host.into(),
            db_read_port: read_port.into(),
            db_name: "spindrive".into(),
            db_user: "spindrive".into(),
            db_password: "hunter2-secret".into(),
            db_sslmode: "disable".into(),
            max_json_bytes: 1,
            max_upload_bytes: 1,
            session_lifetime_seconds: 1,
            registration_open: true,
            upload_stale_seconds: 1,
            release_grace_seconds: 1,
            trusted_proxy_hops: 0,
            default_quota_bytes: 1,
            db_checkout_timeout: std::time::Duration::from_secs(1),
        }
    }

    #[test]
    fn debug_output_never_shows_the_database_password() {
        let config = sample("db-read", "5432");
        let shown = format!("{config:?} {config:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>") && shown.contains("db_host"));
    }

    #[test]
    fn the_read_address_is_set_apart_only_when_it_differs() {
        assert_eq!(sample("db", "5432").db_read_address(), None);
        let apart = sample("db-read", "5432").db_read_address().unwrap();
        assert!(
            apart.starts_with("host='db-read' port='5432' dbname='spindrive'"),
            "{apart}"
        );
        assert!(
            sample("db", "6432")
                .db_read_address()
                .unwrap()
                .contains("port='6432'")
        );
    }
}
