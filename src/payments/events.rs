//! Applying Stripe's events. A verified event is stored and, when its
//! payload says all we need, applied in the same transaction, with no call
//! to Stripe: checkouts, subscription changes (as tasks that read the
//! subscription) and renewals (`invoice.paid` of a known pledge, booked from
//! the event's own amount, currency and period, the fee as a task). Anything
//! else, and anything that fails, is stored with an `ApplyEvent` task in one
//! commit and applied by the queue, which may read from Stripe.
//!
//! Applying is idempotent and order-independent:
//! - money is booked under Stripe's own ids (invoice, payment intent,
//!   refund, dispute), which the ledger refuses to book twice;
//! - subscription state is re-read from Stripe rather than taken from the
//!   event, so a late `customer.subscription.updated` cannot roll it back.
//!
//! An event that needs another applied first (a refund or dispute before the
//! payment it undoes) waits, quietly, and is made due at once when that
//! payment's charge is linked: its money lands on the payment's tier
//! whichever arrives first.

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use stripe_shared::{
    Charge, CheckoutSession, CheckoutSessionMode, CheckoutSessionPaymentStatus, Dispute,
    DisputeStatus, Invoice, Subscription, SubscriptionStatus,
};

use super::{
    Gateway,
    envelope::{Event, EventObject},
};
use crate::{
    context::{Context, Effects},
    domain::{
        ledger::EntryKind,
        money::Currency,
        pledge::{PledgeStatus, Source},
        tier::Interval,
    },
    error::{Error, Result},
    queue::{self, ApplyEvent},
    service,
    store::{
        self, Db,
        audit::Actor,
        ledger::NewEntry,
        stripe::{StripePayment, SubscriptionState},
    },
};

/// How long an event may wait for another (a refund for its payment) before
/// admins should look at it: Stripe retries a webhook for up to three days,
/// so what has not come by then will not come by itself.
const WAIT_LIMIT: chrono::Duration = chrono::Duration::days(3);

fn at(ts: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(ts, 0).single().unwrap_or_else(Utc::now)
}

fn currency(c: &stripe_types::Currency) -> Result<Currency> {
    Currency::parse(&c.to_string()).ok_or_else(|| Error::internal(format!("unknown currency {c}")))
}

fn meta_id(metadata: &HashMap<String, String>, key: &str) -> Option<i64> {
    metadata.get(key).and_then(|v| v.parse().ok())
}

/// The event types patronage acts on. Others are stored for the record
/// and marked processed without being parsed.
pub const HANDLED: &[&str] = &[
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.payment_action_required",
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.closed",
];

/// Stores a verified event and, when it can be applied from its payload
/// alone, applies it in the same commit. Otherwise it is stored with a task
/// that applies it, in the same commit; when applying fails, it is stored
/// with that task and its failure. Fails only if the event could not be
/// stored: then Stripe delivers it again. Returns whether this call stored
/// it (false for a repeat).
///
/// Deliveries that arrive together share one commit: see `Intake`.
pub async fn receive(ctx: &Context, event: Event, payload: &str) -> Result<bool> {
    let unavailable = |e: Error| Error::Unavailable(format!("cannot store the event: {e}"));
    let pledges = pledges_of(&ctx.db, [&event]).await.map_err(unavailable)?;
    let plan = match plan(&event, &pledges) {
        Ok(plan) => plan,
        Err(e) => {
            return defer(
                ctx,
                &event.id,
                &event.type_,
                event.created,
                payload,
                Some(&e.to_string()),
            )
            .await
            .map_err(unavailable);
        }
    };
    let mut tx = ctx.db.begin_write().await.map_err(unavailable)?;
    let applied = store_and_apply(&mut tx, &event, payload, plan).await;
    let reason = match applied {
        Ok(Some(effects)) => {
            tx.commit().await.map_err(unavailable)?;
            ctx.after_commit(effects);
            return Ok(true);
        }
        Ok(None) => return Ok(false),
        Err(e) => e.to_string(),
    };
    drop(tx);
    defer(
        ctx,
        &event.id,
        &event.type_,
        event.created,
        payload,
        Some(&reason),
    )
    .await
    .map_err(unavailable)
}

