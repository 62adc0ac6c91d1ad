//! The webhook deliverer (seed Notification-Service, delivery half). A
//! message on its channel wakes it; the message is only a hint. It claims
//! due deliveries one by one, each with one conditional UPDATE under a
//! lease, so duplicate wake-ups never send a notification twice, and sends
//! each to its user's endpoint as the Standard Webhooks specification says:
//! `webhook-id`, `webhook-timestamp` and `webhook-signature` (HMAC-SHA256)
//! headers, a JSON body, 10 seconds at most. 2xx is delivered; 410 Gone
//! disables the endpoint; anything else is retried on the configured
//! schedule, then failed.

use futures::future::{Either, select};
use serde_json::json;
use spindrive_domain::time::rfc3339;
use spindrive_domain::webhook::Answer;
use spindrive_service::notify_config::DelivererConfig;
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

/// How long one wake-up keeps delivering, waiting for retries due within
/// it; later ones are left to later wake-ups (each notification written,
/// and the scheduled tick).
const BUSY_BUDGET: Duration = Duration::from_secs(30);

/// How long a receiver has to answer, as the specification suggests.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

async fn wake() -> Result<(), ApiError> {
    let config = Config::load().await?;
    let settings = DelivererConfig::load().await?;
    let started = Instant::now();
    while started.elapsed() < BUSY_BUDGET {
        let db = Db::connect(&config).await?;
        if let Some(delivery) = webhooks::claim(&db, settings.lease).await? {
            drop(db);
            deliver(&config, &settings, &delivery).await;
            continue;
        }
        match webhooks::next_due_in(&db).await? {
            Some(wait) if started.elapsed() + wait < BUSY_BUDGET => {
                drop(db);
                spin_sdk::time::sleep(wait.max(Duration::from_millis(50))).await;
            }
            _ => break,
        }
    }
    Ok(())
}

/// Sends one claimed delivery and records how it ended.
async fn deliver(config: &Config, settings: &DelivererConfig, delivery: &Delivery) {
    let finish = match &delivery.target {
        None => Finish::NoWebhook,
        Some(target) => match send(target, delivery).await {
            Ok(status) => match Answer::of(status) {
                Answer::Accepted => Finish::Sent,
                Answer::Gone => Finish::Gone {
                    error: "the endpoint answered 410 Gone: webhooks are off until it is registered again",
                    url: &target.url,
                },
                Answer::Retry => {
                    let error = format!("the endpoint answered {status}");
                    return record(config, settings, delivery, &error).await;
                }
            },
            Err(error) => return record(config, settings, delivery, &error).await,
        },
    };
    finished(config, delivery, finish).await;
}

/// Records a failed send: retried after the schedule's next wait, or
/// failed for good once it is used up.
async fn record(config: &Config, settings: &DelivererConfig, delivery: &Delivery, error: &str) {
    let retry_after = settings.retries.wait_after(delivery.attempts);
    finished(config, delivery, Finish::Failed { error, retry_after }).await;
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
    let request = http::Request::post(&target.url)
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .header("user-agent", "spindrive-webhooks/1")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", target.secret.sign(&id, timestamp, &body))
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .map_err(|e| format!("the endpoint URL cannot be requested: {e}"))?;
    let sent = pin!(spin_sdk::http::send(request));
    match select(sent, pin!(spin_sdk::time::sleep(SEND_TIMEOUT))).await {
        // The body is not read: the status is the answer.
        Either::Left((Ok(response), _)) => Ok(response.status().as_u16()),
        Either::Left((Err(error), _)) => Err(explain(&error)),
        Either::Right(_) => Err(format!("no answer within {} seconds", SEND_TIMEOUT.as_secs())),
    }
}

/// Why a send failed, in the user's words.
fn explain(error: &spin_sdk::wasip3::http::types::ErrorCode) -> String {
    use spin_sdk::wasip3::http::types::ErrorCode;
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
        ErrorCode::TlsCertificateError | ErrorCode::TlsAlertReceived(_) | ErrorCode::TlsProtocolError => {
            "the endpoint's TLS certificate or handshake was refused".into()
        }
        other => format!("the send failed: {other:?}"),
    }
}
