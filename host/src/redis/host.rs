//! The `spin:redis/redis` host functions. Each command runs on a clone of
//! the instance's multiplexed connection, outside the store.

use super::{RedisConnection, RedisInterface, RedisView, check_address, connect, other, reply};
use crate::bindings::spin::redis::redis::{
    self as wit, Error, HostConnection, HostConnectionWithStore, Payload, RedisParameter, RedisResult,
};
use redis::Value;
use wasmtime::component::{Accessor, Resource};

impl wit::Host for RedisView<'_> {}

impl HostConnection for RedisView<'_> {
    async fn drop(&mut self, connection: Resource<RedisConnection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        self.state.open_connections = self.state.open_connections.saturating_sub(1);
        Ok(())
    }
}

/// Runs `command` on the connection behind `connection`.
async fn run<T>(
    accessor: &Accessor<T, RedisInterface>,
    connection: &Resource<RedisConnection>,
    command: &redis::Cmd,
) -> Result<Value, Error> {
    let mut connection = accessor.with(|mut access| access.get().connection(connection))?;
    command.query_async::<Value>(&mut connection).await.map_err(other)
}

impl HostConnectionWithStore for RedisInterface {
    async fn open<T>(
        accessor: &Accessor<T, Self>,
        address: String,
    ) -> wasmtime::Result<Result<Resource<RedisConnection>, Error>> {
        let checked = accessor.with(|mut access| {
            let view = access.get();
            check_address(&view.state.component_id, &view.state.allowed_hosts, &address)
        });
        if let Err(err) = checked {
            return Ok(Err(err));
        }
        Ok(match connect(&address).await {
            Ok(connection) => accessor.with(|mut access| access.get().push_connection(connection)),
            Err(err) => Err(err),
        })
    }

    async fn publish<T>(
        accessor: &Accessor<T, Self>,
        connection: Resource<RedisConnection>,
        channel: String,
        payload: Payload,
    ) -> wasmtime::Result<Result<(), Error>> {
        let publish = redis::cmd("PUBLISH").arg(channel).arg(payload).clone();
        Ok(run(accessor, &connection, &publish).await.map(drop))
    }

    async fn get<T>(
        accessor: &Accessor<T, Self>,
        connection: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Payload>, Error>> {
        let get = redis::cmd("GET").arg(key).clone();
        Ok(run(accessor, &connection, &get)
            .await
            .and_then(reply::optional_bytes))
    }

    async fn set<T>(
        accessor: &Accessor<T, Self>,
        connection: Resource<RedisConnection>,
        key: String,
        value: Payload,
    ) -> wasmtime::Result<Result<(), Error>> {
        let set = redis::cmd("SET").arg(key).arg(value).clone();
        Ok(run(accessor, &connection, &set).await.map(drop))
    }

    async fn incr<T>(
        accessor: &Accessor<T, Self>,
        connection: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<i64, Error>> {
        let incr = redis::cmd("INCRBY").arg(key).arg(1).clone();
        Ok(run(accessor, &connection, &incr).await.and_then(reply::integer))
    }

    async fn del<T>(
        accessor: &Accessor<T, Self>,
        connection: Resource<RedisConnection>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let del = redis::cmd("DEL").arg(keys).clone();
        Ok(run(accessor, &connection, &del).await.and_then(reply::count))
    }

    async fn sadd<T>(
        accessor: &Accessor<T, Self>,
        connection: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let sadd = redis::cmd("SADD").arg(key).arg(values).clone();
        // As in Spin, the one place a reply of the wrong shape is a
        // `type-error` rather than `other`.
        Ok(run(accessor, &connection, &sadd)
            .await
            .and_then(|value| reply::count(value).map_err(|_| Error::TypeError)))
    }

    async fn smembers<T>(
        accessor: &Accessor<T, Self>,
        connection: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let smembers = redis::cmd("SMEMBERS").arg(key).clone();
        Ok(run(accessor, &connection, &smembers)
            .await
            .and_then(reply::strings))
    }

    async fn srem<T>(
        accessor: &Accessor<T, Self>,
        connection: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let srem = redis::cmd("SREM").arg(key).arg(values).clone();
        Ok(run(accessor, &connection, &srem).await.and_then(reply::count))
    }

    async fn execute<T>(
        accessor: &Accessor<T, Self>,
        connection: Resource<RedisConnection>,
        name: String,
        arguments: Vec<RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<RedisResult>, Error>> {
        let mut execute = redis::cmd(&name);
        for argument in arguments {
            match argument {
                RedisParameter::Int64(n) => execute.arg(n),
                RedisParameter::Binary(bytes) => execute.arg(bytes),
            };
        }
        Ok(run(accessor, &connection, &execute)
            .await
            .and_then(reply::results))
    }
}
