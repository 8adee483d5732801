//! Money that arrived outside Stripe: recording it, and voiding a mistake
//! with a reversing entry.

use crate::{
    context::{Context, Effects},
    domain::{ledger::ManualContribution, webhooks::EventType},
    error::Result,
    store::{self, audit::Actor, ledger::EntryRow, webhooks::Subject},
};

/// Records a contribution; with a pledge, it counts toward its tier.
pub async fn record(
    ctx: &Context,
    actor: &Actor,
    c: &ManualContribution,
    pledge_id: Option<i64>,
) -> Result<EntryRow> {
    let mut tx = ctx.db.begin_write().await?;
    let id = store::ledger::record_manual(&mut tx, actor, c, pledge_id).await?;
    // A bank transfer is a payment to a donation bot as much as a card is.
    super::webhooks::emit(&mut tx, EventType::PaymentSucceeded, Subject::Entry(id)).await?;
    tx.commit().await?;
    ctx.after_commit_now(Effects::PUBLIC | Effects::TASKS).await;
    store::ledger::get(&ctx.db, id).await
}

/// Voids a manual entry by appending its exact opposite; the original stays.
pub async fn void(ctx: &Context, actor: &Actor, id: i64, reason: &str) -> Result<EntryRow> {
    let reason = crate::domain::text("reason", reason, 1, 1000, true)
        .map_err(|e| crate::error::Error::Validation(vec![e]))?;
    let original = store::ledger::get(&ctx.db, id).await?;
    original.check_voidable()?;
    let mut tx = ctx.db.begin_write().await?;
    let new_id = store::ledger::void_manual(&mut tx, actor, &original, &reason).await?;
    // Receivers that add up payments take the money back out.
    super::webhooks::emit(&mut tx, EventType::PaymentRefunded, Subject::Entry(new_id)).await?;
    tx.commit().await?;
    ctx.after_commit_now(Effects::PUBLIC | Effects::TASKS).await;
    store::ledger::get(&ctx.db, new_id).await
}
