//! `spin:postgres/postgres@4.2.0`: connections from a shared, bounded,
//! self-healing pool; Spin's value mapping and error variants; rows
//! streamed to the guest by `query-async`.
//!
//! Where Spin 4.0.2 misbehaves this host does the safe thing and logs a
//! `spin-compat` warning: a sync `query` with no rows is answered (Spin
//! hangs), a connection released inside a transaction is rolled back (Spin
//! leaks it to the next request), and the sync `connection-builder.build`
//! checks the allow-list (Spin skips it).

// The WIT `error` is what the interface returns everywhere, large or not.
#![allow(clippy::result_large_err)]

mod convert;
mod host;
mod numeric;
mod pool;
mod query;
mod session;
mod stream;
mod tls;
mod wire;

pub use pool::{PoolSettings, Pools};

use crate::allowed_hosts::{AllowedHosts, Destination, report_denied};
use crate::bindings::spin::postgres::postgres::{self as wit, Error, QueryError};
use pool::CaRoot;
use std::sync::Arc;
use wasmtime::component::{HasData, Resource, ResourceTable};

/// Spin's limit on connections open at once in one instance.
const MAX_CONNECTIONS_PER_INSTANCE: usize = 1024;

/// Logs a `spin-compat` warning: the component would misbehave on Spin.
pub fn compat_warning(component_id: &str, message: &str) {
    tracing::warn!(target: "spin-compat", component = component_id, "spin-compat: {message}");
}

/// The Postgres state of one instance.
pub struct PgState {
    pub component_id: Arc<str>,
    pub allowed_hosts: Arc<AllowedHosts>,
    pub pools: Arc<Pools>,
    open_connections: usize,
}

impl PgState {
    pub fn new(component_id: Arc<str>, allowed_hosts: Arc<AllowedHosts>, pools: Arc<Pools>) -> Self {
        PgState {
            component_id,
            allowed_hosts,
            pools,
            open_connections: 0,
        }
    }
}

/// `HasData` marker for the Postgres interface.
pub struct PgInterface;

impl HasData for PgInterface {
    type Data<'a> = PgView<'a>;
}

/// What the Postgres host functions see of the store.
pub struct PgView<'a> {
    pub state: &'a mut PgState,
    pub table: &'a mut ResourceTable,
}

/// A `connection` resource: a pooled server connection, given back (and
/// checked) when the last user lets go of it.
pub struct PgConnection {
    lease: Arc<Lease>,
}

/// A `connection-builder` resource.
pub struct PgConnectionBuilder {
    address: String,
    ca_root: Option<CaRoot>,
}

struct Lease {
    client: Option<deadpool_postgres::Object>,
    component_id: Arc<str>,
    session: std::sync::Mutex<session::SessionState>,
}

impl Lease {
    fn new(client: deadpool_postgres::Object, component_id: Arc<str>) -> Self {
        Lease {
            client: Some(client),
            component_id,
            session: Default::default(),
        }
    }

