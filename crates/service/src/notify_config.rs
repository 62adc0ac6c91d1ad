//! Webhook settings from Spin variables: what endpoints may be registered
//! (the notify API) and how deliveries are woken, leased and retried (the
//! deliverer).

use crate::config::{get, number};
use crate::error::ApiError;
use crate::queue::RedisAddress;
use spindrive_domain::webhook::RetrySchedule;
use std::time::Duration;

/// Whether endpoints at private, loopback or link-local addresses may be
/// registered (`webhook_allow_private_addresses`; local development only).
pub async fn private_webhooks_allowed() -> Result<bool, ApiError> {
    let value = get("webhook_allow_private_addresses").await?;
    value
        .trim()
        .parse()
        .map_err(|_| ApiError::internal("variable webhook_allow_private_addresses is not true or false"))
}

/// The deliverer's settings.
#[derive(Clone, Debug)]
pub struct DelivererConfig {
    pub redis: RedisAddress,
    /// The channel that wakes the deliverer.
    pub channel: String,
    /// How long a claimed delivery is the claimant's before another
    /// deliverer may send it again; longer than a send may take.
    pub lease: Duration,
    /// The waits between failed sends.
    pub retries: RetrySchedule,
}

impl DelivererConfig {
    pub async fn load() -> Result<Self, ApiError> {
        let schedule = get("notify_retry_schedule").await?;
        Ok(DelivererConfig {
            redis: RedisAddress::load().await?,
            channel: get("notify_channel").await?,
            lease: Duration::from_secs(number("notify_lease_seconds").await?),
            retries: RetrySchedule::parse(&schedule)
                .map_err(|e| ApiError::internal(format!("variable notify_retry_schedule: {e}")))?,
        })
    }
}
