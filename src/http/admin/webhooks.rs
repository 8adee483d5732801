//! Outbound webhooks: endpoints (owners change them, viewers read), their
//! secrets (shown once, at creation and rotation), test pings, the
//! delivery log, redelivery, and the event log.

use axum::{extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::Paged;
use crate::{
    domain::webhooks::{EventType, split_event_types},
    error::{Error, Result},
    http::{
        AppState,
        extract::{Admin, Json, Owner, Path, Query},
    },
    service::{self, webhooks::EndpointInput},
    store::{
        self,
        webhooks::{DeliveryRow, EndpointRow, EventRow},
    },
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_endpoints, create_endpoint))
        .routes(routes!(get_endpoint, update_endpoint, delete_endpoint))
        .routes(routes!(rotate_secret))
        .routes(routes!(ping))
        .routes(routes!(list_deliveries))
        .routes(routes!(redeliver))
        .routes(routes!(list_events))
}

#[derive(Serialize, ToSchema)]
pub struct EndpointView {
    id: i64,
    url: String,
    description: String,
    /// The event types sent to it.
    event_types: Vec<String>,
    enabled: bool,
    /// Trusted endpoints get patrons' emails and every amount.
    trusted: bool,
    /// While a rotation is recent, the previous secret signs too, until then.
    previous_secret_until: Option<DateTime<Utc>>,
    /// Failing since then, without a success; null when the last try worked.
    failing_since: Option<DateTime<Utc>>,
    consecutive_failures: i32,
    /// Why it was turned off by itself (it kept failing).
    disabled_reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<EndpointRow> for EndpointView {
    fn from(e: EndpointRow) -> Self {
        let now = Utc::now();
        EndpointView {
            id: e.id,
            event_types: split_event_types(&e.event_types),
            url: e.url,
            description: e.description,
            enabled: e.enabled,
            trusted: e.trusted,
            previous_secret_until: e.previous_secret_expires_at.filter(|t| *t > now),
            failing_since: e.failing_since,
            consecutive_failures: e.consecutive_failures,
            disabled_reason: e.disabled_reason,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// An endpoint with its secret: answered once, when the secret is made.
#[derive(Serialize, ToSchema)]
pub struct EndpointWithSecret {
    #[serde(flatten)]
    endpoint: EndpointView,
    /// `whsec_…`: the key is the base64 after the prefix. Not shown again.
    secret: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct EndpointRequest {
    /// https (http only with `webhooks.allow_http`); its host must not
    /// resolve to a private address unless `webhooks.allow_private`.
    #[schema(max_length = 2000)]
    url: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    description: String,
    /// At least one of supporter.created, pledge.started, pledge.changed,
    /// pledge.past_due, pledge.cancelled, payment.succeeded,
    /// payment.refunded, sponsor.published, sponsor.unpublished,
    /// goal.reached.
    #[schema(min_items = 1)]
    event_types: Vec<String>,
    /// Default true.
    enabled: Option<bool>,
    /// Default false.
    trusted: Option<bool>,
}

impl EndpointRequest {
    fn input(self) -> EndpointInput {
        EndpointInput {
            url: self.url,
            description: self.description,
            event_types: self.event_types,
            enabled: self.enabled.unwrap_or(true),
            trusted: self.trusted.unwrap_or(false),
        }
    }
}

/// Every webhook endpoint.
#[utoipa::path(get, path = "/api/v1/admin/webhooks/endpoints", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<EndpointView>)))]
async fn list_endpoints(
    State(state): State<AppState>,
    _: Admin,
) -> Result<axum::Json<Vec<EndpointView>>> {
    let rows = store::webhooks::endpoints(&state.db).await?;
    Ok(axum::Json(rows.into_iter().map(Into::into).collect()))
}

/// Adds an endpoint. The answer carries its signing secret, once.
#[utoipa::path(post, path = "/api/v1/admin/webhooks/endpoints", tag = "admin", security(("bearer" = [])),
    request_body = EndpointRequest,
    responses((status = 201, body = EndpointWithSecret), (status = 422, body = crate::error::Problem)))]
async fn create_endpoint(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Json(req): Json<EndpointRequest>,
) -> Result<(StatusCode, axum::Json<EndpointWithSecret>)> {
    let (row, secret) = service::webhooks::create(&state, &admin.actor(), &req.input()).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(EndpointWithSecret {
            endpoint: row.into(),
            secret,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/admin/webhooks/endpoints/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 200, body = EndpointView), (status = 404, body = crate::error::Problem)))]
async fn get_endpoint(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<i64>,
) -> Result<axum::Json<EndpointView>> {
    Ok(axum::Json(
        store::webhooks::endpoint(&state.db, id).await?.into(),
    ))
}

/// Replaces an endpoint's settings. Turning it on again clears its
/// failure streak.
#[utoipa::path(put, path = "/api/v1/admin/webhooks/endpoints/{id}", tag = "admin", security(("bearer" = [])),
    request_body = EndpointRequest, params(("id" = i64, Path)),
    responses((status = 200, body = EndpointView), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn update_endpoint(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Path(id): Path<i64>,
    Json(req): Json<EndpointRequest>,
) -> Result<axum::Json<EndpointView>> {
    let row = service::webhooks::update(&state, &admin.actor(), id, &req.input()).await?;
    Ok(axum::Json(row.into()))
}

/// Removes an endpoint and its delivery log.
#[utoipa::path(delete, path = "/api/v1/admin/webhooks/endpoints/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 204, description = "Removed"), (status = 404, body = crate::error::Problem)))]
async fn delete_endpoint(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Path(id): Path<i64>,
) -> Result<StatusCode> {
    service::webhooks::delete(&state, &admin.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new signing secret, answered once; the previous one keeps signing
/// beside it for `webhooks.previous_secret_hours`.
#[utoipa::path(post, path = "/api/v1/admin/webhooks/endpoints/{id}/rotate-secret", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 200, body = EndpointWithSecret), (status = 404, body = crate::error::Problem)))]
async fn rotate_secret(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Path(id): Path<i64>,
) -> Result<axum::Json<EndpointWithSecret>> {
    let (row, secret) = service::webhooks::rotate_secret(&state, &admin.actor(), id).await?;
    Ok(axum::Json(EndpointWithSecret {
        endpoint: row.into(),
        secret,
    }))
}

/// Sends a `webhook.ping` event now and answers how it went.
#[utoipa::path(post, path = "/api/v1/admin/webhooks/endpoints/{id}/ping", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 200, body = DeliveryRow), (status = 404, body = crate::error::Problem)))]
async fn ping(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Path(id): Path<i64>,
) -> Result<axum::Json<DeliveryRow>> {
    Ok(axum::Json(
        service::webhooks::ping(&state, &admin.actor(), id).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct LogQuery {
    /// Newest first: pass the previous page's `next_after` here.
    before: Option<i64>,
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// An endpoint's delivery log, newest first: every try with its status,
/// latency and the start of the answer.
#[utoipa::path(get, path = "/api/v1/admin/webhooks/endpoints/{id}/deliveries", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path), LogQuery),
    responses((status = 200, body = Paged<DeliveryRow>), (status = 404, body = crate::error::Problem)))]
async fn list_deliveries(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<i64>,
    Query(q): Query<LogQuery>,
) -> Result<axum::Json<Paged<DeliveryRow>>> {
    let page = super::page(None, q.limit)?;
    store::webhooks::endpoint(&state.db, id).await?;
    let rows = store::webhooks::deliveries(&state.db, id, q.before, page.limit).await?;
    Ok(axum::Json(Paged::new(
        rows,
        page.limit,
        |d: &DeliveryRow| d.id,
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RedeliverRequest {
    /// One event to send again (its id in the event log).
    event_id: Option<i64>,
    /// Or every subscribed event since then (RFC 3339).
    since: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
struct Redelivered {
    /// Deliveries queued (each with its event's own `webhook-id`).
    queued: usize,
}

/// Delivers one event again, or every subscribed event since a time.
#[utoipa::path(post, path = "/api/v1/admin/webhooks/endpoints/{id}/redeliver", tag = "admin", security(("bearer" = [])),
    request_body = RedeliverRequest, params(("id" = i64, Path)),
    responses((status = 202, body = Redelivered), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn redeliver(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Path(id): Path<i64>,
    Json(req): Json<RedeliverRequest>,
) -> Result<(StatusCode, axum::Json<Redelivered>)> {
    let actor = admin.actor();
    let queued = match (req.event_id, req.since) {
        (Some(event), None) => {
            service::webhooks::redeliver_event(&state, &actor, id, event).await?
        }
        (None, Some(since)) => {
            service::webhooks::redeliver_since(&state, &actor, id, since).await?
        }
        _ => {
            return Err(Error::field(
                "event_id",
                "give either event_id or since, not both",
            ));
        }
    };
    Ok((StatusCode::ACCEPTED, axum::Json(Redelivered { queued })))
}

#[derive(Serialize, ToSchema)]
struct EventView {
    #[serde(flatten)]
    event: EventRow,
    /// The body a trusted endpoint is sent.
    payload: serde_json::Value,
}

/// The event log, newest first: what was (or would have been) sent.
#[utoipa::path(get, path = "/api/v1/admin/webhooks/events", tag = "admin", security(("bearer" = [])),
    params(LogQuery), responses((status = 200, body = Paged<EventView>)))]
async fn list_events(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<LogQuery>,
) -> Result<axum::Json<Paged<EventView>>> {
    let page = super::page(None, q.limit)?;
    let rows = store::webhooks::events(&state.db, q.before, page.limit).await?;
    let items = rows
        .into_iter()
        .map(|event| {
            let data = serde_json::from_str(&event.payload).unwrap_or_default();
            let payload = serde_json::from_str(&crate::domain::webhooks::body(
                &event.kind,
                event.occurred_at,
                &data,
                true,
            ))
            .unwrap_or_default();
            EventView { event, payload }
        })
        .collect();
    Ok(axum::Json(Paged::new(
        items,
        page.limit,
        |e: &EventView| e.event.id,
    )))
}

/// Every event type an endpoint can subscribe to, for forms.
pub fn event_types() -> Vec<&'static str> {
    EventType::SUBSCRIBABLE.iter().map(|t| t.as_str()).collect()
}