/// `receive` for many events in one commit (`Intake`), answering for each
/// whether it stored it, and what the commit changed. An event whose
/// payload makes no sense to us is left out (`None`), for `receive` to
/// store with its failure. Any error leaves nothing committed.
pub async fn receive_together(
    db: &Db,
    events: &[(&Event, &str)],
) -> Result<(Vec<Option<bool>>, Effects)> {
    let pledges = pledges_of(db, events.iter().map(|(event, _)| *event)).await?;
    let plans: Vec<Option<Option<Inline>>> = events
        .iter()
        .map(|(event, _)| plan(event, &pledges).ok())
        .collect();
    // Rows are locked in one order in every batch (events by id, then
    // supporters by id as their payments are booked), so two batches that
    // share some never wait for each other in a circle.
    let mut rows: Vec<store::stripe::NewEvent> = events
        .iter()
        .zip(&plans)
        .filter_map(|((event, payload), plan)| {
            plan.as_ref().map(|plan| store::stripe::NewEvent {
                id: &event.id,
                type_: &event.type_,
                created: event.created,
                payload,
                processed: plan.is_some(),
            })
        })
        .collect();
    rows.sort_by_key(|row| row.id);
    let mut tx = db.begin_write().await?;
    let mut fresh = store::stripe::insert_events(&mut tx, &rows).await?;
    drop(rows);
    let mut stored: Vec<Option<bool>> = plans
        .iter()
        .map(|plan| plan.as_ref().map(|_| false))
        .collect();
    let mut todo: Vec<(usize, &Event, Option<Inline>)> = Vec::new();
    for (i, ((event, _), plan)) in events.iter().zip(plans).enumerate() {
        // Stored before, or a second copy in this batch.
        if let Some(plan) = plan
            && fresh.remove(&event.id)
        {
            todo.push((i, event, plan));
        }
    }
    todo.sort_by_key(|(_, event, plan)| (plan.as_ref().map_or(0, Inline::supporter), &event.id));
    // Renewals are booked together (a few statements for the batch); the
    // rest one by one.
    let mut effects = Effects::NONE;
    let mut renewals = Vec::new();
    for (i, event, plan) in todo {
        match plan {
            Some(Inline::Book(payment)) => renewals.push(payment),
            plan => effects |= apply_fresh(&mut tx, event, plan).await?,
        }
        stored[i] = Some(true);
    }
    if !renewals.is_empty() {
        effects |= service::payments::book_all(&mut tx, &renewals).await?;
        metrics::counter!("patronage_stripe_events_applied_total").increment(renewals.len() as u64);
    }
    tx.commit().await?;
    Ok((stored, effects))
}

/// Stores an event in `tx` and applies what `plan` says, or queues the task
/// that applies it. `None` for a repeat (stored before: applied, or queued).
async fn store_and_apply(
    tx: &mut store::Tx,
    event: &Event,
    payload: &str,
    plan: Option<Inline>,
) -> Result<Option<Effects>> {
    let stored = store::stripe::insert_event(
        tx,
        &event.id,
        &event.type_,
        event.created,
        payload,
        plan.is_some(),
    )
    .await?;
    if !stored {
        return Ok(None);
    }
    Ok(Some(apply_fresh(tx, event, plan).await?))
}

/// For an event just stored in `tx`: applies what `plan` says, or queues
/// the task that applies it.
async fn apply_fresh(tx: &mut store::Tx, event: &Event, plan: Option<Inline>) -> Result<Effects> {
    let Some(plan) = plan else {
        tx.enqueue(&ApplyEvent {
            event_id: event.id.clone(),
        })
        .await?;
        return Ok(Effects::TASKS);
    };
    let effects = apply_inline(tx, plan).await?;
    metrics::counter!("patronage_stripe_events_applied_total").increment(1);
    Ok(effects)
}

/// Stores an event (if not stored yet) with the task that applies it, in
/// one commit. With `failure`, the event shows as failed until it applies.
/// Returns whether this call stored it.
pub async fn defer(
    ctx: &Context,
    id: &str,
    type_: &str,
    created: i64,
    payload: &str,
    failure: Option<&str>,
) -> Result<bool> {
    let mut tx = ctx.db.begin_write().await?;
    if !store::stripe::insert_event(&mut tx, id, type_, created, payload, false).await? {
        // Stored before, with its task or applied.
        return Ok(false);
    }
    tx.enqueue(&ApplyEvent {
        event_id: id.to_owned(),
    })
    .await?;
    tx.commit().await?;
    let recorded = match failure {
        Some(error) => {
            tracing::warn!(event = id, error, "stripe event failed; queued to retry");
            metrics::counter!("patronage_stripe_events_failed_total").increment(1);
            store::stripe::event_failed(&ctx.db, id, error).await
        }
        None => Ok(()),
    };
    // After the failure is recorded, so the task's success is not undone
    // by it; and even if recording failed, since the task is queued.
    ctx.after_commit(Effects::TASKS);
    recorded.map(|()| true)
}

