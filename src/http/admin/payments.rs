//! Stripe administration: refunds, the catalogue, failed webhook events.

use axum::{extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::ledger::EntryView;
use crate::{
    error::{Error, Result},
    http::{
        AppState,
        extract::{Admin, Json, Owner, Path, Query},
    },
    payments::{catalogue, events},
    service,
    store::{self},
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(refund_payment))
        .routes(routes!(sync_catalogue))
        .routes(routes!(list_events))
        .routes(routes!(replay_event))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RefundRequest {
    /// Part of the payment, in minor units; the whole remaining amount if absent.
    #[schema(schema_with = crate::http::openapi::field::amount_or_null)]
    amount_minor: Option<i64>,
    #[serde(default)]
    reason: String,
}

/// Refunds a Stripe payment (the ledger entry of kind `payment`), fully or
/// partly. The refund goes through Stripe, then into the ledger.
#[utoipa::path(post, path = "/api/v1/admin/payments/{entry_id}/refund", tag = "admin", security(("bearer" = [])),
    request_body = RefundRequest, params(("entry_id" = i64, Path)),
    responses((status = 201, body = EntryView), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn refund_payment(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Path(entry_id): Path<i64>,
    Json(req): Json<RefundRequest>,
) -> Result<(StatusCode, axum::Json<EntryView>)> {
    let row = service::payments::refund(
        &state,
        &admin.actor(),
        entry_id,
        req.amount_minor,
        &req.reason,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(row.into())))
}

#[derive(Serialize, ToSchema)]
struct SyncResult {
    /// Tiers on sale in Stripe after the sync.
    active_tiers: usize,
}

/// Makes Stripe's Products and Prices match the tiers. Safe to repeat.
#[utoipa::path(post, path = "/api/v1/admin/stripe/sync", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = SyncResult), (status = 503, body = crate::error::Problem)))]
async fn sync_catalogue(
    State(state): State<AppState>,
    _owner: Owner,
) -> Result<axum::Json<SyncResult>> {
    let gateway = state.gateway.as_ref().ok_or(Error::PaymentsNotConfigured)?;
    let active_tiers = catalogue::sync_all(&state.db, gateway).await?;
    Ok(axum::Json(SyncResult { active_tiers }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct EventQuery {
    /// `pending`, `processed` or `failed`.
    #[param(pattern = "^(pending|processed|failed)$")]
    status: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct EventView {
    id: String,
    #[serde(rename = "type")]
    type_: String,
    status: String,
    attempts: i32,
    last_error: Option<String>,
    received_at: DateTime<Utc>,
    processed_at: Option<DateTime<Utc>>,
    next_attempt_at: DateTime<Utc>,
}

/// Stored webhook events, newest first; `status=failed` lists what needs attention.
#[utoipa::path(get, path = "/api/v1/admin/stripe/events", tag = "admin", security(("bearer" = [])), params(EventQuery),
    responses((status = 200, body = [EventView])))]
async fn list_events(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<EventQuery>,
) -> Result<axum::Json<Vec<EventView>>> {
    if let Some(s) = q.status.as_deref()
        && !matches!(s, "pending" | "processed" | "failed")
    {
        return Err(Error::field(
            "status",
            "must be pending, processed or failed",
        ));
    }
    let limit = super::page(None, q.limit)?.limit;
    let rows = store::stripe::list_events(&state.db, q.status.as_deref(), limit).await?;
    Ok(axum::Json(
        rows.into_iter()
            .map(|r| EventView {
                id: r.id,
                type_: r.type_,
                status: r.status,
                attempts: r.attempts,
                last_error: r.last_error,
                received_at: r.received_at,
                processed_at: r.processed_at,
                next_attempt_at: r.next_attempt_at,
            })
            .collect(),
    ))
}

#[derive(Serialize, ToSchema)]
struct ReplayResult {
    applied: bool,
}

/// Applies a stored event again now (after fixing what made it fail).
#[utoipa::path(post, path = "/api/v1/admin/stripe/events/{id}/replay", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = ReplayResult), (status = 404, body = crate::error::Problem)))]
async fn replay_event(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Path(id): Path<String>,
) -> Result<axum::Json<ReplayResult>> {
    let applied = events::replay(&state, &admin.actor(), &id).await?;
    Ok(axum::Json(ReplayResult { applied }))
}
