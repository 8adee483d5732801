//! What runs by itself: scheduled jobs and their health, the task queue,
//! the email outbox,
//! reconciliation findings, and the daily funding history.

use axum::{extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::Paged;
use crate::{
    domain::{
        month::Day,
        work::{MailStatus, TaskStatus},
    },
    error::Result,
    http::{
        AppState,
        extract::{Admin, Owner, Path, Query},
    },
    jobs::{self, JobHealth},
    service,
    store::{
        self, history::FundingDay, jobs::JobRun, outbox::OutboxRow, reconciliation::Mismatch,
        tasks::TaskRow,
    },
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs))
        .routes(routes!(list_outbox))
        .routes(routes!(retry_message))
        .routes(routes!(list_tasks))
        .routes(routes!(retry_task))
        .routes(routes!(reconciliation))
        .routes(routes!(funding_history))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct JobsQuery {
    job: Option<String>,
    /// running, succeeded or failed.
    status: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct JobsView {
    /// Each job's schedule, last success and whether it is overdue.
    health: Vec<JobHealth>,
    /// Runs, newest slot first: one per (job, slot) across all replicas.
    runs: Vec<JobRun>,
}

/// Scheduled jobs: their health and history.
#[utoipa::path(get, path = "/api/v1/admin/jobs", tag = "admin", security(("bearer" = [])), params(JobsQuery),
    responses((status = 200, body = JobsView)))]
async fn list_jobs(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<JobsQuery>,
) -> Result<axum::Json<JobsView>> {
    let page = super::page(None, q.limit)?;
    Ok(axum::Json(JobsView {
        health: jobs::health(&state).await?,
        runs: store::jobs::history(&state.db, q.job.as_deref(), q.status.as_deref(), page.limit)
            .await?,
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct OutboxQuery {
    status: Option<MailStatus>,
    /// Pass the previous page's `next_after` here.
    before: Option<i64>,
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct OutboxView {
    /// How many messages are in each status.
    counts: Vec<StatusCount<MailStatus>>,
    #[serde(flatten)]
    messages: Paged<OutboxRow>,
}

#[derive(Serialize, ToSchema)]
struct StatusCount<S> {
    status: S,
    count: i64,
}

/// The email outbox, newest first: what was sent, what waits, what failed.
#[utoipa::path(get, path = "/api/v1/admin/outbox", tag = "admin", security(("bearer" = [])), params(OutboxQuery),
    responses((status = 200, body = OutboxView)))]
async fn list_outbox(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<OutboxQuery>,
) -> Result<axum::Json<OutboxView>> {
    let page = super::page(None, q.limit)?;
    let rows = store::outbox::list(&state.db, q.status, q.before, page.limit).await?;
    let counts = store::outbox::counts(&state.db)
        .await?
        .into_iter()
        .map(|(status, count)| StatusCount { status, count })
        .collect();
    Ok(axum::Json(OutboxView {
        counts,
        messages: Paged::new(rows, page.limit, |m: &OutboxRow| m.id),
    }))
}

/// Sends a failed message again.
#[utoipa::path(post, path = "/api/v1/admin/outbox/{id}/retry", tag = "admin", security(("bearer" = [])),
    responses((status = 202, description = "Queued again"), (status = 404, body = crate::error::Problem)))]
async fn retry_message(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Path(id): Path<i64>,
) -> Result<StatusCode> {
    service::operations::retry_message(&state, &admin.actor(), id).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct TasksQuery {
    status: Option<TaskStatus>,
    /// Pass the previous page's `next_after` here.
    before: Option<i64>,
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct TasksView {
    /// How many tasks are in each status; `dead` ones need an admin.
    counts: Vec<StatusCount<TaskStatus>>,
    #[serde(flatten)]
    tasks: Paged<TaskRow>,
}

/// The task queue, newest first: work queued after changes (Stripe syncs,
/// fees, webhook events to apply again). Dead tasks failed every try.
#[utoipa::path(get, path = "/api/v1/admin/tasks", tag = "admin", security(("bearer" = [])), params(TasksQuery),
    responses((status = 200, body = TasksView)))]
async fn list_tasks(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<TasksQuery>,
) -> Result<axum::Json<TasksView>> {
    let page = super::page(None, q.limit)?;
    let rows = store::tasks::list(&state.db, q.status, q.before, page.limit).await?;
    let counts = store::tasks::counts(&state.db)
        .await?
        .into_iter()
        .map(|(status, count)| StatusCount { status, count })
        .collect();
    Ok(axum::Json(TasksView {
        counts,
        tasks: Paged::new(rows, page.limit, |t: &TaskRow| t.id),
    }))
}

/// Puts a dead task back in the queue, from its first try.
#[utoipa::path(post, path = "/api/v1/admin/tasks/{id}/retry", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 202, body = TaskRow), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn retry_task(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Path(id): Path<i64>,
) -> Result<(StatusCode, axum::Json<TaskRow>)> {
    let task = service::operations::retry_task(&state, &admin.actor(), id).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(task)))
}

#[derive(Serialize, ToSchema)]
struct ReconciliationView {
    /// The slot of the latest reconciliation that finished, or null.
    run_slot: Option<DateTime<Utc>>,
    /// What differed between Stripe and our pledges after applying missed events.
    mismatches: Vec<Mismatch>,
}

/// The latest reconciliation with Stripe.
#[utoipa::path(get, path = "/api/v1/admin/reconciliation", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = ReconciliationView)))]
async fn reconciliation(
    State(state): State<AppState>,
    _: Admin,
) -> Result<axum::Json<ReconciliationView>> {
    let (run_slot, mismatches) = store::reconciliation::latest_mismatches(&state.db).await?;
    Ok(axum::Json(ReconciliationView {
        run_slot,
        mismatches,
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    /// First day, YYYY-MM-DD (default: a year before `to`).
    from: Option<Day>,
    /// Last day, YYYY-MM-DD (default: today). At most ten years after `from`.
    to: Option<Day>,
}

#[derive(Serialize, ToSchema)]
struct HistoryView {
    days: Vec<FundingDay>,
}

/// The public figures as they were each day (kept by the daily job).
#[utoipa::path(get, path = "/api/v1/admin/funding/history", tag = "admin", security(("bearer" = [])), params(HistoryQuery),
    responses((status = 200, body = HistoryView), (status = 422, body = crate::error::Problem)))]
async fn funding_history(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<HistoryQuery>,
) -> Result<axum::Json<HistoryView>> {
    let (from, to) = Day::range(q.from, q.to, 365, Utc::now().date_naive())?;
    Ok(axum::Json(HistoryView {
        days: store::history::funding_days(&state.db, from, to).await?,
    }))
}
