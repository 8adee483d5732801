//! What patronage keeps about Stripe: prices per tier, customers, checkout
//! sessions, raw webhook events, and the payments behind ledger entries.
//! Every function that books money is idempotent: the ledger's unique
//! `(source, external_ref)` makes a repeat a no-op, even under concurrency.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

use super::{
    Db,
    audit::{Actor, audit},
    begin_write, bump_version, is_unique_violation,
    ledger::{NewEntry, append},
    now,
};
use crate::{
    db_run,
    domain::{
        ledger::EntryKind,
        money::Currency,
        pledge::{PledgeStatus, Source},
        tier::Interval,
    },
    error::{Error, Result},
};

// ---- catalogue ---------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PriceRow {
    pub stripe_price_id: String,
    pub tier_id: i64,
    pub lookup_key: String,
    pub amount_minor: i64,
    pub currency: Currency,
    pub interval: Interval,
    pub active: bool,
}

pub async fn active_price(db: &Db, tier_id: i64, lookup_key: &str) -> Result<Option<PriceRow>> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, PriceRow>(
            "SELECT stripe_price_id, tier_id, lookup_key, amount_minor, currency, interval, active \
             FROM stripe_prices WHERE tier_id = $1 AND lookup_key = $2 AND active = $3",
        )
        .bind(tier_id)
        .bind(lookup_key)
        .bind(true)
        .fetch_optional(pool)
        .await?
    });
    Ok(row)
}

pub async fn record_price(db: &Db, p: &PriceRow) -> Result<()> {
    db_run!(db, |pool| {
        sqlx::query(
            "INSERT INTO stripe_prices (stripe_price_id, tier_id, lookup_key, amount_minor, currency, interval, active, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (stripe_price_id) DO UPDATE SET active = excluded.active",
        )
        .bind(&p.stripe_price_id)
        .bind(p.tier_id)
        .bind(&p.lookup_key)
        .bind(p.amount_minor)
        .bind(p.currency.code())
        .bind(p.interval.as_str())
        .bind(p.active)
        .bind(now())
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// Marks the tier's other prices inactive; returns their ids so Stripe can
/// be told too.
pub async fn retire_prices(db: &Db, tier_id: i64, keep: Option<&str>) -> Result<Vec<String>> {
    let ids = db_run!(db, |pool| {
        sqlx::query_scalar::<_, String>(
            "UPDATE stripe_prices SET active = $3 WHERE tier_id = $1 AND active = $4 AND ($2 IS NULL OR stripe_price_id <> $2) \
             RETURNING stripe_price_id",
        )
        .bind(tier_id)
        .bind(keep)
        .bind(false)
        .bind(true)
        .fetch_all(pool)
        .await?
    });
    Ok(ids)
}

pub async fn set_tier_product(db: &Db, tier_id: i64, product_id: &str) -> Result<()> {
    db_run!(db, |pool| {
        sqlx::query("UPDATE tiers SET stripe_product_id = $2 WHERE id = $1")
            .bind(tier_id)
            .bind(product_id)
            .execute(pool)
            .await?;
    });
    Ok(())
}

// ---- supporters from checkout ------------------------------------------

/// The patron with this email, created if new. An existing patron's name
/// and visibility are never changed here: anyone can start a checkout with
/// any address, so doing so must not rename somebody else in public.
pub async fn upsert_patron(
    db: &Db,
    email: &crate::domain::supporter::Email,
    display_name: &str,
    visibility: crate::domain::supporter::Visibility,
) -> Result<i64> {
    let at = now();
    let id = db_run!(db, |pool| {
        let mut tx = begin_write!(pool);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO supporters (kind, email, email_normalized, display_name, visibility, created_at, updated_at) \
             VALUES ('patron', $1, $2, $3, $4, $5, $5) \
             ON CONFLICT (email_normalized) WHERE kind = 'patron' DO UPDATE SET updated_at = supporters.updated_at \
             RETURNING id",
        )
        .bind(&email.address)
        .bind(&email.normalized)
        .bind(display_name)
        .bind(visibility.as_str())
        .bind(at)
        .fetch_one(&mut *tx)
        .await?;
        bump_version!(tx);
        tx.commit().await?;
        id
    });
    Ok(id)
}

pub async fn set_customer(db: &Db, supporter_id: i64, customer_id: &str) -> Result<()> {
    db_run!(db, |pool| {
        sqlx::query("UPDATE supporters SET stripe_customer_id = $2 WHERE id = $1 AND (stripe_customer_id IS NULL OR stripe_customer_id = $2)")
            .bind(supporter_id)
            .bind(customer_id)
            .execute(pool)
            .await?;
    });
    Ok(())
}

pub async fn customer_of(db: &Db, supporter_id: i64) -> Result<Option<String>> {
    let id = db_run!(db, |pool| {
        sqlx::query_scalar::<_, Option<String>>(
            "SELECT stripe_customer_id FROM supporters WHERE id = $1",
        )
        .bind(supporter_id)
        .fetch_optional(pool)
        .await?
    });
    Ok(id.flatten())
}

/// A patron with a Stripe customer, by email: who may manage their support.
pub async fn patron_customer_by_email(db: &Db, normalized: &str) -> Result<Option<(i64, String)>> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, (i64, String)>(
            "SELECT id, stripe_customer_id FROM supporters WHERE kind = 'patron' AND email_normalized = $1 \
             AND stripe_customer_id IS NOT NULL",
        )
        .bind(normalized)
        .fetch_optional(pool)
        .await?
    });
    Ok(row)
}

