//! Sponsorships paid by invoice: once an owner approves the application,
//! Stripe makes the invoice (a subscription collected by sending invoices)
//! and emails it.

use super::{Gateway, catalogue, customer_for, metadata};
use crate::{
    config::StripeSettings,
    error::{Error, Result},
    store::{self, Db},
};

/// An owner approved a sponsor: if it applied to pay by invoice, the
/// invoice is made now (Stripe emails it, due in
/// `stripe.invoice_days_until_due` days). Returns its URL, or `None` when
/// there is no invoice application waiting. Safe to call again: Stripe's
/// idempotency key is the application's.
pub async fn invoice_approved(
    db: &Db,
    gateway: &Gateway,
    settings: &StripeSettings,
    supporter_id: i64,
) -> Result<Option<String>> {
    let Some(row) = store::stripe::invoice_application(db, supporter_id).await? else {
        return Ok(None);
    };
    let sponsor = store::supporters::get(db, supporter_id).await?;
    let tier_id = row
        .tier_id
        .ok_or_else(|| Error::internal("invoice application without a tier"))?;
    let tier = store::tiers::get(db, tier_id).await?;
    let customer = customer_for(
        db,
        gateway,
        supporter_id,
        &sponsor.email,
        &sponsor.display_name,
    )
    .await?;
    let price = catalogue::sync_tier(db, gateway, &tier)
        .await?
        .ok_or_else(|| Error::conflict("tier_id", "this tier is not on sale"))?;
    let (subscription, url) = gateway
        .create_invoiced_subscription(
            &format!("invoice-subscription-{}", row.id),
            &customer,
            &price,
            settings.invoice_days_until_due,
            metadata(row.id, supporter_id, "sponsor", Some(tier.id)),
        )
        .await?;
    store::stripe::open_checkout(db, row.id, &subscription, &url)
        .await
        .map(Some)
}
