//! The daily funding snapshot: the public figures of the slot's day, kept
//! for history and charts.

use chrono::{DateTime, Utc};

use crate::{
    context::Context,
    domain::pledge::monthly_recurring,
    error::{Error, Result},
    store,
    store::history::FundingDay,
};

pub async fn run(ctx: &Context, slot: DateTime<Utc>) -> Result<String> {
    let day = slot.date_naive();
    // The true figures, for admins: no privacy threshold applies here.
    let facts = store::funding::facts(&ctx.db, day, ctx.settings.sponsors.grace_days).await?;
    let kept = store::history::record_funding_day(
        &ctx.db,
        &FundingDay {
            day,
            patrons: facts.patrons_count,
            sponsors: facts.sponsors_count,
            monthly_minor: monthly_recurring(facts.monthly_pledges_sum, facts.yearly_pledges_sum)
                .ok_or_else(|| {
                Error::internal("the monthly recurring total overflows")
            })?,
            currency: facts.currency.code().to_owned(),
            goal_minor: facts.monthly_goal_minor,
        },
    )
    .await?;
    Ok(if kept {
        format!("kept the figures of {day}")
    } else {
        format!("{day} was already kept")
    })
}
