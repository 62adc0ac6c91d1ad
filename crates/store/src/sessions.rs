//! The `sessions` table: only token hashes, with absolute expiry.

use crate::error::StoreError;
use crate::users::User;
use chrono::NaiveDateTime;
use spin_sdk::pg::ParameterValue;
use spindrive_domain::token::IssuedToken;
use spindrive_service::db::{Db, column};

/// Stores a new session for `user`; returns when it expires.
pub async fn create(
    db: &Db,
    user: &User,
    token: &IssuedToken,
    lifetime_seconds: i64,
) -> Result<NaiveDateTime, StoreError> {
    let row = db
        .row(
            "INSERT INTO sessions (user_id, token_hash, expires_at) \
             VALUES ($1, $2, (now() AT TIME ZONE 'utc') + make_interval(secs => $3)) RETURNING expires_at",
            &[
                ParameterValue::Int64(user.id),
                ParameterValue::Binary(token.hash.to_vec()),
                ParameterValue::Floating64(lifetime_seconds as f64),
            ],
        )
        .await?
        .ok_or_else(|| StoreError::corrupt("INSERT returned no row"))?;
    Ok(column(&row, "expires_at")?)
}

/// Revokes one session.
pub async fn revoke(db: &Db, token_hash: [u8; 32]) -> Result<(), StoreError> {
    db.execute(
        "DELETE FROM sessions WHERE token_hash = $1",
        &[ParameterValue::Binary(token_hash.to_vec())],
    )
    .await?;
    Ok(())
}

/// Revokes every session of a user except `keep`.
pub async fn revoke_all_but(db: &Db, user_id: i64, keep: Option<[u8; 32]>) -> Result<(), StoreError> {
    db.execute(
        "DELETE FROM sessions WHERE user_id = $1 AND token_hash IS DISTINCT FROM $2",
        &[
            ParameterValue::Int64(user_id),
            keep.map_or(ParameterValue::DbNull, |hash| {
                ParameterValue::Binary(hash.to_vec())
            }),
        ],
    )
    .await?;
    Ok(())
}

/// Removes expired sessions (they are already refused; this keeps the table small).
pub async fn purge_expired(db: &Db) -> Result<(), StoreError> {
    db.execute(
        "DELETE FROM sessions WHERE expires_at <= (now() AT TIME ZONE 'utc')",
        &[],
    )
    .await?;
    Ok(())
}
