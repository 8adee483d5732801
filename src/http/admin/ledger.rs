//! The ledger: reading it, recording manual contributions, voiding them.

use axum::{extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::Paged;
use crate::service::tiers::campaign_currency;
use crate::{
    domain::{
        ledger::{EntryKind, ManualContribution},
        money::{Money, MoneyView},
        month::Day,
        pledge::Source,
    },
    error::Result,
    http::{
        AppState,
        extract::{Admin, Json, Owner, Path, Query},
    },
    service,
    store::{
        self,
        ledger::{EntryRow, Filter},
    },
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_entries))
        .routes(routes!(record_contribution))
        .routes(routes!(void_contribution))
}

#[derive(Serialize, ToSchema)]
pub struct EntryView {
    id: i64,
    kind: EntryKind,
    /// Signed: income is positive, refunds, disputes, fees and voids negative.
    amount: MoneyView,
    pledge_id: Option<i64>,
    supporter_id: Option<i64>,
    tier_id: Option<i64>,
    source: Source,
    external_reference: String,
    occurred_at: DateTime<Utc>,
    recorded_at: DateTime<Utc>,
    note: String,
    reverses_entry_id: Option<i64>,
    reversed_by_entry_id: Option<i64>,
    created_by: Option<String>,
}

impl From<EntryRow> for EntryView {
    fn from(e: EntryRow) -> Self {
        EntryView {
            id: e.id,
            kind: e.kind,
            amount: Money::new(e.amount_minor, e.currency).view(),
            pledge_id: e.pledge_id,
            supporter_id: e.supporter_id,
            tier_id: e.tier_id,
            source: e.source,
            external_reference: e.external_ref,
            occurred_at: e.occurred_at,
            recorded_at: e.recorded_at,
            note: e.note,
            reverses_entry_id: e.reverses_entry_id,
            reversed_by_entry_id: e.reversed_by,
            created_by: e.created_by,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct LedgerQuery {
    kind: Option<EntryKind>,
    supporter_id: Option<i64>,
    /// Entries on or after this day (UTC).
    from: Option<Day>,
    /// Entries before this day (UTC).
    until: Option<Day>,
    /// Newest first: pass the previous page's `next_after` here.
    before: Option<i64>,
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// Ledger entries, newest first.
#[utoipa::path(get, path = "/api/v1/admin/ledger", tag = "admin", security(("bearer" = [])), params(LedgerQuery),
    responses((status = 200, body = Paged<EntryView>)))]
async fn list_entries(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<LedgerQuery>,
) -> Result<axum::Json<Paged<EntryView>>> {
    let page = super::page(None, q.limit)?;
    if let (Some(from), Some(until)) = (q.from, q.until) {
        Day::ordered(from.date(), until.date(), "from")?;
    }
    let filter = Filter {
        kind: q.kind,
        source: None,
        supporter_id: q.supporter_id,
        from: q.from.map(Day::start),
        until: q.until.map(Day::start),
    };
    let rows = store::ledger::list(&state.db, &filter, q.before, page.limit).await?;
    Ok(axum::Json(Paged::new(
        rows.into_iter().map(Into::into).collect(),
        page.limit,
        |e: &EntryView| e.id,
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RecordContribution {
    supporter_id: Option<i64>,
    /// Attributes the money to a pledge (and its tier) in reports.
    pledge_id: Option<i64>,
    #[schema(schema_with = crate::http::openapi::field::amount)]
    amount_minor: i64,
    /// Must be the campaign currency; defaults to it.
    #[schema(schema_with = crate::http::openapi::field::currency_or_null)]
    currency: Option<String>,
    /// The day the money arrived (UTC); not in the future.
    date: Day,
    #[serde(default)]
    #[schema(schema_with = crate::http::openapi::field::note)]
    note: String,
    /// The bank's transaction id, for instance. The same reference is never
    /// recorded twice; one is generated if absent.
    #[schema(schema_with = crate::http::openapi::field::reference_or_null)]
    external_reference: Option<String>,
}

/// Records money that arrived outside Stripe (bank transfer, cash).
#[utoipa::path(post, path = "/api/v1/admin/contributions", tag = "admin", security(("bearer" = [])), request_body = RecordContribution,
    responses((status = 201, body = EntryView), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn record_contribution(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Json(req): Json<RecordContribution>,
) -> Result<(StatusCode, axum::Json<EntryView>)> {
    let currency = campaign_currency(&state, req.currency.as_deref(), "currency").await?;
    let contribution = ManualContribution::parse(
        req.supporter_id,
        req.amount_minor,
        currency,
        req.date.date(),
        Utc::now().date_naive(),
        &req.note,
        req.external_reference.as_deref(),
    )?;
    let row = service::ledger::record(&state, &admin.actor(), &contribution, req.pledge_id).await?;
    Ok((StatusCode::CREATED, axum::Json(row.into())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct VoidContribution {
    #[schema(schema_with = crate::http::openapi::field::required_note)]
    reason: String,
}

/// Voids a manual contribution by writing a reversing entry; the original
/// stays in the ledger. Returns the reversing entry.
#[utoipa::path(post, path = "/api/v1/admin/contributions/{id}/void", tag = "admin", security(("bearer" = [])), request_body = VoidContribution,
    params(("id" = i64, Path)), responses((status = 201, body = EntryView), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn void_contribution(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Path(id): Path<i64>,
    Json(req): Json<VoidContribution>,
) -> Result<(StatusCode, axum::Json<EntryView>)> {
    let row = service::ledger::void(&state, &admin.actor(), id, &req.reason).await?;
    Ok((StatusCode::CREATED, axum::Json(row.into())))
}
