//! The webhook deliverer (seed Notification-Service, delivery half). A
//! message on its channel wakes it; the message is only a hint. It claims
//! due deliveries in small batches, each row with a conditional UPDATE
//! under a lease, so duplicate wake-ups never send a notification twice,
//! and sends a batch at once, each to its user's endpoint as the Standard
//! Webhooks specification says: `webhook-id`, `webhook-timestamp` and
//! `webhook-signature` (HMAC-SHA256) headers, a JSON body, 10 seconds at
//! most. 2xx is delivered; 410 Gone disables the endpoint; anything else
//! is retried on the configured schedule, then failed.

use futures::future::{Either, join_all, select};
use serde_json::json;
use spin_sdk::wasip3::http::types::{ErrorCode, RequestOptions};
use spin_sdk::wasip3::http_compat::RequestOptionsExtension;
use spindrive_domain::time::rfc3339;
use spindrive_domain::webhook::{self, Answer};
use spindrive_service::notify_config::{DelivererConfig, SEND_TIMEOUT};
use spindrive_service::{ApiError, Config, Db};
use spindrive_store::error::StoreError;
use spindrive_store::webhooks::{self, Delivery, Finish, Target};
use std::pin::pin;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[allow(unsafe_code)] // the export glue, generated
mod export {
    #[spin_sdk::redis_subscriber]
    async fn on_message(_message: bytes::Bytes) -> Result<(), String> {
        super::wake().await.map_err(|error| format!("{error:?}"))
    }
}

/// How long one wake-up keeps delivering. Spin handles one message of a
/// Redis server at a time, so a wake-up must end for the next one, on any
/// channel of that server, to run.
const BUSY_BUDGET: Duration = Duration::from_secs(20);

/// Deliveries claimed and sent at once: a slow endpoint holds up at most
/// this batch, for at most the send timeout.
const BATCH: i64 = 8;

/// A retry due this soon (the schedule's first, about 5 s) is waited for
/// within the wake-up; later ones are left to later wake-ups: each new
/// notification's, and the scheduled tick's (every minute).
const RETRY_WAIT_LIMIT: Duration = Duration::from_secs(7);

/// Waiting for a retry, the queue is looked at again this often, so a new
/// notification is not kept waiting behind it.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

async fn wake() -> Result<(), ApiError> {
    let config = Config::load().await?;
    let settings = DelivererConfig::load(config.db_checkout_timeout).await?;
    let max_attempts = settings.retries.max_attempts();
    let started = Instant::now();
    // Rows abandoned since the last wake-up; later ones wait for the next.
    webhooks::fail_abandoned(&Db::connect(&config).await?, max_attempts).await?;
    while started.elapsed() < BUSY_BUDGET {
        let db = Db::connect(&config).await?;
        let batch = webhooks::claim(&db, settings.lease, max_attempts, BATCH).await?;
        if !batch.is_empty() {
            drop(db);
            join_all(batch.iter().map(|delivery| deliver(&config, &settings, delivery))).await;
            continue;
        }
        match webhooks::next_due_in(&db).await? {
            Some(wait) if wait <= RETRY_WAIT_LIMIT && started.elapsed() + wait < BUSY_BUDGET => {
                drop(db);
                spin_sdk::time::sleep(wait.clamp(Duration::from_millis(20), POLL_INTERVAL)).await;
            }
            _ => break,
        }
    }
    Ok(())
}

/// Sends one claimed delivery and records how it ended.
async fn deliver(config: &Config, settings: &DelivererConfig, delivery: &Delivery) {
    let sent = match &delivery.target {
        None => return finished(config, delivery, Finish::NoWebhook).await,
        Some(target) => match webhook::parse_url(&target.url, settings.allow_private) {
            // Registered while private endpoints were allowed; no more.
            Err(refused) => {
                let error = format!(
                    "the endpoint is not allowed any more: its URL {}",
                    refused.message
                );
                let finish = Finish::Failed {
                    error: &error,
                    retry_after: None,
                };
                return finished(config, delivery, finish).await;
            }
            Ok(_) => send(target, delivery).await,
        },
    };
    let error = match sent {
        Ok(status) => match Answer::of(status) {
            Answer::Accepted => return finished(config, delivery, Finish::Sent).await,
            Answer::Gone => return finished(config, delivery, Finish::Gone).await,
            Answer::Retry => format!("the endpoint answered {status}"),
        },
        Err(error) => error,
    };
    let retry_after = settings.retries.wait_after(delivery.attempts);
    // The endpoint's URL stays out of the log: its query may hold a token.
    eprintln!(
        "notification {}: attempt {} not delivered: {error}",
        delivery.id, delivery.attempts
    );
    finished(
        config,
        delivery,
        Finish::Failed {
            error: &error,
            retry_after,
        },
    )
    .await;
}

