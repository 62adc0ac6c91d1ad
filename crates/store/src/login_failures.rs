//! Failed logins (and failed password confirmations), for the limits in
//! `spindrive_domain::throttle`.
//!
//! An attempt is recorded as a failure BEFORE the password is checked, and
//! removed again only once it succeeded. So a client gains nothing from
//! sending its guesses concurrently (each is counted before any is judged),
//! and a failure to record refuses the attempt instead of letting it
//! through. Checking and recording happen under a lock on the account, so
//! concurrent attempts on one account are counted one after another.

use crate::error::StoreError;
use spin_sdk::pg::ParameterValue;
use spindrive_domain::client::ClientKey;
use spindrive_domain::throttle::{self, LoginFailures};
use spindrive_service::db::{Db, column};

/// Seconds since `failed_at` of an aggregate, as whole seconds (0 if none).
const AGE: &str = "coalesce(floor(extract(epoch FROM (now() AT TIME ZONE 'utc') - {})), 0)::bigint";

fn age(of: &str) -> String {
    AGE.replace("{}", of)
}

fn text(value: &str) -> ParameterValue {
    ParameterValue::Str(value.to_owned())
}

/// Counts the recent failures that bear on an attempt by `client` on `account`.
async fn recent(db: &Db, account: &str, client: &ClientKey) -> Result<LoginFailures, StoreError> {
    let sql = format!(
        "WITH by_account AS (SELECT client, failed_at FROM login_failures \
             WHERE account = $1 AND failed_at > (now() AT TIME ZONE 'utc') - make_interval(secs => $3)), \
         by_client AS (SELECT failed_at FROM login_failures \
             WHERE client = $2 AND failed_at > (now() AT TIME ZONE 'utc') - make_interval(secs => $3)) \
         SELECT (SELECT count(*) FROM by_account WHERE client = $2) AS pair, \
                {} AS pair_oldest_age, \
                (SELECT count(*) FROM by_client) AS client, \
                {} AS client_oldest_age, \
                (SELECT count(*) FROM by_account) AS account, \
                {} AS account_latest_age",
        age("(SELECT min(failed_at) FROM by_account WHERE client = $2)"),
        age("(SELECT min(failed_at) FROM by_client)"),
        age("(SELECT max(failed_at) FROM by_account)"),
    );
    let row = db
        .row(
            &sql,
            &[
                text(account),
                text(client.as_ref()),
                ParameterValue::Floating64(throttle::WINDOW_SECONDS as f64),
            ],
        )
        .await?
        .ok_or_else(|| StoreError::corrupt("count returned no row"))?;
    Ok(LoginFailures {
        pair: column(&row, "pair")?,
        pair_oldest_age: column(&row, "pair_oldest_age")?,
        client: column(&row, "client")?,
        client_oldest_age: column(&row, "client_oldest_age")?,
        account: column(&row, "account")?,
        account_latest_age: column(&row, "account_latest_age")?,
    })
}

/// Starts an attempt: 429 if the limits refuse it, otherwise it is
/// recorded as a failure until [`succeeded`] says otherwise. Old failures
/// of every account are pruned on the way.
pub async fn begin(db: &Db, account: &str, client: &ClientKey) -> Result<(), StoreError> {
    db.transaction(async |db| {
        db.execute(
            "SELECT pg_advisory_xact_lock(hashtext('spindrive.login'), hashtext($1))",
            &[text(account)],
        )
        .await?;
        if let Some(seconds) = throttle::login_wait(&recent(db, account, client).await?) {
            return Err(StoreError::Throttled(seconds));
        }
        db.execute(
            "INSERT INTO login_failures (account, client) VALUES ($1, $2)",
            &[text(account), text(client.as_ref())],
        )
        .await?;
        db.execute(
            "DELETE FROM login_failures WHERE failed_at <= (now() AT TIME ZONE 'utc') - make_interval(secs => $1)",
            &[ParameterValue::Floating64(throttle::WINDOW_SECONDS as f64)],
        )
        .await?;
        Ok(())
    })
    .await
}

/// The attempt succeeded: this client's failures on the account are
/// forgotten (other clients' failures stay, so one success does not reset
/// an attacker's count).
pub async fn succeeded(db: &Db, account: &str, client: &ClientKey) -> Result<(), StoreError> {
    db.execute(
        "DELETE FROM login_failures WHERE account = $1 AND client = $2",
        &[text(account), text(client.as_ref())],
    )
    .await?;
    Ok(())
}
