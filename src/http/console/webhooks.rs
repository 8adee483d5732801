//! The Webhooks page: endpoints with their state, an endpoint's delivery
//! log, and (for owners) adding, changing, turning on and off, rotating
//! the secret, pinging, redelivering and removing. A new secret is shown
//! on the page that answers the form, once. The same service functions as
//! the JSON API.

use axum::{extract::State, response::Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{OwnerForm, Signed, after, blank_as_none, page};
use crate::{
    domain::webhooks::{EventType, split_event_types},
    error::{Error, Result},
    http::{AppState, extract::Path},
    service::{self, webhooks::EndpointInput},
    store::{
        self,
        webhooks::{DeliveryRow, EndpointRow},
    },
};

const LOG: i64 = 50;

#[derive(Serialize)]
struct EndpointView {
    id: i64,
    url: String,
    description: String,
    event_types: Vec<String>,
    enabled: bool,
    trusted: bool,
    state: String,
    rotating_until: String,
}

impl From<EndpointRow> for EndpointView {
    fn from(e: EndpointRow) -> Self {
        let now = Utc::now();
        let state = if !e.enabled {
            match &e.disabled_reason {
                Some(r) => format!("off: {r}"),
                None => "off".into(),
            }
        } else if let Some(since) = e.failing_since {
            format!(
                "failing since {} ({} in a row)",
                since.format("%Y-%m-%d %H:%M UTC"),
                e.consecutive_failures
            )
        } else {
            "on".into()
        };
        EndpointView {
            id: e.id,
            event_types: split_event_types(&e.event_types),
            url: e.url,
            description: e.description,
            enabled: e.enabled,
            trusted: e.trusted,
            state,
            rotating_until: e
                .previous_secret_expires_at
                .filter(|t| *t > now)
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default(),
        }
    }
}

#[derive(Serialize)]
struct DeliveryView {
    id: i64,
    event_id: i64,
    webhook_id: String,
    event_type: String,
    attempt: i32,
    ok: bool,
    status: String,
    latency: String,
    response: String,
    at: String,
}

impl From<DeliveryRow> for DeliveryView {
    fn from(d: DeliveryRow) -> Self {
        DeliveryView {
            id: d.id,
            event_id: d.event_id,
            webhook_id: d.webhook_id,
            event_type: d.event_type,
            attempt: d.attempt,
            ok: d.ok,
            status: d
                .status_code
                .map(|s| s.to_string())
                .or(d.error)
                .unwrap_or_default(),
            latency: d.latency_ms.map(|l| format!("{l} ms")).unwrap_or_default(),
            response: d.response_body.unwrap_or_default(),
            at: d.attempted_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        }
    }
}

#[derive(Serialize)]
struct WebhooksPage {
    endpoints: Vec<EndpointView>,
    event_types: Vec<&'static str>,
    /// The endpoint whose log is shown.
    selected: Option<EndpointView>,
    deliveries: Vec<DeliveryView>,
    /// A secret just made, shown this once.
    new_secret: Option<NewSecret>,
    today: String,
}

#[derive(Serialize)]
struct NewSecret {
    endpoint_id: i64,
    url: String,
    secret: String,
}

#[derive(Deserialize, Default)]
pub struct WebhooksQuery {
    #[serde(default, deserialize_with = "blank_as_none")]
    endpoint: Option<i64>,
}

async fn render(
    state: &AppState,
    signed: &Signed,
    selected: Option<i64>,
    new_secret: Option<NewSecret>,
) -> Result<Response> {
    let endpoints = store::webhooks::endpoints(&state.db).await?;
    let selected = selected.or(new_secret.as_ref().map(|s| s.endpoint_id));
    let chosen = selected.and_then(|id| endpoints.iter().find(|e| e.id == id).cloned());
    let deliveries = match &chosen {
        Some(e) => store::webhooks::deliveries(&state.db, e.id, None, LOG)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
        None => Vec::new(),
    };
    page(
        signed,
        "webhooks.html",
        "webhooks",
        WebhooksPage {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            event_types: EventType::SUBSCRIBABLE.iter().map(|t| t.as_str()).collect(),
            selected: chosen.map(Into::into),
            deliveries,
            new_secret,
            today: Utc::now().date_naive().to_string(),
        },
    )
}

pub async fn show(
    State(state): State<AppState>,
    signed: Signed,
    axum::extract::Query(q): axum::extract::Query<WebhooksQuery>,
) -> Result<Response> {
    render(&state, &signed, q.endpoint, None).await
}

/// The endpoint form: `url`, `description`, a checkbox per event type
/// (named after it), `enabled` and `trusted`.
fn endpoint_input(form: &[(String, String)]) -> EndpointInput {
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let on = |name: &str| form.iter().any(|(k, v)| k == name && !v.is_empty());
    EndpointInput {
        url: field("url"),
        description: field("description"),
        event_types: form
            .iter()
            .filter(|(k, _)| k == "event_type")
            .map(|(_, v)| v.clone())
            .collect(),
        enabled: on("enabled"),
        trusted: on("trusted"),
    }
}

pub async fn create(
    State(state): State<AppState>,
    OwnerForm { signed, form }: OwnerForm<Vec<(String, String)>>,
) -> Result<Response> {
    match service::webhooks::create(&state, &signed.admin.actor(), &endpoint_input(&form)).await {
        Ok((row, secret)) => {
            let shown = NewSecret {
                endpoint_id: row.id,
                url: row.url,
                secret,
            };
            render(&state, &signed, None, Some(shown)).await
        }
        Err(e) => after(signed.cookies, "/admin/webhooks", Err(e)),
    }
}

pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    OwnerForm { signed, form }: OwnerForm<Vec<(String, String)>>,
) -> Result<Response> {
    let outcome =
        service::webhooks::update(&state, &signed.admin.actor(), id, &endpoint_input(&form))
            .await
            .map(|e| {
                format!(
                    "Endpoint #{} saved ({}).",
                    e.id,
                    if e.enabled { "on" } else { "off" }
                )
            });
    after(
        signed.cookies,
        &format!("/admin/webhooks?endpoint={id}"),
        outcome,
    )
}

