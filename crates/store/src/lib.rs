//! spindrive's SQL, written once: each module owns one table's statements
//! and returns domain values or API errors.

/// File content: chunked in Postgres, staged, published, swept.
pub mod content;
/// What can go wrong, in the domain's words; mapped to HTTP in one place.
pub mod error;
/// File metadata, read with the caller's access.
pub mod files;
/// Transformation jobs: created, claimed under a lease, finished once.
pub mod jobs;
/// Failed-login bookkeeping for throttling.
pub mod login_failures;
/// Notifications: created here, in the transaction of what they tell.
pub mod notifications;
/// Grants: who else may read, write or delete a file.
pub mod permissions;
/// The words of files' text, for content search.
pub mod search;
/// Bearer sessions.
pub mod sessions;
/// Accounts.
pub mod users;
/// Webhook endpoints, and deliveries claimed under a lease, finished once.
pub mod webhooks;
