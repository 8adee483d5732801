//! What patronage keeps about Stripe: prices per tier, customers, checkout
//! sessions, raw webhook events, and the payments behind ledger entries.
//! Every function that books money is idempotent: the ledger's unique
//! `(source, external_ref)` makes a repeat a no-op, even under concurrency.

mod catalogue;
mod checkout;
mod customers;
mod events;
mod magic_links;
mod payments;
mod subscriptions;

pub use catalogue::*;
pub use checkout::*;
pub use customers::*;
pub use events::*;
pub use magic_links::*;
pub use payments::*;
pub use subscriptions::*;

/// What every part of this module uses.
mod prelude {
    pub(super) use chrono::{DateTime, NaiveDate, Utc};
    pub(super) use serde_json::json;

    pub(super) use crate::store::{Db, Tx, audit::Actor, ledger::NewEntry, now};
    pub(super) use crate::tx_run;
    pub(super) use crate::{
        db_run,
        domain::{
            ledger::EntryKind,
            money::Currency,
            pledge::{PledgeStatus, Source},
            tier::Interval,
        },
        error::{Error, Result},
    };
}
