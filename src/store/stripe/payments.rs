//! Booking Stripe's money: payments with their fees, refunds, disputes.

use super::prelude::*;

/// A payment Stripe collected: an invoice of a subscription, or a one-time
/// gift's payment intent. Its fee is booked later (`settle_fee`), once
/// Stripe can tell it.
#[derive(Debug, Clone)]
pub struct StripePayment {
    /// The invoice id for subscriptions, the payment intent id for gifts.
    pub reference: String,
    pub invoice_id: Option<String>,
    pub amount_minor: i64,
    pub currency: Currency,
    pub occurred_at: DateTime<Utc>,
    pub pledge_id: Option<i64>,
    pub supporter_id: Option<i64>,
    pub tier_id: Option<i64>,
    /// A sponsor's payment: it may extend the paid term, or be the first
    /// of an application.
    pub sponsor: bool,
    /// The tier's name and interval when known already (for the receipt).
    pub tier_label: Option<(String, String)>,
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

/// The ledger entry booked for a Stripe reference, if any.
pub async fn entry_for(tx: &mut Tx, reference: &str) -> Result<Option<i64>> {
    let id = tx_run!(tx, |conn| {
        sqlx::query_scalar::<_, i64>(
            "SELECT id FROM ledger_entries WHERE source = 'stripe' AND external_ref = $1",
        )
        .bind(reference)
        .fetch_optional(&mut *conn)
        .await?
    });
    Ok(id)
}

/// Books payments, as ledger entries under Stripe's ids (one statement),
/// and extends each paying sponsor's term; the id of each entry, `None`
/// for a payment booked before.
pub async fn book_payments(tx: &mut Tx, payments: &[StripePayment]) -> Result<Vec<Option<i64>>> {
    let entries: Vec<NewEntry> = payments
        .iter()
        .map(|p| NewEntry {
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
        })
        .collect();
    let ids = tx.append_all_once(&entries).await?;
    for (p, id) in payments.iter().zip(&ids) {
        if let (Some(_), Some(supporter), Some(through), true) =
            (id, p.supporter_id, p.paid_through, p.sponsor)
        {
            tx_run!(tx, |conn| {
                // The paid-through date only moves forward.
                sqlx::query(
                    "UPDATE supporters SET paid_through = $2, updated_at = $3 WHERE id = $1 AND kind = 'sponsor' \
                     AND (paid_through IS NULL OR paid_through < $2)",
                )
                .bind(supporter)
                .bind(through)
                .bind(now())
                .execute(&mut *conn)
                .await?;
            });
        }
    }
    if ids.iter().any(Option::is_some) {
        tx.bump_version();
    }
    Ok(ids)
}

/// A tier's name and interval, for a receipt.
pub async fn tier_brief(tx: &mut Tx, tier_id: i64) -> Result<Option<(String, String)>> {
    let row = tx_run!(tx, |conn| {
        sqlx::query_as::<_, (String, String)>("SELECT name, interval FROM tiers WHERE id = $1")
            .bind(tier_id)
            .fetch_optional(&mut *conn)
            .await?
    });
    Ok(row)
}

/// True when this payment is the first of a sponsor still pending review.
pub async fn is_first_paid_application(tx: &mut Tx, supporter_id: i64) -> Result<bool> {
    let found = tx_run!(tx, |conn| {
        sqlx::query_scalar::<_, i64>(
            "SELECT s.id FROM supporters s WHERE s.id = $1 AND s.kind = 'sponsor' AND s.sponsor_status = 'pending' \
             AND (SELECT COUNT(*) FROM ledger_entries e WHERE e.supporter_id = s.id AND e.kind = 'payment') = 1",
        )
        .bind(supporter_id)
        .fetch_optional(&mut *conn)
        .await?
    });
    Ok(found.is_some())
}

/// Links a booked payment (`reference`, of `invoice_id` for a subscription)
/// to its charge and books the fee Stripe kept, each once, with the
/// payment's attribution. Returns whether anything was new. Refunds and
/// disputes waiting for this charge are made due.
pub async fn settle_fee(
    tx: &mut Tx,
    reference: &str,
    invoice_id: Option<&str>,
    fee: &PaymentFee,
) -> Result<bool> {
    type Gross = (
        i64,
        Currency,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        DateTime<Utc>,
    );
    let gross = tx_run!(tx, |conn| {
        sqlx::query_as::<_, Gross>(
            "SELECT id, currency, pledge_id, supporter_id, tier_id, occurred_at \
             FROM ledger_entries WHERE source = 'stripe' AND external_ref = $1",
        )
        .bind(reference)
        .fetch_optional(&mut *conn)
        .await?
    });
    let Some((gross_id, currency, pledge_id, supporter_id, tier_id, occurred_at)) = gross else {
        return Err(Error::NotYet {
            reason: format!("payment {reference} is not booked"),
            waits_for: None,
        });
    };
    let linked = tx_run!(tx, |conn| {
        let linked = sqlx::query(
            "INSERT INTO stripe_payments (payment_intent, charge_id, invoice_id, ledger_entry_id, pledge_id, supporter_id, tier_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (payment_intent) DO NOTHING",
        )
        .bind(&fee.payment_intent)
        .bind(&fee.charge_id)
        .bind(invoice_id)
        .bind(gross_id)
        .bind(pledge_id)
        .bind(supporter_id)
        .bind(tier_id)
        .bind(now())
        .execute(&mut *conn)
        .await?
        .rows_affected();
        // Refunds and disputes that arrived before this payment.
        sqlx::query(
            "UPDATE tasks SET run_at = $2 WHERE kind = 'apply_event' AND status = 'pending' AND run_at > $2 \
             AND dedupe_key IN (SELECT id FROM stripe_events WHERE waits_for = $1 AND status <> 'processed')",
        )
        .bind(&fee.charge_id)
        .bind(now())
        .execute(&mut *conn)
        .await?;
        linked
    });
    if let Some(invoice) = invoice_id {
        // A payment that failed before and went through is recovered (as
        // of when it was paid); done here, off the webhook's path.
        tx_run!(tx, |conn| {
            sqlx::query(
                "UPDATE payment_issues SET recovered_at = $2 WHERE invoice_id = $1 AND recovered_at IS NULL",
            )
            .bind(invoice)
            .bind(occurred_at)
            .execute(&mut *conn)
            .await?;
        });
    }
    let mut booked = false;
    if let Some(fee_minor) = fee.fee_minor.filter(|f| *f != 0) {
        let external_ref = format!("{reference}:fee");
        if entry_for(tx, &external_ref).await?.is_none() {
            tx.append(&NewEntry {
                kind: EntryKind::Fee,
                amount_minor: -fee_minor,
                currency,
                pledge_id,
                supporter_id,
                tier_id,
                source: Source::Stripe,
                external_ref,
                occurred_at,
                note: "Stripe fee".into(),
                reverses_entry_id: None,
                created_by: None,
            })
            .await?;
            tx.bump_version();
            booked = true;
        }
    }
    Ok(booked || linked > 0)
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

/// Records a payment problem once per invoice; `recovered` when the
/// invoice is paid already (its events came out of order).
pub async fn insert_payment_issue(
    tx: &mut Tx,
    issue: &PaymentIssue,
    recovered: bool,
) -> Result<()> {
    tx_run!(tx, |conn| {
        sqlx::query(
            "INSERT INTO payment_issues (invoice_id, supporter_id, pledge_id, amount_minor, currency, first_failed_at, recovered_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (invoice_id) DO NOTHING",
        )
        .bind(&issue.invoice_id)
        .bind(issue.supporter_id)
        .bind(issue.pledge_id)
        .bind(issue.amount_minor)
        .bind(issue.currency.code())
        .bind(issue.occurred_at)
        .bind(recovered.then_some(issue.occurred_at))
        .execute(&mut *conn)
        .await?;
    });
    Ok(())
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
/// same attribution. Returns how many were new. One booked at the same
/// moment elsewhere (another event of the same dispute, an admin's refund
/// and its webhook) is skipped, not an error.
pub async fn record_entries(db: &Db, entries: &[NewEntry]) -> Result<usize> {
    if entries.is_empty() {
        return Ok(0);
    }
    let mut tx = db.begin_write().await?;
    let mut booked = 0;
    for entry in entries {
        if let Some(id) = tx.append_once(entry).await? {
            booked += 1;
            if entry.kind == EntryKind::Refund {
                tx.emit(&crate::store::webhooks::OutboundEvent::new(
                    crate::domain::webhooks::EventType::PaymentRefunded,
                    crate::store::webhooks::Subject::Entry(id),
                ))
                .await?;
            }
        }
    }
    if booked > 0 {
        tx.bump_version();
        tx.commit().await?;
    }
    Ok(booked)
}

/// Payments that failed during `[from, to)`, and failed ones recovered then.
pub async fn payment_issue_counts(
    db: &Db,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<(i64, i64)> {
    let counts = db_run!(db, |pool| {
        sqlx::query_as::<_, (i64, i64)>(
            "SELECT \
               CAST(COALESCE(SUM(CASE WHEN first_failed_at >= $1 AND first_failed_at < $2 THEN 1 ELSE 0 END), 0) AS BIGINT), \
               CAST(COALESCE(SUM(CASE WHEN recovered_at >= $1 AND recovered_at < $2 THEN 1 ELSE 0 END), 0) AS BIGINT) \
             FROM payment_issues",
        )
        .bind(from)
        .bind(to)
        .fetch_one(pool)
        .await?
    });
    Ok(counts)
}
