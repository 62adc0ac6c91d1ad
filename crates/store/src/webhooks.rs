//! Webhooks: each user's one endpoint (`notification_webhooks`) and the
//! delivery of their pending notifications to it. A deliverer claims one
//! due row with one conditional UPDATE that counts the attempt, draws a
//! fresh `run_id` and pushes the row's next attempt past a lease; the
//! outcome is recorded only while that `run_id` holds. So duplicate
//! wake-ups never send a row twice, and a deliverer that dies mid-send is
//! replaced once its lease ends.

use crate::error::StoreError;
use chrono::NaiveDateTime;
use serde_json::{Value, json};
use spin_sdk::pg::{ParameterValue, Row};
use spindrive_domain::time::rfc3339;
use spindrive_domain::webhook::Secret;
use spindrive_service::db::{Db, column};
use std::time::Duration;

/// A user's endpoint as they see it (never its secret).
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub url: String,
    pub disabled_at: Option<NaiveDateTime>,
    pub disabled_reason: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

const ENDPOINT_COLUMNS: &str = "url, disabled_at, disabled_reason, created_at, updated_at";

impl Endpoint {
    fn from_row(row: &Row) -> Result<Self, StoreError> {
        Ok(Endpoint {
            url: column(row, "url")?,
            disabled_at: column(row, "disabled_at")?,
            disabled_reason: column(row, "disabled_reason")?,
            created_at: column(row, "created_at")?,
            updated_at: column(row, "updated_at")?,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "url": self.url,
            "active": self.disabled_at.is_none(),
            "disabled_at": self.disabled_at.map(rfc3339),
            "disabled_reason": self.disabled_reason,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        })
    }
}

/// Registers (or replaces, and re-enables) the user's endpoint. Only
/// notifications written from now on wait for it.
pub async fn register(db: &Db, user_id: i64, url: &str, secret: &Secret) -> Result<Endpoint, StoreError> {
    let row = db
        .row(
            &format!(
                "INSERT INTO notification_webhooks (user_id, url, secret) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id) DO UPDATE SET url = EXCLUDED.url, secret = EXCLUDED.secret, \
                     disabled_at = NULL, disabled_reason = NULL, updated_at = (now() AT TIME ZONE 'utc') \
                 RETURNING {ENDPOINT_COLUMNS}"
            ),
            &[
                ParameterValue::Int64(user_id),
                ParameterValue::Str(url.to_owned()),
                ParameterValue::Binary(secret.as_bytes().to_vec()),
            ],
        )
        .await?
        .ok_or_else(|| StoreError::corrupt("upsert returned no row"))?;
    Endpoint::from_row(&row)
}

/// The user's endpoint, if they registered one.
pub async fn get(db: &Db, user_id: i64) -> Result<Option<Endpoint>, StoreError> {
    db.row(
        &format!("SELECT {ENDPOINT_COLUMNS} FROM notification_webhooks WHERE user_id = $1"),
        &[ParameterValue::Int64(user_id)],
    )
    .await?
    .as_ref()
    .map(Endpoint::from_row)
    .transpose()
}

/// Removes the user's endpoint (404 if there is none). What still waited
/// for it is delivered by being in the feed.
pub async fn remove(db: &Db, user_id: i64) -> Result<(), StoreError> {
    db.transaction(async |db| {
        let removed = db
            .execute(
                "DELETE FROM notification_webhooks WHERE user_id = $1",
                &[ParameterValue::Int64(user_id)],
            )
            .await?;
        if removed == 0 {
            return Err(StoreError::NotFound("webhook"));
        }
        settle_without_webhook(db, user_id).await
    })
    .await
}

/// Once a user's webhook is gone, off or switched off, what waited for it
/// (and is not being sent right now) is delivered by being in the feed.
pub(crate) async fn settle_without_webhook(db: &Db, user_id: i64) -> Result<(), StoreError> {
    db.execute(
        "UPDATE notifications SET status = 'sent', next_attempt_at = NULL, last_error = NULL, \
             updated_at = (now() AT TIME ZONE 'utc') \
         WHERE user_id = $1 AND status = 'pending' AND run_id IS NULL",
        &[ParameterValue::Int64(user_id)],
    )
    .await?;
    Ok(())
}

