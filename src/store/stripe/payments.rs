//! Booking Stripe's money: payments with their fees, refunds, disputes.

use super::prelude::*;

/// A payment Stripe collected: an invoice of a subscription, or a one-time
/// gift's payment intent.
#[derive(Debug, Clone)]
pub struct StripePayment {
    /// The invoice id for subscriptions, the payment intent id for gifts.
    pub reference: String,
    pub invoice_id: Option<String>,
    pub amount_minor: i64,
    /// `None` while Stripe could not tell us yet.
    pub fee: Option<PaymentFee>,
    pub currency: Currency,
    pub occurred_at: DateTime<Utc>,
    pub pledge_id: Option<i64>,
    pub supporter_id: Option<i64>,
    pub tier_id: Option<i64>,
    /// For sponsors: the end of the period this payment covers.
    pub paid_through: Option<NaiveDate>,
    pub note: String,
}

/// The charge behind a payment and the fee Stripe kept on it.
#[derive(Debug, Clone)]
pub struct PaymentFee {
    pub payment_intent: String,
    pub charge_id: String,
    /// `None` until the charge has its balance transaction.
    pub fee_minor: Option<i64>,
}

/// Books a payment in one transaction: the gross entry, once the charge is
/// known the link from it (which makes refunds and disputes waiting for it
/// due), and once the fee is known the fee entry. Each is booked at most
/// once, so calling again after the fee became known completes a payment
/// first booked without it.
///
/// With `processed_event`, that webhook event is marked processed in the same
/// transaction: the booking and the mark commit together or not at all.
pub async fn record_payment(
    db: &Db,
    p: &StripePayment,
    processed_event: Option<&str>,
) -> Result<()> {
    let gross = NewEntry {
        kind: EntryKind::Payment,
        amount_minor: p.amount_minor,
        currency: p.currency,
        pledge_id: p.pledge_id,
        supporter_id: p.supporter_id,
        tier_id: p.tier_id,
        source: Source::Stripe,
        external_ref: p.reference.clone(),
        occurred_at: p.occurred_at,
        note: p.note.clone(),
        reverses_entry_id: None,
        created_by: None,
    };
    let fee_entry = p
        .fee
        .as_ref()
        .and_then(|f| f.fee_minor)
        .map(|fee| NewEntry {
            kind: EntryKind::Fee,
            amount_minor: -fee,
            external_ref: format!("{}:fee", p.reference),
            note: "Stripe fee".into(),
            ..gross.clone()
        });
    db_run!(db, |pool| {
        let mut tx = begin_write!(pool);
        let existing: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM ledger_entries WHERE source = 'stripe' AND external_ref = $1",
        )
        .bind(&p.reference)
        .fetch_optional(&mut *tx)
        .await?;
        let (gross_id, newly_booked) = match existing {
            Some(id) => (id, false),
            None => match async { Ok::<_, sqlx::Error>(append!(tx, &gross)) }.await {
                Ok(id) => (id, true),
                // Another replica is booking it right now; it will finish.
                Err(e) if is_unique_violation(&e, "external_ref") => return Ok(()),
                Err(e) => return Err(e.into()),
            },
        };
        if let Some(entry) = &fee_entry {
            let fee_booked: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM ledger_entries WHERE source = 'stripe' AND external_ref = $1",
            )
            .bind(&entry.external_ref)
            .fetch_optional(&mut *tx)
            .await?;
            if fee_booked.is_none() && entry.amount_minor != 0 {
                append!(tx, entry);
            }
        }
        if let Some(fee) = &p.fee {
            sqlx::query(
                "INSERT INTO stripe_payments (payment_intent, charge_id, invoice_id, ledger_entry_id, pledge_id, supporter_id, tier_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (payment_intent) DO NOTHING",
            )
            .bind(&fee.payment_intent)
            .bind(&fee.charge_id)
            .bind(&p.invoice_id)
            .bind(gross_id)
            .bind(p.pledge_id)
            .bind(p.supporter_id)
            .bind(p.tier_id)
            .bind(now())
            .execute(&mut *tx)
            .await?;
            // Refunds and disputes that arrived before this payment.
            sqlx::query(
                "UPDATE stripe_events SET next_attempt_at = $2 WHERE waits_for = $1 AND status <> 'processed'",
            )
            .bind(&fee.charge_id)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        }
        if let (Some(supporter), Some(through)) = (p.supporter_id, p.paid_through) {
            // The paid-through date only moves forward.
            sqlx::query(
                "UPDATE supporters SET paid_through = $2, updated_at = $3 WHERE id = $1 AND kind = 'sponsor' \
                 AND (paid_through IS NULL OR paid_through < $2)",
            )
            .bind(supporter)
            .bind(through)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        }
        if newly_booked && let Some(supporter) = p.supporter_id {
            // The receipt commits with the booking: one per payment.
            let tier: Option<(String, String)> = match p.tier_id {
                Some(tier) => {
                    sqlx::query_as("SELECT name, interval FROM tiers WHERE id = $1")
                        .bind(tier)
                        .fetch_optional(&mut *tx)
                        .await?
                }
                None => None,
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
            mail_supporter!(
                tx,
                supporter,
                format!("{template}:{}", p.reference),
                template,
                context
            );
        }
        if newly_booked && let Some(supporter) = p.supporter_id {
            // A card sponsorship becomes real with its first payment: only
            // now does the applicant hear back (with the logo-upload link)
            // and do the owners learn there is one to review. A sponsor an
            // owner already approved (invoice terms) was told then.
            let first_paid_application: Option<i64> = sqlx::query_scalar(
                "SELECT s.id FROM supporters s WHERE s.id = $1 AND s.kind = 'sponsor' AND s.sponsor_status = 'pending' \
                 AND (SELECT COUNT(*) FROM ledger_entries e WHERE e.supporter_id = s.id AND e.kind = 'payment') = 1",
            )
            .bind(supporter)
            .fetch_optional(&mut *tx)
            .await?;
            if first_paid_application.is_some() {
                crate::store::supporters::queue_application_mails!(tx, supporter, true);
            }
        }
        if let Some(invoice) = &p.invoice_id {
            // A payment that failed before and went through now is recovered.
            sqlx::query("UPDATE payment_issues SET recovered_at = $2 WHERE invoice_id = $1 AND recovered_at IS NULL")
                .bind(invoice)
                .bind(p.occurred_at)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(event) = processed_event {
            mark_processed!(&mut *tx, event);
        }
        bump_version!(tx);
        tx.commit().await?;
        Ok::<_, Error>(())
    })
}

