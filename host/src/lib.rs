//! spindrive-host: a local runtime that runs Spin applications the way
//! `spin up` (Spin 4) does, so the same `.wasm` files and `spin.toml` run on
//! a laptop, in CI and under SpinKube.

/// Spin's `allowed_outbound_hosts` rules, shared by every outbound interface.
pub mod allowed_hosts;
/// The loaded application: components pre-instantiated, router built.
pub mod app;
/// Bindings for the Spin WIT interfaces, generated once.
pub mod bindings;
/// Runs one request through a wasi:http 0.3 or 0.2 instance.
pub mod dispatch;
/// The wasmtime engine, linker and compiled-code cache.
pub mod engine;
/// `spin.toml` (manifest v2), parsed strictly.
pub mod manifest;
/// `wasi:http` outbound requests, checked against the allow-list.
pub mod outbound_http;
/// Networks outbound connections may not reach (`block_networks`).
pub mod outbound_networking;
/// `spin:postgres`: pooled connections, Spin's value mapping.
pub mod pg;
/// `spin:redis`: outbound connections and the Redis trigger.
pub mod redis;
/// Spin's HTTP routing rules; pure, no I/O.
pub mod routes;
/// Spin's runtime configuration file (`--runtime-config-file`).
pub mod runtime_config;
/// The HTTP server: well-known paths, Spin headers, access log, shutdown.
pub mod server;
/// The startup banner.
pub mod startup;
/// Per-instance store data.
pub mod state;
/// `{{ variable }}` templates.
pub mod template;
/// Application variables and `spin:variables`.
pub mod variables;
/// WASI for components: stdio, environment, read-only files.
pub mod wasi;
