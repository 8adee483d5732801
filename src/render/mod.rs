//! The public views, rendered from one consistent read of the data: the
//! support page and the progress embed (HTML, from `templates/`), badges and
//! the sponsor wall (SVG), the link-preview card and walls as PNG,
//! funding.json and Mastodon's donation campaign (JSON).
//!
//! Everything here is pure: `PublicData` in, bytes out. The snapshot
//! (`crate::snapshot`) calls it when data changes, never per request, except
//! for sponsor walls with unusual parameters, which are rendered from the
//! snapshot's data and cached there.
//!
//! Escaping: HTML and SVG templates are auto-escaped by minijinja; SVG built
//! in Rust goes through [`xml_escape`]; JSON through serde. Sponsor links were
//! validated as http(s) URLs when stored, and logos are our own re-encoded
//! PNGs, inlined as `data:image/png` URIs.

pub mod campaign;
pub mod chart;
pub mod console;
pub mod manifest;
pub mod page;
pub mod png;
pub mod svg;
pub mod transparency;

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;

use crate::{
    config::Settings,
    domain::{
        funding::Funding,
        money::{Currency, Money},
        pledge::monthly_equivalent,
        tier::{Interval, TierKind},
    },
    store::tiers::TierRow,
};

/// Everything the public views show, read once per snapshot.
#[derive(Debug, Clone)]
pub struct PublicData {
    pub name: String,
    pub description: String,
    pub currency: Currency,
    /// Where patronage's pages are reached, without a trailing slash.
    pub site_url: String,
    pub instance_url: String,
    pub rel_me: String,
    /// Totals with the privacy threshold applied.
    pub funding: Funding,
    /// Active tiers, in display order.
    pub tiers: Vec<TierRow>,
    /// Public sponsors grouped by tier, the highest tier first.
    pub sponsor_groups: Vec<SponsorGroup>,
    /// Patrons who chose to be named (with their fediverse account when
    /// they also chose to show it).
    pub patron_names: Vec<crate::store::fediverse::PublicPatron>,
    /// The `rel` of every sponsor link.
    pub sponsor_rel: &'static str,
    /// What running the instance costs and how much of it pledges cover;
    /// None until costs are recorded.
    pub costs: Option<crate::domain::transparency::CostsCovered>,
}

#[derive(Debug, Clone)]
pub struct SponsorGroup {
    pub tier_id: i64,
    pub tier_name: String,
    /// Lower-case letters, digits and dashes, for `?tier=`.
    pub tier_slug: String,
    /// 0 for the highest tier; higher tiers are drawn larger.
    pub size_rank: usize,
    pub sponsors: Vec<WallSponsor>,
}

#[derive(Debug, Clone)]
pub struct WallSponsor {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub light: Option<LogoImage>,
    pub dark: Option<LogoImage>,
}

#[derive(Debug, Clone)]
pub struct LogoImage {
    pub sha256: String,
    pub width: u32,
    pub height: u32,
    pub alt: String,
    pub png: Bytes,
    /// `data:image/png;base64,…`, computed once.
    pub data_uri: Arc<str>,
}

impl LogoImage {
    pub fn new(sha256: String, width: u32, height: u32, alt: String, png: Vec<u8>) -> Self {
        let data_uri = format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&png)
        );
        LogoImage {
            sha256,
            width,
            height,
            alt,
            png: Bytes::from(png),
            data_uri: data_uri.into(),
        }
    }

    /// The public path of the logo; its content hash makes it cacheable forever.
    pub fn path(&self) -> String {
        format!("/logos/{}.png", &self.sha256)
    }
}

/// `rel` for paid links: always `sponsored noopener`, plus `nofollow` if
/// configured.
pub fn sponsor_rel(nofollow: bool) -> &'static str {
    if nofollow {
        "sponsored noopener nofollow"
    } else {
        "sponsored noopener"
    }
}

/// Orders sponsor tiers by what they pay a month, highest first.
pub fn tier_weight(amount_minor: i64, interval: Interval) -> i64 {
    monthly_equivalent(amount_minor, interval)
}

/// Lower-case ASCII letters and digits, other runs become one dash.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

/// Escapes text for XML content and attribute values.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            '\u{FFFE}' | '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// 3091 → "3,091".
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 { format!("-{out}") } else { out }
}

impl PublicData {
    /// "3,091 patrons contribute €15,610 a month" — without the amount while
    /// the privacy threshold hides totals.
    pub fn headline(&self) -> String {
        let n = self.funding.patrons_count;
        let who = if n == 1 { "patron" } else { "patrons" };
        let verb = if n == 1 { "contributes" } else { "contribute" };
        match &self.funding.monthly_recurring {
            Some(m) => format!("{} {who} {verb} {} a month", thousands(n), m.display),
            None => format!("{} {who} {verb} every month", thousands(n)),
        }
    }

