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
mod numeric;
mod pool;
mod session;
mod tls;
mod wire;

pub use pool::{PoolSettings, Pools};

use crate::allowed_hosts::{AllowedHosts, Destination, report_denied};
use crate::bindings::spin::postgres::postgres::{
    self as wit, Column, DbValue, Error, HostConnection, HostConnectionBuilder,
    HostConnectionBuilderWithStore, HostConnectionWithStore, ParameterValue, QueryError, RowSet,
};
use futures::StreamExt;
use pool::CaRoot;
use postgres_types::ToSql;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use wasmtime::component::{Accessor, FutureReader, HasData, Resource, ResourceTable, StreamReader};

/// Spin's limit on what a query may buffer in the host.
const MAX_RESULT_BYTES: usize = 128 << 20;
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

/// How a parameter conversion failure is reported: Spin says
/// `bad-parameter` in `query` but `value-conversion-failed` in `execute`.
#[derive(Clone, Copy)]
enum Call {
    Query,
    Execute,
}

fn sql_parameters(
    component_id: &str,
    values: &[ParameterValue],
    call: Call,
) -> Result<Vec<convert::SqlParameter>, Error> {
    let mut compat = Vec::new();
    let converted = convert::parameters(values, &mut compat).map_err(|err| match call {
        Call::Query => Error::BadParameter(format!("{err:?}")),
        Call::Execute => Error::ValueConversionFailed(format!("{err:?}")),
    })?;
    for message in compat {
        compat_warning(component_id, &message);
    }
    Ok(converted)
}

fn as_refs(parameters: &[convert::SqlParameter]) -> Vec<&(dyn ToSql + Sync)> {
    parameters
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// A plan made stale by a schema change: the cached statement is dropped
/// and prepared again.
fn is_stale_plan(err: &tokio_postgres::Error) -> bool {
    err.code() == Some(&tokio_postgres::error::SqlState::FEATURE_NOT_SUPPORTED)
        && err
            .to_string()
            .contains("cached plan must not change result type")
}

async fn execute(lease: &Lease, statement: &str, parameters: &[convert::SqlParameter]) -> Result<u64, Error> {
    let client = lease.client_for(statement);
    for attempt in 0..2 {
        let prepared = client
            .prepare_cached(statement)
            .await
            .map_err(|e| query_failed(&e))?;
        match client.execute(&prepared, &as_refs(parameters)).await {
            Err(err) if attempt == 0 && is_stale_plan(&err) => client.statement_cache.clear(),
            result => return result.map_err(|e| query_failed(&e)),
        }
    }
    unreachable!("the second attempt returns")
}

/// Rows read before answering: results this small need no reader task.
const READ_AHEAD_ROWS: usize = 8;

/// A query's result: the columns (taken from the first row, as Spin does),
/// the rows read ahead, and for larger results a reader task's rows.
struct RowStream {
    columns: Vec<Column>,
    ready: Vec<Vec<DbValue>>,
    rest: Option<mpsc::Receiver<Vec<DbValue>>>,
    outcome: Outcome,
}

/// How the query ended: known already, or when the reader task finishes.
enum Outcome {
    Known(Result<(), Error>),
    Pending(oneshot::Receiver<Result<(), Error>>),
}

impl Outcome {
    async fn wait(self) -> Result<(), Error> {
        match self {
            Outcome::Known(result) => result,
            Outcome::Pending(receiver) => receiver.await.unwrap_or(Ok(())),
        }
    }
}

/// The next row, converted with Spin's mapping and within its size limit;
/// `columns`, if given and still empty, are taken from it.
async fn next_row(
    rows: &mut std::pin::Pin<Box<tokio_postgres::RowStream>>,
    component_id: &str,
    columns: Option<&mut Vec<Column>>,
) -> Option<Result<Vec<DbValue>, Error>> {
    let row = match rows.next().await? {
        Ok(row) => row,
        Err(err) => return Some(Err(query_failed(&err))),
    };
    if let Some(columns) = columns
        && columns.is_empty()
    {
        *columns = convert::columns(&row);
    }
    let mut compat = Vec::new();
    let values = match convert::row(&row, &mut compat) {
        Ok(values) => values,
        Err(err) => return Some(Err(query_failed_text(format!("{err:?}")))),
    };
    for message in compat {
        compat_warning(component_id, &message);
    }
    if values.iter().map(convert::memory_size).sum::<usize>() > MAX_RESULT_BYTES {
        return Some(Err(query_failed_text(format!(
            "query result exceeds limit of {MAX_RESULT_BYTES} bytes"
        ))));
    }
    Some(Ok(values))
}

async fn query(
    lease: Arc<Lease>,
    statement: &str,
    parameters: Vec<convert::SqlParameter>,
) -> Result<RowStream, Error> {
    let client = lease.client_for(statement);
    let mut attempt = 0;
    let rows = loop {
        let prepared = client
            .prepare_cached(statement)
            .await
            .map_err(|e| query_failed(&e))?;
        match client
            .query_raw(
                &prepared,
                parameters.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)),
            )
            .await
        {
            Err(err) if attempt == 0 && is_stale_plan(&err) => {
                client.statement_cache.clear();
                attempt += 1;
            }
            result => break result.map_err(|e| query_failed(&e))?,
        }
    };
    let mut rows = Box::pin(rows);
    let component_id = lease.component_id.clone();
    let mut columns = Vec::new();
    let mut ready = Vec::new();
    while ready.len() < READ_AHEAD_ROWS {
        let outcome = match next_row(&mut rows, &component_id, Some(&mut columns)).await {
            Some(Ok(values)) => {
                ready.push(values);
                continue;
            }
            Some(Err(err)) => Err(err),
            None => Ok(()),
        };
        return Ok(RowStream {
            columns,
            ready,
            rest: None,
            outcome: Outcome::Known(outcome),
        });
    }
    let (row_tx, row_rx) = mpsc::channel(16);
    let (outcome_tx, outcome_rx) = oneshot::channel();
    tokio::spawn(async move {
        // The task owns the lease until the last row is read.
        let _lease = lease;
        let outcome = loop {
            match next_row(&mut rows, &component_id, None).await {
                None => break Ok(()),
                Some(Err(err)) => break Err(err),
                Some(Ok(values)) => {
                    if row_tx.send(values).await.is_err() {
                        // The guest stopped reading; nothing waits for the rest.
                        break Ok(());
                    }
                }
            }
        };
        let _ = outcome_tx.send(outcome);
    });
    Ok(RowStream {
        columns,
        ready,
        rest: Some(row_rx),
        outcome: Outcome::Pending(outcome_rx),
    })
}