/// The pledges of the renewals among `events`, by subscription, read
/// before the write transaction: a pledge made meanwhile only means its
/// renewal takes the queue's path.
async fn pledges_of<'a>(
    db: &Db,
    events: impl IntoIterator<Item = &'a Event>,
) -> Result<HashMap<String, store::stripe::PledgeRef>> {
    let subscriptions: Vec<String> = events
        .into_iter()
        .filter_map(|event| match &event.data.object {
            EventObject::InvoicePaid(invoice) => subscription_of(invoice),
            _ => None,
        })
        .collect();
    store::stripe::pledges_by_subscription(db, &subscriptions).await
}

/// What an event does when applied from its payload alone, in the
/// transaction that stores it.
enum Inline {
    /// Stored for the record (a type we do not act on, a zero invoice).
    Nothing,
    /// A checkout ended: its session's outcome, the subscription to read
    /// from Stripe (a task), or the gift it paid.
    Checkout {
        session_id: String,
        outcome: &'static str,
        subscription: Option<String>,
        gift: Option<StripePayment>,
    },
    /// A subscription changed: a task reads it from Stripe.
    Sync(String),
    Book(StripePayment),
}

impl Inline {
    /// The supporter whose row applying it locks (0 for none).
    fn supporter(&self) -> i64 {
        match self {
            Inline::Book(payment)
            | Inline::Checkout {
                gift: Some(payment),
                ..
            } => payment.supporter_id.unwrap_or(0),
            _ => 0,
        }
    }
}

/// What applies from the payload alone; `None` when applying needs Stripe
/// (the queue does it), an error when the payload makes no sense to us.
fn plan(
    event: &Event,
    pledges: &HashMap<String, store::stripe::PledgeRef>,
) -> Result<Option<Inline>> {
    if !HANDLED.contains(&event.type_.as_str()) {
        return Ok(Some(Inline::Nothing));
    }
    Ok(Some(match &event.data.object {
        EventObject::CheckoutSessionCompleted(s)
        | EventObject::CheckoutSessionAsyncPaymentSucceeded(s) => {
            let subscription = match s.mode {
                CheckoutSessionMode::Subscription => {
                    s.subscription.as_ref().map(|sub| sub.id().to_string())
                }
                _ => None,
            };
            let gift = match s.mode {
                CheckoutSessionMode::Subscription => None,
                _ => gift(s)?,
            };
            Inline::Checkout {
                session_id: s.id.to_string(),
                outcome: "completed",
                subscription,
                gift,
            }
        }
        EventObject::CheckoutSessionAsyncPaymentFailed(s) => Inline::Checkout {
            session_id: s.id.to_string(),
            outcome: "failed",
            subscription: None,
            gift: None,
        },
        EventObject::CustomerSubscriptionCreated(sub)
        | EventObject::CustomerSubscriptionUpdated(sub)
        | EventObject::CustomerSubscriptionDeleted(sub) => Inline::Sync(sub.id.to_string()),
        EventObject::InvoicePaid(invoice) => {
            let pledge = subscription_of(invoice).and_then(|sub| pledges.get(&sub));
            match renewal(invoice, event.created, pledge)? {
                Renewal::Nothing => Inline::Nothing,
                Renewal::Book(payment) => Inline::Book(payment),
                Renewal::UnknownPledge => return Ok(None),
            }
        }
        _ => return Ok(None),
    }))
}

/// Applies a plan in the event's transaction.
async fn apply_inline(tx: &mut store::Tx, plan: Inline) -> Result<Effects> {
    Ok(match plan {
        Inline::Nothing => Effects::NONE,
        Inline::Checkout {
            session_id,
            outcome,
            subscription,
            gift,
        } => {
            store::stripe::finish_checkout(tx, &session_id, outcome).await?;
            let mut effects = Effects::NONE;
            if let Some(sub) = subscription {
                effects |= sync_later(tx, &sub).await?;
            }
            if let Some(payment) = gift {
                effects |= service::payments::book(tx, &payment).await?;
            }
            effects
        }
        Inline::Sync(sub) => sync_later(tx, &sub).await?,
        Inline::Book(payment) => service::payments::book(tx, &payment).await?,
    })
}

