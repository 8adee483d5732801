//! The audit log, newest first.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::Paged;
use crate::{
    error::Result,
    http::{
        AppState,
        extract::{Admin, Query},
    },
    store,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

#[derive(Serialize, ToSchema)]
struct AuditView {
    id: i64,
    at: DateTime<Utc>,
    actor_id: Option<i64>,
    /// The admin's email, or how the change was made.
    actor: String,
    /// E.g. `tier.update`, `sponsor.approve`, `contribution.void`.
    action: String,
    target_type: String,
    target_id: Option<i64>,
    details: serde_json::Value,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    action: Option<String>,
    /// Pass the previous page's `next_after` here.
    before: Option<i64>,
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// Every change an admin made: who, what, when.
#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = Paged<AuditView>)))]
async fn list_audit(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<AuditQuery>,
) -> Result<axum::Json<Paged<AuditView>>> {
    let page = super::page(None, q.limit)?;
    let rows = store::audit::list(&state.db, q.before, q.action.as_deref(), page.limit).await?;
    let items = rows
        .into_iter()
        .map(|r| AuditView {
            id: r.id,
            at: r.at,
            actor_id: r.actor_id,
            actor: r.actor,
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
            details: serde_json::from_str(&r.details).unwrap_or(serde_json::Value::Null),
        })
        .collect();
    Ok(axum::Json(Paged::new(
        items,
        page.limit,
        |a: &AuditView| a.id,
    )))
}
