//! The Redis trigger (`[[trigger.redis]]`): one subscriber per server
//! address, `SUBSCRIBE` per channel, and for each message a FRESH instance
//! of every component on that channel, called through Spin's
//! `spin:redis/inbound-redis` export. Messages from one server are handled
//! one at a time, in the order they arrive; a handler's error is logged and
//! the message dropped, as in Spin.
//!
//! Spin 4.0.2 runs its Redis triggers in a process of their own (`spin
//! trigger redis`), so a handler that computes never slows HTTP. This host
//! runs them on a thread of their own at a lower CPU priority (nice 10,
//! about a tenth of an HTTP thread's share when both want the CPU), and,
//! unlike Spin, bounds each message's time (`--message-timeout`): past it
//! the instance is dropped, which traps the guest at its next tick.
//!
//! Where Spin 4.0.2 ends the process when a subscription's connection is
//! lost (or cannot be made), this host logs it and reconnects with backoff,
//! so the HTTP routes keep serving. Messages published meanwhile are lost
//! either way: work is never only in a message.

use super::display_address;
use crate::app::ComponentInstances;
use crate::bindings::RedisHandlerPre;
use crate::manifest::Manifest;
use crate::state::InstanceState;
use crate::variables::Resolver;
use anyhow::{Context, Result, anyhow};
use futures::StreamExt;
use indexmap::IndexMap;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::InstancePre;
use wasmtime_wasi_http::handler::{HandlerState, StoreBundle};

/// The first wait before reconnecting; doubled on each failure.
const FIRST_RETRY: Duration = Duration::from_millis(250);
/// The longest wait between reconnection attempts.
const LAST_RETRY: Duration = Duration::from_secs(10);

/// A component on a Redis trigger, ready to be instantiated per message.
pub struct RedisComponent {
    pub id: String,
    instances: ComponentInstances,
    pre: RedisHandlerPre<InstanceState>,
}

impl RedisComponent {
    /// Fails unless the component exports `spin:redis/inbound-redis@3.0.0`.
    /// A handler runs at most `--message-timeout` (Spin: as long as it
    /// takes).
    pub fn new(id: &str, instances: ComponentInstances, pre: InstancePre<InstanceState>) -> Result<Self> {
        let pre = RedisHandlerPre::new(pre).map_err(|_| {
            anyhow!(
                "component {id:?} is on a Redis trigger but does not export spin:redis/inbound-redis@3.0.0 \
                 (spin-sdk's #[redis_subscriber])"
            )
        })?;
        Ok(RedisComponent {
            id: id.to_owned(),
            instances,
            pre,
        })
    }

    /// Runs one message through a fresh instance, within the message
    /// timeout.
    async fn handle(&self, payload: Vec<u8>) -> Result<()> {
        match self.instances.message_timeout() {
            Some(limit) => tokio::time::timeout(limit, self.run(payload))
                .await
                .map_err(|_| anyhow!("stopped after {limit:?} (--message-timeout)"))?,
            None => self.run(payload).await,
        }
    }

    async fn run(&self, payload: Vec<u8>) -> Result<()> {
        let StoreBundle { mut store, .. } = self.instances.new_store(None)?;
        let handler = self.pre.instantiate_async(&mut store).await?;
        let outcome = store
            .run_concurrent(async |accessor| {
                handler
                    .spin_redis_inbound_redis()
                    .call_handle_message(accessor, payload)
                    .await
            })
            .await;
        outcome??.map_err(|err| anyhow!("Redis handler returned an error: {err:?}"))
    }
}

/// The channels of one Redis server and the components on each.
pub struct Subscription {
    /// May hold a password: never logged.
    address: String,
    shown: String,
    channels: IndexMap<String, Vec<Arc<RedisComponent>>>,
}

