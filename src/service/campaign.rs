//! The campaign: its name, text, currency, goal and public address.

use crate::{
    context::{Context, Effects},
    domain::campaign::Campaign,
    error::{Error, Result},
    store::{self, audit::Actor, campaign::CampaignRow},
};

/// Replaces the campaign's settings with a checked `next`. The currency can
/// change only while no amount is recorded: amounts are never silently
/// reinterpreted.
pub async fn update(ctx: &Context, actor: &Actor, next: &Campaign) -> Result<CampaignRow> {
    let mut tx = ctx.db.begin_write().await?;
    if store::campaign::currency(&mut tx).await? != next.currency
        && store::campaign::has_amounts(&mut tx).await?
    {
        return Err(Error::conflict(
            "currency",
            "the currency cannot change once tiers, pledges or ledger entries exist",
        ));
    }
    let row = store::campaign::update(&mut tx, actor, next).await?;
    tx.commit().await?;
    ctx.after_commit_now(Effects::PUBLIC).await;
    Ok(row)
}
