//! The HTTP API, end to end: the real application on loopback, on SQLite
//! and on PostgreSQL.

mod cdp;
mod fake_stripe;
mod helpers;

mod analytics;
mod auth;
mod browser;
mod cli;
mod console;
mod console_flows;
mod contributions;
mod costs;
mod directory;
mod edges;
mod errors;
mod fediverse_links;
mod formats;
mod funding;
mod imports;
mod lifecycle;
mod mastodon;
mod measures;
mod openapi;
mod ops;
mod outbound_webhooks;
mod overview;
mod payments;
mod public_pages;
mod reports;
mod scaleout;
mod second_factor;
mod sponsor_applications;
mod storage;
mod supporters;
mod tasks;
mod tie_out;
mod tiers;
mod transparency;
