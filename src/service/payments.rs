//! Money from Stripe: booking a payment with its receipt, and settling its
//! fee once Stripe can tell it. The Stripe event translation lives in
//! `payments::events`; this is what an applied payment means for us.

use serde_json::json;

use crate::{
    context::{Context, Effects},
    domain::{ledger::EntryKind, money::Money, pledge::Source, webhooks::EventType},
    error::{Error, Result},
    queue::SettleFee,
    store::{
        self, Tx,
        audit::Actor,
        ledger::{EntryRow, NewEntry},
        stripe::{PaymentFee, PaymentIssue, StripePayment},
        webhooks::{OutboundEvent, Subject},
    },
};

/// Books a payment in the caller's transaction: the gross entry, the
/// receipt (one per payment), a paid sponsor application's emails, and the
/// task that books the fee. Nothing if it was booked before.
pub async fn book(tx: &mut Tx, p: &StripePayment) -> Result<Effects> {
    book_all(tx, std::slice::from_ref(p)).await
}

/// `book` for many payments (a batch of Stripe's deliveries), their
/// entries and events written a few statements in all.
pub async fn book_all(tx: &mut Tx, payments: &[StripePayment]) -> Result<Effects> {
    let ids = store::stripe::book_payments(tx, payments).await?;
    let booked: Vec<(&StripePayment, i64)> = payments
        .iter()
        .zip(ids)
        .filter_map(|(p, id)| Some((p, id?)))
        .collect();
    if booked.is_empty() {
        return Ok(Effects::NONE);
    }
    let told: Vec<OutboundEvent> = booked
        .iter()
        .map(|&(_, entry)| OutboundEvent::new(EventType::PaymentSucceeded, Subject::Entry(entry)))
        .collect();
    tx.emit_all(&told).await?;
    let mut effects = Effects::PUBLIC | Effects::TASKS;
    for (p, _) in booked {
        tx.enqueue(&SettleFee {
            reference: p.reference.clone(),
            invoice: p.invoice_id.is_some(),
        })
        .await?;
        let Some(supporter) = p.supporter_id else {
            continue;
        };
        receipt(tx, supporter, p).await?;
        effects |= Effects::MAIL;
        // A card sponsorship becomes real with its first payment: only now
        // does the applicant hear back (with the logo-upload link) and do
        // the owners learn there is one to review. A sponsor an owner
        // approved already (invoice terms) was told then.
        if p.sponsor && store::stripe::is_first_paid_application(tx, supporter).await? {
            super::sponsors::queue_application_mails(tx, supporter, true).await?;
        }
    }
    Ok(effects)
}

/// The receipt for a subscription payment, or the thanks for a gift.
async fn receipt(tx: &mut Tx, supporter: i64, p: &StripePayment) -> Result<()> {
    let tier = match (&p.tier_label, p.tier_id) {
        (Some(label), _) => Some(label.clone()),
        (None, Some(tier)) => store::stripe::tier_brief(tx, tier).await?,
        (None, None) => None,
    };
    let (template, reference) = match &p.invoice_id {
        Some(_) if !p.note.is_empty() => ("receipt", p.note.as_str()),
        Some(_) => ("receipt", p.reference.as_str()),
        None => ("gift_thanks", p.reference.as_str()),
    };
    let context = json!({
        "amount": Money::new(p.amount_minor, p.currency).view().display,
        "date": p.occurred_at.date_naive().to_string(),
        "tier_name": tier.as_ref().map(|t| &t.0),
        "interval": tier.as_ref().map(|t| &t.1),
        "reference": reference,
    });
    let cause = format!("{template}:{}", p.reference);
    tx.mail_supporter(supporter, &cause, template, context)
        .await
}

/// Records that Stripe could not collect an invoice (or waits for the payer
/// to confirm it with their bank) and, in the same commit, the email that
/// tells the payer how to fix it, once per invoice and kind. An invoice
/// paid already (its events came out of order) is recorded as recovered
/// and mails nobody.
pub async fn payment_issue(ctx: &Context, issue: &PaymentIssue) -> Result<Effects> {
    let mut tx = ctx.db.begin_write().await?;
    let paid = store::stripe::entry_for(&mut tx, &issue.invoice_id)
        .await?
        .is_some();
    store::stripe::insert_payment_issue(&mut tx, issue, paid).await?;
    let mut effects = Effects::PUBLIC;
    if !paid && let Some(supporter) = issue.supporter_id {
        let tier_name = match issue.tier_id {
            Some(tier) => store::stripe::tier_brief(&mut tx, tier).await?.map(|t| t.0),
            None => None,
        };
        let template = if issue.action_required {
            "action_required"
        } else {
            "payment_failed"
        };
        let mut context = json!({
            "amount": Money::new(issue.amount_minor, issue.currency).view().display,
            "tier_name": tier_name,
        });
        if let Some(url) = &issue.hosted_url {
            context["action_url"] = json!(url);
            context["fix_url"] = json!(url);
        }
        let cause = format!("{template}:{}", issue.invoice_id);
        tx.mail_supporter(supporter, &cause, template, context)
            .await?;
        effects |= Effects::MAIL;
    }
    tx.commit().await?;
    Ok(effects)
}

