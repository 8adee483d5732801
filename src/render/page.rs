//! HTML from `templates/`: the support page, the progress embed, and small
//! message pages. Templates are built into the binary and auto-escaped.

use std::sync::OnceLock;

use minijinja::{
    AutoEscape, Environment, context,
    value::{Serde, Value},
};
use serde::Serialize;

use super::{PublicData, thousands};
use crate::{
    domain::{money::Money, public::Frequency, tier::Interval},
    error::FieldError,
};

/// What a link to the support page asked for (Mastodon's `donation_url`
/// parameters, already parsed): an amount in minor units of the campaign
/// currency and a frequency to pre-select, and on-origin URLs to return to
/// after checkout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefill {
    pub amount_minor: Option<i64>,
    pub frequency: Option<Frequency>,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
}

/// An environment that escapes what reaches HTML: templates named `.html`
/// or `.svg` are auto-escaped, with the five characters that matter in
/// text and quoted attributes (minijinja's default also escapes "/", which
/// makes every URL unreadable in the source).
pub(crate) fn html_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_formatter(|out, state, value| {
        if matches!(state.auto_escape(), AutoEscape::Html)
            && !value.is_safe()
            && let Some(text) = value.as_str()
        {
            return out
                .write_str(&super::xml_escape(text))
                .map_err(|_| minijinja::Error::from(minijinja::ErrorKind::WriteFailure));
        }
        minijinja::escape_formatter(out, state, value)
    });
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") || name.ends_with(".svg") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env
}

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = html_environment();
        for (name, source) in [
            (
                "pages/base.html",
                include_str!("../../templates/pages/base.html"),
            ),
            (
                "pages/support.html",
                include_str!("../../templates/pages/support.html"),
            ),
            (
                "pages/message.html",
                include_str!("../../templates/pages/message.html"),
            ),
            (
                "pages/logo_upload.html",
                include_str!("../../templates/pages/logo_upload.html"),
            ),
            (
                "pages/manage.html",
                include_str!("../../templates/pages/manage.html"),
            ),
            (
                "pages/fediverse.html",
                include_str!("../../templates/pages/fediverse.html"),
            ),
            (
                "pages/transparency.html",
                include_str!("../../templates/pages/transparency.html"),
            ),
            (
                "embed/progress.html",
                include_str!("../../templates/embed/progress.html"),
            ),
        ] {
            env.add_template(name, source).expect("template parses");
        }
        env
    })
}

/// A public page from `templates/pages`, auto-escaped.
pub(crate) fn render_template(name: &str, ctx: Value) -> String {
    render(name, ctx)
}

fn render(name: &str, ctx: Value) -> String {
    env()
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, template = name, "template failed");
            String::from("<!doctype html><title>Error</title><p>This page could not be shown.</p>")
        })
}

#[derive(Serialize)]
struct TierView {
    id: i64,
    name: String,
    description: String,
    price: String,
    interval: &'static str,
    yearly: bool,
    pwyw_min: Option<String>,
    sold_out: bool,
    /// Pre-selected from the link the visitor came by.
    chosen: bool,
    /// The pay-what-you-want amount to prefill, as typed ("12.50").
    amount: Option<String>,
}

#[derive(Serialize)]
struct SponsorView {
    name: String,
    url: String,
    logo: Option<String>,
    dark_logo: Option<String>,
    alt: String,
    width: u32,
    height: u32,
}

#[derive(Serialize)]
struct GroupView {
    tier_name: String,
    size: usize,
    sponsors: Vec<SponsorView>,
}

fn interval_word(i: Interval) -> &'static str {
    match i {
        Interval::Month => "month",
        Interval::Year => "year",
    }
}

/// The patron tier that matches a wanted amount and interval: the tier at
/// exactly that price, else the first pay-what-you-want tier whose minimum
/// the amount reaches (its amount is then prefilled).
fn chosen_tier(data: &PublicData, prefill: &Prefill) -> Option<(i64, Option<i64>)> {
    let interval = match prefill.frequency? {
        Frequency::Monthly => Interval::Month,
        Frequency::Yearly => Interval::Year,
        Frequency::OneTime => return None,
    };
    let amount = prefill.amount_minor?;
    let tiers = || data.patron_tiers().filter(|t| t.interval == interval);
    tiers()
        .find(|t| t.pwyw_min_minor.is_none() && t.amount_minor == amount)
        .map(|t| (t.id, None))
        .or_else(|| {
            tiers()
                .find(|t| t.pwyw_min_minor.is_some_and(|min| min <= amount))
                .map(|t| (t.id, Some(amount)))
        })
}

