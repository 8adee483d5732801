//! The daily funding snapshot: the public figures of the slot's day, kept
//! for history and charts.

use chrono::{DateTime, Utc};

use crate::{
    domain::funding::Funding, error::Result, http::AppContext, store, store::jobs::FundingDay,
};

pub async fn run(ctx: &AppContext, slot: DateTime<Utc>) -> Result<String> {
    let day = slot.date_naive();
    let facts = store::funding::facts(&ctx.db, day).await?;
    let funding = Funding::from_facts(&facts);
    let kept = store::jobs::record_funding_day(
        &ctx.db,
        &FundingDay {
            day,
            patrons: facts.patrons_count,
            sponsors: facts.sponsors_count,
            monthly_minor: funding.monthly_recurring.amount_minor,
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
