//! The transformation queue's settings, read from Spin variables once per
//! instance by the components that use them (the transform API and its
//! worker): where Redis is, the channel that wakes the worker, the lease
//! and attempts that make each job run once, and each job's limits.

use crate::config::{get, number};
use crate::error::ApiError;
use crate::queue::RedisAddress;

#[derive(Clone)]
pub struct TransformConfig {
    pub redis: RedisAddress,
    /// The Redis channel that wakes the worker.
    pub channel: String,
    /// How long a claimed job may run before another worker may retry it.
    pub lease_seconds: i64,
    /// Claims of one job before it is failed for good.
    pub max_attempts: i32,
    /// Jobs one user may have pending or running at once.
    pub max_active_jobs: i64,
    pub max_input_bytes: u64,
    pub max_pixels: u64,
    pub max_output_bytes: u64,
    pub max_seconds: u64,
    /// Where the OCR models are mounted (`files` in spin.toml).
    pub ocr_models: String,
}

impl std::fmt::Debug for TransformConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransformConfig")
            .field("redis", &self.redis)
            .field("channel", &self.channel)
            .field("lease_seconds", &self.lease_seconds)
            .field("max_attempts", &self.max_attempts)
            .field("max_active_jobs", &self.max_active_jobs)
            .finish_non_exhaustive()
    }
}

static LOADED: std::sync::OnceLock<TransformConfig> = std::sync::OnceLock::new();

impl TransformConfig {
    pub async fn load() -> Result<Self, ApiError> {
        if let Some(config) = LOADED.get() {
            return Ok(config.clone());
        }
        let config = TransformConfig {
            redis: RedisAddress::load().await?,
            channel: get("transform_channel").await?,
            lease_seconds: number("transform_lease_seconds").await?,
            max_attempts: number("transform_max_attempts").await?,
            max_active_jobs: number("transform_max_active_jobs").await?,
            max_input_bytes: number("transform_max_input_bytes").await?,
            max_pixels: number("transform_max_pixels").await?,
            max_output_bytes: number("transform_max_output_bytes").await?,
            max_seconds: number("transform_max_seconds").await?,
            ocr_models: get("transform_ocr_models").await?,
        };
        Ok(LOADED.get_or_init(|| config).clone())
    }

    /// A computing job's lease: its time limit, and a margin for the
    /// decoder or extractor to notice the limit and stop on its own. Past
    /// it, the job is failed as stopped.
    pub fn computing_lease_seconds(&self) -> i64 {
        i64::try_from(self.max_seconds)
            .unwrap_or(i64::MAX)
            .saturating_add(COMPUTING_MARGIN_SECONDS)
    }
}

/// See [`TransformConfig::computing_lease_seconds`].
const COMPUTING_MARGIN_SECONDS: i64 = 2;
