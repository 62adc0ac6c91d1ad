//! Host-side bindings for the Spin interfaces in `wit/host.wit`, generated
//! once here and imported everywhere else.

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "spindrive:host/host",
        // No `tracing`: it would log arguments and results, and variable
        // values may be secrets.
        imports: { default: async | trappable },
        with: {
            "spin:postgres/postgres.connection": crate::pg::PgConnection,
            "spin:postgres/postgres.connection-builder": crate::pg::PgConnectionBuilder,
            "spin:redis/redis.connection": crate::redis::RedisConnection,
        },
    });
}

mod redis_handler {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "spindrive:host/redis-handler",
        exports: { default: async },
        with: { "spin:redis/redis": crate::bindings::spin::redis::redis },
    });
}

pub use generated::spin;
pub use redis_handler::RedisHandlerPre;
