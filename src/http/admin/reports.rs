//! Monthly reports, as JSON or CSV, and the instance in context (active
//! users against supporters and costs). Viewers may read them.

use axum::{
    extract::State,
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::range::ReportRange;
use crate::{
    error::Result,
    http::{
        AppState, download,
        extract::{Admin, Query},
    },
    reports::{self, MonthlyReport},
    service::{self, instance::InstanceReport},
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(monthly_report))
        .routes(routes!(instance_report))
}

/// Gross, refunds, disputes, fees, net, patrons and recurring amounts per
/// month, with a per-tier breakdown.
#[utoipa::path(get, path = "/api/v1/admin/reports/monthly", tag = "admin", security(("bearer" = [])), params(ReportRange),
    responses((status = 200, description = "The report, or the same as CSV",
               content((MonthlyReport = "application/json"), (String = "text/csv"))),
              (status = 422, body = crate::error::Problem)))]
async fn monthly_report(
    State(state): State<AppState>,
    _: Admin,
    headers: HeaderMap,
    Query(q): Query<ReportRange>,
) -> Result<Response> {
    let (from, to) = q.months()?;
    let wants_csv = q.wants_csv(&headers)?;
    let report = reports::monthly_cached(&state.db, &state.reports, from, to).await?;
    if !wants_csv {
        return Ok(axum::Json(report).into_response());
    }
    Ok(download::csv(
        &format!("patronage-{from}-to-{to}.csv"),
        reports::to_csv(&report)?,
    ))
}

/// The instance in context: active users (from Mastodon's admin measures,
/// when `mastodon.admin_token` is set), the share of them who support the
/// instance, and the monthly costs per active user and per supporter.
/// Answers 200 with `available: false` and a reason when not configured or
/// when Mastodon does not answer.
#[utoipa::path(get, path = "/api/v1/admin/reports/instance", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = InstanceReport)))]
async fn instance_report(
    State(state): State<AppState>,
    _: Admin,
) -> Result<axum::Json<InstanceReport>> {
    let today = chrono::Utc::now().date_naive();
    Ok(axum::Json(service::instance::report(&state, today).await?))
}
