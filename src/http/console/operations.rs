//! What runs by itself, and what to do when it stops: Stripe events (filter,
//! replay), the email outbox (filter, retry), the task queue's dead letters,
//! job health and history, reconciliation findings, and readiness.

use axum::{extract::State, response::Response};
use serde::{Deserialize, Serialize};

use super::{OwnerForm, Signed, after, page};
use crate::{
    domain::work::{MailStatus, TaskStatus},
    error::{Error, Result},
    http::{
        AppState,
        extract::{Path, Query},
    },
    jobs,
    payments::events,
    service, store,
};

#[derive(Deserialize, Serialize, Default)]
pub struct OpsQuery {
    /// Stripe events: pending, processed, failed, or blank for all.
    #[serde(default)]
    events: String,
    /// Emails: pending, sent, failed, or blank for all.
    #[serde(default)]
    mail: String,
}

#[derive(Serialize)]
struct EventView {
    id: String,
    kind: String,
    status: String,
    attempts: i32,
    error: Option<String>,
    received: String,
}

#[derive(Serialize)]
struct MailView {
    id: i64,
    template: String,
    recipient: String,
    status: &'static str,
    attempts: i32,
    error: Option<String>,
    when: String,
}

#[derive(Serialize)]
struct TaskView {
    id: i64,
    kind: String,
    key: String,
    attempts: i32,
    error: Option<String>,
    when: String,
}

#[derive(Serialize)]
struct JobView {
    job: &'static str,
    schedule: String,
    last_success: String,
    overdue: bool,
}

#[derive(Serialize)]
struct RunView {
    job: String,
    slot: String,
    status: String,
    error: Option<String>,
    summary: Option<String>,
}

#[derive(Serialize)]
struct FindingView {
    kind: String,
    subscription: String,
    pledge: Option<i64>,
    ours: Option<String>,
    theirs: Option<String>,
}

#[derive(Serialize)]
struct OpsPage {
    q: OpsQuery,
    ready: &'static str,
    events: Vec<EventView>,
    mails: Vec<MailView>,
    mail_counts: Vec<(&'static str, i64)>,
    dead: Vec<TaskView>,
    task_counts: Vec<(&'static str, i64)>,
    jobs: Vec<JobView>,
    runs: Vec<RunView>,
    findings: Vec<FindingView>,
    reconciled: Option<String>,
}

fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

pub async fn show(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<OpsQuery>,
) -> Result<Response> {
    let event_status = match q.events.as_str() {
        "" => None,
        s @ ("pending" | "processed" | "failed") => Some(s),
        _ => {
            return Err(Error::field(
                "events",
                "must be pending, processed or failed",
            ));
        }
    };
    let mail_status = match q.mail.as_str() {
        "" => None,
        s => Some(
            MailStatus::parse(s)
                .ok_or_else(|| Error::field("mail", "must be pending, sent or failed"))?,
        ),
    };
    let events = store::stripe::list_events(&state.db, event_status, 50)
        .await?
        .into_iter()
        .map(|e| EventView {
            id: e.id,
            kind: e.type_,
            status: e.status,
            attempts: e.attempts,
            error: e.last_error,
            received: when(e.received_at),
        })
        .collect();
    let mails = store::outbox::list(&state.db, mail_status, None, 50)
        .await?
        .into_iter()
        .map(|m| MailView {
            id: m.id,
            template: m.template.replace('_', " "),
            recipient: m.recipient,
            status: m.status.as_str(),
            attempts: m.attempts,
            error: m.last_error,
            when: when(m.sent_at.unwrap_or(m.next_attempt_at)),
        })
        .collect();
    let mail_counts = store::outbox::counts(&state.db)
        .await?
        .into_iter()
        .map(|(s, n)| (s.as_str(), n))
        .collect();
    let dead = store::tasks::list(&state.db, Some(TaskStatus::Dead), None, 50)
        .await?
        .into_iter()
        .map(|t| TaskView {
            id: t.id,
            kind: t.kind.replace('_', " "),
            key: t.dedupe_key,
            attempts: t.attempts,
            error: t.last_error,
            when: t.finished_at.map(when).unwrap_or_default(),
        })
        .collect();
    let task_counts = store::tasks::counts(&state.db)
        .await?
        .into_iter()
        .map(|(s, n)| (s.as_str(), n))
        .collect();
    let health = jobs::health(&state).await?;
    let ready = if health.iter().any(|j| j.overdue) {
        "degraded"
    } else {
        "ready"
    };
    let jobs = health
        .into_iter()
        .map(|j| JobView {
            job: j.job,
            schedule: j.schedule,
            last_success: j.last_success.map(when).unwrap_or_else(|| "never".into()),
            overdue: j.overdue,
        })
        .collect();
    let runs = store::jobs::history(&state.db, None, None, 30)
        .await?
        .into_iter()
        .map(|r| RunView {
            job: r.job,
            slot: when(r.slot),
            status: r.status,
            error: r.error,
            summary: r.summary,
        })
        .collect();
    let (slot, findings) = store::reconciliation::latest_mismatches(&state.db).await?;
    let findings = findings
        .into_iter()
        .map(|m| FindingView {
            kind: m.kind,
            subscription: m.subscription_id,
            pledge: m.pledge_id,
            ours: m.ours,
            theirs: m.theirs,
        })
        .collect();
    page(
        &signed,
        "operations.html",
        "operations",
        OpsPage {
            q,
            ready,
            events,
            mails,
            mail_counts,
            dead,
            task_counts,
            jobs,
            runs,
            findings,
            reconciled: slot.map(when),
        },
    )
}

#[derive(Deserialize)]
pub struct Confirm {}

pub async fn replay_event(
    State(state): State<AppState>,
    Path(id): Path<String>,
    OwnerForm { signed, .. }: OwnerForm<Confirm>,
) -> Result<Response> {
    let outcome = events::replay(&state, &signed.admin.actor(), &id)
        .await
        .map(|applied| {
            if applied {
                format!("Event {id} applied.")
            } else {
                format!("Event {id} could not be applied yet; its task keeps trying (see its error below).")
            }
        });
    after(
        signed.cookies,
        "/admin/operations?events=failed#events",
        outcome,
    )
}

pub async fn retry_mail(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    OwnerForm { signed, .. }: OwnerForm<Confirm>,
) -> Result<Response> {
    let outcome = service::operations::retry_message(&state, &signed.admin.actor(), id)
        .await
        .map(|()| format!("Email #{id} will be sent again."));
    after(signed.cookies, "/admin/operations#outbox", outcome)
}

pub async fn retry_task(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    OwnerForm { signed, .. }: OwnerForm<Confirm>,
) -> Result<Response> {
    let outcome = service::operations::retry_task(&state, &signed.admin.actor(), id)
        .await
        .map(|t| format!("Task #{id} ({}) is queued again.", t.kind.replace('_', " ")));
    after(signed.cookies, "/admin/operations#tasks", outcome)
}