/// A claimed delivery: the notification, and where it goes now (`None`
/// when the user removed or disabled their endpoint, or switched webhooks
/// off, since it was written).
#[derive(Debug)]
pub struct Delivery {
    pub id: i64,
    run_id: String,
    pub user_id: i64,
    pub attempts: i32,
    pub kind: String,
    pub message: String,
    pub data: Value,
    pub created_at: NaiveDateTime,
    pub target: Option<Target>,
}

/// An active endpoint and its signing key.
#[derive(Debug)]
pub struct Target {
    pub url: String,
    pub secret: Secret,
}

impl Delivery {
    fn from_row(row: &Row) -> Result<Self, StoreError> {
        let data: String = column(row, "data")?;
        let url: Option<String> = column(row, "url")?;
        let secret: Option<Vec<u8>> = column(row, "secret")?;
        let target = match (url, secret) {
            (Some(url), Some(secret)) => Some(Target {
                url,
                secret: Secret::from_bytes(secret)
                    .ok_or_else(|| StoreError::corrupt("webhook secret length"))?,
            }),
            _ => None,
        };
        Ok(Delivery {
            id: column(row, "id")?,
            run_id: column(row, "run_id")?,
            user_id: column(row, "user_id")?,
            attempts: column(row, "attempts")?,
            kind: column(row, "kind")?,
            message: column(row, "message")?,
            data: serde_json::from_str(&data).map_err(StoreError::corrupt)?,
            created_at: column(row, "created_at")?,
            target,
        })
    }
}

/// Why a delivery failed when its last claim ran out with no outcome.
const ABANDONED: &str = "the deliverer stopped while sending; no attempt is left";

/// Fails the rows already sent `max_attempts` times whose last claim ran
/// out without an outcome (their deliverer died): `claim` never takes them.
pub async fn fail_abandoned(db: &Db, max_attempts: i32) -> Result<u64, StoreError> {
    Ok(db
        .execute(
            "UPDATE notifications SET status = 'failed', next_attempt_at = NULL, run_id = NULL, \
             last_error = coalesce(last_error, $2), updated_at = (now() AT TIME ZONE 'utc') \
         WHERE status = 'pending' AND attempts >= $1 AND next_attempt_at <= (now() AT TIME ZONE 'utc')",
            &[
                ParameterValue::Int32(max_attempts),
                ParameterValue::Str(ABANDONED.to_owned()),
            ],
        )
        .await?)
}

/// Claims up to `limit` due deliveries with attempts left, those that
/// waited longest first, each until `lease` from now.
pub async fn claim(
    db: &Db,
    lease: Duration,
    max_attempts: i32,
    limit: i64,
) -> Result<Vec<Delivery>, StoreError> {
    db.rows(
        "WITH due AS (SELECT id, user_id FROM notifications \
             WHERE status = 'pending' AND next_attempt_at <= (now() AT TIME ZONE 'utc') AND attempts < $2 \
             ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
         UPDATE notifications n SET attempts = n.attempts + 1, run_id = gen_random_uuid(), \
             next_attempt_at = (now() AT TIME ZONE 'utc') + make_interval(secs => $1), \
             updated_at = (now() AT TIME ZONE 'utc') \
         FROM due LEFT JOIN notification_webhooks w ON w.user_id = due.user_id AND w.disabled_at IS NULL \
             AND coalesce((SELECT webhook_enabled FROM notification_settings s WHERE s.user_id = due.user_id), true) \
         WHERE n.id = due.id \
         RETURNING n.id, n.run_id::text AS run_id, n.user_id, n.attempts, n.kind, n.message, \
             n.data::text AS data, n.created_at, w.url, w.secret",
        &[
            ParameterValue::Floating64(lease.as_secs_f64()),
            ParameterValue::Int32(max_attempts),
            ParameterValue::Int64(limit),
        ],
    )
    .await?
    .iter()
    .map(Delivery::from_row)
    .collect()
}

/// Why a 410 ends a delivery and the endpoint.
const GONE: &str = "the endpoint answered 410 Gone: webhooks are off until it is registered again";

