//! HTTP helpers the benchmarks share.

use anyhow::{Context, Result};

/// The password `sign_in` registers `username` with.
pub fn password(username: &str) -> String {
    format!("{username}-password")
}

/// Registers `username` and logs in; returns the bearer token.
pub async fn sign_in(base: &str, username: &str) -> Result<String> {
    sign_in_with(&reqwest::Client::new(), base, username).await
}

/// [`sign_in`] through `client` (its default headers, its timeouts).
pub async fn sign_in_with(client: &reqwest::Client, base: &str, username: &str) -> Result<String> {
    let password = password(username);
    let registration = serde_json::json!({
        "username": username,
        "email": format!("{username}@example.com"),
        "password": password,
    });
    client
        .post(format!("{base}/api/auth/register"))
        .json(&registration)
        .send()
        .await?
        .error_for_status()?;
    let session: serde_json::Value = client
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({ "login": username, "password": password }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(session["token"].as_str().context("a token")?.to_owned())
}
