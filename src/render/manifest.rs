//! `/funding.json`: the FLOSS/fund manifest, schema v1.1.0
//! (https://fundingjson.org). Plans come from the active tiers, one channel
//! is the support page (card payments through Stripe), and the history is
//! the books per calendar year. Amounts are numbers in the currency's main
//! unit (see `domain::public::major_units`); `amount: 0` means any amount.
//!
//! The FLOSS/fund directory validates manifests with floss-fund/go-funding-json
//! (v0.6.0); every field here stays within its rules: at most 10 plans, plan
//! names of 3 to 250 bytes, descriptions of 5 to 2000 bytes (plans: up to
//! 500), ids of lower-case letters, digits and single dashes, 1 to 10 tags,
//! 1 to 5 licenses, amounts from 0 to 10^9, years 1970 to 2075, a valid
//! email. `tests/api/formats.rs` checks the output against those rules.

use serde_json::{Value, json};

use super::{PublicData, slug};
use crate::{config::PagesSettings, domain::public::major_units, domain::tier::Interval};

pub const SCHEMA: &str = "https://fundingjson.org/schema/v1.1.0.json";
pub const VERSION: &str = "v1.1.0";

/// The directory's limits (go-funding-json v0.6.0).
const MAX_PLANS: usize = 10;
const MAX_AMOUNT: i64 = 1_000_000_000;
const MAX_HISTORY: usize = 50;

/// `text` cut to at most `max` bytes at a character boundary, with "…" when
/// cut; padded with `pad` when shorter than `min` bytes.
fn fit(text: &str, min: usize, max: usize, pad: &str) -> String {
    let text = text.trim();
    let mut out = if text.len() < min {
        format!("{text}{pad}").trim().to_owned()
    } else {
        text.to_owned()
    };
    if out.len() > max {
        let mut end = max - '…'.len_utf8();
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push('…');
    }
    out
}

/// The published contact: `pages.entity_email`, or nothing (`config check`
/// says so). A no-reply sender address is no way to reach anyone.
pub fn contact_email(pages: &PagesSettings) -> Option<&str> {
    Some(pages.entity_email.trim()).filter(|e| !e.is_empty())
}

pub fn funding_json(data: &PublicData, pages: &PagesSettings) -> Value {
    let exp = data.currency.exponent();
    let currency = data.currency.code();
    let webpage = if data.instance_url.is_empty() {
        data.site_url.clone()
    } else {
        data.instance_url.clone()
    };
    let mut webpage_url = json!({ "url": webpage });
    // Served from another host than the entity's page: the entity's domain
    // must confirm it at /.well-known/funding-manifest-urls.
    if host(&webpage) != host(&data.site_url) {
        webpage_url["wellKnown"] = json!(format!(
            "{}/.well-known/funding-manifest-urls",
            webpage.trim_end_matches('/')
        ));
    }
    let fallback_description = format!("{}: a community server funded by its members.", data.name);
    let description = if data.description.trim().len() < 5 {
        fit(&fallback_description, 5, 2000, "")
    } else {
        fit(&data.description, 5, 2000, "")
    };
    let name = fit(&data.name, 2, 250, " community");
    let repository = if pages.repository_url.trim().is_empty() {
        webpage_url.clone()
    } else {
        json!({ "url": pages.repository_url.trim() })
    };
    let mut guid = slug(&data.name);
    if guid.len() < 3 {
        guid = format!("project-{guid}").trim_end_matches('-').to_owned();
    }
    guid.truncate(32);
    let guid = guid.trim_end_matches('-').to_owned();
    let channel = "patronage-stripe";
    // Ten plans at most: the tiers in display order, then the one-time gift.
    let mut plans: Vec<Value> = data
        .tiers
        .iter()
        .filter(|t| t.amount_minor <= MAX_AMOUNT.saturating_mul(10i64.pow(exp)))
        .take(MAX_PLANS - 1)
        .map(|t| {
            json!({
                "guid": format!("tier-{}", t.id),
                "status": "active",
                "name": fit(&t.name, 3, 250, " tier"),
                "description": if t.description.trim().is_empty() { fit(&format!("{} tier", t.name), 0, 500, "") } else { fit(&t.description, 0, 500, "") },
                "amount": major_units(t.amount_minor, exp),
                "currency": currency,
                "frequency": match t.interval { Interval::Month => "monthly", Interval::Year => "yearly" },
                "channels": [channel],
            })
        })
        .collect();
    plans.push(json!({
        "guid": "one-time-gift",
        "status": "active",
        "name": "One-time gift",
        "description": "A single contribution of any amount.",
        "amount": 0,
        "currency": currency,
        "frequency": "one-time",
        "channels": [channel],
    }));
    // The latest 50 years the directory accepts; a year whose refunds
    // exceeded its income shows 0, as income may not be negative.
    let years: Vec<_> = data
        .funding
        .history
        .iter()
        .filter(|y| (1970..=2075).contains(&y.year))
        .collect();
    let history: Vec<Value> = years[years.len().saturating_sub(MAX_HISTORY)..]
        .iter()
        .map(|y| {
            let cap = MAX_AMOUNT.saturating_mul(10i64.pow(exp));
            json!({
                "year": y.year,
                "income": major_units(y.income.clamp(0, cap), exp),
                "expenses": major_units(y.expenses.clamp(0, cap), exp),
                "taxes": 0,
                "currency": currency,
                "description": "Contributions less refunds; expenses are payment fees and the costs in our books.",
            })
        })
        .collect();
    let mut tags: Vec<String> = pages
        .tags
        .iter()
        .map(|t| slug(t))
        .filter(|t| (2..=32).contains(&t.len()))
        .take(10)
        .collect();
    if tags.is_empty() {
        tags.push("community".into());
    }
    let mut licenses: Vec<&str> = pages
        .licenses
        .iter()
        .map(|l| l.trim())
        .filter(|l| (2..=64).contains(&l.len()))
        .take(5)
        .collect();
    if licenses.is_empty() {
        // What a Mastodon server runs.
        licenses.push("spdx:AGPL-3.0");
    }
    let mut entity = json!({
        "type": pages.entity_type,
        "role": pages.entity_role,
        "name": name,
        "description": description,
        "webpageUrl": webpage_url,
    });
    if let Some(email) = contact_email(pages) {
        entity["email"] = json!(email);
    }
    json!({
        "$schema": SCHEMA,
        "version": VERSION,
        "entity": entity,
        "projects": [{
            "guid": guid,
            "name": name,
            "description": description,
            "webpageUrl": { "url": webpage },
            "repositoryUrl": repository,
            "licenses": licenses,
            "tags": tags,
        }],
        "funding": {
            "channels": [{
                "guid": channel,
                "type": "payment-provider",
                "address": data.support_url(),
                "description": "Card payments (Stripe) on our support page.",
            }],
            "plans": plans,
            "history": history,
        }
    })
}

fn host(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
}