pub async fn rotate(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    OwnerForm { signed, .. }: OwnerForm<Vec<(String, String)>>,
) -> Result<Response> {
    let (row, secret) = service::webhooks::rotate_secret(&state, &signed.admin.actor(), id).await?;
    let shown = NewSecret {
        endpoint_id: row.id,
        url: row.url,
        secret,
    };
    render(&state, &signed, Some(id), Some(shown)).await
}

pub async fn ping(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    OwnerForm { signed, .. }: OwnerForm<Vec<(String, String)>>,
) -> Result<Response> {
    let outcome = service::webhooks::ping(&state, &signed.admin.actor(), id)
        .await
        .map(|d| match (d.ok, d.status_code, d.error) {
            (true, Some(s), _) => format!(
                "Ping delivered: answered {s} in {} ms.",
                d.latency_ms.unwrap_or(0)
            ),
            (_, Some(s), _) => format!("Ping failed: answered {s}."),
            (_, None, e) => format!("Ping failed: {}.", e.unwrap_or_default()),
        });
    after(
        signed.cookies,
        &format!("/admin/webhooks?endpoint={id}"),
        outcome,
    )
}

#[derive(Deserialize)]
pub struct RedeliverForm {
    #[serde(default, deserialize_with = "blank_as_none")]
    event_id: Option<i64>,
    #[serde(default)]
    since: String,
}

pub async fn redeliver(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    OwnerForm { signed, form }: OwnerForm<RedeliverForm>,
) -> Result<Response> {
    let actor = signed.admin.actor();
    let outcome = async {
        let queued = match (form.event_id, form.since.trim()) {
            (Some(event), "") => {
                service::webhooks::redeliver_event(&state, &actor, id, event).await?
            }
            (None, since) if !since.is_empty() => {
                let day = NaiveDate::parse_from_str(since, "%Y-%m-%d")
                    .map_err(|_| Error::field("since", "must be a date, YYYY-MM-DD"))?;
                let from: DateTime<Utc> = day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
                service::webhooks::redeliver_since(&state, &actor, id, from).await?
            }
            _ => {
                return Err(Error::field(
                    "event_id",
                    "give an event id or a date, not both",
                ));
            }
        };
        Ok(format!("{queued} deliveries queued again."))
    }
    .await;
    after(
        signed.cookies,
        &format!("/admin/webhooks?endpoint={id}"),
        outcome,
    )
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    OwnerForm { signed, .. }: OwnerForm<Vec<(String, String)>>,
) -> Result<Response> {
    let outcome = service::webhooks::delete(&state, &signed.admin.actor(), id)
        .await
        .map(|()| format!("Endpoint #{id} removed."));
    after(signed.cookies, "/admin/webhooks", outcome)
}