/// An invoice Stripe could not collect, or that waits for the payer to
/// confirm it with their bank (3-D Secure).
#[derive(Debug, Clone)]
pub struct PaymentIssue {
    pub invoice_id: String,
    pub supporter_id: Option<i64>,
    pub pledge_id: Option<i64>,
    pub tier_id: Option<i64>,
    pub amount_minor: i64,
    pub currency: Currency,
    pub occurred_at: DateTime<Utc>,
    /// Stripe's page where the payer can pay or confirm the invoice.
    pub hosted_url: Option<String>,
    pub action_required: bool,
}

/// Records a payment problem and, in the same commit, the email that tells
/// the payer how to fix it (once per invoice and kind), and marks the event
/// processed. An invoice already paid (its events came out of order) is
/// recorded as recovered and mails nobody.
pub async fn record_payment_issue(
    db: &Db,
    issue: &PaymentIssue,
    processed_event: &str,
) -> Result<()> {
    db_run!(db, |pool| {
        let mut tx = begin_write!(pool);
        let paid: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM ledger_entries WHERE source = 'stripe' AND external_ref = $1",
        )
        .bind(&issue.invoice_id)
        .fetch_optional(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO payment_issues (invoice_id, supporter_id, pledge_id, amount_minor, currency, first_failed_at, recovered_at)              VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (invoice_id) DO NOTHING",
        )
        .bind(&issue.invoice_id)
        .bind(issue.supporter_id)
        .bind(issue.pledge_id)
        .bind(issue.amount_minor)
        .bind(issue.currency.code())
        .bind(issue.occurred_at)
        .bind(paid.map(|_| issue.occurred_at))
        .execute(&mut *tx)
        .await?;
        if paid.is_none()
            && let Some(supporter) = issue.supporter_id
        {
            let tier_name: Option<String> = match issue.tier_id {
                Some(tier) => {
                    sqlx::query_scalar("SELECT name FROM tiers WHERE id = $1")
                        .bind(tier)
                        .fetch_optional(&mut *tx)
                        .await?
                }
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
            mail_supporter!(
                tx,
                supporter,
                format!("{template}:{}", issue.invoice_id),
                template,
                context
            );
        }
        mark_processed!(&mut *tx, processed_event);
        tx.commit().await?;
        Ok::<_, Error>(())
    })
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PaymentRow {
    pub payment_intent: String,
    pub charge_id: Option<String>,
    pub ledger_entry_id: i64,
    pub pledge_id: Option<i64>,
    pub supporter_id: Option<i64>,
    pub tier_id: Option<i64>,
    pub amount_minor: i64,
    pub currency: Currency,
}

macro_rules! payment_select {
    () => {
        "SELECT p.payment_intent, p.charge_id, p.ledger_entry_id, p.pledge_id, p.supporter_id, p.tier_id, \
         e.amount_minor, e.currency FROM stripe_payments p JOIN ledger_entries e ON e.id = p.ledger_entry_id "
    };
}

pub async fn payment_by_charge(db: &Db, charge_id: &str) -> Result<Option<PaymentRow>> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, PaymentRow>(concat!(payment_select!(), "WHERE p.charge_id = $1"))
            .bind(charge_id)
            .fetch_optional(pool)
            .await?
    });
    Ok(row)
}

pub async fn payment_by_entry(db: &Db, entry_id: i64) -> Result<Option<PaymentRow>> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, PaymentRow>(concat!(payment_select!(), "WHERE p.ledger_entry_id = $1"))
            .bind(entry_id)
            .fetch_optional(pool)
            .await?
    });
    Ok(row)
}

/// Appends the Stripe entries (refunds, a dispute and its fee) that are not
/// booked yet, all in one transaction so they commit together with the
/// same attribution. Returns how many were new.
pub async fn record_entries(db: &Db, entries: &[NewEntry]) -> Result<usize> {
    let mut attempt = 0;
    loop {
        match book_entries(db, entries).await {
            // Someone booked one of them at the same moment (another event
            // of the same dispute, an admin's refund and its webhook): book
            // what is left, now that theirs is visible.
            Err(Error::Database(e)) if attempt < 2 && is_unique_violation(&e, "external_ref") => {
                attempt += 1;
            }
            done => return done,
        }
    }
}

async fn book_entries(db: &Db, entries: &[NewEntry]) -> Result<usize> {
    if entries.is_empty() {
        return Ok(0);
    }
    db_run!(db, |pool| {
        let mut tx = begin_write!(pool);
        let mut booked = 0;
        for entry in entries {
            let done: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM ledger_entries WHERE source = $1 AND external_ref = $2",
            )
            .bind(entry.source.as_str())
            .bind(&entry.external_ref)
            .fetch_optional(&mut *tx)
            .await?;
            if done.is_none() {
                append!(tx, entry);
                booked += 1;
            }
        }
        if booked > 0 {
            bump_version!(tx);
            tx.commit().await?;
        }
        Ok::<_, Error>(booked)
    })
}
