//! The wasmtime engine and linker: the component model with WASIp3, the
//! pooling allocator (as Spin sizes it), the compiled-code cache, epoch
//! interruption (every guest yields each tick, so one that computes never
//! holds a thread other requests need, and deadlines fire mid-computation),
//! and every host interface.

use crate::bindings::spin::postgres::postgres;
use crate::bindings::spin::redis::redis;
use crate::bindings::spin::variables::variables;
use crate::pg::{PgInterface, PgView};
use crate::redis::{RedisInterface, RedisView};
use crate::state::InstanceState;
use crate::variables::VariablesInterface;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::component::{Component, Linker};
use wasmtime::{Cache, CacheConfig, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances, and so how long a guest computes before
/// it yields to other work: Spin's tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Engine-wide settings from the command line.
#[derive(Clone, Debug)]
pub struct EngineSettings {
    /// `None`: use the pooling allocator if the address space allows it.
    pub pooling: Option<bool>,
    /// Instances (and memories, stacks) the pool holds.
    pub max_instances: u32,
    /// Where compiled code is cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
}

/// Builds the engine; falls back to on-demand allocation if the pooling
/// allocator cannot reserve its address space (unless it was forced).
pub fn build_engine(settings: &EngineSettings) -> Result<Engine> {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .wasm_component_model_async(true)
        .epoch_interruption(true);
    if let Some(dir) = &settings.cache_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create cache directory {}", dir.display()))?;
        let mut cache = CacheConfig::new();
        cache.with_directory(dir);
        config.cache(Some(
            Cache::new(cache)
                .map_err(anyhow::Error::from)
                .context("cannot set up the compiled-code cache")?,
        ));
    }
    if settings.pooling != Some(false) {
        let mut pooled = config.clone();
        pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(
            settings.max_instances,
        )));
        match Engine::new(&pooled) {
            Ok(engine) => return Ok(engine),
            Err(err) if settings.pooling.is_none() => {
                tracing::warn!("pooling allocator unavailable ({err}); using on-demand allocation")
            }
            Err(err) => return Err(anyhow::Error::from(err).context("cannot create the pooling allocator")),
        }
    }
    Ok(Engine::new(&config)?)
}

/// Spin's pool sizes.
fn pooling_config(max_instances: u32) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(max_instances)
        .total_memories(max_instances)
        .total_stacks(max_instances)
        .total_tables(max_instances * 2)
        .total_core_instances(max_instances * 4)
        .table_elements(100_000)
        .max_core_instances_per_component(200)
        .max_tables_per_component(64)
        .max_memories_per_component(32)
        .max_tables_per_module(2)
        .max_memories_per_module(2)
        .max_memory_size(4 << 30);
    pool
}

/// A linker with every interface this host provides.
pub fn build_linker(engine: &Engine) -> Result<Linker<InstanceState>> {
    let mut linker = Linker::<InstanceState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    wasmtime_wasi::p3::add_to_linker(&mut linker)?;
    wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
    variables::add_to_linker::<_, VariablesInterface>(&mut linker, |state| &*state.variables)?;
    postgres::add_to_linker::<_, PgInterface>(&mut linker, |state| PgView {
        state: &mut state.pg,
        table: &mut state.table,
    })?;
    redis::add_to_linker::<_, RedisInterface>(&mut linker, |state| RedisView {
        state: &mut state.redis,
        table: &mut state.table,
    })?;
    Ok(linker)
}

/// Compiles (or loads from the cache) the component at `path`.
pub fn load_component(engine: &Engine, path: &Path) -> Result<Component> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Component::new(engine, bytes)?)
}

/// Advances the engine's epoch while alive, so computing guests yield.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EpochTicker {
    pub fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = stop.clone();
            move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            }
        });
        EpochTicker {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
