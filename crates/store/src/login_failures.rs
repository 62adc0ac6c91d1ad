//! Failed logins over a sliding hour, per account and per client.

use spin_sdk::pg::ParameterValue;
use spindrive_service::ApiError;
use spindrive_service::db::{Db, column};

/// At most this many failed logins per account per hour.
pub const MAX_PER_ACCOUNT: i64 = 100;
/// At most this many failed logins per client address per hour.
pub const MAX_PER_CLIENT: i64 = 1000;

/// `Some(seconds)` to wait if the account or the client is over its limit.
pub async fn retry_after(db: &Db, account: &str, client: &str) -> Result<Option<u64>, ApiError> {
    let row = db
        .row(
            "WITH recent AS (SELECT account, client, failed_at FROM login_failures \
                 WHERE (account = $1 OR client = $2) AND failed_at > (now() AT TIME ZONE 'utc') - interval '1 hour') \
             SELECT (SELECT count(*) FROM recent WHERE account = $1) AS by_account, \
                    (SELECT count(*) FROM recent WHERE client = $2) AS by_client, \
                    ceil(extract(epoch FROM (SELECT min(failed_at) FROM recent) + interval '1 hour' \
                         - (now() AT TIME ZONE 'utc')))::bigint AS wait",
            &[ParameterValue::Str(account.to_owned()), ParameterValue::Str(client.to_owned())],
        )
        .await?
        .ok_or_else(|| ApiError::internal("count returned no row"))?;
    let by_account: i64 = column(&row, "by_account")?;
    let by_client: i64 = column(&row, "by_client")?;
    if by_account < MAX_PER_ACCOUNT && by_client < MAX_PER_CLIENT {
        return Ok(None);
    }
    let wait: Option<i64> = column(&row, "wait")?;
    Ok(Some(wait.unwrap_or(3600).clamp(1, 3600) as u64))
}

/// Records a failure, and forgets the account's failures older than an hour.
pub async fn record(db: &Db, account: &str, client: &str) -> Result<(), ApiError> {
    let account = ParameterValue::Str(account.to_owned());
    db.execute(
        "INSERT INTO login_failures (account, client) VALUES ($1, $2)",
        &[account.clone(), ParameterValue::Str(client.to_owned())],
    )
    .await?;
    db.execute(
        "DELETE FROM login_failures WHERE account = $1 AND failed_at <= (now() AT TIME ZONE 'utc') - interval '1 hour'",
        &[account],
    )
    .await?;
    Ok(())
}

/// Clears an account's failures after a successful login.
pub async fn clear(db: &Db, account: &str) -> Result<(), ApiError> {
    db.execute(
        "DELETE FROM login_failures WHERE account = $1",
        &[ParameterValue::Str(account.to_owned())],
    )
    .await?;
    Ok(())
}