/// Collects a whole result (the sync `query`), within Spin's size limit.
async fn query_buffered(
    component_id: &str,
    lease: Arc<Lease>,
    statement: &str,
    parameters: Vec<convert::SqlParameter>,
) -> Result<RowSet, Error> {
    let RowStream {
        columns,
        mut ready,
        rest,
        outcome,
    } = query(lease, statement, parameters).await?;
    let mut bytes = ready.iter().flatten().map(convert::memory_size).sum::<usize>();
    if let Some(mut rest) = rest {
        while let Some(row) = rest.recv().await {
            bytes += row.iter().map(convert::memory_size).sum::<usize>();
            if bytes > MAX_RESULT_BYTES {
                return Err(query_failed_text(format!(
                    "query result exceeds limit of {MAX_RESULT_BYTES} bytes"
                )));
            }
            ready.push(row);
        }
    }
    outcome.wait().await?;
    let rows = ready;
    if rows.is_empty() {
        compat_warning(
            component_id,
            "a synchronous `query` returned no rows; this host answers it, but Spin 4.0.2 never returns \
             from it and the request hangs. Use `query-async` (spin-sdk 6's `Connection::query`).",
        );
    }
    Ok(RowSet { columns, rows })
}

impl wit::Host for PgView<'_> {}

impl HostConnection for PgView<'_> {
    async fn open(&mut self, address: String) -> wasmtime::Result<Result<Resource<PgConnection>, Error>> {
        let opener = Opener::of(self);
        Ok(match opener.connect(&address, None).await {
            Ok(client) => self.push_connection(client),
            Err(err) => Err(err),
        })
    }

    async fn query(
        &mut self,
        connection: Resource<PgConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<RowSet, Error>> {
        let component_id = self.state.component_id.clone();
        let prepared = self
            .lease(&connection)
            .and_then(|lease| Ok((lease, sql_parameters(&component_id, &params, Call::Query)?)));
        Ok(match prepared {
            Ok((lease, parameters)) => query_buffered(&component_id, lease, &statement, parameters).await,
            Err(err) => Err(err),
        })
    }

    async fn execute(
        &mut self,
        connection: Resource<PgConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<u64, Error>> {
        let prepared = self.lease(&connection).and_then(|lease| {
            Ok((
                lease,
                sql_parameters(&self.state.component_id, &params, Call::Execute)?,
            ))
        });
        Ok(match prepared {
            Ok((lease, parameters)) => execute(&lease, &statement, &parameters).await,
            Err(err) => Err(err),
        })
    }

    async fn drop(&mut self, connection: Resource<PgConnection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        self.state.open_connections = self.state.open_connections.saturating_sub(1);
        Ok(())
    }
}

impl HostConnectionBuilder for PgView<'_> {
    async fn new(&mut self, address: String) -> wasmtime::Result<Resource<PgConnectionBuilder>> {
        Ok(self.table.push(PgConnectionBuilder {
            address,
            ca_root: None,
        })?)
    }

    async fn set_ca_root(
        &mut self,
        builder: Resource<PgConnectionBuilder>,
        certificate: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        if let Err(err) = tls::validate_ca_root(&certificate) {
            return Ok(Err(Error::Other(format!("invalid root certificate: {err:#}"))));
        }
        self.table.get_mut(&builder)?.ca_root = Some(CaRoot {
            pem: certificate.into(),
        });
        Ok(Ok(()))
    }

    async fn build(
        &mut self,
        builder: Resource<PgConnectionBuilder>,
    ) -> wasmtime::Result<Result<Resource<PgConnection>, Error>> {
        let PgConnectionBuilder { address, ca_root } =
            self.table.get(&builder).map(|b| PgConnectionBuilder {
                address: b.address.clone(),
                ca_root: b.ca_root.clone(),
            })?;
        if let Err(err) = self.check_address(&address) {
            compat_warning(
                &self.state.component_id,
                "the synchronous `connection-builder.build` was refused a disallowed address; \
                 Spin 4.0.2 skips this check and would have connected.",
            );
            return Ok(Err(err));
        }
        let opener = Opener::of(self);
        Ok(match opener.pools.get(&address, ca_root.as_ref()).await {
            Ok(client) => self.push_connection(client),
            Err(message) => Err(connection_failed(message)),
        })
    }

    async fn drop(&mut self, builder: Resource<PgConnectionBuilder>) -> wasmtime::Result<()> {
        self.table.delete(builder)?;
        Ok(())
    }
}

