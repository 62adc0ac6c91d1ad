//! A loaded application: every component compiled and pre-instantiated,
//! the router built, and one request dispatcher per HTTP component.

use crate::allowed_hosts::AllowedHosts;
use crate::engine::{self, EngineSettings, EpochTicker};
use crate::manifest::{HttpHandler, Manifest, StaticResponse};
use crate::outbound_http::OutboundHttp;
use crate::outbound_networking::BlockedNetworks;
use crate::pg::{PgState, PoolSettings, Pools};
use crate::redis::RedisState;
use crate::redis::trigger::{RedisComponent, Subscription, subscriptions};
use crate::routes::{RouteSpec, Router, Target};
use crate::state::{InstanceState, MemoryLimit};
use crate::variables::{ComponentVariables, Resolver};
use crate::wasi::ComponentWasi;
use anyhow::{Context, Result, bail};
use indexmap::IndexMap;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{InstancePre, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi_http::WasiHttpCtx;
use wasmtime_wasi_http::handler::{HandlerState, ProxyHandler, ProxyPre, StoreBundle};

/// How instances are made and limited; Spin's defaults.
#[derive(Clone, Debug)]
pub struct InstanceSettings {
    /// Requests one wasi:http 0.3 instance serves before it is dropped.
    pub max_reuse: usize,
    /// Requests one wasi:http 0.3 instance serves at the same time.
    pub max_concurrent_reuse: usize,
    /// How long an idle 0.3 instance is kept for reuse.
    pub idle_timeout: Duration,
    /// Wall-clock limit per HTTP request; `None` for no limit.
    pub request_timeout: Option<Duration>,
    /// Wall-clock limit per Redis message (every component's handler);
    /// `None` for no limit.
    pub message_timeout: Option<Duration>,
    /// Linear-memory limit per instance, in bytes; `None` for no limit.
    pub max_memory: Option<usize>,
    /// Networks no outbound connection reaches (runtime configuration).
    pub blocked_networks: Arc<BlockedNetworks>,
}

impl Default for InstanceSettings {
    fn default() -> Self {
        InstanceSettings {
            max_reuse: 128,
            max_concurrent_reuse: 16,
            idle_timeout: Duration::from_secs(1),
            request_timeout: None,
            message_timeout: None,
            max_memory: None,
            blocked_networks: Arc::default(),
        }
    }
}

/// The running application.
pub struct App {
    pub name: String,
    pub version: Option<String>,
    pub router: Router,
    pub static_responses: HashMap<usize, StaticResponse>,
    pub http_components: HashMap<String, HttpComponent>,
    pub descriptions: HashMap<String, String>,
    pub request_timeout: Option<Duration>,
    /// The Redis triggers' subscriptions, for the caller to run.
    pub redis_subscriptions: Vec<Subscription>,
    _epoch_ticker: EpochTicker,
}

/// An HTTP-triggered component and its instance dispatcher.
pub struct HttpComponent {
    pub id: String,
    pub handler: ProxyHandler<ComponentInstances>,
}

impl HttpComponent {
    /// Whether the component exports `wasi:http/handler@0.3`.
    pub fn is_p3(&self) -> bool {
        matches!(self.handler.instance_pre(), ProxyPre::P3(_))
    }
}

/// Makes the stores of one component's instances.
#[derive(Clone)]
pub struct ComponentInstances {
    engine: Engine,
    component_id: Arc<str>,
    wasi: Arc<ComponentWasi>,
    variables: Arc<ComponentVariables>,
    allowed_hosts: Arc<AllowedHosts>,
    pools: Arc<Pools>,
    settings: InstanceSettings,
    reuse: bool,
}

impl ComponentInstances {
    /// How long one Redis message may run in this component.
    pub fn message_timeout(&self) -> Option<Duration> {
        self.settings.message_timeout
    }
}

impl HandlerState for ComponentInstances {
    type StoreData = InstanceState;

    fn new_store(&self, _request_id: Option<u64>) -> wasmtime::Result<StoreBundle<InstanceState>> {
        let state = InstanceState {
            table: ResourceTable::new(),
            wasi: self.wasi.build_ctx().map_err(wasmtime::Error::from_anyhow)?,
            http: WasiHttpCtx::new(),
            outbound_http: OutboundHttp {
                component_id: self.component_id.clone(),
                allowed_hosts: self.allowed_hosts.clone(),
                blocked_networks: self.settings.blocked_networks.clone(),
            },
            variables: self.variables.clone(),
            pg: PgState::new(
                self.component_id.clone(),
                self.allowed_hosts.clone(),
                self.pools.clone(),
            ),
            redis: RedisState::new(self.component_id.clone(), self.allowed_hosts.clone()),
            limits: MemoryLimit {
                component_id: self.component_id.clone(),
                max_bytes: self.settings.max_memory,
            },
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        // Yield to the event loop every tick, whatever the flags: a guest
        // that computes for seconds (a decompression bomb, a loop) then
        // shares its thread with every other request, and deadlines fire
        // while it computes. Spin sets no deadline and never yields; it
        // keeps HTTP apart from Redis-triggered work by running each
        // trigger type in its own process.
        store.epoch_deadline_async_yield_and_update(1);
        Ok(StoreBundle {
            store,
            write_profile: Box::new(|_| {}),
        })
    }

    fn request_timeout(&self) -> Duration {
        self.settings.request_timeout.unwrap_or(Duration::MAX)
    }

    fn idle_instance_timeout(&self) -> Duration {
        self.settings.idle_timeout
    }

    fn max_instance_reuse_count(&self) -> usize {
        if self.reuse { self.settings.max_reuse } else { 1 }
    }

    fn max_instance_concurrent_reuse_count(&self) -> usize {
        if self.reuse {
            self.settings.max_concurrent_reuse
        } else {
            1
        }
    }

    fn handle_worker_error(&self, error: wasmtime::Error) {
        // A trap ends the instance and every request it was serving.
        tracing::error!(
            component = &*self.component_id,
            "Error processing request: {error:?}"
        );
    }
}

impl App {
    /// Loads and pre-instantiates every component of `manifest`.
    pub fn load(
        manifest: &Manifest,
        resolver: Arc<Resolver>,
        engine_settings: &EngineSettings,
        settings: &InstanceSettings,
        pool_settings: PoolSettings,
    ) -> Result<Self> {
        resolver.check_required()?;
        crate::wasi::remove_abandoned_copies();
        let pools = Arc::new(Pools::new(pool_settings));
        let engine = engine::build_engine(engine_settings)?;
        let linker = engine::build_linker(&engine)?;

        let http_component_ids: Vec<&str> = manifest
            .http_triggers
            .iter()
            .filter_map(|t| match &t.handler {
                HttpHandler::Component(id) => Some(id.as_str()),
                HttpHandler::Static(_) => None,
            })
            .collect();

        let redis_component_ids: Vec<&str> = manifest
            .redis_triggers
            .iter()
            .map(|t| t.component.as_str())
            .collect();

        let mut http_components = HashMap::new();
        let mut redis_components = IndexMap::new();
        let mut descriptions = HashMap::new();
        for (id, component) in &manifest.components {
            let loaded = engine::load_component(&engine, &component.source).with_context(|| {
                format!("cannot load component {id:?} from {}", component.source.display())
            })?;
            let pre: InstancePre<InstanceState> = linker.instantiate_pre(&loaded).map_err(|err| {
                anyhow::Error::from(err).context(format!(
                    "component {id:?} imports an interface this host does not provide"
                ))
            })?;
            if let Some(description) = &component.description {
                descriptions.insert(id.clone(), description.clone());
            }
            let on_http = http_component_ids.contains(&id.as_str());
            let on_redis = redis_component_ids.contains(&id.as_str());
            if !on_http && !on_redis {
                continue;
            }
            let allowed_hosts = component
                .allowed_outbound_hosts
                .iter()
                .map(|template| resolver.render(template))
                .collect::<Result<Vec<_>>>()
                .and_then(|entries| AllowedHosts::parse(&entries))
                .with_context(|| format!("component {id:?}: invalid allowed_outbound_hosts"))?;
            let instances = ComponentInstances {
                engine: engine.clone(),
                component_id: id.as_str().into(),
                wasi: Arc::new(
                    ComponentWasi::prepare(component, &manifest.dir)
                        .with_context(|| format!("component {id:?}"))?,
                ),
                variables: Arc::new(ComponentVariables {
                    component_id: id.clone(),
                    templates: component.variables.clone(),
                    resolver: resolver.clone(),
                }),
                allowed_hosts: Arc::new(allowed_hosts),
                pools: pools.clone(),
                settings: settings.clone(),
                reuse: false,
            };
            if on_redis {
                let handler = RedisComponent::new(id, instances.clone(), pre.clone())?;
                redis_components.insert(id.clone(), Arc::new(handler));
            }
            if on_http {
                let proxy_pre = http_proxy_pre(pre).with_context(|| format!("component {id:?}"))?;
                let reuse = matches!(proxy_pre, ProxyPre::P3(_));
                http_components.insert(
                    id.clone(),
                    HttpComponent {
                        id: id.clone(),
                        handler: ProxyHandler::new(ComponentInstances { reuse, ..instances }, proxy_pre),
                    },
                );
            }
        }
        let redis_subscriptions = subscriptions(manifest, &resolver, &redis_components)?;

        let mut static_responses = HashMap::new();
        let specs = manifest.http_triggers.iter().enumerate().map(|(index, trigger)| {
            let target = match &trigger.handler {
                HttpHandler::Component(id) => Target::Component(id.clone()),
                HttpHandler::Static(response) => {
                    static_responses.insert(index, response.clone());
                    Target::StaticResponse(index)
                }
            };
            RouteSpec {
                route: trigger.route.clone(),
                target,
            }
        });
        let (router, duplicates) = Router::build(specs.collect::<Vec<_>>());
        if !duplicates.is_empty() {
            tracing::error!("The following component routes are duplicates and will never be used:");
            for duplicate in &duplicates {
                tracing::error!(
                    "  {}: {} (duplicate of {})",
                    duplicate.replaced,
                    duplicate.route,
                    duplicate.effective
                );
            }
        }
        if router.contains_reserved_route() {
            tracing::error!(
                "Routes under {} are handled by the runtime and will never be reached",
                crate::routes::WELL_KNOWN_PREFIX
            );
        }

        Ok(App {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            router,
            static_responses,
            http_components,
            descriptions,
            request_timeout: settings.request_timeout,
            redis_subscriptions,
            _epoch_ticker: EpochTicker::start(engine.clone()),
        })
    }
}

/// The HTTP export of a component: wasi:http 0.3 `handler` if present,
/// else 0.2 `incoming-handler`.
fn http_proxy_pre(pre: InstancePre<InstanceState>) -> Result<ProxyPre<InstanceState>> {
    if let Ok(p3) = wasmtime_wasi_http::p3::bindings::ServicePre::new(pre.clone()) {
        return Ok(ProxyPre::P3(p3));
    }
    match wasmtime_wasi_http::handler::p2::bindings::ProxyPre::new(pre) {
        Ok(p2) => Ok(ProxyPre::P2(p2)),
        Err(_) => bail!(
            "it is on an HTTP route but exports neither wasi:http/handler@0.3 nor wasi:http/incoming-handler@0.2"
        ),
    }
}