/// The subscription changed: a task reads it from Stripe and makes our
/// pledge match. One pending read per subscription absorbs the others.
async fn sync_later(tx: &mut store::Tx, subscription_id: &str) -> Result<Effects> {
    tx.enqueue(&queue::SyncSubscription {
        subscription_id: subscription_id.to_owned(),
    })
    .await?;
    Ok(Effects::TASKS)
}

/// Applies a stored event from the queue (`ApplyEvent`), reading from
/// Stripe where it must. Out of order (a refund before its payment) is
/// "not yet": it waits quietly until it has waited longer than anything it
/// needs can take to arrive, then shows as failed for admins.
pub async fn apply_stored(ctx: &Context, event_id: &str) -> Result<Effects> {
    let gateway = ctx.gateway.as_ref().ok_or(Error::PaymentsNotConfigured)?;
    let Some(row) = store::stripe::event(&ctx.db, event_id).await? else {
        return Err(Error::NotFound("event"));
    };
    if row.status == "processed" {
        return Ok(Effects::NONE);
    }
    let outcome = if !HANDLED.contains(&row.type_.as_str()) {
        Ok(Effects::NONE)
    } else {
        match serde_json::from_str::<Event>(&row.payload) {
            Ok(event) => apply(ctx, gateway, &event).await,
            Err(e) => Err(Error::internal(format!("unreadable event: {e}"))),
        }
    };
    match outcome {
        Ok(effects) => {
            // Applying may have synced a subscription, which can email its
            // patron (welcome, cancellation) whatever it returned.
            let effects = effects | Effects::PUBLIC | Effects::MAIL | Effects::TASKS;
            if let Err(e) = store::stripe::event_processed(&ctx.db, event_id).await {
                // Applied and committed: announce it even so.
                ctx.after_commit(effects);
                return Err(e);
            }
            metrics::counter!("patronage_stripe_events_applied_total").increment(1);
            Ok(effects)
        }
        Err(Error::NotYet { reason, waits_for }) => {
            let overdue = ctx.now() - row.received_at > WAIT_LIMIT;
            if overdue {
                tracing::warn!(event = event_id, %reason, "stripe event still waiting");
            }
            metrics::counter!("patronage_stripe_events_waiting_total").increment(1);
            store::stripe::event_waiting(
                &ctx.db,
                event_id,
                &format!("not yet: {reason}"),
                waits_for.as_deref(),
                overdue,
            )
            .await?;
            Err(Error::NotYet { reason, waits_for })
        }
        Err(e) => {
            metrics::counter!("patronage_stripe_events_failed_total").increment(1);
            store::stripe::event_failed(&ctx.db, event_id, &e.to_string()).await?;
            Err(e)
        }
    }
}

/// An admin's replay: recorded, queued, and tried at once. Returns whether
/// it applied now (otherwise its task keeps trying).
pub async fn replay(ctx: &Context, actor: &Actor, event_id: &str) -> Result<bool> {
    let mut tx = ctx.db.begin_write().await?;
    store::stripe::replay_event(&mut tx, actor, event_id).await?;
    tx.enqueue(&ApplyEvent {
        event_id: event_id.to_owned(),
    })
    .await?;
    tx.commit().await?;
    let applied = apply_stored(ctx, event_id).await;
    // The task stays queued if applying failed.
    ctx.after_commit(applied.as_ref().copied().unwrap_or(Effects::NONE) | Effects::TASKS);
    Ok(applied.is_ok())
}

/// Keeps an event we cannot read (from Stripe's event list) as failed, so
/// admins see it among the stored events; its task retries it. One without
/// an id cannot be kept and is only logged.
pub async fn record_unreadable(ctx: &Context, raw: &serde_json::Value, error: &str) -> Result<()> {
    let Some(id) = raw.get("id").and_then(|v| v.as_str()) else {
        tracing::warn!(error, "stripe event without an id; skipped");
        return Ok(());
    };
    let type_ = raw
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or("unknown");
    let created = raw.get("created").and_then(|c| c.as_i64()).unwrap_or(0);
    defer(ctx, id, type_, created, &raw.to_string(), Some(error)).await?;
    Ok(())
}

