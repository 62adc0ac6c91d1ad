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
        },
    });
}

pub use generated::spin;
