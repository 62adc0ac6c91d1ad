//! The `spin:postgres` host functions: the sync ones on the instance's
//! view, the async ones with the store's accessor.

use super::pool::CaRoot;
use super::query::{Call, execute, query, query_buffered, sql_parameters};
use super::{
    Opener, PgConnection, PgConnectionBuilder, PgInterface, PgView, compat_warning, connection_failed,
    stream, tls,
};
use crate::bindings::spin::postgres::postgres::{
    self as wit, Column, DbValue, Error, HostConnection, HostConnectionBuilder,
    HostConnectionBuilderWithStore, HostConnectionWithStore, ParameterValue, RowSet,
};
use wasmtime::component::{Accessor, FutureReader, Resource, StreamReader};

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
