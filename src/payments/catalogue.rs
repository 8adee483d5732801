//! Tiers as Stripe Products and Prices, found again by our own product ids
//! and price lookup keys, so the sync is idempotent and safe on two replicas
//! at once.

use super::Gateway;
use crate::{
    error::Result,
    store::{self, Db, stripe::PriceRow, tiers::TierRow},
};

/// The product for a tier: our id, chosen so it can be found again.
pub fn product_id(tier_id: i64) -> String {
    format!("patronage_tier_{tier_id}")
}

/// One price per (tier, amount, currency, interval): a price change gets a
/// new key and so a new Price; subscriptions keep the price they began on.
pub fn lookup_key(tier: &TierRow) -> String {
    format!(
        "patronage_tier_{}_{}_{}_{}",
        tier.id,
        tier.amount_minor,
        tier.currency.code().to_ascii_lowercase(),
        tier.interval
    )
}

/// Makes Stripe match one tier. Returns the active price id, or `None` for
/// an archived tier (whose prices are deactivated).
pub async fn sync_tier(db: &Db, gateway: &Gateway, tier: &TierRow) -> Result<Option<String>> {
    if tier.archived {
        for old in store::stripe::retire_prices(db, tier.id, None).await? {
            gateway.deactivate_price(&old).await?;
        }
        return Ok(None);
    }
    let key = lookup_key(tier);
    if let Some(price) = store::stripe::active_price(db, tier.id, &key).await? {
        return Ok(Some(price.stripe_price_id));
    }
    let product = gateway
        .ensure_product(&product_id(tier.id), &tier.name, tier.id)
        .await?;
    store::stripe::set_tier_product(db, tier.id, &product).await?;
    let price_id = match gateway.find_price(&key).await? {
        Some(p) if p.active => p.id.to_string(),
        Some(p) => {
            gateway.activate_price(p.id.as_str()).await?;
            p.id.to_string()
        }
        None => gateway
            .create_price(
                &product,
                &key,
                tier.amount_minor,
                tier.currency,
                tier.interval,
            )
            .await?
            .id
            .to_string(),
    };
    store::stripe::record_price(
        db,
        &PriceRow {
            stripe_price_id: price_id.clone(),
            tier_id: tier.id,
            lookup_key: key,
            amount_minor: tier.amount_minor,
            currency: tier.currency,
            interval: tier.interval,
            active: true,
        },
    )
    .await?;
    for old in store::stripe::retire_prices(db, tier.id, Some(&price_id)).await? {
        gateway.deactivate_price(&old).await?;
    }
    Ok(Some(price_id))
}

/// Syncs every tier; returns how many are on sale.
pub async fn sync_all(db: &Db, gateway: &Gateway) -> Result<usize> {
    let mut active = 0;
    for tier in store::tiers::list(db, true).await? {
        if sync_tier(db, gateway, &tier).await?.is_some() {
            active += 1;
        }
    }
    Ok(active)
}
