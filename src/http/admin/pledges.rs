//! Pledges recorded by hand (standing orders) and their cancellation.

use axum::{extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Paged, page};
use crate::{
    domain::{
        money::{Money, MoneyView},
        month::Day,
        pledge::{PledgeStatus, Source},
        text,
        tier::Interval,
    },
    error::{Error, Result},
    http::{
        AppState,
        extract::{Admin, Json, Owner, Path, Query},
    },
    service,
    store::{
        self, now,
        pledges::{NewPledge, PledgeRow},
    },
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_pledges, create_pledge))
        .routes(routes!(cancel_pledge))
}

#[derive(Serialize, ToSchema)]
pub struct PledgeView {
    id: i64,
    supporter_id: i64,
    tier_id: Option<i64>,
    amount: MoneyView,
    interval: Interval,
    status: PledgeStatus,
    source: Source,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
}

impl From<PledgeRow> for PledgeView {
    fn from(p: PledgeRow) -> Self {
        PledgeView {
            id: p.id,
            supporter_id: p.supporter_id,
            tier_id: p.tier_id,
            amount: Money::new(p.amount_minor, p.currency).view(),
            interval: p.interval,
            status: p.status,
            source: p.source,
            started_at: p.started_at,
            ended_at: p.ended_at,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct PledgeQuery {
    supporter_id: Option<i64>,
    after: Option<i64>,
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// Pledges, oldest first.
#[utoipa::path(get, path = "/api/v1/admin/pledges", tag = "admin", security(("bearer" = [])), params(PledgeQuery),
    responses((status = 200, body = Paged<PledgeView>)))]
async fn list_pledges(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<PledgeQuery>,
) -> Result<axum::Json<Paged<PledgeView>>> {
    let page = page(q.after, q.limit)?;
    let rows = store::pledges::list(&state.db, q.supporter_id, page).await?;
    Ok(axum::Json(Paged::new(
        rows.into_iter().map(Into::into).collect(),
        page.limit,
        |p: &PledgeView| p.id,
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreatePledge {
    supporter_id: i64,
    tier_id: i64,
    /// Defaults to the tier's price; pay-what-you-want tiers accept any
    /// amount at or above their minimum.
    #[schema(schema_with = crate::http::openapi::field::amount_or_null)]
    amount_minor: Option<i64>,
    /// Defaults to now.
    started_on: Option<Day>,
}

/// Records a recurring pledge paid outside Stripe (a standing bank order).
#[utoipa::path(post, path = "/api/v1/admin/pledges", tag = "admin", security(("bearer" = [])), request_body = CreatePledge,
    responses((status = 201, body = PledgeView), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn create_pledge(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Json(req): Json<CreatePledge>,
) -> Result<(StatusCode, axum::Json<PledgeView>)> {
    let started_at = match req.started_on {
        Some(day) if day.date() > Utc::now().date_naive() => {
            return Err(Error::field("started_on", "must not be in the future"));
        }
        Some(day) => day.start(),
        None => now(),
    };
    let new = NewPledge {
        supporter_id: req.supporter_id,
        tier_id: req.tier_id,
        amount_minor: req.amount_minor,
        started_at,
    };
    let row = service::pledges::create(&state, &admin.actor(), &new).await?;
    Ok((StatusCode::CREATED, axum::Json(row.into())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CancelPledge {
    #[serde(default)]
    #[schema(schema_with = crate::http::openapi::field::note)]
    reason: String,
    /// Stripe pledges only: end when the paid period ends (default) or now.
    #[serde(default = "yes")]
    at_period_end: bool,
}

fn yes() -> bool {
    true
}

/// Ends a pledge. A manual pledge ends now; a Stripe pledge is cancelled
/// at Stripe (at period end, or now) and then read back from Stripe, so the
/// two never disagree.
#[utoipa::path(post, path = "/api/v1/admin/pledges/{id}/cancel", tag = "admin", security(("bearer" = [])), request_body = CancelPledge,
    params(("id" = i64, Path)), responses((status = 200, body = PledgeView), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn cancel_pledge(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Path(id): Path<i64>,
    Json(req): Json<CancelPledge>,
) -> Result<axum::Json<PledgeView>> {
    let reason =
        text("reason", &req.reason, 0, 1000, true).map_err(|e| Error::Validation(vec![e]))?;
    let row =
        service::pledges::cancel(&state, &admin.actor(), id, req.at_period_end, &reason).await?;
    Ok(axum::Json(row.into()))
}
