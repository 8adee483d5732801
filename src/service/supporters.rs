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
    let mut tx = ctx.db.begin_write().await?;
    let id = store::supporters::insert_patron(&mut tx, actor, draft).await?;
    tx.commit().await?;
    ctx.after_commit_now(Effects::PUBLIC).await;
    store::supporters::get(&ctx.db, id).await
}
