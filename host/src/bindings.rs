//! Host-side bindings for the Spin interfaces in `wit/host.wit`, generated
//! once here and imported everywhere else.

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "spindrive:host/host",
        imports: { default: async | trappable | tracing },
    });
}

pub use generated::spin;
