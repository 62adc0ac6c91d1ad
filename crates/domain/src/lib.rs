//! spindrive's domain: the rules every service shares, in plain Rust that
//! builds and is tested natively and on wasm32-wasip2 (the target the
//! components ship on).
//!
//! Values from the outside world are parsed once into types that can only
//! hold valid values (`Username`, `Email`, `Password`, `FileName`, ...);
//! the rest of the code takes those types.

/// Account fields: usernames, emails, passwords (argon2id), roles.
pub mod account;
/// Who a request comes from, for throttling (never a client-written address).
pub mod client;
/// Downloads: byte ranges, validators, Content-Disposition.
pub mod download;
/// Validation errors that name the field at fault.
pub mod error;
/// JSON body fields as the API document means them (`null`, whole numbers).
pub mod fields;
/// File names and file access rules (read < write < delete).
pub mod file;
/// Media types of stored content: parsed at upload, served from an allow-list.
pub mod media_type;
/// Kinds of notification and the preferences that mute them.
pub mod notification;
/// Opaque list cursors and page sizes.
pub mod paging;
/// Login and registration throttling: the limits, decided once.
pub mod throttle;
/// Timestamps as the API shows them (RFC 3339, UTC).
pub mod time;
/// Bearer session tokens: generation, hashing, parsing.
pub mod token;
/// Transformations: types, parameters, result names, job states.
pub mod transform;
/// Webhooks: endpoints, signing secrets, signatures, retries.
pub mod webhook;

pub use error::ValidationError;