/// Groups the manifest's Redis triggers by server address, resolving
/// `{{ variables }}` in addresses and channels.
pub fn subscriptions(
    manifest: &Manifest,
    resolver: &Resolver,
    components: &IndexMap<String, Arc<RedisComponent>>,
) -> Result<Vec<Subscription>> {
    let mut by_address: IndexMap<String, IndexMap<String, Vec<Arc<RedisComponent>>>> = IndexMap::new();
    for (index, trigger) in manifest.redis_triggers.iter().enumerate() {
        let place = || {
            format!(
                "[[trigger.redis]] #{} (component {:?})",
                index + 1,
                trigger.component
            )
        };
        let template = trigger.address.as_ref().or(manifest.redis_address.as_ref()).with_context(|| {
            format!(
                "{}: no Redis address: set `address` on the trigger or [application.trigger.redis] address",
                place()
            )
        })?;
        let address = resolver.render(template).with_context(place)?;
        redis::Client::open(address.as_str())
            .map_err(|_| anyhow!("{}: the address is not a valid Redis URL", place()))?;
        let channel = resolver.render(&trigger.channel).with_context(place)?;
        let component = components
            .get(&trigger.component)
            .with_context(|| format!("{}: component not loaded", place()))?;
        by_address
            .entry(address)
            .or_default()
            .entry(channel)
            .or_default()
            .push(component.clone());
    }
    Ok(by_address
        .into_iter()
        .map(|(address, channels)| Subscription {
            shown: display_address(&address),
            address,
            channels,
        })
        .collect())
}

impl Subscription {
    /// Listens forever, reconnecting after every failure.
    pub async fn run(self) {
        let mut retry = FIRST_RETRY;
        loop {
            let error = self.listen(&mut retry).await;
            tracing::error!(
                "Redis trigger: {error:#}; reconnecting in {retry:?} \
                 (Spin 4.0.2 would exit here, for its orchestrator to restart it)"
            );
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(LAST_RETRY);
        }
    }

    /// Subscribes and delivers messages until the connection fails.
    async fn listen(&self, retry: &mut Duration) -> anyhow::Error {
        let shown = &self.shown;
        let subscribed = async {
            let client = redis::Client::open(self.address.as_str())?;
            tracing::info!("Connecting to Redis server at {shown}");
            let mut pubsub = tokio::time::timeout(super::CONNECT_TIMEOUT, client.get_async_pubsub())
                .await
                .map_err(|_| anyhow!("timed out"))?
                // The error's text already includes its source.
                .map_err(|err| anyhow!("{err}"))?;
            for channel in self.channels.keys() {
                pubsub
                    .subscribe(channel)
                    .await
                    .with_context(|| format!("cannot subscribe to channel {channel:?}"))?;
            }
            anyhow::Ok(pubsub)
        };
        let mut pubsub = match subscribed.await {
            Ok(pubsub) => pubsub,
            Err(err) => return err.context(format!("cannot connect to {shown}")),
        };
        println!("Active Channels on {shown}:");
        for (channel, components) in &self.channels {
            let ids: Vec<&str> = components.iter().map(|c| c.id.as_str()).collect();
            println!("\t{shown}/{channel}: [{}]", ids.join(","));
        }
        *retry = FIRST_RETRY;
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            self.deliver(message.get_channel_name(), message.get_payload_bytes())
                .await;
        }
        anyhow!("disconnected from {shown}")
    }

    /// Every component on `channel` gets the message, each in a fresh
    /// instance, concurrently; the next message waits for all of them.
    async fn deliver(&self, channel: &str, payload: &[u8]) {
        let Some(components) = self.channels.get(channel) else {
            tracing::error!("message from unexpected channel {channel:?} on {}", self.shown);
            return;
        };
        let calls = components.iter().map(|component| async move {
            if let Err(err) = component.handle(payload.to_vec()).await {
                tracing::info!("Component {} handler failed: {err:#}", component.id);
            }
        });
        futures::future::join_all(calls).await;
    }
}

/// The CPU priority of the thread Redis handlers run on: `nice` 10 gets
/// about a tenth of the CPU time of a thread at 0 when both compete.
const TRIGGER_NICENESS: i32 = 10;

/// Runs every subscription until the process ends, on a thread of their
/// own at a lower CPU priority, so background work never takes the CPU
/// that HTTP requests need.
pub fn spawn(subscriptions: Vec<Subscription>) -> Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the Redis trigger's runtime")?;
    std::thread::Builder::new()
        .name("redis-trigger".into())
        .spawn(move || {
            lower_priority();
            runtime.block_on(futures::future::join_all(
                subscriptions.into_iter().map(Subscription::run),
            ));
        })
        .context("cannot start the Redis trigger's thread")
}

/// Lowers the calling thread's CPU priority (on Linux, `setpriority`
/// given a thread's id applies to that thread alone).
fn lower_priority() {
    let thread = rustix::thread::gettid();
    if let Err(error) = rustix::process::setpriority_process(Some(thread), TRIGGER_NICENESS) {
        tracing::warn!("cannot lower the Redis trigger's CPU priority: {error}");
    }
}