// ---- checkout sessions -------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CheckoutRow {
    pub id: i64,
    pub idempotency_key: String,
    pub request_hash: String,
    pub stripe_session_id: Option<String>,
    pub purpose: String,
    pub supporter_id: Option<i64>,
    pub tier_id: Option<i64>,
    pub amount_minor: i64,
    pub url: Option<String>,
    pub status: String,
}

pub struct NewCheckout<'a> {
    pub idempotency_key: &'a str,
    pub request_hash: &'a str,
    pub purpose: &'a str,
    pub tier_id: Option<i64>,
    pub amount_minor: i64,
    pub currency: Currency,
}

/// The row for this idempotency key: the existing one, or a new one.
pub async fn claim_checkout(db: &Db, c: &NewCheckout<'_>) -> Result<CheckoutRow> {
    let row = db_run!(db, |pool| {
        sqlx::query(
            "INSERT INTO checkout_sessions (idempotency_key, request_hash, purpose, tier_id, amount_minor, currency, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'creating', $7) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(c.idempotency_key)
        .bind(c.request_hash)
        .bind(c.purpose)
        .bind(c.tier_id)
        .bind(c.amount_minor)
        .bind(c.currency.code())
        .bind(now())
        .execute(pool)
        .await?;
        sqlx::query_as::<_, CheckoutRow>(
            "SELECT id, idempotency_key, request_hash, stripe_session_id, purpose, supporter_id, tier_id, amount_minor, url, status \
             FROM checkout_sessions WHERE idempotency_key = $1",
        )
        .bind(c.idempotency_key)
        .fetch_one(pool)
        .await?
    });
    Ok(row)
}

pub async fn set_checkout_supporter(db: &Db, id: i64, supporter_id: i64) -> Result<()> {
    db_run!(db, |pool| {
        sqlx::query("UPDATE checkout_sessions SET supporter_id = $2 WHERE id = $1")
            .bind(id)
            .bind(supporter_id)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Records the session made for a checkout row. If a concurrent request
/// with the same key got there first, its URL wins and is returned.
pub async fn open_checkout(db: &Db, id: i64, stripe_session_id: &str, url: &str) -> Result<String> {
    let url = db_run!(db, |pool| {
        sqlx::query(
            "UPDATE checkout_sessions SET stripe_session_id = $2, url = $3, status = 'open' \
             WHERE id = $1 AND stripe_session_id IS NULL",
        )
        .bind(id)
        .bind(stripe_session_id)
        .bind(url)
        .execute(pool)
        .await?;
        sqlx::query_scalar::<_, String>("SELECT url FROM checkout_sessions WHERE id = $1")
            .bind(id)
            .fetch_one(pool)
            .await?
    });
    Ok(url)
}

pub async fn finish_checkout(db: &Db, stripe_session_id: &str, status: &str) -> Result<()> {
    db_run!(db, |pool| {
        sqlx::query(
            "UPDATE checkout_sessions SET status = $2, completed_at = $3 WHERE stripe_session_id = $1 AND status <> 'completed'",
        )
        .bind(stripe_session_id)
        .bind(status)
        .bind(now())
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// Active (or past-due) pledges on a tier plus open checkouts for it, so
/// slots are not oversold while people are paying.
pub async fn slots_taken(db: &Db, tier_id: i64) -> Result<i64> {
    let n = db_run!(db, |pool| {
        sqlx::query_scalar::<_, i64>(
            "SELECT (SELECT COUNT(*) FROM pledges WHERE tier_id = $1 AND status IN ('active', 'past_due')) \
             + (SELECT COUNT(*) FROM supporters WHERE tier_id = $1 AND kind = 'sponsor' AND sponsor_status = 'approved' \
                AND NOT EXISTS (SELECT 1 FROM pledges p WHERE p.supporter_id = supporters.id AND p.status IN ('active', 'past_due')))",
        )
        .bind(tier_id)
        .fetch_one(pool)
        .await?
    });
    Ok(n)
}

// ---- webhook events ----------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub id: String,
    #[sqlx(rename = "type")]
    pub type_: String,
    pub created: i64,
    pub payload: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub received_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
}

/// Stores a verified event and takes the lease on it in one commit. A
/// duplicate delivery stores nothing; it gets the lease only if the first
/// copy is not being applied right now (and not applied already).
pub async fn store_event(
    db: &Db,
    id: &str,
    type_: &str,
    created: i64,
    payload: &str,
    lease: chrono::Duration,
) -> Result<Option<EventRow>> {
    let at = now();
    let inserted = db_run!(db, |pool| {
        sqlx::query_as::<_, EventRow>(
            "INSERT INTO stripe_events (id, type, created, payload, status, attempts, next_attempt_at, locked_until, received_at) \
             VALUES ($1, $2, $3, $4, 'pending', 1, $5, $6, $5) ON CONFLICT (id) DO NOTHING \
             RETURNING id, type, created, payload, status, attempts, next_attempt_at, last_error, received_at, processed_at",
        )
        .bind(id)
        .bind(type_)
        .bind(created)
        .bind(payload)
        .bind(at)
        .bind(at + lease)
        .fetch_optional(pool)
        .await?
    });
    match inserted {
        Some(row) => Ok(Some(row)),
        None => claim_event(db, id, lease).await,
    }
}

/// Takes a lease on a pending or due event, so one worker on one replica
/// applies it at a time. `None` if it is done or someone else holds it.
pub async fn claim_event(db: &Db, id: &str, lease: chrono::Duration) -> Result<Option<EventRow>> {
    let at = now();
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, EventRow>(
            "UPDATE stripe_events SET locked_until = $2, attempts = attempts + 1 \
             WHERE id = $1 AND status <> 'processed' AND next_attempt_at <= $3 \
             AND (locked_until IS NULL OR locked_until < $3) \
             RETURNING id, type, created, payload, status, attempts, next_attempt_at, last_error, received_at, processed_at",
        )
        .bind(id)
        .bind(at + lease)
        .bind(at)
        .fetch_optional(pool)
        .await?
    });
    Ok(row)
}

pub async fn event_processed(db: &Db, id: &str) -> Result<()> {
    db_run!(db, |pool| {
        sqlx::query("UPDATE stripe_events SET status = 'processed', processed_at = $2, locked_until = NULL, last_error = NULL WHERE id = $1")
            .bind(id)
            .bind(now())
            .execute(pool)
            .await?;
    });
    Ok(())
}

pub async fn event_failed(db: &Db, id: &str, error: &str, retry_at: DateTime<Utc>) -> Result<()> {
    db_run!(db, |pool| {
        sqlx::query("UPDATE stripe_events SET status = 'failed', last_error = $2, next_attempt_at = $3, locked_until = NULL WHERE id = $1")
            .bind(id)
            .bind(error)
            .bind(retry_at)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Events whose retry time has come (and nobody holds).
pub async fn due_events(db: &Db, limit: i64) -> Result<Vec<String>> {
    let at = now();
    let ids = db_run!(db, |pool| {
        sqlx::query_scalar::<_, String>(
            "SELECT id FROM stripe_events WHERE status <> 'processed' AND next_attempt_at <= $1 \
             AND (locked_until IS NULL OR locked_until < $1) ORDER BY created, id LIMIT $2",
        )
        .bind(at)
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    Ok(ids)
}

pub async fn list_events(db: &Db, status: Option<&str>, limit: i64) -> Result<Vec<EventRow>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, EventRow>(
            "SELECT id, type, created, payload, status, attempts, next_attempt_at, last_error, received_at, processed_at \
             FROM stripe_events WHERE ($1 IS NULL OR status = $1) ORDER BY received_at DESC, id LIMIT $2",
        )
        .bind(status)
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// Makes a stored event due now (an admin's replay).
pub async fn replay_event(db: &Db, actor: &Actor, id: &str) -> Result<()> {
    let at = now();
    db_run!(db, |pool| {
        let mut tx = begin_write!(pool);
        let n = sqlx::query("UPDATE stripe_events SET status = 'pending', next_attempt_at = $2, locked_until = NULL WHERE id = $1")
            .bind(id)
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(Error::NotFound("event"));
        }
        audit!(
            tx,
            actor,
            "stripe_event.replay",
            "stripe_event",
            0i64,
            json!({"event_id": id})
        );
        tx.commit().await?;
        Ok::<_, Error>(())
    })?;
    Ok(())
}

// ---- pledges from subscriptions ----------------------------------------

/// A subscription as Stripe reports it now.
#[derive(Debug, Clone)]
pub struct SubscriptionState {
    pub subscription_id: String,
    pub supporter_id: i64,
    pub tier_id: Option<i64>,
    pub amount_minor: i64,
    pub currency: Currency,
    pub interval: Interval,
    pub status: PledgeStatus,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
}

/// Creates or updates the pledge for a subscription. A canceled pledge
/// stays canceled (Stripe never revives a subscription), so a stale read
/// cannot bring it back.
pub async fn upsert_subscription_pledge(db: &Db, s: &SubscriptionState) -> Result<i64> {
    let at = now();
    let id = db_run!(db, |pool| {
        let mut tx = begin_write!(pool);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO pledges (supporter_id, tier_id, amount_minor, currency, interval, status, source, external_ref, \
             started_at, ended_at, current_period_end, cancel_at_period_end, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'stripe', $7, $8, $9, $10, $11, $12, $12) \
             ON CONFLICT (source, external_ref) DO UPDATE SET \
               status = CASE WHEN pledges.status = 'canceled' THEN pledges.status ELSE excluded.status END, \
               ended_at = COALESCE(pledges.ended_at, excluded.ended_at), \
               amount_minor = excluded.amount_minor, \
               tier_id = excluded.tier_id, \
               interval = excluded.interval, \
               current_period_end = excluded.current_period_end, \
               cancel_at_period_end = excluded.cancel_at_period_end, \
               updated_at = excluded.updated_at \
             RETURNING id",
        )
        .bind(s.supporter_id)
        .bind(s.tier_id)
        .bind(s.amount_minor)
        .bind(s.currency.code())
        .bind(s.interval.as_str())
        .bind(s.status.as_str())
        .bind(&s.subscription_id)
        .bind(s.started_at)
        .bind(s.ended_at)
        .bind(s.current_period_end)
        .bind(s.cancel_at_period_end)
        .bind(at)
        .fetch_one(&mut *tx)
        .await?;
        // A sponsorship ended early (cancelled now, or Stripe gave up on an
        // unpaid renewal) is paid through the day before it ended, no later.
        if let (PledgeStatus::Canceled, Some(ended)) = (s.status, s.ended_at) {
            let last_day = ended.date_naive().pred_opt().unwrap_or(ended.date_naive());
            sqlx::query(
                "UPDATE supporters SET paid_through = $2, updated_at = $3 WHERE id = $1 AND kind = 'sponsor' \
                 AND paid_through > $2",
            )
            .bind(s.supporter_id)
            .bind(last_day)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        bump_version!(tx);
        tx.commit().await?;
        id
    });
    Ok(id)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PledgeRef {
    pub id: i64,
    pub supporter_id: i64,
    pub tier_id: Option<i64>,
}

pub async fn pledge_by_subscription(db: &Db, subscription_id: &str) -> Result<Option<PledgeRef>> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, PledgeRef>(
            "SELECT id, supporter_id, tier_id FROM pledges WHERE source = 'stripe' AND external_ref = $1",
        )
        .bind(subscription_id)
        .fetch_optional(pool)
        .await?
    });
    Ok(row)
}

// ---- money -------------------------------------------------------------

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
    pub fee_minor: i64,
}

/// Books a payment in one transaction: the gross entry, and, once the fee
/// is known, the fee entry and the link from its charge. Each is booked at
/// most once, so calling again after the fee became known completes a
/// payment first booked without it.
pub async fn record_payment(db: &Db, p: &StripePayment) -> Result<()> {
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
    let fee_entry = p.fee.as_ref().map(|f| NewEntry {
        kind: EntryKind::Fee,
        amount_minor: -f.fee_minor,
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
        let gross_id = match existing {
            Some(id) => id,
            None => match async { Ok::<_, sqlx::Error>(append!(tx, &gross)) }.await {
                Ok(id) => id,
                // Another replica is booking it right now; it will finish.
                Err(e) if is_unique_violation(&e, "external_ref") => return Ok(()),
                Err(e) => return Err(e.into()),
            },
        };
        if let (Some(fee), Some(entry)) = (&p.fee, &fee_entry) {
            let fee_booked: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM ledger_entries WHERE source = 'stripe' AND external_ref = $1",
            )
            .bind(&entry.external_ref)
            .fetch_optional(&mut *tx)
            .await?;
            if fee_booked.is_none() && fee.fee_minor != 0 {
                append!(tx, entry);
            }
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
        bump_version!(tx);
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

/// Appends Stripe entries (refunds, disputes) that are not booked yet.
/// Returns how many were new.
pub async fn record_entries(db: &Db, entries: &[NewEntry]) -> Result<usize> {
    let mut booked = 0;
    for entry in entries {
        let new = db_run!(db, |pool| {
            let mut tx = begin_write!(pool);
            let done: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM ledger_entries WHERE source = $1 AND external_ref = $2",
            )
            .bind(entry.source.as_str())
            .bind(&entry.external_ref)
            .fetch_optional(&mut *tx)
            .await?;
            if done.is_some() {
                false
            } else {
                match async { Ok::<_, sqlx::Error>(append!(tx, entry)) }.await {
                    Ok(_) => {
                        bump_version!(tx);
                        tx.commit().await?;
                        true
                    }
                    Err(e) if is_unique_violation(&e, "external_ref") => false,
                    Err(e) => return Err(e.into()),
                }
            }
        });
        booked += usize::from(new);
    }
    Ok(booked)
}

// ---- magic links -------------------------------------------------------

pub async fn create_magic_link(
    db: &Db,
    token_hash: &str,
    supporter_id: i64,
    ttl: chrono::Duration,
) -> Result<()> {
    let at = now();
    db_run!(db, |pool| {
        sqlx::query(
            "INSERT INTO magic_links (token_hash, supporter_id, purpose, created_at, expires_at) VALUES ($1, $2, 'manage', $3, $4)",
        )
        .bind(token_hash)
        .bind(supporter_id)
        .bind(at)
        .bind(at + ttl)
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// Spends a link: the supporter it was for, if it was unused and unexpired.
pub async fn consume_magic_link(db: &Db, token_hash: &str) -> Result<Option<i64>> {
    let at = now();
    let id = db_run!(db, |pool| {
        sqlx::query_scalar::<_, i64>(
            "UPDATE magic_links SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING supporter_id",
        )
        .bind(token_hash)
        .bind(at)
        .fetch_optional(pool)
        .await?
    });
    Ok(id)
}

pub async fn supporter_by_customer(db: &Db, customer_id: &str) -> Result<Option<i64>> {
    let id = db_run!(db, |pool| {
        sqlx::query_scalar::<_, i64>("SELECT id FROM supporters WHERE stripe_customer_id = $1")
            .bind(customer_id)
            .fetch_optional(pool)
            .await?
    });
    Ok(id)
}

pub async fn tier_of_price(db: &Db, price_id: &str) -> Result<Option<i64>> {
    let id = db_run!(db, |pool| {
        sqlx::query_scalar::<_, i64>("SELECT tier_id FROM stripe_prices WHERE stripe_price_id = $1")
            .bind(price_id)
            .fetch_optional(pool)
            .await?
    });
    Ok(id)
}
