//! Sponsorship lifecycle: a renewal reminder some days before a sponsor's
//! paid term ends (once per sponsor and term).

use chrono::{DateTime, Utc};

use crate::{error::Result, http::AppContext, store};

pub async fn run(ctx: &AppContext, slot: DateTime<Utc>) -> Result<String> {
    let today = slot.date_naive();
    let until = today + chrono::Duration::days(ctx.settings.jobs.sponsor_reminder_days);
    let ending = store::jobs::sponsor_terms_ending(&ctx.db, today, until).await?;
    store::jobs::queue_renewal_reminders(&ctx.db, today, &ending).await?;
    Ok(format!("{} renewal reminders due", ending.len()))
}
