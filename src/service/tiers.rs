//! Tiers: creating, changing and archiving them, each with the Stripe
//! catalogue sync queued in the same commit.

use crate::{
    context::{Context, Effects},
    domain::{
        money::Currency,
        tier::{TierDraft, TierPatch},
    },
    error::{Error, Result},
    payments::catalogue,
    queue::SyncTier,
    store::{self, audit::Actor, tiers::TierRow},
};

/// The campaign's currency, which every tier must use; `given` (from the
/// request's `field`) must name it when present.
pub async fn campaign_currency(
    ctx: &Context,
    given: Option<&str>,
    field: &str,
) -> Result<Currency> {
    let currency = store::campaign::get(&ctx.db).await?.currency;
    match given {
        None => Ok(currency),
        Some(code) if Currency::parse(code) == Some(currency) => Ok(currency),
        Some(code) if Currency::parse(code).is_none() => {
            Err(Error::field(field, "must be an ISO 4217 currency code"))
        }
        Some(_) => Err(Error::field(
            field,
            format!("must be the campaign currency, {currency}"),
        )),
    }
}

/// Creates a tier from a checked draft.
pub async fn create(ctx: &Context, actor: &Actor, draft: &TierDraft) -> Result<TierRow> {
    let mut tx = ctx.db.begin_write().await?;
    let row = store::tiers::create(&mut tx, actor, draft).await?;
    tx.enqueue(&SyncTier { tier_id: row.id }).await?;
    tx.commit().await?;
    ctx.after_commit_now(Effects::PUBLIC | Effects::TASKS).await;
    Ok(row)
}

/// Applies a patch to a tier that is not archived.
pub async fn update(ctx: &Context, actor: &Actor, id: i64, patch: TierPatch) -> Result<TierRow> {
    let before = store::tiers::get(&ctx.db, id).await?;
    if before.archived {
        return Err(Error::conflict(
            "archived",
            "an archived tier cannot be changed",
        ));
    }
    let draft = patch.apply(before.draft()).validate()?;
    let mut tx = ctx.db.begin_write().await?;
    let row = store::tiers::update(&mut tx, actor, id, &before, &draft).await?;
    tx.enqueue(&SyncTier { tier_id: id }).await?;
    tx.commit().await?;
    ctx.after_commit_now(Effects::PUBLIC | Effects::TASKS).await;
    Ok(row)
}

/// Archives a tier: hidden from the public, no new pledges; running ones
/// continue. Its Stripe prices are deactivated by the sync.
pub async fn archive(ctx: &Context, actor: &Actor, id: i64) -> Result<TierRow> {
    let mut tx = ctx.db.begin_write().await?;
    let row = store::tiers::archive(&mut tx, actor, id).await?;
    tx.enqueue(&SyncTier { tier_id: id }).await?;
    tx.commit().await?;
    ctx.after_commit_now(Effects::PUBLIC | Effects::TASKS).await;
    Ok(row)
}

/// Makes Stripe's catalogue match the tier as it is now: the `SyncTier`
/// task. Without Stripe there is nothing to do.
pub async fn sync_to_stripe(ctx: &Context, tier_id: i64) -> Result<Effects> {
    let Some(gateway) = &ctx.gateway else {
        return Ok(Effects::NONE);
    };
    let tier = match store::tiers::get(&ctx.db, tier_id).await {
        Ok(tier) => tier,
        Err(Error::NotFound(_)) => return Ok(Effects::NONE),
        Err(e) => return Err(e),
    };
    catalogue::sync_tier(&ctx.db, gateway, &tier).await?;
    Ok(Effects::NONE)
}
