//! Deletes what has served its time: expired links and setup tokens, raw
//! Stripe events and sent emails past their retention, old job history
//! and finished tasks, outbound webhook events and their delivery log.

use chrono::{DateTime, Utc};

use crate::{context::Context, error::Result, store};

pub async fn run(ctx: &Context, _slot: DateTime<Utc>) -> Result<String> {
    let jobs = &ctx.settings.jobs;
    let now = store::now();
    let days = chrono::Duration::days;
    let links = store::stripe::prune_links(&ctx.db, now).await?;
    let events =
        store::stripe::prune_events(&ctx.db, now - days(jobs.event_retention_days)).await?;
    let mails = store::outbox::prune_sent(&ctx.db, now - days(jobs.outbox_retention_days)).await?;
    let runs = store::jobs::prune(&ctx.db, now - days(jobs.job_run_retention_days)).await?;
    // Finished tasks live as long as job history; dead ones stay for admins.
    let tasks = store::tasks::prune_done(&ctx.db, now - days(jobs.job_run_retention_days)).await?;
    // Outbound webhook events and their delivery log, as long as Stripe's.
    let (deliveries, outbound) =
        store::webhooks::prune(&ctx.db, now - days(jobs.event_retention_days)).await?;
    Ok(format!(
        "deleted {links} expired links and tokens, {events} events, {mails} sent emails, \
         {runs} job runs, {tasks} finished tasks, {deliveries} webhook deliveries, \
         {outbound} outbound events"
    ))
}
