//! The notification service (seed Notification-Service): each user's feed
//! of what happened to their files, newest first, and their preferences
//! (which kinds they are told about). Notifications are created by the
//! services whose changes they tell about, in the same transaction, with
//! the store's one function; a user only ever sees their own. A user may
//! register one webhook endpoint: the deliverer (`notify-worker`) then
//! sends each new notification to it, signed.

use http::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;
use spindrive_domain::ValidationError;
use spindrive_domain::fields::present;
use spindrive_domain::notification;
use spindrive_domain::paging;
use spindrive_domain::webhook::{self as hook, Secret};
use spindrive_service::auth::authenticated;
use spindrive_service::notify_config::private_webhooks_allowed;
use spindrive_service::response::{json, no_content};
use spindrive_service::router::Route;
use spindrive_service::{ApiError, Ctx, Reply};
use spindrive_store::notifications::{self, Settings};
use spindrive_store::webhooks;

#[derive(Clone, Copy)]
enum Endpoint {
    Feed,
    MarkRead,
    MarkAllRead,
    Preferences,
    ChangePreferences,
    Webhook,
    RegisterWebhook,
    RemoveWebhook,
}

const ROUTES: &[Route<Endpoint>] = &[
    (Method::GET, "/api/notifications", Endpoint::Feed),
    (Method::POST, "/api/notifications/read-all", Endpoint::MarkAllRead),
    (
        Method::GET,
        "/api/notifications/preferences",
        Endpoint::Preferences,
    ),
    (
        Method::PATCH,
        "/api/notifications/preferences",
        Endpoint::ChangePreferences,
    ),
    (Method::GET, "/api/notifications/webhook", Endpoint::Webhook),
    (
        Method::PUT,
        "/api/notifications/webhook",
        Endpoint::RegisterWebhook,
    ),
    (
        Method::DELETE,
        "/api/notifications/webhook",
        Endpoint::RemoveWebhook,
    ),
    (Method::POST, "/api/notifications/:id/read", Endpoint::MarkRead),
];

#[http_service]
async fn handle(request: Request) -> impl IntoResponse {
    spindrive_service::serve(request, ROUTES, async |endpoint, mut ctx| match endpoint {
        Endpoint::Feed => feed(&ctx).await,
        Endpoint::MarkRead => mark_read(&ctx).await,
        Endpoint::MarkAllRead => mark_all_read(&ctx).await,
        Endpoint::Preferences => preferences(&ctx).await,
        Endpoint::ChangePreferences => change_preferences(&mut ctx).await,
        Endpoint::Webhook => webhook(&ctx).await,
        Endpoint::RegisterWebhook => register_webhook(&mut ctx).await,
        Endpoint::RemoveWebhook => remove_webhook(&ctx).await,
    })
    .await
}

/// `GET /api/notifications?status=unread|all`: a page of the caller's
/// notifications, newest first, and how many are unread.
async fn feed(ctx: &Ctx) -> Result<Reply, ApiError> {
    let unread_only = match ctx.query("status") {
        None | Some("all") => false,
        Some("unread") => true,
        Some(_) => return Err(ValidationError::new("status", "must be unread or all").into()),
    };
    let limit = paging::limit(ctx.query("limit"))?;
    let before: Option<i64> = ctx.query("cursor").map(paging::decode_cursor).transpose()?;
    let (db, caller) = authenticated(ctx).await?;
    let rows = notifications::feed(&db, caller.id, unread_only, before, paging::rows_to_fetch(limit)).await?;
    let (page, next_cursor) = paging::page(rows, limit, |n| n.id);
    Ok(json(&json!({
        "notifications": page.iter().map(notifications::Notification::to_json).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
        "unread_count": notifications::unread_count(&db, caller.id).await?,
    })))
}

/// `POST /api/notifications/:id/read`; 404 for anything not the caller's.
async fn mark_read(ctx: &Ctx) -> Result<Reply, ApiError> {
    let id = notification_id(ctx.param("id")).ok_or_else(|| ApiError::not_found("notification"))?;
    let (db, caller) = authenticated(ctx).await?;
    notifications::mark_read(&db, caller.id, id).await?;
    Ok(no_content())
}

/// A notification id as the API writes them (digits, no sign or leading
/// zero): one spelling per notification.
fn notification_id(text: &str) -> Option<i64> {
    let canonical = !text.is_empty() && !text.starts_with('0') && text.bytes().all(|b| b.is_ascii_digit());
    canonical.then(|| text.parse().ok()).flatten()
}

async fn mark_all_read(ctx: &Ctx) -> Result<Reply, ApiError> {
    let (db, caller) = authenticated(ctx).await?;
    notifications::mark_all_read(&db, caller.id).await?;
    Ok(no_content())
}

fn preferences_json(settings: &Settings) -> Value {
    json!({
        "kinds": notification::kinds_json(&settings.muted_kinds),
        "webhook_enabled": settings.webhook_enabled,
    })
}

async fn preferences(ctx: &Ctx) -> Result<Reply, ApiError> {
    let (db, caller) = authenticated(ctx).await?;
    Ok(json(&preferences_json(
        &notifications::settings(&db, caller.id).await?,
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreferencesChange {
    /// `{"kind": true|false}`: told about it or not.
    #[serde(default)]
    kinds: Map<String, Value>,
    #[serde(default, deserialize_with = "present")]
    webhook_enabled: Option<bool>,
}

/// `PATCH /api/notifications/preferences`: the kinds and switches given
/// change, the rest stay.
async fn change_preferences(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let change: PreferencesChange = ctx.json().await?;
    notification::check_choices(&change.kinds)?;
    let (db, caller) = authenticated(ctx).await?;
    let settings =
        notifications::change_settings(&db, caller.id, &change.kinds, change.webhook_enabled).await?;
    Ok(json(&preferences_json(&settings)))
}

async fn webhook(ctx: &Ctx) -> Result<Reply, ApiError> {
    let (db, caller) = authenticated(ctx).await?;
    let endpoint = webhooks::get(&db, caller.id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    Ok(json(&endpoint.to_json()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookRegistration {
    url: String,
    /// `whsec_…`; generated when left out.
    #[serde(default, deserialize_with = "present")]
    secret: Option<String>,
}

/// `PUT /api/notifications/webhook`: registers (or replaces) the caller's
/// endpoint. The signing secret is in this answer only.
async fn register_webhook(ctx: &mut Ctx) -> Result<Reply, ApiError> {
    let registration: WebhookRegistration = ctx.json().await?;
    let url = hook::parse_registration_url(&registration.url, private_webhooks_allowed().await?)?;
    let secret = match &registration.secret {
        Some(given) => Secret::parse(given)?,
        None => Secret::generate(),
    };
    let (db, caller) = authenticated(ctx).await?;
    let endpoint = webhooks::register(&db, caller.id, url.as_str(), &secret).await?;
    let mut reply = endpoint.to_json();
    reply["secret"] = secret.reveal().into();
    Ok(json(&reply))
}

/// `DELETE /api/notifications/webhook`: what still waited for it is
/// delivered by being in the feed.
async fn remove_webhook(ctx: &Ctx) -> Result<Reply, ApiError> {
    let (db, caller) = authenticated(ctx).await?;
    webhooks::remove(&db, caller.id).await?;
    Ok(no_content())
}
