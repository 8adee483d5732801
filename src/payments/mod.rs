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
pub mod webhook;

pub use gateway::Gateway;