    fn session(&self) -> session::SessionState {
        *self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `statement` failed; `before` is the session ahead of it.
    fn failed(&self, statement: &str, before: session::SessionState) {
        self.session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .failed(statement, before);
    }

    /// The connection, for running `statement` on it.
    fn client_for(&self, statement: &str) -> &deadpool_postgres::Object {
        self.session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .observe(statement);
        self.client
            .as_ref()
            .expect("a lease holds its client until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let session = *self.session.get_mut().unwrap_or_else(|e| e.into_inner());
        // A connection that died (a failover, a restart) has no session
        // left to clean; its pool drops it at the next checkout.
        if let Some(client) = self.client.take()
            && !session.is_clean()
            && !client.is_closed()
        {
            tokio::spawn(pool::release(client, self.component_id.clone(), session));
        }
    }
}

fn connection_failed(message: impl Into<String>) -> Error {
    Error::ConnectionFailed(message.into())
}

fn query_failed(err: &tokio_postgres::Error) -> Error {
    let as_text = format!("{err:?}");
    Error::QueryFailed(match err.as_db_error() {
        None => QueryError::Text(as_text),
        Some(db) => {
            let mut extras = Vec::new();
            let mut extra = |name: &str, value: Option<String>| {
                if let Some(value) = value {
                    extras.push((name.to_owned(), value));
                }
            };
            extra("column", db.column().map(str::to_owned));
            extra("constraint", db.constraint().map(str::to_owned));
            extra("routine", db.routine().map(str::to_owned));
            extra("hint", db.hint().map(str::to_owned));
            extra("table", db.table().map(str::to_owned));
            extra("datatype", db.datatype().map(str::to_owned));
            extra("schema", db.schema().map(str::to_owned));
            extra("file", db.file().map(str::to_owned));
            extra("line", db.line().map(|l| l.to_string()));
            extra("where_", db.where_().map(str::to_owned));
            QueryError::DbError(wit::DbError {
                as_text,
                severity: db.severity().to_owned(),
                code: db.code().code().to_owned(),
                message: db.message().to_owned(),
                detail: db.detail().map(str::to_owned),
                extras,
            })
        }
    })
}

fn query_failed_text(message: impl std::fmt::Display) -> Error {
    Error::QueryFailed(QueryError::Text(message.to_string()))
}

impl PgView<'_> {
    /// Spin's check: every host of the connection string against the
    /// component's `allowed_outbound_hosts`, as `postgres://host:port`.
    fn check_address(&self, address: &str) -> Result<(), Error> {
        check_address(&self.state.component_id, &self.state.allowed_hosts, address)
    }

    fn push_connection(
        &mut self,
        client: deadpool_postgres::Object,
    ) -> Result<Resource<PgConnection>, Error> {
        if self.state.open_connections >= MAX_CONNECTIONS_PER_INSTANCE {
            return Err(connection_failed("too many connections"));
        }
        let lease = Arc::new(Lease::new(client, self.state.component_id.clone()));
        let resource = self
            .table
            .push(PgConnection { lease })
            .map_err(|_| connection_failed("too many connections"))?;
        self.state.open_connections += 1;
        Ok(resource)
    }

    fn lease(&self, connection: &Resource<PgConnection>) -> Result<Arc<Lease>, Error> {
        self.table
            .get(connection)
            .map(|c| c.lease.clone())
            .map_err(|_| connection_failed("no connection found"))
    }
}

fn check_address(component_id: &str, allowed: &AllowedHosts, address: &str) -> Result<(), Error> {
    let config: tokio_postgres::Config = address.parse().map_err(|e| connection_failed(format!("{e}")))?;
    let ports = config.get_ports();
    for (index, host) in config.get_hosts().iter().enumerate() {
        let tokio_postgres::config::Host::Tcp(host) = host else {
            return Err(connection_failed("Unix sockets are not supported on WebAssembly"));
        };
        let port = ports
            .get(index)
            .or(if ports.len() == 1 { ports.first() } else { None });
        let destination = Destination::new("postgres", host, port.copied());
        if !allowed.allows(&destination) {
            report_denied(component_id, &destination);
            let shown = port.map_or(host.clone(), |p| format!("{host}:{p}"));
            return Err(connection_failed(format!(
                "address postgres://{shown} is not permitted"
            )));
        }
    }
    Ok(())
}

/// The state `open-async` / `build-async` need, copied out of the store.
struct Opener {
    component_id: Arc<str>,
    allowed_hosts: Arc<AllowedHosts>,
    pools: Arc<Pools>,
}

impl Opener {
    fn of(view: &PgView<'_>) -> Self {
        Opener {
            component_id: view.state.component_id.clone(),
            allowed_hosts: view.state.allowed_hosts.clone(),
            pools: view.state.pools.clone(),
        }
    }

    async fn connect(
        &self,
        address: &str,
        ca_root: Option<&CaRoot>,
    ) -> Result<deadpool_postgres::Object, Error> {
        check_address(&self.component_id, &self.allowed_hosts, address)?;
        self.pools.get(address, ca_root).await.map_err(connection_failed)
    }
}
