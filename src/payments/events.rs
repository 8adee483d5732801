//! Applying Stripe's events. Each event is stored raw first (see the
//! webhook handler), then applied under a lease by whichever replica claims
//! it. Applying is idempotent and order-independent:
//! - money is booked under Stripe's own ids (invoice, payment intent,
//!   refund, dispute), which the ledger refuses to book twice;
//! - subscription state is re-read from Stripe rather than taken from the
//!   event, so a late `customer.subscription.updated` cannot roll it back.
//!
//! A failure leaves the event stored and due again later, with backoff. An
//! event that needs another applied first (a refund or dispute before the
//! payment it undoes) waits the same way, quietly, and is made due at once
//! when that payment is booked: its money lands on the payment's tier
//! whichever arrives first.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::{DateTime, TimeZone, Utc};
use stripe_shared::{
    Charge, CheckoutSession, CheckoutSessionMode, CheckoutSessionPaymentStatus, Dispute,
    DisputeStatus, Invoice, Subscription, SubscriptionStatus,
};
use tokio_util::sync::CancellationToken;

use super::{
    Gateway,
    envelope::{Event, EventObject},
};
use crate::{
    context::Context,
    domain::{
        ledger::EntryKind,
        money::Currency,
        pledge::{PledgeStatus, Source},
        tier::Interval,
    },
    error::{Error, Result},
    store::{
        self, Db,
        ledger::NewEntry,
        stripe::{PaymentFee, StripePayment, SubscriptionState},
    },
};

/// How long an event may wait for another (a refund for its payment) before
/// admins should look at it: Stripe retries a webhook for up to three days,
/// so what has not come by then will not come by itself.
const WAIT_LIMIT: chrono::Duration = chrono::Duration::days(3);

/// How long one worker may hold an event before another may take it over.
fn lease(ctx: &Context) -> chrono::Duration {
    chrono::Duration::seconds(ctx.settings.stripe.event_lease_secs.max(1) as i64)
}

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

/// Claims, applies and marks one stored event. Returns false if another
/// worker holds it or it was already applied.
pub async fn process(ctx: &Context, event_id: &str) -> Result<bool> {
    match store::stripe::claim_event(&ctx.db, event_id, lease(ctx)).await? {
        Some(row) => apply_claimed(ctx, row, None).await.map(|()| true),
        None => Ok(false),
    }
}

/// Verifies nothing (the caller did), stores the event with its lease, and
/// applies it. Returns whether this call applied it. Fails only if the event
/// could not be stored.
pub async fn receive(ctx: &Context, event: Event, payload: &str) -> Result<bool> {
    let id = event.id.to_string();
    let claimed = store::stripe::store_event(
        &ctx.db,
        &id,
        event.type_.as_str(),
        event.created,
        payload,
        lease(ctx),
    )
    .await
    .map_err(|e| Error::Unavailable(format!("cannot store the event: {e}")))?;
    match claimed {
        // A failure is recorded with the event and retried by the worker.
        Some(row) => Ok(apply_claimed(ctx, row, Some(event)).await.is_ok()),
        None => Ok(false),
    }
}

/// Keeps an event we cannot read (from Stripe's event list) as failed, so
/// admins see it among the stored events; it is retried like any failed
/// event. One without an id cannot be kept and is only logged.
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
    let stored =
        store::stripe::store_event(&ctx.db, id, type_, created, &raw.to_string(), lease(ctx))
            .await?;
    // `None`: kept already (an earlier run or its webhook) and not ours now.
    if let Some(row) = stored {
        tracing::warn!(event = id, error, "stripe event unreadable; kept as failed");
        metrics::counter!("patronage_stripe_events_failed_total").increment(1);
        store::stripe::event_failed(&ctx.db, id, error, retry_at(ctx, row.attempts)).await?;
    }
    Ok(())
}

/// Applies an event we hold the lease on, then marks it processed, or
/// failed and due again later. `parsed` saves parsing the payload again.
async fn apply_claimed(
    ctx: &Context,
    row: store::stripe::EventRow,
    parsed: Option<Event>,
) -> Result<()> {
    let gateway = ctx.gateway.as_ref().ok_or(Error::PaymentsNotConfigured)?;
    let event_id = row.id.as_str();
    let outcome = if !HANDLED.contains(&row.type_.as_str()) {
        Ok(false)
    } else {
        let event = match parsed {
            Some(event) => Ok(event),
            None => serde_json::from_str::<Event>(&row.payload)
                .map_err(|e| Error::internal(format!("unreadable event: {e}"))),
        };
        match event {
            Ok(event) => apply(&ctx.db, gateway, &event).await,
            Err(e) => Err(e),
        }
    };
    match outcome {
        Ok(marked) => {
            if !marked {
                store::stripe::event_processed(&ctx.db, event_id).await?;
            }
            metrics::counter!("patronage_stripe_events_applied_total").increment(1);
            Ok(())
        }
        // Out of order (a refund before its payment) or not ready at Stripe
        // (a charge's fee): expected, so it waits quietly, until it has
        // waited longer than anything it needs can take to arrive.
        Err(Error::NotYet { reason, waits_for }) => {
            let overdue = store::now() - row.received_at > WAIT_LIMIT;
            if overdue {
                tracing::warn!(event = event_id, attempts = row.attempts, %reason, "stripe event still waiting; will retry");
            } else {
                tracing::info!(event = event_id, attempts = row.attempts, %reason, "stripe event waits; will retry");
            }
            metrics::counter!("patronage_stripe_events_waiting_total").increment(1);
            store::stripe::event_waiting(
                &ctx.db,
                event_id,
                &format!("not yet: {reason}"),
                waits_for.as_deref(),
                retry_at(ctx, row.attempts),
                overdue,
            )
            .await?;
            Err(Error::NotYet { reason, waits_for })
        }
        Err(e) => {
            let retry_at = retry_at(ctx, row.attempts);
            tracing::warn!(event = event_id, attempts = row.attempts, error = %e, "stripe event failed; will retry");
            metrics::counter!("patronage_stripe_events_failed_total").increment(1);
            store::stripe::event_failed(&ctx.db, event_id, &e.to_string(), retry_at).await?;
            Err(e)
        }
    }
}