/// Applies an event, reading from Stripe where it must (the queue's path).
async fn apply(ctx: &Context, gateway: &Gateway, event: &Event) -> Result<Effects> {
    let db = &ctx.db;
    match &event.data.object {
        EventObject::CheckoutSessionCompleted(s)
        | EventObject::CheckoutSessionAsyncPaymentSucceeded(s) => {
            checkout_paid(ctx, gateway, s).await
        }
        EventObject::CheckoutSessionAsyncPaymentFailed(s) => {
            let mut tx = db.begin_write().await?;
            store::stripe::finish_checkout(&mut tx, s.id.as_str(), "failed").await?;
            tx.commit().await?;
            Ok(Effects::NONE)
        }
        EventObject::CustomerSubscriptionCreated(sub)
        | EventObject::CustomerSubscriptionUpdated(sub)
        | EventObject::CustomerSubscriptionDeleted(sub) => {
            sync_subscription(db, gateway, sub.id.as_str()).await?;
            Ok(Effects::PUBLIC | Effects::MAIL)
        }
        EventObject::InvoicePaid(invoice) => {
            invoice_paid(ctx, gateway, invoice, event.created).await
        }
        EventObject::InvoicePaymentFailed(invoice) => {
            payment_issue(ctx, gateway, invoice, false, event).await
        }
        EventObject::InvoicePaymentActionRequired(invoice) => {
            payment_issue(ctx, gateway, invoice, true, event).await
        }
        EventObject::ChargeRefunded(charge) => {
            charge_refunded(db, gateway, charge).await?;
            Ok(Effects::PUBLIC)
        }
        EventObject::ChargeDisputeCreated(dispute) => {
            dispute_opened(db, gateway, dispute).await?;
            Ok(Effects::PUBLIC)
        }
        EventObject::ChargeDisputeClosed(dispute) => {
            dispute_closed(db, gateway, dispute, event.created).await?;
            Ok(Effects::PUBLIC)
        }
        // Stored for the record; nothing to apply.
        _ => Ok(Effects::NONE),
    }
}

/// A renewal failed or waits for the payer: the pledge's state follows the
/// subscription, and the payer gets one email per invoice saying how to fix
/// it.
async fn payment_issue(
    ctx: &Context,
    gateway: &Gateway,
    invoice: &Invoice,
    action_required: bool,
    event: &Event,
) -> Result<Effects> {
    let db = &ctx.db;
    let Some(invoice_id) = invoice.id.as_ref().map(|i| i.to_string()) else {
        return Ok(Effects::NONE);
    };
    let pledge = match subscription_of(invoice) {
        Some(sub) => {
            sync_subscription(db, gateway, &sub).await?;
            store::stripe::pledge_by_subscription(db, &sub).await?
        }
        None => None,
    };
    let supporter_id = match &pledge {
        Some(p) => Some(p.supporter_id),
        None => match invoice.customer.as_ref() {
            Some(c) => store::stripe::supporter_by_customer(db, c.id().as_str()).await?,
            None => None,
        },
    };
    service::payments::payment_issue(
        ctx,
        &store::stripe::PaymentIssue {
            invoice_id,
            supporter_id,
            pledge_id: pledge.as_ref().map(|p| p.id),
            tier_id: pledge.as_ref().and_then(|p| p.tier_id),
            amount_minor: invoice.amount_due,
            currency: currency(&invoice.currency)?,
            occurred_at: at(event.created),
            hosted_url: invoice.hosted_invoice_url.clone(),
            action_required,
        },
    )
    .await
}

fn subscription_of(invoice: &Invoice) -> Option<String> {
    invoice
        .parent
        .as_ref()
        .and_then(|p| p.subscription_details.as_ref())
        .map(|d| d.subscription.id().to_string())
}

pub(crate) fn pledge_status(status: &SubscriptionStatus) -> Option<PledgeStatus> {
    match status {
        SubscriptionStatus::Active | SubscriptionStatus::Trialing => Some(PledgeStatus::Active),
        SubscriptionStatus::PastDue | SubscriptionStatus::Unpaid | SubscriptionStatus::Paused => {
            Some(PledgeStatus::PastDue)
        }
        SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired => {
            Some(PledgeStatus::Canceled)
        }
        // Not paid yet: no pledge until the first payment goes through.
        _ => None,
    }
}

