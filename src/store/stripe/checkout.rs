//! Checkout sessions, found again by the caller's idempotency key.

use super::prelude::*;

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
    /// A sponsor paying by invoice: the invoice waits for an owner's approval.
    pub by_invoice: bool,
}

pub struct NewCheckout<'a> {
    pub idempotency_key: &'a str,
    pub request_hash: &'a str,
    pub purpose: &'a str,
    pub tier_id: Option<i64>,
    pub amount_minor: i64,
    pub currency: Currency,
    pub by_invoice: bool,
}

macro_rules! checkout_select {
    () => {
        "SELECT id, idempotency_key, request_hash, stripe_session_id, purpose, supporter_id, tier_id, amount_minor, url, status, by_invoice \
         FROM checkout_sessions "
    };
}

/// The row for this idempotency key: the existing one, or a new one.
pub async fn claim_checkout(db: &Db, c: &NewCheckout<'_>) -> Result<CheckoutRow> {
    let row = db_run!(db, |pool| {
        sqlx::query(
            "INSERT INTO checkout_sessions (idempotency_key, request_hash, purpose, tier_id, amount_minor, currency, status, created_at, by_invoice) \
             VALUES ($1, $2, $3, $4, $5, $6, 'creating', $7, $8) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(c.idempotency_key)
        .bind(c.request_hash)
        .bind(c.purpose)
        .bind(c.tier_id)
        .bind(c.amount_minor)
        .bind(c.currency.code())
        .bind(now())
        .bind(c.by_invoice)
        .execute(pool)
        .await?;
        sqlx::query_as::<_, CheckoutRow>(concat!(checkout_select!(), "WHERE idempotency_key = $1"))
            .bind(c.idempotency_key)
            .fetch_one(pool)
            .await?
    });
    Ok(row)
}

/// A sponsor's invoice application whose invoice is not made yet.
pub async fn invoice_application(db: &Db, supporter_id: i64) -> Result<Option<CheckoutRow>> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, CheckoutRow>(concat!(
            checkout_select!(),
            "WHERE supporter_id = $1 AND by_invoice = $2 AND stripe_session_id IS NULL ORDER BY id LIMIT 1"
        ))
        .bind(supporter_id)
        .bind(true)
        .fetch_optional(pool)
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

pub async fn finish_checkout(tx: &mut Tx, stripe_session_id: &str, status: &str) -> Result<()> {
    tx_run!(tx, |conn| {
        sqlx::query(
            "UPDATE checkout_sessions SET status = $2, completed_at = $3 WHERE stripe_session_id = $1 AND status <> 'completed'",
        )
        .bind(stripe_session_id)
        .bind(status)
        .bind(now())
        .execute(&mut *conn)
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
