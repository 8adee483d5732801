//! patronage: a self-hostable crowdfunding and sponsorship backend.
//!
//! - `domain`: rules without I/O (money, tiers, supporters, pledges, ledger)
//! - `store`: all SQL, for SQLite and PostgreSQL
//! - `http`: routes and handlers (`public`, `admin`, `ops`)
//! - `auth`: passwords, tokens, login limits
//! - `snapshot`: the pre-rendered public views
//! - `heavy`: bounded pools for CPU- and memory-heavy work
//! - `reports`: monthly reports and their CSV
//! - `app`: building and running the service; `config`: settings

pub mod app;
pub mod auth;
pub mod background;
pub mod config;
pub mod context;
pub mod domain;
pub mod error;
pub mod fediverse;
pub mod heavy;
pub mod http;
pub mod jobs;
pub mod links;
pub mod mail;
pub mod payments;
pub mod queue;
pub mod render;
pub mod reports;
pub mod seed;
pub mod service;
pub mod snapshot;
pub mod store;
pub mod telemetry;
