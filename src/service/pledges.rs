//! Pledges recorded by admins: standing orders paid outside Stripe, and
//! ending any pledge.

use crate::{
    context::{Context, Effects},
    domain::pledge::{PledgeStatus, Source},
    error::{Error, Result},
    payments::events,
    store::{
        self,
        audit::Actor,
        now,
        pledges::{NewPledge, PledgeRow},
    },
};

/// Records a recurring pledge paid outside Stripe, on a tier of the
/// supporter's kind that is not archived and has a slot free (its row is
/// locked first, so the last slot cannot be taken twice on either
/// database), at the tier's price or a chosen amount it allows.
pub async fn create(ctx: &Context, actor: &Actor, new: &NewPledge) -> Result<PledgeRow> {
    let mut tx = ctx.db.begin_write().await?;
    let tier = store::pledges::lock_tier(&mut tx, new.tier_id)
        .await?
        .ok_or_else(|| Error::field("tier_id", "no such tier"))?;
    if tier.archived {
        return Err(Error::field("tier_id", "this tier is archived"));
    }
    match store::supporters::kind(&mut tx, new.supporter_id).await? {
        None => return Err(Error::field("supporter_id", "no such supporter")),
        Some(kind) if kind.as_str() != tier.kind.as_str() => {
            return Err(Error::field(
                "tier_id",
                format!("a {kind} cannot pledge on a {} tier", tier.kind),
            ));
        }
        Some(_) => {}
    }
    let amount = tier
        .draft()
        .pledge_amount(new.amount_minor)
        .map_err(|m| Error::field("amount_minor", m))?;
    if let Some(slots) = tier.slots
        && store::pledges::slots_taken(&mut tx, tier.id).await? >= slots
    {
        return Err(Error::conflict(
            "tier_id",
            "every slot of this tier is taken",
        ));
    }
    let row = store::pledges::insert_manual(&mut tx, actor, new, &tier, amount).await?;
    tx.commit().await?;
    ctx.after_commit_now(Effects::PUBLIC).await;
    Ok(row)
}

/// Ends a pledge. A manual pledge ends now; a Stripe pledge is cancelled at
/// Stripe (at period end, or now) and read back from Stripe, so the two
/// never disagree.
pub async fn cancel(
    ctx: &Context,
    actor: &Actor,
    id: i64,
    at_period_end: bool,
    reason: &str,
) -> Result<PledgeRow> {
    let pledge = store::pledges::get(&ctx.db, id).await?;
    if pledge.status == PledgeStatus::Canceled {
        return Err(Error::conflict("status", "the pledge is already canceled"));
    }
    let row = match (pledge.source, pledge.external_ref.as_deref()) {
        (Source::Stripe, Some(subscription)) => {
            let gateway = ctx.gateway.as_ref().ok_or(Error::PaymentsNotConfigured)?;
            gateway
                .cancel_subscription(subscription, at_period_end)
                .await?;
            let synced = events::sync_subscription(&ctx.db, gateway, subscription).await;
            // A cancellation at once emails the patron.
            ctx.after_commit(Effects::MAIL);
            synced?;
            store::audit::record(&ctx.db, actor, "pledge.cancel", "pledge", id,
                serde_json::json!({"at_period_end": at_period_end, "reason": reason, "subscription": subscription})).await?;
            store::pledges::get(&ctx.db, id).await?
        }
        _ => {
            let mut tx = ctx.db.begin_write().await?;
            let row = store::pledges::cancel(&mut tx, actor, id, now(), reason).await?;
            tx.commit().await?;
            row
        }
    };
    ctx.after_commit_now(Effects::PUBLIC).await;
    Ok(row)
}
