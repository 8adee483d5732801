//! Use cases. Each function is one thing a person or a worker does: it owns
//! its transaction, the store calls, the rules, the messages and tasks it
//! queues, and the effects after commit (public refresh, waking workers).
//! HTTP handlers, jobs and webhooks call these; none of them orchestrates.

pub mod admins;
pub mod analytics;
pub mod campaign;
pub mod costs;
pub mod fediverse;
pub mod imports;
pub mod instance;
pub mod ledger;
pub mod milestones;
pub mod operations;
pub mod payments;
pub mod pledges;
pub mod posts;
pub mod sponsors;
pub mod supporters;
pub mod tiers;
pub mod transparency;
pub mod webhooks;
