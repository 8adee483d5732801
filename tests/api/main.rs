//! The HTTP API, end to end: the real application on loopback, on SQLite
//! and on PostgreSQL.

mod helpers;

mod auth;
mod cli;
mod contributions;
mod errors;
mod funding;
mod ops;
mod reports;
mod storage;
mod supporters;
mod tiers;
