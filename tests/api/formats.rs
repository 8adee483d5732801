//! The public formats as their consumers read them, and the privacy rule
//! across every public view: funding.json as the FLOSS/fund directory
//! validates it, Mastodon's donation campaign as its web form and apps read
//! it, the support page as Mastodon's apps open it.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};

// ---- Privacy: one rule for every public view ----

/// Every public view, by path; PNGs are compared as bytes, the rest read as
/// text.
const EVERY_PUBLIC_VIEW: [&str; 22] = [
    "/api/v1/funding",
    "/api/v1/tiers",
    "/api/v1/sponsors",
    "/support",
    "/embed/progress",
    "/embed/progress?theme=dark",
    "/badge/patrons.svg",
    "/badge/patrons.json",
    "/badge/monthly.svg",
    "/badge/monthly.json",
    "/badge/goal.svg",
    "/badge/goal.json",
    "/sponsors.svg",
    "/sponsors.svg?avatarHeight=40&width=600",
    "/funding.json",
    "/mastodon/campaign?platform=web&seed=0&locale=en&environment=production",
    "/mastodon/campaign?platform=web&seed=1&locale=en&environment=production",
    "/mastodon/campaign?platform=android&seed=3&locale=de&environment=production",
    "/support?amount=1500&currency=EUR&frequency=one_time",
    "/support?amount=300&currency=EUR&frequency=monthly",
    "/support/card.png",
    "/sponsors.svg?format=png",
];

/// The numbers of a body as a reader sees them: runs of digits with the
/// separators an amount or a date uses inside it ("1,000.50", "2026-11-20",
/// "09:20"), cut at anything else ("€50" gives "50", `"income":70,` gives
/// "70"); runs that touch letters (hashes, ids, colours, timestamps) are
/// not amounts.
fn numeric_tokens(body: &str) -> Vec<&str> {
    body.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | ',' | ':' | '-')))
        .map(|t| t.trim_matches(|c: char| matches!(c, '.' | ',' | ':' | '-')))
        .filter(|t| {
            t.chars().any(|c| c.is_ascii_digit()) && !t.chars().any(|c| c.is_ascii_alphabetic())
        })
        .collect()
}

