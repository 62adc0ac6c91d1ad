//! Webhook settings from Spin variables: what endpoints may be registered
//! (the notify API) and how deliveries are woken, leased and retried (the
//! deliverer).

use crate::config::{get, number};
use crate::error::ApiError;
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

/// How long a receiver has to answer, as the Standard Webhooks
/// specification suggests.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The deliverer's settings.
#[derive(Clone, Debug)]
pub struct DelivererConfig {
    /// How long a claimed delivery is the claimant's before another
    /// deliverer may send it again; longer than a send may take.
    pub lease: Duration,
    /// The waits between failed sends.
    pub retries: RetrySchedule,
    /// Whether private endpoints may still be sent to (checked again at
    /// each send, so turning it off stops them).
    pub allow_private: bool,
}

impl DelivererConfig {
    /// The settings; `checkout` is the longest wait for a database
    /// connection, which the lease must also cover.
    pub async fn load(checkout: Duration) -> Result<Self, ApiError> {
        let schedule = get("notify_retry_schedule").await?;
        let lease = Duration::from_secs(number("notify_lease_seconds").await?);
        // A lease that can end while a send is still allowed to run would
        // let a second deliverer send the same notification.
        let shortest = SEND_TIMEOUT + 2 * checkout + Duration::from_secs(5);
        if lease < shortest {
            return Err(ApiError::internal(format!(
                "variable notify_lease_seconds must be at least {} (the send timeout, two database checkouts and a margin)",
                shortest.as_secs()
            )));
        }
        Ok(DelivererConfig {
            lease,
            retries: RetrySchedule::parse(&schedule)
                .map_err(|e| ApiError::internal(format!("variable notify_retry_schedule: {e}")))?,
            allow_private: private_webhooks_allowed().await?,
        })
    }
}
