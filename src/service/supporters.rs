//! Patrons: added by hand, edited by admins.

use crate::{
    context::{Context, Effects},
    domain::supporter::PatronDraft,
    error::Result,
    store::{self, audit::Actor, supporters::SupporterRow},
};

/// Adds a patron by hand (someone who pays by bank transfer, say).
pub async fn create_patron(
    ctx: &Context,
    actor: &Actor,
    draft: &PatronDraft,
) -> Result<SupporterRow> {
    let row = store::supporters::create_patron(&ctx.db, actor, draft).await?;
    ctx.after_commit_now(Effects::PUBLIC).await;
    Ok(row)
}