async fn finished(config: &Config, delivery: &Delivery, finish: Finish<'_>) {
    let recorded = match Db::connect(config).await {
        Ok(db) => webhooks::finish(&db, delivery, finish).await,
        Err(error) => Err(error.into()),
    };
    match recorded {
        Ok(()) => {}
        // Its lease ran out and another deliverer took it over.
        Err(StoreError::ClaimLost) => {
            eprintln!("notification {}: claim lost while sending", delivery.id)
        }
        // The lease runs out and the delivery is tried again.
        Err(error) => eprintln!(
            "notification {}: cannot record the delivery: {error:?}",
            delivery.id
        ),
    }
}

/// Posts the signed notification; the receiver's status, or why nothing
/// was received.
async fn send(target: &Target, delivery: &Delivery) -> Result<u16, String> {
    let id = format!("ntf_{}", delivery.id);
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64);
    let body = serde_json::to_vec(&json!({
        "type": delivery.kind,
        "timestamp": rfc3339(delivery.created_at),
        "data": {
            "id": delivery.id,
            "message": delivery.message,
            "details": delivery.data,
        },
    }))
    .map_err(|e| e.to_string())?;
    let mut request = http::Request::post(&target.url)
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .header("user-agent", "spindrive-webhooks/1")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", target.secret.sign(&id, timestamp, &body))
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .map_err(|e| format!("the endpoint URL cannot be requested: {e}"))?;
    request
        .extensions_mut()
        .insert(RequestOptionsExtension(timeouts()));
    // The runtime enforces the timeouts of each phase; this bounds the whole.
    let sent = pin!(spin_sdk::http::send(request));
    match select(sent, pin!(spin_sdk::time::sleep(SEND_TIMEOUT))).await {
        // The body is not read: the status is the answer.
        Either::Left((Ok(response), _)) => Ok(response.status().as_u16()),
        Either::Left((Err(error), _)) => Err(explain(&error)),
        Either::Right(_) => Err(format!("no answer within {} seconds", SEND_TIMEOUT.as_secs())),
    }
}

/// Connecting and the first byte of the answer each within the send
/// timeout, for the runtime to enforce.
fn timeouts() -> RequestOptions {
    let options = RequestOptions::new();
    let nanos = Some(SEND_TIMEOUT.as_nanos() as u64);
    // A runtime that does not take a timeout still has the guest's.
    let _ = options.set_connect_timeout(nanos);
    let _ = options.set_first_byte_timeout(nanos);
    options
}

/// Why a send failed, in the user's words.
fn explain(error: &ErrorCode) -> String {
    match error {
        ErrorCode::DestinationIpProhibited => {
            "the endpoint's address is private or otherwise blocked on this server".into()
        }
        ErrorCode::HttpRequestDenied => {
            "this server may not reach that host (its allowed_outbound_hosts)".into()
        }
        ErrorCode::DnsError(_) | ErrorCode::DestinationNotFound => {
            "the endpoint's host name does not resolve".into()
        }
        ErrorCode::ConnectionRefused => "the endpoint refused the connection".into(),
        ErrorCode::ConnectionTimeout => "connecting to the endpoint timed out".into(),
        ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
            format!("no answer within {} seconds", SEND_TIMEOUT.as_secs())
        }
        ErrorCode::TlsCertificateError | ErrorCode::TlsAlertReceived(_) | ErrorCode::TlsProtocolError => {
            "the endpoint's TLS certificate or handshake was refused".into()
        }
        other => format!("the send failed: {other:?}"),
    }
}
