//! Scheduled jobs. tokio-cron-scheduler ticks on every replica; each tick
//! claims its slot (the scheduled time) in `job_runs` before running, so a
//! slot runs once across replicas. Every tick also:
//! - catches up slots missed while no replica was running (after the last
//!   claimed one, at most `jobs.catch_up_limit`);
//! - takes over runs whose replica died (lease lapsed) and retries failed
//!   ones a few times.
//!
//! A job is idempotent on its own too (its effects are keyed), so a run
//! taken over after a crash finishes the work without repeating it.

mod cleanup;
mod fediverse;
mod history;
mod reconcile;
mod report;
mod sponsorships;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::{
    context::Context,
    domain::{
        schedule::Schedule,
        work::{MailStatus, TaskStatus},
    },
    error::{Error, Result},
    store,
};

/// A failed run is tried again this many times in all.
const MAX_ATTEMPTS: i32 = 3;
/// Wait this long before trying a failed run again.
const RETRY_AFTER: chrono::Duration = chrono::Duration::seconds(60);

/// The jobs, by the name used in configuration and in `job_runs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Reconcile,
    Sponsorships,
    FundingSnapshot,
    MonthlyReport,
    Cleanup,
    FediverseRoleSync,
    FediverseSummary,
}

impl JobKind {
    pub const ALL: [JobKind; 7] = [
        JobKind::Reconcile,
        JobKind::Sponsorships,
        JobKind::FundingSnapshot,
        JobKind::MonthlyReport,
        JobKind::Cleanup,
        JobKind::FediverseRoleSync,
        JobKind::FediverseSummary,
    ];

    pub fn name(self) -> &'static str {
        match self {
            JobKind::Reconcile => "reconcile",
            JobKind::Sponsorships => "sponsorships",
            JobKind::FundingSnapshot => "funding_snapshot",
            JobKind::MonthlyReport => "monthly_report",
            JobKind::Cleanup => "cleanup",
            JobKind::FediverseRoleSync => "fediverse_role_sync",
            JobKind::FediverseSummary => "fediverse_summary",
        }
    }

    fn schedule(self, ctx: &Context) -> &str {
        let jobs = &ctx.settings.jobs;
        match self {
            JobKind::Reconcile => &jobs.reconcile,
            JobKind::Sponsorships => &jobs.sponsorships,
            JobKind::FundingSnapshot => &jobs.funding_snapshot,
            JobKind::MonthlyReport => &jobs.monthly_report,
            JobKind::Cleanup => &jobs.cleanup,
            JobKind::FediverseRoleSync => &jobs.fediverse_role_sync,
            JobKind::FediverseSummary => &jobs.fediverse_summary,
        }
    }

    /// Does the work of one slot; returns a summary for the history.
    async fn run(self, ctx: &Context, slot: DateTime<Utc>) -> Result<String> {
        match self {
            JobKind::Reconcile => reconcile::run(ctx, slot).await,
            JobKind::Sponsorships => sponsorships::run(ctx, slot).await,
            JobKind::FundingSnapshot => history::run(ctx, slot).await,
            JobKind::MonthlyReport => report::run(ctx, slot).await,
            JobKind::Cleanup => cleanup::run(ctx, slot).await,
            JobKind::FediverseRoleSync => fediverse::role_sync(ctx, slot).await,
            JobKind::FediverseSummary => fediverse::summary(ctx, slot).await,
        }
    }
}

/// Starts the scheduler on this replica. Each tick and the start itself
/// check every due slot, so a replica starting late catches up.
pub async fn start(ctx: Arc<Context>, shutdown: CancellationToken) -> Result<()> {
    if !ctx.settings.jobs.enabled {
        tracing::info!("jobs.enabled = false: this replica runs no scheduled jobs");
        return Ok(());
    }
    let mut scheduler = JobScheduler::new()
        .await
        .map_err(|e| Error::internal(format!("scheduler: {e}")))?;
    for kind in JobKind::ALL {
        let ctx = ctx.clone();
        let job = Job::new_async(kind.schedule(&ctx).to_owned(), move |_, _| {
            let ctx = ctx.clone();
            Box::pin(async move { tick(&ctx, kind).await })
        })
        .map_err(|e| Error::Config(format!("jobs.{}: {e}", kind.name())))?;
        scheduler
            .add(job)
            .await
            .map_err(|e| Error::internal(format!("scheduler: {e}")))?;
    }
    scheduler
        .start()
        .await
        .map_err(|e| Error::internal(format!("scheduler: {e}")))?;
    // Catch up at start, and keep the dead-man's switch fresh.
    let watch = ctx.clone();
    crate::background::every(Duration::from_secs(30), shutdown.clone(), move || {
        let ctx = watch.clone();
        async move {
            for kind in JobKind::ALL {
                tick(&ctx, kind).await;
            }
            if let Err(e) = health(&ctx).await {
                tracing::warn!(error = %e, "cannot read job health");
            }
            // Mail and tasks waiting or failed show in /metrics as well
            // as to admins.
            if let Ok(counts) = store::outbox::counts(&ctx.db).await {
                for &status in MailStatus::ALL {
                    let n = counts
                        .iter()
                        .find(|(s, _)| *s == status)
                        .map_or(0, |(_, n)| *n);
                    metrics::gauge!("patronage_outbox_messages", "status" => status.as_str())
                        .set(n as f64);
                }
            }
            if let Ok(counts) = store::tasks::counts(&ctx.db).await {
                for &status in TaskStatus::ALL {
                    let n = counts
                        .iter()
                        .find(|(s, _)| *s == status)
                        .map_or(0, |(_, n)| *n);
                    metrics::gauge!("patronage_tasks", "status" => status.as_str()).set(n as f64);
                }
            }
        }
    });
    tokio::spawn(async move {
        shutdown.cancelled().await;
        let _ = scheduler.shutdown().await;
    });
    Ok(())
}

