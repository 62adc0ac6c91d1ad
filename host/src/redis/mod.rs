//! `spin:redis/redis@3.0.0` and the Redis trigger, as Spin 4.0.2 has them.
//!
//! Outbound: every `open` checks the address against the component's
//! `allowed_outbound_hosts` (a denied or unparsable address is
//! `invalid-address`) and makes a new multiplexed connection; failures of
//! the server or a command are `other(text)`; `type-error` comes only from
//! `sadd`; more than 1024 open connections in one instance are
//! `too-many-connections`; a reply over 128 MiB is refused.

// The WIT `error` is what the interface returns everywhere.
#![allow(clippy::result_large_err)]

mod host;
mod reply;
pub mod trigger;

use crate::allowed_hosts::{AllowedHosts, Destination, report_denied};
use crate::bindings::spin::redis::redis::Error;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{HasData, Resource, ResourceTable};

/// Spin's limit on connections open at once in one instance.
const MAX_CONNECTIONS_PER_INSTANCE: usize = 1024;

/// How long connecting may take. Spin sets no limit; a server that never
/// answers would hold the instance forever.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one command may wait for its reply (Spin: no limit). Long
/// enough for a blocking command with a modest timeout of its own.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// The Redis state of one instance.
pub struct RedisState {
    pub component_id: Arc<str>,
    pub allowed_hosts: Arc<AllowedHosts>,
    open_connections: usize,
}

impl RedisState {
    pub fn new(component_id: Arc<str>, allowed_hosts: Arc<AllowedHosts>) -> Self {
        RedisState {
            component_id,
            allowed_hosts,
            open_connections: 0,
        }
    }
}

/// `HasData` marker for the Redis interface.
pub struct RedisInterface;

impl HasData for RedisInterface {
    type Data<'a> = RedisView<'a>;
}

/// What the Redis host functions see of the store.
pub struct RedisView<'a> {
    pub state: &'a mut RedisState,
    pub table: &'a mut ResourceTable,
}

/// A `connection` resource. Cloning the multiplexed connection is cheap,
/// so a command runs on a clone, outside the store.
pub struct RedisConnection {
    connection: redis::aio::MultiplexedConnection,
}

impl RedisView<'_> {
    fn push_connection(
        &mut self,
        connection: redis::aio::MultiplexedConnection,
    ) -> Result<Resource<RedisConnection>, Error> {
        if self.state.open_connections >= MAX_CONNECTIONS_PER_INSTANCE {
            return Err(Error::TooManyConnections);
        }
        let resource = self
            .table
            .push(RedisConnection { connection })
            .map_err(|_| Error::TooManyConnections)?;
        self.state.open_connections += 1;
        Ok(resource)
    }

    fn connection(
        &self,
        connection: &Resource<RedisConnection>,
    ) -> Result<redis::aio::MultiplexedConnection, Error> {
        self.table
            .get(connection)
            .map(|c| c.connection.clone())
            .map_err(|_| Error::Other("could not find connection for resource".into()))
    }
}

/// Spin's check: the address as a `redis` URL against the allow-list.
fn check_address(component_id: &str, allowed: &AllowedHosts, address: &str) -> Result<(), Error> {
    let Ok(destination) = Destination::from_url(address) else {
        tracing::warn!(
            component = component_id,
            "A component tried to connect to a Redis address that could not be parsed"
        );
        return Err(Error::InvalidAddress);
    };
    if allowed.allows(&destination) {
        Ok(())
    } else {
        report_denied(component_id, &destination);
        Err(Error::InvalidAddress)
    }
}

/// Connects to `address` (already allowed) with this host's time limits.
async fn connect(address: &str) -> Result<redis::aio::MultiplexedConnection, Error> {
    // Without TLS support built in, `rediss://` is refused here too.
    let client = redis::Client::open(address).map_err(|_| Error::InvalidAddress)?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(other)
}

fn other(error: impl std::fmt::Display) -> Error {
    Error::Other(error.to_string())
}

/// `host:port` of a Redis URL, for logs: never the password.
pub fn display_address(address: &str) -> String {
    match url::Url::parse(address) {
        Ok(url) => format!("{}:{}", url.host_str().unwrap_or("?"), url.port().unwrap_or(6379)),
        Err(_) => "an invalid address".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::parse(entries).unwrap()
    }

    #[test]
    fn a_denied_or_unparsable_address_is_invalid() {
        let hosts = allowed(&["redis://127.0.0.1:6380"]);
        assert!(check_address("c", &hosts, "redis://127.0.0.1:6380").is_ok());
        assert!(check_address("c", &hosts, "redis://:secret@127.0.0.1:6380/0").is_ok());
        for denied in [
            "redis://127.0.0.1:6379",
            "redis://localhost:6380",
            "127.0.0.1:6380",
            "nonsense",
        ] {
            assert!(
                matches!(check_address("c", &hosts, denied), Err(Error::InvalidAddress)),
                "{denied}"
            );
        }
    }

    #[test]
    fn the_default_port_is_redis_own() {
        let hosts = allowed(&["redis://cache"]);
        assert!(check_address("c", &hosts, "redis://cache").is_ok());
        assert!(check_address("c", &hosts, "redis://cache:6379").is_ok());
        assert!(check_address("c", &hosts, "redis://cache:6380").is_err());
    }

    #[test]
    fn logs_show_no_password() {
        assert_eq!(display_address("redis://:hunter2@10.0.0.5:6390"), "10.0.0.5:6390");
        assert_eq!(display_address("redis://user:hunter2@cache"), "cache:6379");
    }
}
