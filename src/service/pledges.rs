//! Pledges: standing orders recorded by admins and paid outside Stripe,
//! subscriptions as Stripe reports them, and ending either.

use serde_json::json;

use crate::{
    context::{Context, Effects},
    domain::{
        money::Money,
        pledge::{PledgeStatus, Source},
        webhooks::EventType,
    },
    error::{Error, Result},
    payments::events,
    store::{
        self,
        audit::Actor,
        now,
        pledges::{NewPledge, PledgeRow},
        stripe::SubscriptionState,
        webhooks::{OutboundEvent, Subject},
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
    tx.emit(&OutboundEvent::new(
        EventType::PledgeStarted,
        Subject::Pledge(row.id),
    ))
    .await?;
    // A linked patron who agreed to be mentioned is thanked (once).
    crate::service::posts::patron_started(&mut tx, new.supporter_id).await?;
    tx.commit().await?;
    super::milestones::after_pledge_change(&ctx.db).await;
    ctx.after_commit_now(Effects::PUBLIC | Effects::TASKS).await;
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
            tx.emit(&OutboundEvent::new(
                EventType::PledgeCancelled,
                Subject::Pledge(id),
            ))
            .await?;
            tx.commit().await?;
            row
        }
    };
    ctx.after_commit_now(Effects::PUBLIC | Effects::TASKS).await;
    Ok(row)
}

/// Records a subscription's state, as Stripe reports it now, in its pledge.
/// Patrons hear when their support starts and when it ends; the emails
/// commit with the change, once per pledge. Returns the pledge's id.
pub async fn record_subscription(db: &store::Db, s: &SubscriptionState) -> Result<i64> {
    let mut tx = db.begin_write().await?;
    store::webhooks::lock_subscription(&mut tx, &s.subscription_id).await?;
    let before = store::stripe::subscription_pledge_status(&mut tx, &s.subscription_id).await?;
    let terms_before = store::webhooks::subscription_terms(&mut tx, &s.subscription_id).await?;
    let id = store::stripe::upsert_subscription_pledge(&mut tx, s).await?;
    // Told once per real change: a replayed or stale event changes nothing.
    if let Some(after) = store::webhooks::subscription_terms(&mut tx, &s.subscription_id).await? {
        for kind in store::webhooks::pledge_events(terms_before.as_ref(), &after) {
            tx.emit(&OutboundEvent::new(kind, Subject::Pledge(id)))
                .await?;
        }
    }
    let (kind, tier_name) = store::stripe::pledge_brief(&mut tx, s.supporter_id, s.tier_id).await?;
    if kind == "patron" {
        if before.is_none() && s.status == PledgeStatus::Active {
            let context = json!({
                "tier_name": tier_name,
                "amount": Money::new(s.amount_minor, s.currency).view().display,
                "interval": s.interval.as_str(),
            });
            let cause = format!("welcome:{}", s.supporter_id);
            tx.mail_supporter(s.supporter_id, &cause, "welcome", context)
                .await?;
            // A linked patron who agreed to be mentioned is thanked (once).
            crate::service::posts::patron_started(&mut tx, s.supporter_id).await?;
        }
        if s.status == PledgeStatus::Canceled && before != Some(PledgeStatus::Canceled) {
            let reason = match s.cancel_reason.as_deref() {
                Some("payment_failed") => "payment_failed",
                _ => "requested",
            };
            let context = json!({"tier_name": tier_name, "reason": reason});
            let cause = format!("pledge_cancelled:{id}");
            tx.mail_supporter(s.supporter_id, &cause, "pledge_cancelled", context)
                .await?;
        }
    }
    tx.commit().await?;
    super::milestones::after_pledge_change(db).await;
    Ok(id)
}