/// Runs every slot of `kind` that is due and not yet claimed, and takes
/// over stalled runs.
pub async fn tick(ctx: &Context, kind: JobKind) {
    if let Err(e) = tick_inner(ctx, kind).await {
        tracing::warn!(job = kind.name(), error = %e, "job tick failed");
    }
}

async fn tick_inner(ctx: &Context, kind: JobKind) -> Result<()> {
    let schedule = Schedule::parse(kind.schedule(ctx)).map_err(Error::Config)?;
    let lease = chrono::Duration::seconds(ctx.settings.jobs.lease_secs as i64);
    let owner = ctx.instance_id.as_str();
    for slot in store::jobs::stalled(&ctx.db, kind.name(), MAX_ATTEMPTS, RETRY_AFTER).await? {
        if store::jobs::take_over(&ctx.db, kind.name(), slot, owner, lease, MAX_ATTEMPTS).await? {
            tracing::info!(job = kind.name(), %slot, "taking over a stalled run");
            run_claimed(ctx, kind, slot).await;
        }
    }
    let now = store::now();
    let after = store::jobs::last_slot(&ctx.db, kind.name())
        .await?
        .unwrap_or(ctx.started_at)
        .max(now - chrono::Duration::days(400));
    for slot in schedule.slots(after, now, ctx.settings.jobs.catch_up_limit as usize) {
        if store::jobs::claim(&ctx.db, kind.name(), slot, owner, lease).await? {
            run_claimed(ctx, kind, slot).await;
        }
    }
    Ok(())
}

/// Runs a slot this replica holds, renewing its lease while it works.
async fn run_claimed(ctx: &Context, kind: JobKind, slot: DateTime<Utc>) {
    let lease = chrono::Duration::seconds(ctx.settings.jobs.lease_secs as i64);
    let renew_every = Duration::from_secs((ctx.settings.jobs.lease_secs / 3).max(1));
    let db = ctx.db.clone();
    let owner = ctx.instance_id.clone();
    let heartbeat = tokio::spawn(async move {
        loop {
            tokio::time::sleep(renew_every).await;
            if !matches!(
                store::jobs::renew(&db, kind.name(), slot, &owner, lease).await,
                Ok(true)
            ) {
                break;
            }
        }
    });
    let started = std::time::Instant::now();
    let outcome = kind.run(ctx, slot).await;
    heartbeat.abort();
    let seconds = started.elapsed().as_secs_f64();
    metrics::histogram!("patronage_job_seconds", "job" => kind.name()).record(seconds);
    let recorded = match &outcome {
        Ok(summary) => {
            tracing::info!(job = kind.name(), %slot, summary, "job done");
            metrics::counter!("patronage_job_runs_total", "job" => kind.name(), "status" => "succeeded")
                .increment(1);
            store::jobs::finish(&ctx.db, kind.name(), slot, &ctx.instance_id, Ok(summary)).await
        }
        Err(e) => {
            tracing::warn!(job = kind.name(), %slot, error = %e, "job failed");
            metrics::counter!("patronage_job_runs_total", "job" => kind.name(), "status" => "failed")
                .increment(1);
            store::jobs::finish(
                &ctx.db,
                kind.name(),
                slot,
                &ctx.instance_id,
                Err(&e.to_string()),
            )
            .await
        }
    };
    if let Err(e) = recorded {
        tracing::warn!(job = kind.name(), error = %e, "cannot record the job's end");
    }
    ctx.mailer.wake();
}

/// One job's health: overdue when it has not succeeded for two periods.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobHealth {
    pub job: &'static str,
    pub schedule: String,
    pub last_success: Option<DateTime<Utc>>,
    /// No success within twice its period (or since this replica started):
    /// the dead-man's switch against silently skipped work.
    pub overdue: bool,
}

/// Every job's health, also published as metrics.
pub async fn health(ctx: &Context) -> Result<Vec<JobHealth>> {
    let successes = store::jobs::last_success(&ctx.db).await?;
    let now = store::now();
    let mut out = Vec::new();
    for kind in JobKind::ALL {
        let pattern = kind.schedule(ctx).to_owned();
        let schedule = Schedule::parse(&pattern).map_err(Error::Config)?;
        let last = successes
            .iter()
            .find(|(job, _)| job == kind.name())
            .map(|(_, at)| *at);
        let since = last.unwrap_or(ctx.started_at);
        // Two periods, plus some slack for a slow run (a minute at most).
        let period = schedule.period(now);
        let allowed = period * 2 + period.min(chrono::Duration::seconds(60));
        let overdue = ctx.settings.jobs.enabled && now - since > allowed;
        metrics::gauge!("patronage_job_overdue", "job" => kind.name())
            .set(f64::from(u8::from(overdue)));
        if let Some(at) = last {
            metrics::gauge!("patronage_job_last_success_timestamp_seconds", "job" => kind.name())
                .set(at.timestamp() as f64);
        }
        out.push(JobHealth {
            job: kind.name(),
            schedule: pattern,
            last_success: last,
            overdue,
        });
    }
    Ok(out)
}
