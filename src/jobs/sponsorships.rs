//! Sponsorship lifecycle: a renewal reminder some days before a sponsor's
//! paid term ends; at paid-through plus grace the sponsor is unpublished
//! (audited, by the publication sweep) and the sponsor and owners are told.
//! Each notice is queued once per sponsor and term.

use crate::context::Effects;
use chrono::{DateTime, Utc};

use crate::{
    context::Context, domain::supporter::visible_paid_through, error::Result, service, store,
};

/// Terms that ended longer ago than this are not announced any more (a
/// first start on old data does not mail every sponsor who ever left).
const ANNOUNCE_WITHIN_DAYS: i64 = 30;

pub async fn run(ctx: &Context, slot: DateTime<Utc>) -> Result<String> {
    let today = slot.date_naive();
    let days = chrono::Duration::days;
    let until = today + days(ctx.settings.jobs.sponsor_reminder_days);
    let ending = store::supporters::sponsor_terms_ending(&ctx.db, today, until).await?;
    service::sponsors::remind_renewals(ctx, today, &ending).await?;

    let grace = ctx.settings.sponsors.grace_days;
    let thank = ctx.settings.mastodon.posts("sponsor");
    let changes =
        store::supporters::sweep_publication_thanking(&ctx.db, today, grace, thank).await?;
    if !changes.is_empty() {
        ctx.after_commit(Effects::PUBLIC);
    }
    // Shown while paid_through >= cutoff; ended the day before it.
    let cutoff = visible_paid_through(today, grace);
    let ended = store::supporters::sponsor_terms_ending(
        &ctx.db,
        cutoff - days(ANNOUNCE_WITHIN_DAYS),
        cutoff - days(1),
    )
    .await?;
    service::sponsors::announce_ended(ctx, &ended).await?;
    Ok(format!(
        "{} renewal reminders due, {} publication changes, {} ended sponsorships announced",
        ending.len(),
        changes.len(),
        ended.len()
    ))
}
