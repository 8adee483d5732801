//! Monthly reports, as JSON or CSV, and the instance in context (active
//! users against supporters and costs). Viewers may read them.

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    domain::month::Month,
    error::{Error, Result},
    http::{
        AppState,
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

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    /// First month, YYYY-MM.
    #[param(schema_with = crate::http::openapi::field::month, required = true)]
    from: String,
    /// Last month, YYYY-MM (at most 120 months after `from`).
    #[param(schema_with = crate::http::openapi::field::month, required = true)]
    to: String,
    /// `json` (default) or `csv`; `Accept: text/csv` also selects CSV.
    #[param(pattern = "^(json|csv)$")]
    format: Option<String>,
}

/// Gross, refunds, disputes, fees, net, patrons and recurring amounts per
/// month, with a per-tier breakdown.
#[utoipa::path(get, path = "/api/v1/admin/reports/monthly", tag = "admin", security(("bearer" = [])), params(ReportQuery),
    responses((status = 200, description = "The report, or the same as CSV",
               content((MonthlyReport = "application/json"), (String = "text/csv"))),
              (status = 422, body = crate::error::Problem)))]
async fn monthly_report(
    State(state): State<AppState>,
    _: Admin,
    headers: HeaderMap,
    Query(q): Query<ReportQuery>,
) -> Result<Response> {
    let from = Month::parse("from", &q.from)?;
    let to = Month::parse("to", &q.to)?;
    let wants_csv = match q.format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        Some(_) => return Err(Error::field("format", "must be json or csv")),
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/csv")),
    };
    let report = reports::monthly_cached(&state.db, &state.reports, from, to).await?;
    if !wants_csv {
        return Ok(axum::Json(report).into_response());
    }
    let filename = format!("attachment; filename=\"patronage-{from}-to-{to}.csv\"");
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&filename).map_err(Error::internal_from)?,
            ),
        ],
        reports::to_csv(&report)?,
    )
        .into_response())
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
