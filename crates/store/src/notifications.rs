//! The `notifications` table: what users are told about their files. One
//! function creates them, inside the transaction of the change they tell
//! about; delivery (the feed, webhooks) belongs to the notify service.

use crate::error::StoreError;
use serde_json::Value;
use spin_sdk::pg::ParameterValue;
use spindrive_service::db::{Db, column};

/// A notification to create.
pub struct Notice {
    pub user_id: i64,
    pub kind: &'static str,
    pub message: String,
    pub data: Value,
}

/// Creates a pending notification; returns its id.
pub async fn create(db: &Db, notice: &Notice) -> Result<i64, StoreError> {
    let data = serde_json::to_vec(&notice.data).map_err(StoreError::corrupt)?;
    let row = db
        .row(
            "INSERT INTO notifications (user_id, message, kind, data) VALUES ($1, $2, $3, $4) RETURNING id",
            &[
                ParameterValue::Int64(notice.user_id),
                ParameterValue::Str(notice.message.clone()),
                ParameterValue::Str(notice.kind.to_owned()),
                ParameterValue::Jsonb(data),
            ],
        )
        .await?
        .ok_or_else(|| StoreError::corrupt("INSERT returned no row"))?;
    Ok(column(&row, "id")?)
}
