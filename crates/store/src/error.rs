//! What can go wrong in the store, said in the domain's words; the service
//! crate's `ApiError` gets its status and code from here, in one place.

use http::StatusCode;
use spindrive_domain::ValidationError;
use spindrive_service::ApiError;
use spindrive_service::db::DbError;

#[derive(Debug)]
pub enum StoreError {
    /// The statement failed (or the database is unavailable).
    Db(DbError),
    /// Absent, or not visible to the caller: the same thing to them.
    NotFound(&'static str),
    /// A unique value is taken (`code` names which, for clients).
    Conflict {
        code: &'static str,
        message: &'static str,
    },
    /// The row changed since the client read it (`If-Match`).
    PreconditionFailed,
    /// The owner's storage quota would be exceeded.
    QuotaExceeded,
    /// More bytes than the limit.
    TooLarge(u64),
    /// The sweep took an upload that was idle too long.
    UploadExpired,
    /// The client stopped sending before the body was complete.
    UploadInterrupted,
    /// Too many attempts; retry after the seconds.
    Throttled(u64),
    /// The user has this many transformations pending or running already.
    TooManyJobs(i64),
    /// A worker's claim on a job no longer holds: someone else finished it.
    ClaimLost,
    /// A value the client sent is not acceptable.
    Invalid(ValidationError),
    /// The database holds something it never should: our bug.
    Corrupt(String),
}

/// A constraint (name, code, message), as the API reports its violation.
pub type Constraint = (&'static str, &'static str, &'static str);

impl StoreError {
    /// A violation of one of `constraints` as a conflict; anything else
    /// as the database error it is.
    pub fn from_constraint(error: DbError, constraints: &[Constraint]) -> Self {
        match error
            .violated_constraint()
            .and_then(|name| constraints.iter().find(|(n, _, _)| *n == name))
        {
            Some((_, code, message)) => StoreError::Conflict { code, message },
            None => StoreError::Db(error),
        }
    }

    pub fn corrupt(what: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(what.to_string())
    }
}

impl From<DbError> for StoreError {
    fn from(error: DbError) -> Self {
        StoreError::Db(error)
    }
}

impl From<ValidationError> for StoreError {
    fn from(error: ValidationError) -> Self {
        StoreError::Invalid(error)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Db(error) => error.into(),
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::Conflict { code, message } => ApiError::conflict(code, message),
            StoreError::PreconditionFailed => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                "the file changed since you read it (If-Match); fetch it again",
            ),
            StoreError::QuotaExceeded => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "quota_exceeded",
                "the file does not fit in the owner's storage quota",
            ),
            StoreError::TooLarge(limit) => ApiError::too_large(limit),
            StoreError::UploadExpired => ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "upload_expired",
                "the upload was idle too long and was discarded",
            ),
            StoreError::UploadInterrupted => ApiError::bad_request(
                "upload_interrupted",
                "the upload ended before its body was complete",
            ),
            StoreError::Throttled(seconds) => ApiError::throttled(seconds),
            StoreError::TooManyJobs(limit) => {
                let mut error = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_jobs",
                    format!("you have {limit} transformations waiting or running; retry when some finish"),
                );
                error.retry_after = Some(5);
                error
            }
            StoreError::Invalid(error) => error.into(),
            StoreError::Corrupt(what) => ApiError::internal(what),
            // Only the worker meets it, and handles it; never an answer.
            StoreError::ClaimLost => ApiError::internal("a job claim was lost"),
        }
    }
}