/// When an event that failed on its `attempts`-th try is due again.
fn retry_at(ctx: &Context, attempts: i32) -> DateTime<Utc> {
    let base = ctx.settings.stripe.retry_base_secs.max(1);
    let delay = base
        .saturating_mul(1 << (attempts.clamp(1, 10) - 1))
        .min(3600);
    store::now() + chrono::Duration::seconds(delay as i64)
}

/// Retries failed events when they come due, until shutdown.
pub fn spawn_retry_worker(ctx: Arc<Context>, every: Duration, shutdown: CancellationToken) {
    if ctx.gateway.is_none() {
        return;
    }
    crate::background::every(every, shutdown, move || {
        let ctx = ctx.clone();
        async move {
            let due = match store::stripe::due_events(&ctx.db, 50).await {
                Ok(ids) => ids,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list due stripe events");
                    return;
                }
            };
            let mut changed = false;
            for id in due {
                changed |= process(&ctx, &id).await.unwrap_or(false);
            }
            if changed {
                ctx.public.mark_dirty();
            }
        }
    });
}

/// Applies an event. Returns true when the event was marked processed in
/// the same transaction as its effects (so the caller need not).
async fn apply(db: &Db, gateway: &Gateway, event: &Event) -> Result<bool> {
    let unmarked = |r: Result<()>| r.map(|()| false);
    match &event.data.object {
        EventObject::CheckoutSessionCompleted(s)
        | EventObject::CheckoutSessionAsyncPaymentSucceeded(s) => {
            unmarked(checkout_paid(db, gateway, s).await)
        }
        EventObject::CheckoutSessionAsyncPaymentFailed(s) => {
            unmarked(store::stripe::finish_checkout(db, s.id.as_str(), "failed").await)
        }
        EventObject::CustomerSubscriptionCreated(sub)
        | EventObject::CustomerSubscriptionUpdated(sub)
        | EventObject::CustomerSubscriptionDeleted(sub) => {
            sync_subscription(db, gateway, sub.id.as_str())
                .await
                .map(|_| false)
        }
        // Renewals are most of the traffic: book and mark in one commit.
        EventObject::InvoicePaid(invoice) => {
            invoice_paid(db, gateway, invoice, event.created, event.id.as_str()).await
        }
        EventObject::InvoicePaymentFailed(invoice) => {
            payment_issue(db, gateway, invoice, false, event).await
        }
        EventObject::InvoicePaymentActionRequired(invoice) => {
            payment_issue(db, gateway, invoice, true, event).await
        }
        EventObject::ChargeRefunded(charge) => unmarked(charge_refunded(db, gateway, charge).await),
        EventObject::ChargeDisputeCreated(dispute) => {
            unmarked(dispute_opened(db, gateway, dispute).await)
        }
        EventObject::ChargeDisputeClosed(dispute) => {
            unmarked(dispute_closed(db, gateway, dispute, event.created).await)
        }
        // Stored for the record; nothing to apply.
        _ => Ok(false),
    }
}

/// A renewal failed or waits for the payer: the pledge's state follows the
/// subscription, and the payer gets one email per invoice saying how to fix
/// it, committed with the event's processed mark.
async fn payment_issue(
    db: &Db,
    gateway: &Gateway,
    invoice: &Invoice,
    action_required: bool,
    event: &Event,
) -> Result<bool> {
    let Some(invoice_id) = invoice.id.as_ref().map(|i| i.to_string()) else {
        return Ok(false);
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
    store::stripe::record_payment_issue(
        db,
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
        event.id.as_str(),
    )
    .await?;
    Ok(true)
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
        store::stripe::upsert_subscription_pledge(db, &state).await?,
    ))
}

