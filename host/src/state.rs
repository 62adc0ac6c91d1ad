//! Per-instance store data: the resource table and each interface's
//! per-instance state, with the views the WASI and wasi:http crates need.

use crate::outbound_http::OutboundHttp;
use crate::pg::PgState;
use crate::redis::RedisState;
use crate::variables::ComponentVariables;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Result};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, p2, p3};

/// The data of one component instance's `Store`.
pub struct InstanceState {
    pub table: ResourceTable,
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub outbound_http: OutboundHttp,
    pub variables: Arc<ComponentVariables>,
    pub pg: PgState,
    pub redis: RedisState,
    pub limits: MemoryLimit,
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl p2::WasiHttpView for InstanceState {
    fn http(&mut self) -> p2::WasiHttpCtxView<'_> {
        p2::WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound_http,
        }
    }
}

impl p3::WasiHttpView for InstanceState {
    fn http(&mut self) -> p3::WasiHttpCtxView<'_> {
        p3::WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound_http,
        }
    }
}

/// Caps an instance's linear memory; logs once when the cap is hit, so an
/// out-of-memory trap is explained in the host log.
pub struct MemoryLimit {
    pub component_id: Arc<str>,
    pub max_bytes: Option<usize>,
}

impl ResourceLimiter for MemoryLimit {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> Result<bool> {
        match self.max_bytes {
            Some(max) if desired > max => {
                tracing::error!(
                    component = &*self.component_id,
                    current,
                    desired,
                    limit = max,
                    "instance memory limit reached: growth refused"
                );
                Ok(false)
            }
            _ => Ok(true),
        }
    }

    fn table_growing(&mut self, _current: usize, _desired: usize, _maximum: Option<usize>) -> Result<bool> {
        Ok(true)
    }
}