impl HostConnectionWithStore for PgInterface {
    async fn open_async<T>(
        accessor: &Accessor<T, Self>,
        address: String,
    ) -> wasmtime::Result<Result<Resource<PgConnection>, Error>> {
        let opener = accessor.with(|mut access| Opener::of(&access.get()));
        Ok(match opener.connect(&address, None).await {
            Ok(client) => accessor.with(|mut access| access.get().push_connection(client)),
            Err(err) => Err(err),
        })
    }

    async fn query_async<T>(
        accessor: &Accessor<T, Self>,
        connection: Resource<PgConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<
        Result<
            (
                Vec<Column>,
                StreamReader<Vec<DbValue>>,
                FutureReader<Result<(), Error>>,
            ),
            Error,
        >,
    > {
        let prepared = accessor.with(|mut access| {
            let view = access.get();
            let lease = view.lease(&connection)?;
            let parameters = sql_parameters(&view.state.component_id, &params, Call::Query)?;
            Ok((lease, parameters))
        });
        let (lease, parameters) = match prepared {
            Ok(prepared) => prepared,
            Err(err) => return Ok(Err(err)),
        };
        let stream = match query(lease, &statement, parameters).await {
            Ok(stream) => stream,
            Err(err) => return Ok(Err(err)),
        };
        let outcome = stream.outcome;
        let outcome = async move { Ok::<_, wasmtime::Error>(outcome.wait().await) };
        let producer = stream::RowProducer::new(stream.ready, stream.rest);
        let (rows, outcome) = accessor.with(|mut access| -> wasmtime::Result<_> {
            let rows = StreamReader::new(&mut access, producer)?;
            let outcome = FutureReader::new(&mut access, outcome)?;
            wasmtime::Result::Ok((rows, outcome))
        })?;
        Ok(Ok((stream.columns, rows, outcome)))
    }

    async fn execute_async<T>(
        accessor: &Accessor<T, Self>,
        connection: Resource<PgConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<u64, Error>> {
        let prepared = accessor.with(|mut access| {
            let view = access.get();
            let lease = view.lease(&connection)?;
            let parameters = sql_parameters(&view.state.component_id, &params, Call::Execute)?;
            Ok((lease, parameters))
        });
        Ok(match prepared {
            Ok((lease, parameters)) => execute(&lease, &statement, &parameters).await,
            Err(err) => Err(err),
        })
    }
}

impl HostConnectionBuilderWithStore for PgInterface {
    async fn build_async<T>(
        accessor: &Accessor<T, Self>,
        builder: Resource<PgConnectionBuilder>,
    ) -> wasmtime::Result<Result<Resource<PgConnection>, Error>> {
        let (opener, address, ca_root) = accessor.with(|mut access| -> wasmtime::Result<_> {
            let view = access.get();
            let builder = view.table.get(&builder)?;
            let (address, ca_root) = (builder.address.clone(), builder.ca_root.clone());
            wasmtime::Result::Ok((Opener::of(&view), address, ca_root))
        })?;
        Ok(match opener.connect(&address, ca_root.as_ref()).await {
            Ok(client) => accessor.with(|mut access| access.get().push_connection(client)),
            Err(err) => Err(err),
        })
    }
}

mod stream {
    //! The row stream `query-async` hands the guest.

    use super::DbValue;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::sync::mpsc;
    use wasmtime::StoreContextMut;
    use wasmtime::component::{Destination, StreamProducer, StreamResult, VecBuffer};

    /// Delivers the rows read ahead, then the reader task's, as the guest
    /// reads.
    pub struct RowProducer {
        ready: std::collections::VecDeque<Vec<DbValue>>,
        rest: Option<mpsc::Receiver<Vec<DbValue>>>,
    }

    impl RowProducer {
        pub fn new(ready: Vec<Vec<DbValue>>, rest: Option<mpsc::Receiver<Vec<DbValue>>>) -> Self {
            RowProducer {
                ready: ready.into(),
                rest,
            }
        }
    }

    impl<D> StreamProducer<D> for RowProducer {
        type Item = Vec<DbValue>;
        type Buffer = VecBuffer<Vec<DbValue>>;

        fn poll_produce<'a>(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            mut store: StoreContextMut<'a, D>,
            mut destination: Destination<'a, Self::Item, Self::Buffer>,
            finish: bool,
        ) -> Poll<wasmtime::Result<StreamResult>> {
            let capacity = destination.remaining(&mut store).unwrap_or(usize::MAX).min(64);
            if capacity == 0 {
                return Poll::Ready(Ok(StreamResult::Completed));
            }
            let this = &mut *self;
            let mut batch: Vec<Vec<DbValue>> = Vec::new();
            while batch.len() < capacity {
                match this.ready.pop_front() {
                    Some(row) => batch.push(row),
                    None => break,
                }
            }
            if batch.is_empty() {
                let Some(rest) = this.rest.as_mut() else {
                    return Poll::Ready(Ok(StreamResult::Dropped));
                };
                match rest.poll_recv(cx) {
                    Poll::Ready(Some(row)) => batch.push(row),
                    Poll::Ready(None) => return Poll::Ready(Ok(StreamResult::Dropped)),
                    Poll::Pending if finish => return Poll::Ready(Ok(StreamResult::Cancelled)),
                    Poll::Pending => return Poll::Pending,
                }
                while batch.len() < capacity {
                    match rest.try_recv() {
                        Ok(row) => batch.push(row),
                        Err(_) => break,
                    }
                }
            }
            destination.set_buffer(batch.into());
            Poll::Ready(Ok(StreamResult::Completed))
        }
    }
}
