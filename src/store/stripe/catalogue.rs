//! Stripe Prices made for each tier.

use super::prelude::*;

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

pub async fn tier_of_price(db: &Db, price_id: &str) -> Result<Option<i64>> {
    let id = db_run!(db, |pool| {
        sqlx::query_scalar::<_, i64>("SELECT tier_id FROM stripe_prices WHERE stripe_price_id = $1")
            .bind(price_id)
            .fetch_optional(pool)
            .await?
    });
    Ok(id)
}
