//! Black-box tests of spindrive: each test gets a fresh database with the
//! migrations applied, the real host serving the real spin.toml, and talks
//! HTTP. One binary, a module per area.

mod admin;
mod auth;
mod budgets;
mod downloads;
mod files;
mod hardening;
mod helpers;
mod notifications;
mod openapi;
mod schema;
mod schemathesis;
mod scripts;
mod sharing;
mod text;
mod transformations;
mod ui;
mod web;
mod webhooks;
