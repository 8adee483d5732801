//! The campaign: its name, text, currency, goal and public address.

use crate::{
    context::{Context, Effects},
    domain::campaign::Campaign,
    error::Result,
    store::{self, audit::Actor, campaign::CampaignRow},
};

/// Replaces the campaign's settings with a checked `next`.
pub async fn update(ctx: &Context, actor: &Actor, next: &Campaign) -> Result<CampaignRow> {
    let row = store::campaign::update(&ctx.db, actor, next).await?;
    ctx.after_commit_now(Effects::PUBLIC).await;
    Ok(row)
}
