//! spindrive's SQL, written once: each module owns one table's statements
//! and returns domain values or API errors.

/// Failed-login bookkeeping for throttling.
pub mod login_failures;
/// Bearer sessions.
pub mod sessions;
/// Accounts.
pub mod users;