/// `sold_out(tier_id)` tells whether a sponsor tier's slots are all taken;
/// `prefill` what the visitor's link asked for.
pub fn support_page(
    data: &PublicData,
    payments: bool,
    sold_out: impl Fn(i64) -> bool,
    prefill: &Prefill,
) -> String {
    let chosen = chosen_tier(data, prefill);
    let typed = |minor: i64| Money::new(minor, data.currency).decimal();
    let gift_amount = match prefill.frequency {
        Some(Frequency::OneTime) => prefill.amount_minor.map(typed),
        _ => None,
    };
    let gift_chosen = prefill.frequency == Some(Frequency::OneTime);
    let tier_view = |t: &crate::store::tiers::TierRow| TierView {
        id: t.id,
        name: t.name.clone(),
        description: t.description.clone(),
        price: match t.pwyw_min_minor {
            Some(min) => format!("From {} a {}", data.money(min), interval_word(t.interval)),
            None => format!(
                "{} a {}",
                data.money(t.amount_minor),
                interval_word(t.interval)
            ),
        },
        interval: interval_word(t.interval),
        yearly: t.interval == Interval::Year,
        pwyw_min: t.pwyw_min_minor.map(|m| data.money(m)),
        sold_out: sold_out(t.id),
        chosen: chosen.is_some_and(|(id, _)| id == t.id),
        amount: chosen
            .filter(|(id, _)| *id == t.id)
            .and_then(|(_, amount)| amount)
            .map(typed),
    };
    let groups: Vec<GroupView> = data
        .sponsor_groups
        .iter()
        .map(|g| GroupView {
            tier_name: g.tier_name.clone(),
            size: g.size_rank.min(2),
            sponsors: g
                .sponsors
                .iter()
                .map(|s| SponsorView {
                    name: s.name.clone(),
                    url: s.url.clone(),
                    logo: s.light.as_ref().map(|l| l.path()),
                    dark_logo: s.dark.as_ref().map(|l| l.path()),
                    alt: s
                        .light
                        .as_ref()
                        .map_or_else(|| s.name.clone(), |l| l.alt.clone()),
                    width: s.light.as_ref().map_or(0, |l| l.width),
                    height: s.light.as_ref().map_or(0, |l| l.height),
                })
                .collect(),
        })
        .collect();
    let unnamed = (data.funding.patrons_count - data.patron_names.len() as i64).max(0);
    let sponsors_count = data.funding.sponsors_count;
    let instance_host = url::Url::parse(&data.instance_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    render(
        "pages/support.html",
        context! {
            name => &data.name,
            description => &data.description,
            headline => data.headline(),
            goal_line => data.goal_line(),
            bar_percent => data.bar_percent(),
            sponsors_count => sponsors_count,
            sponsors_line => format!("Plus {} {} (below).", thousands(sponsors_count), if sponsors_count == 1 { "company sponsor" } else { "company sponsors" }),
            currency => data.currency.code(),
            patron_tiers => Value::from(Serde(data.patron_tiers().map(tier_view).collect::<Vec<_>>())),
            sponsor_tiers => Value::from(Serde(data.sponsor_tiers().map(tier_view).collect::<Vec<_>>())),
            payments => payments,
            sponsor_groups => Value::from(Serde(&groups)),
            rel => data.sponsor_rel,
            patron_names => Value::from(Serde(&data.patron_names)),
            unnamed => unnamed,
            site_url => &data.site_url,
            support_url => data.support_url(),
            rel_me => &data.rel_me,
            instance_url => &data.instance_url,
            instance_host => instance_host,
            updated => data.funding.updated_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            gift_chosen => gift_chosen,
            gift_amount => gift_amount,
            success_url => &prefill.success_url,
            cancel_url => &prefill.cancel_url,
        },
    )
}

/// Colours for the embed; both pass WCAG AA for their text.
#[derive(Serialize, Clone, Copy)]
pub struct Theme {
    pub bg: &'static str,
    pub fg: &'static str,
    pub muted: &'static str,
    pub accent: &'static str,
    pub track: &'static str,
}

pub const LIGHT: Theme = Theme {
    bg: "#ffffff",
    fg: "#1f2328",
    muted: "#4b4b5c",
    accent: "#563acc",
    track: "#d9d9e8",
};

pub const DARK: Theme = Theme {
    bg: "#191b22",
    fg: "#ececf3",
    muted: "#b4b4c6",
    accent: "#a3a4ff",
    track: "#3a3c4c",
};

pub fn embed(data: &PublicData, theme: Theme) -> String {
    embed_with(data, theme, data.goal_line(), data.bar_percent())
}

/// The embed's "costs covered" variant: the bar shows how much of the
/// monthly costs pledges cover.
pub fn embed_costs(data: &PublicData, theme: Theme) -> String {
    let line = data
        .costs_line()
        .or_else(|| Some("No costs recorded yet".to_owned()));
    embed_with(data, theme, line, data.costs_bar_percent())
}

fn embed_with(
    data: &PublicData,
    theme: Theme,
    goal_line: Option<String>,
    bar_percent: Option<i64>,
) -> String {
    render(
        "embed/progress.html",
        context! {
            name => &data.name,
            headline => data.headline(),
            goal_line => goal_line,
            bar_percent => bar_percent,
            support_url => data.support_url(),
            rel_me => &data.rel_me,
            theme => Value::from(Serde(theme)),
        },
    )
}

/// A short page: a title, a message, field errors, a way back.
pub fn message(title: &str, message: &str, errors: &[FieldError], back: &str) -> String {
    render(
        "pages/message.html",
        context! { name => title, title => title, message => message, errors => Value::from(Serde(errors)), back => back },
    )
}

/// The page a patron's management link opens: one button that spends the
/// link, so a mail scanner's GET leaves it usable. Without `link` (token,
/// expiry), the page says the link was used or has expired.
pub fn manage(campaign: &str, link: Option<(&str, &str)>) -> String {
    let (token, expires) = link.unzip();
    render(
        "pages/manage.html",
        context! { name => campaign, token => token, expires => expires },
    )
}

/// A patron's fediverse page: their linked account and the form to link
/// one (`proof` is the hidden field that says who they are), or a message.
pub fn fediverse<S: Serialize>(
    campaign: &str,
    title: &str,
    message: &str,
    errors: &[FieldError],
    view: &S,
) -> String {
    let view = Value::from(Serde(view));
    render(
        "pages/fediverse.html",
        context! {
            name => campaign, title => title, message => message,
            errors => Value::from(Serde(errors)), ..view
        },
    )
}

pub fn logo_upload(campaign: &str, sponsor: &str, token: &str, max_bytes: usize) -> String {
    render(
        "pages/logo_upload.html",
        context! {
            name => campaign, sponsor => sponsor, token => token, max_kb => max_bytes / 1024,
        },
    )
}
