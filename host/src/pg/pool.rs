//! Connection pools: one per (connection string, CA root), bounded, shared
//! by every component. A connection a guest gives back goes straight back
//! to its pool when its statements left the session clean; otherwise, off
//! the request path, an open transaction is rolled back (with a
//! `spin-compat` warning, since Spin 4.0.2 would hand it to the next
//! request), session state is reset, and a connection that fails any of
//! this is discarded.

use super::compat_warning;
use super::session::SessionState;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime, Timeouts};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_postgres::config::{Host, SslMode};

/// Pool limits from the command line.
#[derive(Clone, Debug)]
pub struct PoolSettings {
    /// Server connections per pool (Spin: 64).
    pub max_size: usize,
    /// How long a request waits for a free connection; `None` waits forever
    /// (Spin's behaviour).
    pub wait_timeout: Option<Duration>,
    /// Applied when the connection string sets no `connect_timeout`.
    pub connect_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_size: 64,
            wait_timeout: Some(Duration::from_secs(30)),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// A PEM root certificate from `connection-builder.set-ca-root`.
#[derive(Clone, Debug)]
pub struct CaRoot {
    pub pem: Arc<str>,
}

/// A pool per connection string and CA root.
type PoolKey = (String, Option<Arc<str>>);

/// Every pool of the process.
#[derive(Default)]
pub struct Pools {
    settings: PoolSettings,
    pools: Mutex<HashMap<PoolKey, Pool>>,
}

impl std::fmt::Debug for Pools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pools")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Session state a guest may have changed, reset before reuse.
const RESET_SESSION: &str = "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; UNLISTEN *; \
     SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES";

impl Pools {
    pub fn new(settings: PoolSettings) -> Self {
        Pools {
            settings,
            pools: Mutex::default(),
        }
    }

    /// A pooled connection to `address`; the error text is the guest's
    /// `connection-failed` message.
    pub async fn get(&self, address: &str, ca_root: Option<&CaRoot>) -> Result<Object, String> {
        let pool = self.pool(address, ca_root)?;
        pool.get().await.map_err(|err| format!("{err:?}"))
    }

    fn pool(&self, address: &str, ca_root: Option<&CaRoot>) -> Result<Pool, String> {
        let key = (address.to_owned(), ca_root.map(|ca| ca.pem.clone()));
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pool) = pools.get(&key) {
            return Ok(pool.clone());
        }
        let pool = self
            .build_pool(address, ca_root)
            .map_err(|err| format!("{err:#}"))?;
        pools.insert(key, pool.clone());
        Ok(pool)
    }

    fn build_pool(&self, address: &str, ca_root: Option<&CaRoot>) -> anyhow::Result<Pool> {
        let mut config: tokio_postgres::Config = address
            .parse()
            .map_err(|err| anyhow::anyhow!("parsing Postgres connection string: {err}"))?;
        #[cfg(unix)]
        anyhow::ensure!(
            !config.get_hosts().iter().any(|h| matches!(h, Host::Unix(_))),
            "Unix-socket connections are not supported"
        );
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(self.settings.connect_timeout);
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = if config.get_ssl_mode() == SslMode::Disable {
            Manager::from_config(config, tokio_postgres::NoTls, manager_config)
        } else {
            Manager::from_config(config, super::tls::connector(ca_root)?, manager_config)
        };
        Ok(Pool::builder(manager)
            .max_size(self.settings.max_size)
            .runtime(Runtime::Tokio1)
            .timeouts(Timeouts {
                wait: self.settings.wait_timeout,
                create: None,
                recycle: None,
            })
            .build()?)
    }
}

/// Makes a connection the guest left with an open transaction or changed
/// session state safe for the next one, or discards it. (A clean
/// connection goes straight back to its pool without this.)
pub async fn release(client: Object, component_id: Arc<str>, session: SessionState) {
    if session.in_transaction {
        compat_warning(
            &component_id,
            "a Postgres connection was released inside an open transaction; this host rolled it back, \
             but Spin 4.0.2 would hand the transaction and its uncommitted writes to the next request. \
             Finish every transaction with COMMIT or ROLLBACK.",
        );
        if client.simple_query("ROLLBACK").await.is_err() {
            return discard(client);
        }
    }
    if client.simple_query(RESET_SESSION).await.is_err() {
        discard(client);
    }
}

/// Takes a connection out of its pool for good; it closes when dropped.
fn discard(client: Object) {
    drop(Object::take(client));
}
