//! Mastodon's donation campaign (`DONATION_CAMPAIGNS_URL`), as Mastodon 4.6
//! fetches it (mastodon/mastodon PR #37880):
//! `GET <url>?platform=web&seed=<0..99>&locale=<lang>&environment=<env>`.
//! Every locale and message variant is rendered with the snapshot; a request
//! only picks one. Amounts are integers in minor units; `monthly` is always
//! present (Mastodon's iOS app requires it).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::PublicData;
use crate::{
    config::{CampaignMessage, MastodonCampaign},
    domain::{
        public::{campaign_id, hundredths},
        tier::Interval,
    },
};

/// The rendered campaign: per locale, its variants in configured order.
#[derive(Debug, Clone, Default)]
pub struct Campaign {
    pub default_locale: String,
    pub by_locale: BTreeMap<String, Vec<Value>>,
}

impl Campaign {
    /// None when no campaign is configured (the endpoint answers 204).
    pub fn build(data: &PublicData, cfg: &MastodonCampaign) -> Option<Campaign> {
        if cfg.campaign_id.trim().is_empty() || cfg.messages.is_empty() {
            return None;
        }
        let currency = data.currency.code();
        let exponent = data.currency.exponent();
        let monthly = if cfg.monthly.is_empty() {
            let from_tiers: Vec<i64> = data
                .patron_tiers()
                .filter(|t| t.interval == Interval::Month)
                .map(|t| t.amount_minor)
                .collect();
            if from_tiers.is_empty() {
                vec![300, 500, 1000]
            } else {
                from_tiers
            }
        } else {
            cfg.monthly.clone()
        };
        // Every frequency is always sent: Mastodon's web form reads the keys
        // of each (`Object.keys(amounts.one_time)`) and throws on a missing one.
        let amounts = json!({
            "one_time": { currency: mastodon_amounts(&cfg.one_time, exponent) },
            "monthly": { currency: mastodon_amounts(&monthly, exponent) },
            "yearly": { currency: mastodon_amounts(&cfg.yearly, exponent) },
        });
        let donation_url = data.support_url();
        let mut by_locale: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for m in &cfg.messages {
            let locale = normalise_locale(&m.locale);
            let variants = by_locale.entry(locale.clone()).or_default();
            // Each variant's id covers what it shows and nothing else: editing
            // one language's text leaves every other banner's dismissal be.
            let content = serde_json::to_string(&(&locale, m, &amounts, &donation_url, currency))
                .unwrap_or_default();
            let id = campaign_id(cfg.campaign_id.trim(), &locale, variants.len(), &content);
            variants.push(payload(&id, &locale, m, currency, &donation_url, &amounts));
        }
        Some(Campaign {
            default_locale: normalise_locale(&cfg.default_locale),
            by_locale,
        })
    }

    /// The locale to answer `requested` with ("pt-BR" falls back to "pt"),
    /// else the default locale, else the first configured; and how many
    /// variants it has.
    pub fn resolve(&self, requested: Option<&str>) -> Option<(&str, usize)> {
        let wanted = requested.map(normalise_locale);
        let language = wanted
            .as_deref()
            .map(|l| l.split('-').next().unwrap_or(l).to_owned());
        [wanted, language, Some(self.default_locale.clone())]
            .into_iter()
            .flatten()
            .find_map(|l| self.by_locale.get_key_value(&l))
            .or_else(|| self.by_locale.iter().next())
            .map(|(k, v)| (k.as_str(), v.len()))
    }
}

/// Configured suggestions (minor units) as Mastodon reads them: hundredths
/// of the main unit, positive, without the duplicates rounding can make.
fn mastodon_amounts(minor: &[i64], exponent: u32) -> Vec<i64> {
    let mut out: Vec<i64> = Vec::with_capacity(minor.len());
    for h in minor.iter().filter_map(|&m| hundredths(m, exponent)) {
        if h > 0 && !out.contains(&h) {
            out.push(h);
        }
    }
    out
}

fn payload(
    id: &str,
    locale: &str,
    m: &CampaignMessage,
    currency: &str,
    donation_url: &str,
    amounts: &Value,
) -> Value {
    json!({
        "id": id,
        "locale": locale,
        "banner_message": m.banner_message,
        "banner_button_text": m.banner_button_text,
        "donation_message": m.donation_message,
        "donation_button_text": m.donation_button_text,
        "donation_success_post": m.donation_success_post,
        "default_currency": currency,
        "donation_url": donation_url,
        "amounts": amounts,
    })
}

/// "EN_us" → "en-US"; only letters, digits and dashes are kept.
pub fn normalise_locale(raw: &str) -> String {
    let cleaned: String = raw
        .trim()
        .chars()
        .map(|c| if c == '_' { '-' } else { c })
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(35)
        .collect();
    let mut parts = cleaned.split('-');
    let mut out = parts.next().unwrap_or("").to_ascii_lowercase();
    for p in parts {
        out.push('-');
        if p.len() == 2 {
            out.push_str(&p.to_ascii_uppercase());
        } else {
            out.push_str(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locales_are_normalised() {
        assert_eq!(normalise_locale("EN_us"), "en-US");
        assert_eq!(normalise_locale(" de "), "de");
        assert_eq!(normalise_locale("<x>"), "x");
    }
}