/// Reads the subscription from Stripe and makes our pledge match it.
/// Returns the pledge, or `None` while the subscription is not yet paid.
pub async fn sync_subscription(
    db: &Db,
    gateway: &Gateway,
    subscription_id: &str,
) -> Result<Option<i64>> {
    let sub: Subscription = gateway.subscription(subscription_id).await?;
    let Some(status) = pledge_status(&sub.status) else {
        return Ok(None);
    };
    let customer = sub.customer.id().to_string();
    let supporter_id = match meta_id(&sub.metadata, "patronage_supporter_id") {
        Some(id) => id,
        None => store::stripe::supporter_by_customer(db, &customer)
            .await?
            .ok_or_else(|| Error::internal(format!("no supporter for customer {customer}")))?,
    };
    let item = sub
        .items
        .data
        .first()
        .ok_or_else(|| Error::internal("subscription without items"))?;
    let price = &item.price;
    let interval = match price.recurring.as_ref().map(|r| r.interval.as_str()) {
        Some("year") => Interval::Year,
        _ => Interval::Month,
    };
    let quantity = i64::try_from(item.quantity.unwrap_or(1)).unwrap_or(1);
    let tier_id = match meta_id(&sub.metadata, "patronage_tier_id") {
        Some(id) => Some(id),
        None => store::stripe::tier_of_price(db, price.id.as_str()).await?,
    };
    let state = SubscriptionState {
        subscription_id: sub.id.to_string(),
        supporter_id,
        tier_id,
        amount_minor: price.unit_amount.unwrap_or(0) * quantity,
        currency: currency(&price.currency)?,
        interval,
        status,
        started_at: at(sub.start_date),
        ended_at: sub.ended_at.map(at),
        current_period_end: Some(at(item.current_period_end)),
        cancel_at_period_end: sub.cancel_at_period_end,
        cancel_reason: sub
            .cancellation_details
            .as_ref()
            .and_then(|d| d.reason.as_ref())
            .map(|r| r.as_str().to_owned()),
    };
    Ok(Some(
        service::pledges::record_subscription(db, &state).await?,
    ))
}

/// What an `invoice.paid` books, from the event alone.
enum Renewal {
    /// Nothing was paid (a zero invoice), or the invoice has no id.
    Nothing,
    Book(StripePayment),
    /// The subscription has no pledge here yet: the queue reads it first.
    UnknownPledge,
}

fn renewal(
    invoice: &Invoice,
    event_created: i64,
    pledge: Option<&store::stripe::PledgeRef>,
) -> Result<Renewal> {
    let Some(invoice_id) = invoice.id.as_ref().map(|i| i.to_string()) else {
        return Ok(Renewal::Nothing);
    };
    if invoice.amount_paid <= 0 {
        return Ok(Renewal::Nothing);
    }
    if subscription_of(invoice).is_some() && pledge.is_none() {
        return Ok(Renewal::UnknownPledge);
    }
    let period_end = invoice
        .lines
        .data
        .iter()
        .map(|l| l.period.end)
        .max()
        .unwrap_or(invoice.period_end);
    let paid_at = invoice.status_transitions.paid_at.unwrap_or(event_created);
    Ok(Renewal::Book(StripePayment {
        reference: invoice_id.clone(),
        invoice_id: Some(invoice_id),
        amount_minor: invoice.amount_paid,
        currency: currency(&invoice.currency)?,
        occurred_at: at(paid_at),
        pledge_id: pledge.map(|p| p.id),
        supporter_id: pledge.map(|p| p.supporter_id),
        tier_id: pledge.and_then(|p| p.tier_id),
        sponsor: pledge.is_some_and(|p| p.sponsor),
        tier_label: pledge.and_then(|p| p.tier_name.clone().zip(p.tier_interval.clone())),
        paid_through: Some(at(period_end).date_naive()),
        note: invoice.number.clone().unwrap_or_default(),
    }))
}

/// Books a paid invoice; a subscription we have no pledge for yet (its
/// invoice arrived first) is read from Stripe first.
async fn invoice_paid(
    ctx: &Context,
    gateway: &Gateway,
    invoice: &Invoice,
    event_created: i64,
) -> Result<Effects> {
    let pledge = match subscription_of(invoice) {
        Some(sub) => match store::stripe::pledge_by_subscription(&ctx.db, &sub).await? {
            Some(pledge) => Some(pledge),
            None => {
                sync_subscription(&ctx.db, gateway, &sub).await?;
                store::stripe::pledge_by_subscription(&ctx.db, &sub).await?
            }
        },
        None => None,
    };
    match renewal(invoice, event_created, pledge.as_ref())? {
        Renewal::Book(payment) => book(ctx, &payment).await,
        Renewal::Nothing => Ok(Effects::NONE),
        Renewal::UnknownPledge => Err(Error::NotYet {
            reason: "the subscription is not paid yet".into(),
            waits_for: None,
        }),
    }
}

