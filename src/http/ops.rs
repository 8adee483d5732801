//! Liveness, readiness and Prometheus metrics.

use axum::{extract::State, http::header, response::IntoResponse};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use crate::error::{Error, Result};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

#[derive(Serialize, ToSchema)]
pub(super) struct Health {
    status: &'static str,
}

/// The process is up: all `/healthz` ever says.
pub(super) const HEALTHY: Health = Health { status: "ok" };

#[derive(Serialize, ToSchema)]
struct Readiness {
    /// "ready", or "degraded" when a scheduled job is overdue.
    status: &'static str,
    /// Scheduled jobs: an overdue one has not succeeded within twice its
    /// period. The replica still serves (readiness is about the database).
    jobs: Vec<crate::jobs::JobHealth>,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
async fn healthz() -> axum::Json<Health> {
    axum::Json(HEALTHY)
}

/// The database answers (503 when it does not), with the health of the
/// scheduled jobs in detail.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, body = Readiness), (status = 503, body = crate::error::Problem)))]
async fn readyz(State(state): State<AppState>) -> Result<axum::Json<Readiness>> {
    let unreachable = |e: Error| {
        tracing::warn!(error = %e, "readiness check failed");
        Error::Unavailable("database unreachable".into())
    };
    state.db.ping().await.map_err(unreachable)?;
    let jobs = crate::jobs::health(&state).await.map_err(unreachable)?;
    let status = if jobs.iter().any(|j| j.overdue) {
        "degraded"
    } else {
        "ready"
    };
    Ok(axum::Json(Readiness { status, jobs }))
}

/// Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