/// Books a paid invoice. When the fee is known too, the event is marked
/// processed in the same commit (returns true); without the fee (Stripe
/// unreachable, or no balance transaction yet) the event comes back for it.
async fn invoice_paid(
    db: &Db,
    gateway: &Gateway,
    invoice: &Invoice,
    event_created: i64,
    event_id: &str,
) -> Result<bool> {
    let Some(invoice_id) = invoice.id.as_ref().map(|i| i.to_string()) else {
        return Ok(false);
    };
    if invoice.amount_paid <= 0 {
        return Ok(false);
    }
    let subscription = subscription_of(invoice);
    // The pledge's state follows customer.subscription.* events; here we
    // only need to know which pledge the money belongs to, and make it if
    // this invoice arrived first.
    let pledge = match &subscription {
        Some(sub) => match store::stripe::pledge_by_subscription(db, sub).await? {
            Some(pledge) => Some(pledge),
            None => {
                sync_subscription(db, gateway, sub).await?;
                store::stripe::pledge_by_subscription(db, sub).await?
            }
        },
        None => None,
    };
    // The fee needs two more reads from Stripe. If they fail, the payment is
    // booked anyway and the event is retried until the fee is booked too.
    let fee = async {
        match gateway.invoice_payment_intent(&invoice_id).await? {
            Some(pi) => payment_fee(gateway, pi).await,
            None => Ok(None),
        }
    }
    .await;
    let period_end = invoice
        .lines
        .data
        .iter()
        .map(|l| l.period.end)
        .max()
        .unwrap_or(invoice.period_end);
    let paid_at = invoice.status_transitions.paid_at.unwrap_or(event_created);
    let (fee, settled) = fee_settled(fee);
    store::stripe::record_payment(
        db,
        &StripePayment {
            reference: invoice_id.clone(),
            invoice_id: Some(invoice_id),
            amount_minor: invoice.amount_paid,
            fee,
            currency: currency(&invoice.currency)?,
            occurred_at: at(paid_at),
            pledge_id: pledge.as_ref().map(|p| p.id),
            supporter_id: pledge.as_ref().map(|p| p.supporter_id),
            tier_id: pledge.as_ref().and_then(|p| p.tier_id),
            paid_through: Some(at(period_end).date_naive()),
            note: invoice.number.clone().unwrap_or_default(),
        },
        settled.is_ok().then_some(event_id),
    )
    .await?;
    settled.map(|()| true)
}

/// What of the fee lookup can be booked now, and whether the event must
/// come back for the rest: the lookup failed (retry), or the charge has no
/// balance transaction yet (wait for it). `Ok` once the fee is known, or
/// when there is no charge at all.
fn fee_settled(fee: Result<Option<PaymentFee>>) -> (Option<PaymentFee>, Result<()>) {
    match fee {
        Err(e) => (None, Err(e)),
        Ok(Some(f)) if f.fee_minor.is_none() => {
            let reason = format!("charge {} has no balance transaction yet", f.charge_id);
            (
                Some(f),
                Err(Error::NotYet {
                    reason,
                    waits_for: None,
                }),
            )
        }
        Ok(fee) => (fee, Ok(())),
    }
}

/// The fee Stripe kept on a payment intent's charge, if it has one yet.
async fn payment_fee(gateway: &Gateway, payment_intent: String) -> Result<Option<PaymentFee>> {
    Ok(gateway
        .charge_fee(&payment_intent)
        .await?
        .map(|f| PaymentFee {
            payment_intent,
            charge_id: f.charge_id,
            fee_minor: f.fee_minor,
        }))
}

async fn checkout_paid(db: &Db, gateway: &Gateway, session: &CheckoutSession) -> Result<()> {
    store::stripe::finish_checkout(db, session.id.as_str(), "completed").await?;
    match session.mode {
        CheckoutSessionMode::Subscription => {
            // The money arrives with invoice.paid; the pledge starts now.
            if let Some(sub) = &session.subscription {
                sync_subscription(db, gateway, sub.id().as_str()).await?;
            }
            Ok(())
        }
        CheckoutSessionMode::Payment
            if session.payment_status == CheckoutSessionPaymentStatus::Paid =>
        {
            let Some(pi) = session.payment_intent.as_ref().map(|p| p.id().to_string()) else {
                return Err(Error::internal("paid session without a payment intent"));
            };
            let metadata = session.metadata.clone().unwrap_or_default();
            let (fee, settled) = fee_settled(payment_fee(gateway, pi.clone()).await);
            let currency = currency(
                session
                    .currency
                    .as_ref()
                    .ok_or_else(|| Error::internal("session without currency"))?,
            )?;
            store::stripe::record_payment(
                db,
                &StripePayment {
                    reference: pi,
                    invoice_id: None,
                    amount_minor: session.amount_total.unwrap_or(0),
                    fee,
                    currency,
                    occurred_at: at(session.created),
                    pledge_id: None,
                    supporter_id: meta_id(&metadata, "patronage_supporter_id"),
                    tier_id: None,
                    paid_through: None,
                    note: "one-time gift".into(),
                },
                None,
            )
            .await?;
            // Booked; a missing fee makes the event come back for it.
            settled
        }
        // Paid later (bank debits): checkout.session.async_payment_succeeded books it.
        _ => Ok(()),
    }
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
