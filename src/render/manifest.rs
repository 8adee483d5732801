//! `/funding.json`: the FLOSS/fund manifest, schema v1.1.0
//! (https://fundingjson.org). Plans come from the active tiers, one channel
//! is the support page (card payments through Stripe), and the history is
//! the books per calendar year. Amounts are numbers in the currency's main
//! unit (see `domain::public::major_units`); `amount: 0` means any amount.

use serde_json::{Value, json};

use super::{PublicData, slug};
use crate::{config::PagesSettings, domain::public::major_units, domain::tier::Interval};

pub const SCHEMA: &str = "https://fundingjson.org/schema/v1.1.0/funding.schema.json";
pub const VERSION: &str = "v1.1.0";

pub fn funding_json(data: &PublicData, pages: &PagesSettings, fallback_email: &str) -> Value {
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
    let email = if pages.entity_email.trim().is_empty() {
        fallback_email
    } else {
        pages.entity_email.trim()
    };
    let description = if data.description.trim().is_empty() {
        format!("{}: a community server funded by its members.", data.name)
    } else {
        data.description.clone()
    };
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
    let mut plans: Vec<Value> = data
        .tiers
        .iter()
        .map(|t| {
            json!({
                "guid": format!("tier-{}", t.id),
                "status": "active",
                "name": t.name,
                "description": if t.description.is_empty() { format!("{} tier", t.name) } else { t.description.clone() },
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
    let history: Vec<Value> = data
        .funding
        .history
        .iter()
        .map(|y| {
            json!({
                "year": y.year,
                "income": major_units(y.income, exp),
                "expenses": major_units(y.expenses, exp),
                "taxes": 0,
                "currency": currency,
                "description": "Contributions less refunds; expenses are payment fees.",
            })
        })
        .collect();
    json!({
        "$schema": SCHEMA,
        "version": VERSION,
        "entity": {
            "type": pages.entity_type,
            "role": pages.entity_role,
            "name": data.name,
            "email": email,
            "description": description,
            "webpageUrl": webpage_url,
        },
        "projects": [{
            "guid": guid,
            "name": data.name,
            "description": description,
            "webpageUrl": { "url": webpage },
            "repositoryUrl": repository,
            "licenses": pages.licenses,
            "tags": pages.tags.iter().map(|t| slug(t)).filter(|t| !t.is_empty()).collect::<Vec<_>>(),
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