    /// "52% of the €3,000 monthly goal", or None without a goal.
    pub fn goal_line(&self) -> Option<String> {
        let goal = self.funding.goal.as_ref()?;
        Some(match &self.funding.progress {
            Some(p) => format!("{}% of the {} monthly goal", p.percent, goal.display),
            None => format!("Monthly goal: {}", goal.display),
        })
    }

    /// Progress for bars, 0 to 100.
    pub fn bar_percent(&self) -> Option<i64> {
        self.funding
            .progress
            .as_ref()
            .map(|p| p.percent.clamp(0, 100))
    }

    /// "Pledges cover 48% of our €61.66 monthly costs", or None without
    /// costs.
    pub fn costs_line(&self) -> Option<String> {
        let c = self.costs.as_ref()?;
        Some(match &c.coverage {
            Some(p) => format!(
                "Pledges cover {}% of our {} monthly costs",
                p.percent, c.monthly_costs.display
            ),
            None => format!("Our monthly costs: {}", c.monthly_costs.display),
        })
    }

    /// Costs covered for bars, 0 to 100.
    pub fn costs_bar_percent(&self) -> Option<i64> {
        self.costs
            .as_ref()?
            .coverage
            .as_ref()
            .map(|p| p.percent.clamp(0, 100))
    }

    pub fn money(&self, minor: i64) -> String {
        Money::new(minor, self.currency).display()
    }

    pub fn patron_tiers(&self) -> impl Iterator<Item = &TierRow> {
        self.tiers.iter().filter(|t| t.kind == TierKind::Patron)
    }

    pub fn sponsor_tiers(&self) -> impl Iterator<Item = &TierRow> {
        self.tiers.iter().filter(|t| t.kind == TierKind::Sponsor)
    }

    pub fn support_url(&self) -> String {
        format!("{}/support", self.site_url)
    }
}

/// The site URL in force: `pages.site_url`, else the campaign's
/// `public_base_url`, else the listening address.
pub fn site_url(settings: &Settings, campaign_base: Option<&str>) -> String {
    let configured = settings.pages.site_url.trim();
    let url = if !configured.is_empty() {
        configured.to_owned()
    } else if let Some(base) = campaign_base.filter(|b| !b.is_empty()) {
        base.to_owned()
    } else {
        format!("http://{}", settings.server.bind)
    };
    url.trim_end_matches('/').to_owned()
}

/// The embed's Content-Security-Policy: nothing loads or runs but its own
/// styles and images, and only `pages.frame_ancestors` (else the instance's
/// origin, else nobody) may frame it. Anything that is not a plain http(s)
/// origin is left out, so a setting can never add another directive.
pub fn embed_csp(pages: &crate::config::PagesSettings) -> String {
    let configured: Vec<&str> = if pages.frame_ancestors.is_empty() {
        vec![pages.instance_url.as_str()]
    } else {
        pages.frame_ancestors.iter().map(String::as_str).collect()
    };
    let origins: Vec<String> = configured
        .into_iter()
        .filter_map(|o| {
            let o = o.trim();
            if o == "'self'" {
                return Some(o.to_owned());
            }
            let url = url::Url::parse(o).ok()?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return None;
            }
            Some(url.origin().ascii_serialization())
        })
        .collect();
    let ancestors = if origins.is_empty() {
        "'none'".to_owned()
    } else {
        origins.join(" ")
    };
    format!(
        "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; form-action 'none'; base-uri 'none'; frame-ancestors {ancestors}"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn frame_ancestors_take_only_origins() {
        let mut pages = crate::config::Settings::defaults().pages;
        assert!(super::embed_csp(&pages).ends_with("frame-ancestors 'none'"));
        pages.instance_url = "https://example.social/about".into();
        assert!(super::embed_csp(&pages).ends_with("frame-ancestors https://example.social"));
        pages.frame_ancestors = vec![
            "https://a.example:8443/x".into(),
            "https://b.example; script-src *".into(),
            "javascript:alert(1)".into(),
            "'self'".into(),
        ];
        assert!(
            super::embed_csp(&pages).ends_with("frame-ancestors https://a.example:8443 'self'"),
            "{}",
            super::embed_csp(&pages)
        );
    }

    use super::*;

    #[test]
    fn xml_escape_covers_markup_and_quotes() {
        assert_eq!(
            xml_escape(r#"<a href="x" onclick='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(xml_escape("a\u{1}b"), "ab");
    }

    #[test]
    fn slugs_and_thousands() {
        assert_eq!(slug("  Gold Sponsors!! 2026 "), "gold-sponsors-2026");
        assert_eq!(thousands(3091), "3,091");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(12), "12");
    }
}
