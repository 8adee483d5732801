//! Stripe: the catalogue of tiers as Products and Prices, Checkout, webhook
//! verification, and applying Stripe's events to our ledger and pledges.
//!
//! Every money movement reaches the ledger through `events`, whatever order
//! and however many times Stripe delivers: events are stored raw before we
//! answer, applied under a lease, and every booking is keyed by Stripe's own
//! ids, which the database refuses to book twice.

pub mod catalogue;
pub mod checkout;
pub mod envelope;
pub mod events;
pub mod gateway;
pub mod intake;
pub mod invoicing;
pub mod webhook;

pub use gateway::Gateway;

use std::collections::HashMap;

use crate::{
    error::Result,
    store::{self, Db},
};

/// The supporter's Stripe customer, created the first time.
pub(crate) async fn customer_for(
    db: &Db,
    gateway: &Gateway,
    supporter_id: i64,
    email: &str,
    name: &str,
) -> Result<String> {
    match store::stripe::customer_of(db, supporter_id).await? {
        Some(c) => Ok(c),
        None => {
            let c = gateway.create_customer(supporter_id, email, name).await?;
            store::stripe::set_customer(db, supporter_id, &c).await?;
            Ok(c)
        }
    }
}

/// What Stripe keeps for us on a session or subscription, to find our rows
/// again from its events.
pub(crate) fn metadata(
    checkout_id: i64,
    supporter_id: i64,
    purpose: &str,
    tier_id: Option<i64>,
) -> HashMap<String, String> {
    let mut metadata = HashMap::from([
        ("patronage_checkout".to_owned(), checkout_id.to_string()),
        (
            "patronage_supporter_id".to_owned(),
            supporter_id.to_string(),
        ),
        ("patronage_purpose".to_owned(), purpose.to_owned()),
    ]);
    if let Some(t) = tier_id {
        metadata.insert("patronage_tier_id".to_owned(), t.to_string());
    }
    metadata
}
