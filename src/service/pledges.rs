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

/// Records a recurring pledge paid outside Stripe.
pub async fn create(ctx: &Context, actor: &Actor, new: &NewPledge) -> Result<PledgeRow> {
    let row = store::pledges::create(&ctx.db, actor, new).await?;
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
        _ => store::pledges::cancel(&ctx.db, actor, id, now(), reason).await?,
    };
    ctx.after_commit_now(Effects::PUBLIC).await;
    Ok(row)
}
