//! Posting a status as the bot account (`POST /api/v1/statuses`), with
//! Mastodon's `Idempotency-Key`, so a retry of the same post makes no
//! second one at the instance.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::{
    domain::fediverse::PostVisibility,
    error::{Error, Result},
};

/// The status the instance made.
#[derive(Debug, Clone, Deserialize)]
pub struct Status {
    pub id: String,
    #[serde(default)]
    pub url: Option<String>,
}

/// Posts `text`; `key` goes in the `Idempotency-Key` header.
pub async fn post(
    http: &reqwest::Client,
    instance_url: &str,
    token: &SecretString,
    key: &str,
    text: &str,
    visibility: PostVisibility,
) -> Result<Status> {
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        // Never the token: only what went wrong.
        tracing::warn!(error = %e, key, "posting a status: {what}");
        Error::Unavailable(format!(
            "the Mastodon instance did not take the post ({what})"
        ))
    };
    let res = http
        .post(format!(
            "{}/api/v1/statuses",
            instance_url.trim_end_matches('/')
        ))
        .bearer_auth(token.expose_secret())
        .header("Idempotency-Key", key)
        .form(&[("status", text), ("visibility", visibility.as_str())])
        .send()
        .await
        .map_err(|e| failed("unreachable", &e))?;
    let status = res.status();
    if !status.is_success() {
        return Err(failed("refused", &status));
    }
    let made: Status = res
        .json()
        .await
        .map_err(|e| failed("unreadable answer", &e))?;
    if made.id.trim().is_empty() {
        return Err(failed("unreadable answer", &"no status id"));
    }
    Ok(made)
}
