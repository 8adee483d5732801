//! `POST /webhooks/stripe`: verify, then store and apply in one commit.

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
};

use super::AppState;
use crate::{
    error::{Error, Result},
    payments::{events, webhook},
};

pub fn routes() -> axum::Router<AppState> {
    // Events can be larger than the API body limit.
    axum::Router::new()
        .route("/webhooks/stripe", axum::routing::post(receive))
        .layer(axum::extract::DefaultBodyLimit::max(1 << 20))
}

/// 400 for a bad or stale signature (Stripe shows it as failed); 5xx only
/// when we could not store the event, so Stripe retries; 200 once stored,
/// even if applying it failed: it is then retried from our own store.
async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode> {
    if state.gateway.is_none() {
        return Err(Error::PaymentsNotConfigured);
    }
    let payload = std::str::from_utf8(&body)
        .map_err(|_| Error::BadRequest("the body is not UTF-8".into()))?;
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::BadRequest("missing Stripe-Signature".into()))?;
    let secrets = state.settings.stripe.webhook_secrets();
    let event = match webhook::verify(payload, signature, &secrets) {
        Ok(event) => event,
        Err(webhook::Rejection::BadSignature) => {
            metrics::counter!("patronage_stripe_webhooks_rejected_total", "reason" => "signature")
                .increment(1);
            return Err(Error::BadRequest("the signature does not match".into()));
        }
        Err(webhook::Rejection::Stale) => {
            metrics::counter!("patronage_stripe_webhooks_rejected_total", "reason" => "stale")
                .increment(1);
            return Err(Error::BadRequest("the signature is too old".into()));
        }
        Err(webhook::Rejection::Unreadable(reason)) => {
            // Signed by Stripe but not parseable by this version: keep it so
            // an admin can see it, and tell Stripe we have it.
            let raw: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
            let id = raw["id"].as_str().unwrap_or_default().to_owned();
            if id.is_empty() {
                return Err(Error::BadRequest("the event has no id".into()));
            }
            events::record_unreadable(&state, &raw, &format!("unreadable: {reason}"))
                .await
                .map_err(|e| Error::Unavailable(format!("cannot store the event: {e}")))?;
            return Ok(StatusCode::OK);
        }
    };
    metrics::counter!("patronage_stripe_webhooks_received_total").increment(1);
    // Stored (or stored before) when we answer: applied in the same commit,
    // or queued to be applied.
    state
        .stripe_intake
        .receive(&state.core, event, payload.to_owned())
        .await?;
    Ok(StatusCode::OK)
}