/// What a reader of an HTML or SVG body sees: its text, and the attributes
/// that are shown or read out (labels, titles, meta content, alt text, form
/// values); markup (sizes, coordinates, namespaces) is left out. JSON is
/// read whole.
fn visible_text(body: &str) -> String {
    if !body.trim_start().starts_with('<') {
        return body.to_owned();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        out.push(' ');
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let tag = &rest[open..open + close];
        for attr in ["aria-label", "title", "content", "alt", "value", "placeholder"] {
            let needle = format!(" {attr}=\"");
            if let Some(at) = tag.find(&needle) {
                let value = &tag[at + needle.len()..];
                out.push_str(&value[..value.find('"').unwrap_or(value.len())]);
                out.push(' ');
            }
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

/// `amounts` in main units (50 for €50): the forms any view would print
/// them in (50, 50.00, 50,00, 5000 cents).
fn amount_forms(amounts: &[i64]) -> Vec<String> {
    amounts
        .iter()
        .flat_map(|a| {
            [
                a.to_string(),
                format!("{a}.00"),
                format!("{a},00"),
                format!("{a}.0"),
                (a * 100).to_string(),
            ]
        })
        .collect()
}

/// The bodies of every public view (PNGs as their bytes in hex, to compare).
async fn every_view(app: &TestApp) -> Vec<(&'static str, Vec<u8>)> {
    app.ctx.public.refresh().await.unwrap();
    let mut out = Vec::new();
    for path in EVERY_PUBLIC_VIEW {
        let res = app.get(path, None).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        out.push((path, res.bytes().await.unwrap().to_vec()));
    }
    out
}

/// No view shows any of `amounts` (main units) in any form, and every
/// image is the one drawn before anyone gave.
async fn assert_no_view_shows(app: &TestApp, amounts: &[i64], images: &[(&str, Vec<u8>)]) {
    let forms = amount_forms(amounts);
    for (path, bytes) in every_view(app).await {
        if path.contains("png") {
            let before = &images.iter().find(|(p, _)| *p == path).unwrap().1;
            assert!(
                &bytes == before,
                "{path} changed after a gift below the threshold"
            );
            continue;
        }
        let body = String::from_utf8(bytes).unwrap();
        for token in numeric_tokens(&visible_text(&body)) {
            assert!(
                !forms.iter().any(|f| f == token),
                "{path} shows {token:?}, one of {amounts:?}: {body}"
            );
        }
    }
}

fn privacy_settings(s: &mut patronage::config::Settings) {
    s.pages.privacy_threshold = 3;
    with_campaign(s);
    // Suggestions that are none of the amounts the test looks for.
    s.pages.mastodon.one_time = vec![1500];
    s.pages.mastodon.monthly = vec![300];
    s.pages.mastodon.yearly = vec![3000];
}

mod privacy_everywhere {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let app = TestApp::spawn_with(Backend::Sqlite, privacy_settings)
            .await
            .unwrap();
        no_public_view_shows_a_sum_of_fewer_than_the_threshold(app).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        match TestApp::spawn_with(Backend::Postgres, privacy_settings).await {
            Some(app) => no_public_view_shows_a_sum_of_fewer_than_the_threshold(app).await,
            None => eprintln!("skipped: set PATRONAGE_TEST_DATABASE_URL to run on PostgreSQL"),
        }
    }
}

/// €50 unattributed, then €20 from one patron: fewer than three people, so
/// no view shows 50, 20 or 70 in any form. A third gift of €30 makes three
/// people, and the sums appear.
async fn no_public_view_shows_a_sum_of_fewer_than_the_threshold(app: TestApp) {
    let owner = app.owner_token().await;
    let images: Vec<(&str, Vec<u8>)> = every_view(&app)
        .await
        .into_iter()
        .filter(|(p, _)| p.contains("png"))
        .collect();
    let today = chrono::Utc::now().date_naive();
    let give = |body: Value| {
        let (app, owner) = (&app, owner.clone());
        async move {
            app.post_ok(
                "/api/v1/admin/contributions",
                &owner,
                body,
                StatusCode::CREATED,
            )
            .await;
        }
    };

    // One donor.
    give(json!({"amount_minor": 5000, "date": today})).await;
    assert_no_view_shows(&app, &[50], &images).await;
    let f = app.funding().await;
    assert!(f["raised_total"].is_null() && f["raised_this_month"].is_null());
    let manifest = app.get_json("/funding.json", None).await;
    assert_eq!(manifest["funding"]["history"], json!([]));

    // Two donors, still under the threshold of three.
    let ann = app.create_patron(&owner, "ann@example.org", "Ann").await;
    give(json!({"supporter_id": ann, "amount_minor": 2000, "date": today})).await;
    assert_no_view_shows(&app, &[50, 20, 70], &images).await;

    // A third person: every sum may be shown, and is.
    let bob = app.create_patron(&owner, "bob@example.org", "Bob").await;
    give(json!({"supporter_id": bob, "amount_minor": 3000, "date": today})).await;
    let f = app.funding().await;
    assert_eq!(f["raised_total"]["amount_minor"], 10_000);
    assert_eq!(f["raised_this_month"]["amount_minor"], 10_000);
    let manifest = app.get_json("/funding.json", None).await;
    let history = manifest["funding"]["history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{manifest}");
    assert_eq!(history[0]["income"], json!(100));
}

// ---- Mastodon's donation campaign ----

pub fn message(locale: &str, banner: &str) -> patronage::config::CampaignMessage {
    patronage::config::CampaignMessage {
        locale: locale.into(),
        banner_message: banner.into(),
        banner_button_text: "Donate".into(),
        donation_message: format!("{banner}: we are funded by people like you."),
        donation_button_text: "Donate".into(),
        donation_success_post: "I just donated to keep example.social running!".into(),
    }
}

pub fn with_campaign(s: &mut patronage::config::Settings) {
    s.pages.site_url = "https://fund.example.social".into();
    let m = &mut s.pages.mastodon;
    m.campaign_id = "winter-2026".into();
    m.default_locale = "en".into();
    m.messages = vec![
        message("en", "Keep us online"),
        message("en", "Servers cost money"),
        message("de", "Hilf uns"),
    ];
}