/// How a claimed delivery ended.
#[derive(Debug)]
pub enum Finish<'a> {
    /// The receiver answered 2xx.
    Sent,
    /// No endpoint takes it any more: the feed is its delivery.
    NoWebhook,
    /// The receiver answered 410 Gone: the row fails and the endpoint it
    /// was sent to is disabled (unless the user replaced it meanwhile);
    /// the user's other pending rows are delivered by the feed.
    Gone,
    /// Any other failure: tried again after `retry_after`, or failed for
    /// good when no retry is left.
    Failed {
        error: &'a str,
        retry_after: Option<Duration>,
    },
}

/// Records how `delivery` ended, if its claim still holds (`ClaimLost`
/// otherwise: another deliverer took it after the lease ran out).
pub async fn finish(db: &Db, delivery: &Delivery, finish: Finish<'_>) -> Result<(), StoreError> {
    let (set, mut params) = match &finish {
        Finish::Sent => (
            "status = 'sent', sent_at = (now() AT TIME ZONE 'utc'), last_error = NULL, next_attempt_at = NULL",
            vec![],
        ),
        // Not an attempt: nothing was sent.
        Finish::NoWebhook => (
            "status = 'sent', next_attempt_at = NULL, last_error = NULL, attempts = attempts - 1",
            vec![],
        ),
        Finish::Gone => (
            "status = 'failed', last_error = $3, next_attempt_at = NULL",
            vec![ParameterValue::Str(GONE.to_owned())],
        ),
        Finish::Failed {
            error,
            retry_after: None,
        } => (
            "status = 'failed', last_error = $3, next_attempt_at = NULL",
            vec![ParameterValue::Str((*error).to_owned())],
        ),
        Finish::Failed {
            error,
            retry_after: Some(wait),
        } => (
            "last_error = $3, next_attempt_at = (now() AT TIME ZONE 'utc') + make_interval(secs => $4)",
            vec![
                ParameterValue::Str((*error).to_owned()),
                ParameterValue::Floating64(wait.as_secs_f64()),
            ],
        ),
    };
    let mut all = vec![
        ParameterValue::Int64(delivery.id),
        ParameterValue::Uuid(delivery.run_id.clone()),
    ];
    all.append(&mut params);
    db.transaction(async |db| {
        let done = db
            .execute(
                &format!(
                    "UPDATE notifications SET {set}, run_id = NULL, updated_at = (now() AT TIME ZONE 'utc') \
                     WHERE id = $1 AND run_id = $2 AND status = 'pending'"
                ),
                &all,
            )
            .await?;
        if done != 1 {
            return Err(StoreError::ClaimLost);
        }
        if let (Finish::Gone, Some(target)) = (&finish, &delivery.target) {
            db.execute(
                "UPDATE notification_webhooks SET disabled_at = (now() AT TIME ZONE 'utc'), \
                     disabled_reason = $4, updated_at = (now() AT TIME ZONE 'utc') \
                 WHERE user_id = $1 AND url = $2 AND secret = $3 AND disabled_at IS NULL",
                &[
                    ParameterValue::Int64(delivery.user_id),
                    ParameterValue::Str(target.url.clone()),
                    ParameterValue::Binary(target.secret.as_bytes().to_vec()),
                    ParameterValue::Str(GONE.to_owned()),
                ],
            )
            .await?;
            settle_without_webhook(db, delivery.user_id).await?;
        }
        Ok(())
    })
    .await
}

/// How long until the next pending delivery is due (zero if one is due
/// now); `None` when none waits.
pub async fn next_due_in(db: &Db) -> Result<Option<Duration>, StoreError> {
    let row = db
        .row(
            "SELECT greatest(0, extract(epoch FROM min(next_attempt_at) - (now() AT TIME ZONE 'utc')))::float8 AS wait \
             FROM notifications WHERE status = 'pending'",
            &[],
        )
        .await?
        .ok_or_else(|| StoreError::corrupt("min() returned no row"))?;
    let wait: Option<f64> = column(&row, "wait")?;
    Ok(wait.map(Duration::from_secs_f64))
}