/// Finds the charge behind a booked payment and books the fee Stripe kept
/// on it: the `SettleFee` task. "Not yet" while the charge has no balance
/// transaction; the task retries.
pub async fn settle_fee(ctx: &Context, reference: &str, invoice: bool) -> Result<Effects> {
    let gateway = ctx.gateway.as_ref().ok_or(Error::PaymentsNotConfigured)?;
    let payment_intent = if invoice {
        match gateway.invoice_payment_intent(reference).await? {
            Some(pi) => pi,
            // Paid without a charge (a credit balance): no fee.
            None => return Ok(Effects::NONE),
        }
    } else {
        reference.to_owned()
    };
    let Some(charge) = gateway.charge_fee(&payment_intent).await? else {
        return Ok(Effects::NONE);
    };
    let fee = PaymentFee {
        payment_intent,
        charge_id: charge.charge_id,
        fee_minor: charge.fee_minor,
    };
    let mut tx = ctx.db.begin_write().await?;
    let changed =
        store::stripe::settle_fee(&mut tx, reference, invoice.then_some(reference), &fee).await?;
    tx.commit().await?;
    // Events waiting for the charge were made due.
    let effects = if changed {
        Effects::PUBLIC | Effects::TASKS
    } else {
        Effects::NONE
    };
    if fee.fee_minor.is_none() {
        // The charge is linked, though: what waited for it runs now.
        ctx.after_commit(effects);
        return Err(Error::NotYet {
            reason: format!("charge {} has no balance transaction yet", fee.charge_id),
            waits_for: None,
        });
    }
    Ok(effects)
}

/// Refunds a Stripe payment (its ledger entry of kind `payment`), fully or
/// `amount_minor` of it: through Stripe, then into the ledger, audited. A
/// retried request makes no second refund (same idempotency key).
pub async fn refund(
    ctx: &Context,
    actor: &Actor,
    entry_id: i64,
    amount_minor: Option<i64>,
    reason: &str,
) -> Result<EntryRow> {
    let gateway = ctx.gateway.as_ref().ok_or(Error::PaymentsNotConfigured)?;
    let payment = store::stripe::payment_by_entry(&ctx.db, entry_id)
        .await?
        .ok_or(Error::NotFound("Stripe payment"))?;
    let charge = payment.charge_id.as_deref().ok_or(Error::conflict(
        "entry",
        "this payment has no charge to refund",
    ))?;
    let refunded = gateway.charge_refunded_amount(charge).await?;
    let remaining = payment.amount_minor - refunded;
    let amount = amount_minor.unwrap_or(remaining);
    if amount <= 0 || amount > remaining {
        return Err(Error::field(
            "amount_minor",
            format!("must be between 1 and the {remaining} not yet refunded"),
        ));
    }
    // The same request retried (the answer lost, say) has the same key.
    let key = format!("refund-{entry_id}-{refunded}-{amount}");
    let refund = gateway
        .refund(&payment.payment_intent, Some(amount), &key)
        .await?;
    let entry = NewEntry {
        kind: EntryKind::Refund,
        amount_minor: -refund.amount,
        currency: payment.currency,
        pledge_id: payment.pledge_id,
        supporter_id: payment.supporter_id,
        tier_id: payment.tier_id,
        source: Source::Stripe,
        external_ref: refund.id.to_string(),
        occurred_at: store::now(),
        note: if reason.is_empty() {
            "refund".into()
        } else {
            reason.to_owned()
        },
        reverses_entry_id: None,
        created_by: Some(actor.label.clone()),
    };
    // Its webhook may have booked it already: then only the audit entry.
    let mut tx = ctx.db.begin_write().await?;
    if let Some(id) = tx.append_once(&entry).await? {
        tx.bump_version();
        tx.emit(&OutboundEvent::new(
            EventType::PaymentRefunded,
            Subject::Entry(id),
        ))
        .await?;
    }
    tx.audit(
        actor,
        "payment.refund",
        "ledger_entry",
        entry_id,
        json!({"amount_minor": amount, "refund": refund.id.to_string(), "reason": reason}),
    )
    .await?;
    tx.commit().await?;
    ctx.after_commit_now(Effects::PUBLIC | Effects::TASKS).await;
    store::ledger::get_by_reference(&ctx.db, Source::Stripe, refund.id.as_str()).await
}
