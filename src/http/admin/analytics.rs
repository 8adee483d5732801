//! Revenue analytics: MRR movements (with the supporters behind each
//! figure), cohorts, concentration and risk, and a forecast. JSON, and CSV
//! for movements and cohorts. Viewers may read them.

use axum::{
    extract::State,
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::range::ReportRange;
use crate::{
    domain::{analytics::Kind, month::Month},
    error::{Error, Result},
    http::{
        AppState, download,
        extract::{Admin, Path, Query},
    },
    service::analytics::{
        self, CohortsReport, ConcentrationReport, ForecastReport, MovementDetails, MovementsReport,
    },
    store,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(movements))
        .routes(routes!(movement_details))
        .routes(routes!(cohorts))
        .routes(routes!(concentration))
        .routes(routes!(forecast))
}

/// MRR movements per month, overall and per tier: new, expansion,
/// reactivation, contraction and churn, with quick ratio and revenue
/// retention. `start + new + expansion + reactivation − contraction −
/// churn = end` for every month and tier.
#[utoipa::path(get, path = "/api/v1/admin/analytics/movements", tag = "admin", security(("bearer" = [])), params(ReportRange),
    responses((status = 200, description = "The movements, or the same as CSV",
               content((MovementsReport = "application/json"), (String = "text/csv"))),
              (status = 422, body = crate::error::Problem)))]
async fn movements(
    State(state): State<AppState>,
    _: Admin,
    headers: HeaderMap,
    Query(q): Query<ReportRange>,
) -> Result<Response> {
    let (from, to) = q.months()?;
    let csv = q.wants_csv(&headers)?;
    let report = analytics::movements(&state.db, from, to).await?;
    if csv {
        return Ok(download::csv(
            &format!("patronage-movements-{from}-to-{to}.csv"),
            analytics::movements_csv(&report)?,
        ));
    }
    Ok(axum::Json(report).into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct DetailQuery {
    /// One tier's movements; all tiers together if absent.
    tier_id: Option<i64>,
    /// new, expansion, reactivation, contraction or churn; all if absent.
    #[param(pattern = "^(new|expansion|reactivation|contraction|churn)$")]
    kind: Option<String>,
    /// 1 to 1000, default 100: the largest amounts first.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// The supporters behind a month's movements (display names, never
/// emails), largest first; `supporters` and `total` are the figures.
#[utoipa::path(get, path = "/api/v1/admin/analytics/movements/{month}/supporters", tag = "admin", security(("bearer" = [])),
    params(("month" = String, Path, description = "YYYY-MM"), DetailQuery),
    responses((status = 200, body = MovementDetails), (status = 422, body = crate::error::Problem)))]
async fn movement_details(
    State(state): State<AppState>,
    _: Admin,
    Path(month): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Result<axum::Json<MovementDetails>> {
    let month = Month::parse("month", &month)?;
    let kind = match q.kind.as_deref() {
        None => None,
        Some(k) => Some(Kind::parse(k).ok_or_else(|| {
            Error::field(
                "kind",
                "must be new, expansion, reactivation, contraction or churn",
            )
        })?),
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Error::field("limit", "must be between 1 and 1000"));
    }
    Ok(axum::Json(
        analytics::movement_details(&state.db, month, q.tier_id, kind, limit).await?,
    ))
}

/// Retention by joining month, in supporters and in MRR; average revenue
/// per supporter, average tenure and a lifetime-value estimate (its
/// formula included).
#[utoipa::path(get, path = "/api/v1/admin/analytics/cohorts", tag = "admin", security(("bearer" = [])), params(ReportRange),
    responses((status = 200, description = "The cohorts, or the same as CSV",
               content((CohortsReport = "application/json"), (String = "text/csv"))),
              (status = 422, body = crate::error::Problem)))]
async fn cohorts(
    State(state): State<AppState>,
    _: Admin,
    headers: HeaderMap,
    Query(q): Query<ReportRange>,
) -> Result<Response> {
    let (from, to) = q.months()?;
    let csv = q.wants_csv(&headers)?;
    let report = analytics::cohorts(&state.db, from, to).await?;
    if csv {
        return Ok(download::csv(
            &format!("patronage-cohorts-{from}-to-{to}.csv"),
            analytics::cohorts_csv(&report)?,
        ));
    }
    Ok(axum::Json(report).into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ConcentrationQuery {
    /// First month for failed payments' recovery, YYYY-MM.
    #[param(schema_with = crate::http::openapi::field::month, required = true)]
    from: String,
    /// Last month, YYYY-MM.
    #[param(schema_with = crate::http::openapi::field::month, required = true)]
    to: String,
}

/// How much MRR depends on the largest supporters now (shares, top 10,
/// Herfindahl index, MRR without the largest sponsor), MRR at risk in
/// past-due pledges, and the recovery of payments failing in the range.
#[utoipa::path(get, path = "/api/v1/admin/analytics/concentration", tag = "admin", security(("bearer" = [])), params(ConcentrationQuery),
    responses((status = 200, body = ConcentrationReport), (status = 422, body = crate::error::Problem)))]
async fn concentration(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<ConcentrationQuery>,
) -> Result<axum::Json<ConcentrationReport>> {
    let from = Month::parse("from", &q.from)?;
    let to = Month::parse("to", &q.to)?;
    Ok(axum::Json(
        analytics::concentration(&state.db, store::now(), from, to).await?,
    ))
}

/// Committed MRR at the end of each of the next six months, from what is
/// known: pledges set to cancel, sponsor terms without renewal, yearly
/// renewals.
#[utoipa::path(get, path = "/api/v1/admin/analytics/forecast", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = ForecastReport)))]
async fn forecast(State(state): State<AppState>, _: Admin) -> Result<axum::Json<ForecastReport>> {
    Ok(axum::Json(
        analytics::forecast(&state.db, store::now()).await?,
    ))
}
