//! The shared half of every spindrive component: a component is a table of
//! routes and thin handlers; this crate parses requests, authenticates the
//! caller, talks to Postgres, and turns every error into the API's JSON
//! error with the right status.

/// The caller behind a bearer token.
pub mod auth;
/// Settings from Spin variables.
pub mod config;
/// Postgres access over `spin:postgres`, with errors mapped to the API's.
pub mod db;
/// `{"error":{"code","message"}}` with the matching status.
pub mod error;
/// Webhook settings: registration policy, the deliverer's lease and retries.
pub mod notify_config;
/// Redis channels that wake background components.
pub mod queue;
/// Request parsing: path parameters, query strings, size-limited JSON.
pub mod request;
/// JSON and empty responses.
pub mod response;
/// Method-and-path dispatch to a component's endpoints.
pub mod router;
/// The transformation queue's settings (Redis, lease, limits).
pub mod transform_config;

pub use auth::Caller;
pub use config::Config;
pub use db::Db;
pub use error::ApiError;
pub use request::Ctx;
pub use response::Reply;
pub use router::serve;
pub use transform_config::TransformConfig;