/// Books a payment in a commit of its own.
async fn book(ctx: &Context, payment: &StripePayment) -> Result<Effects> {
    let mut tx = ctx.db.begin_write().await?;
    let effects = service::payments::book(&mut tx, payment).await?;
    tx.commit().await?;
    Ok(effects)
}

/// The payment of a one-time gift's paid checkout, if it was paid.
fn gift(session: &CheckoutSession) -> Result<Option<StripePayment>> {
    if session.mode != CheckoutSessionMode::Payment
        || session.payment_status != CheckoutSessionPaymentStatus::Paid
    {
        // Paid later (bank debits): async_payment_succeeded books it.
        return Ok(None);
    }
    let Some(pi) = session.payment_intent.as_ref().map(|p| p.id().to_string()) else {
        return Err(Error::internal("paid session without a payment intent"));
    };
    let metadata = session.metadata.clone().unwrap_or_default();
    let currency = currency(
        session
            .currency
            .as_ref()
            .ok_or_else(|| Error::internal("session without currency"))?,
    )?;
    Ok(Some(StripePayment {
        reference: pi,
        invoice_id: None,
        amount_minor: session.amount_total.unwrap_or(0),
        currency,
        occurred_at: at(session.created),
        pledge_id: None,
        supporter_id: meta_id(&metadata, "patronage_supporter_id"),
        tier_id: None,
        sponsor: false,
        tier_label: None,
        paid_through: None,
        note: "one-time gift".into(),
    }))
}

async fn checkout_paid(
    ctx: &Context,
    gateway: &Gateway,
    session: &CheckoutSession,
) -> Result<Effects> {
    let mut tx = ctx.db.begin_write().await?;
    store::stripe::finish_checkout(&mut tx, session.id.as_str(), "completed").await?;
    let effects = match gift(session)? {
        Some(payment) => service::payments::book(&mut tx, &payment).await?,
        None => Effects::NONE,
    };
    tx.commit().await?;
    if session.mode == CheckoutSessionMode::Subscription
        && let Some(sub) = &session.subscription
    {
        // The money arrives with invoice.paid; the pledge starts now.
        sync_subscription(&ctx.db, gateway, sub.id().as_str()).await?;
        return Ok(effects | Effects::PUBLIC | Effects::MAIL);
    }
    Ok(effects)
}

/// A Stripe ledger entry, not yet tied to a pledge.
fn stripe_entry(
    kind: EntryKind,
    amount_minor: i64,
    currency: Currency,
    external_ref: String,
    occurred_at: DateTime<Utc>,
    note: &str,
) -> NewEntry {
    NewEntry {
        kind,
        amount_minor,
        currency,
        pledge_id: None,
        supporter_id: None,
        tier_id: None,
        source: Source::Stripe,
        external_ref,
        occurred_at,
        note: note.to_owned(),
        reverses_entry_id: None,
        created_by: None,
    }
}

/// Who a charge's money belonged to: the pledge, supporter and tier of the
/// payment we booked for it. `None` when the charge is not ours at all: a
/// Stripe account may sell other things too, and their refunds and disputes
/// do not belong in this ledger. A charge to one of our customers whose
/// payment is not booked yet (events arrive in any order) is "not yet": the
/// event waits for the payment, so its money lands on the payment's tier
/// whichever arrives first.
async fn owner_of_charge(
    db: &Db,
    gateway: &Gateway,
    charge_id: &str,
    customer: Option<String>,
) -> Result<Option<ChargeOwner>> {
    if let Some(p) = store::stripe::payment_by_charge(db, charge_id).await? {
        return Ok(Some(ChargeOwner {
            pledge_id: p.pledge_id,
            supporter_id: p.supporter_id,
            tier_id: p.tier_id,
        }));
    }
    // Without the charge we cannot tell whose it is: the read fails and the
    // event is retried.
    let customer = match customer {
        Some(c) => Some(c),
        None => gateway.charge_customer(charge_id).await?,
    };
    // Every checkout pays as a customer patronage made.
    let Some(customer) = customer else {
        return Ok(None);
    };
    if store::stripe::supporter_by_customer(db, &customer)
        .await?
        .is_none()
    {
        return Ok(None);
    }
    Err(Error::NotYet {
        reason: format!("waiting for the payment of charge {charge_id}"),
        waits_for: Some(charge_id.to_owned()),
    })
}

struct ChargeOwner {
    pledge_id: Option<i64>,
    supporter_id: Option<i64>,
    tier_id: Option<i64>,
}

/// Ties `entry` to the charge's owner.
fn attributed(owner: &ChargeOwner, entry: NewEntry) -> NewEntry {
    NewEntry {
        pledge_id: owner.pledge_id,
        supporter_id: owner.supporter_id,
        tier_id: owner.tier_id,
        ..entry
    }
}

/// Books every succeeded refund of a charge (each under its own id).
pub async fn charge_refunded(db: &Db, gateway: &Gateway, charge: &Charge) -> Result<()> {
    let charge_id = charge.id.as_str();
    let customer = charge.customer.as_ref().map(|c| c.id().to_string());
    let Some(owner) = owner_of_charge(db, gateway, charge_id, customer).await? else {
        return Ok(());
    };
    // Stripe's list is complete; the event's own copy may be truncated.
    let refunds = match gateway.refunds_of_charge(charge_id).await {
        Ok(refunds) => refunds,
        Err(e) => match &charge.refunds {
            Some(list) if !list.has_more => list.data.clone(),
            _ => return Err(e),
        },
    };
    let mut entries = Vec::new();
    for refund in refunds {
        if refund.status.as_deref() != Some("succeeded") {
            continue;
        }
        let note = refund
            .reason
            .as_ref()
            .map_or("refund".to_owned(), |r| r.as_str().to_owned());
        let entry = stripe_entry(
            EntryKind::Refund,
            -refund.amount,
            currency(&refund.currency)?,
            refund.id.to_string(),
            at(refund.created),
            &note,
        );
        entries.push(attributed(&owner, entry));
    }
    store::stripe::record_entries(db, &entries).await?;
    Ok(())
}

/// What a dispute's opening books: Stripe takes the disputed amount and a
/// fee, both on the charge's owner.
fn dispute_entries(owner: &ChargeOwner, dispute: &Dispute) -> Result<Vec<NewEntry>> {
    let currency = currency(&dispute.currency)?;
    let taken = stripe_entry(
        EntryKind::Dispute,
        -dispute.amount,
        currency,
        dispute.id.to_string(),
        at(dispute.created),
        &dispute.reason,
    );
    let mut entries = vec![attributed(owner, taken)];
    let fee: i64 = dispute.balance_transactions.iter().map(|bt| bt.fee).sum();
    if fee != 0 {
        let fee = stripe_entry(
            EntryKind::Fee,
            -fee,
            currency,
            format!("{}:fee", dispute.id),
            at(dispute.created),
            "dispute fee",
        );
        entries.push(attributed(owner, fee));
    }
    Ok(entries)
}

/// Books the disputed amount and the dispute fee in one commit.
async fn dispute_opened(db: &Db, gateway: &Gateway, dispute: &Dispute) -> Result<()> {
    let charge = dispute.charge.id().to_string();
    let Some(owner) = owner_of_charge(db, gateway, &charge, None).await? else {
        return Ok(());
    };
    store::stripe::record_entries(db, &dispute_entries(&owner, dispute)?).await?;
    Ok(())
}

/// A won dispute gives the money back; a lost one stays booked as taken.
async fn dispute_closed(
    db: &Db,
    gateway: &Gateway,
    dispute: &Dispute,
    closed_at: i64,
) -> Result<()> {
    let charge = dispute.charge.id().to_string();
    let Some(owner) = owner_of_charge(db, gateway, &charge, None).await? else {
        return Ok(());
    };
    // Books the opening too, in case that event never arrived, in the same
    // commit as the outcome.
    let mut entries = dispute_entries(&owner, dispute)?;
    if dispute.status == DisputeStatus::Won {
        let returned = stripe_entry(
            EntryKind::Dispute,
            dispute.amount,
            currency(&dispute.currency)?,
            format!("{}:won", dispute.id),
            at(closed_at),
            "dispute won",
        );
        entries.push(attributed(&owner, returned));
    }
    store::stripe::record_entries(db, &entries).await?;
    Ok(())
}
