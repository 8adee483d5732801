//! The public formats as their consumers read them, and the privacy rule
//! across every public view: funding.json as the FLOSS/fund directory
//! validates it, Mastodon's donation campaign as its web form and apps read
//! it, the support page as Mastodon's apps open it.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;

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
        for attr in [
            "aria-label",
            "title",
            "content",
            "alt",
            "value",
            "placeholder",
        ] {
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

crate::on_both_backends!(@adjust (privacy_settings) no_public_view_shows_a_sum_of_fewer_than_the_threshold);

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

fn campaign_amounts(s: &mut patronage::config::Settings) {
    with_campaign(s);
    s.pages.mastodon.one_time = vec![500, 1234];
    s.pages.mastodon.monthly = vec![300];
    s.pages.mastodon.yearly = vec![];
}

crate::on_both_backends!(@adjust (campaign_amounts)
    campaign_amounts_are_hundredths_of_the_main_unit_in_every_currency
);
crate::on_both_backends!(@adjust (with_campaign) each_campaign_variant_has_its_own_id);

async fn campaign(app: &TestApp, query: &str) -> Value {
    app.ctx.public.refresh().await.unwrap();
    let res = app
        .get(
            &format!("/mastodon/campaign?platform=web&environment=production&{query}"),
            None,
        )
        .await;
    crate::helpers::expect_json(res, StatusCode::OK).await
}

/// Mastodon reads every amount as hundredths of the main unit: ¥500 is
/// 50000, not 500 (which its web form shows as ¥5); 1.234 KWD is 123 (1.23),
/// not 1234 (12.34). Every frequency is present, even with no suggestion.
async fn campaign_amounts_are_hundredths_of_the_main_unit_in_every_currency(app: TestApp) {
    let owner = app.owner_token().await;
    for (currency, one_time, monthly) in [
        ("EUR", json!([500, 1234]), json!([300])),
        ("JPY", json!([50_000, 123_400]), json!([30_000])),
        ("KWD", json!([50, 123]), json!([30])),
    ] {
        app.patch(
            "/api/v1/admin/campaign",
            &owner,
            json!({ "currency": currency }),
        )
        .await;
        let c = campaign(&app, "seed=0&locale=en").await;
        assert_eq!(c["default_currency"], currency);
        let amounts = &c["amounts"];
        assert_eq!(amounts["one_time"][currency], one_time, "{currency}: {c}");
        assert_eq!(amounts["monthly"][currency], monthly, "{currency}: {c}");
        // No yearly suggestion configured: the key is there all the same.
        assert_eq!(
            amounts["yearly"],
            json!({ currency: [] }),
            "{currency}: {c}"
        );
    }
}

/// Mastodon caches a campaign by id and locale, and remembers a dismissed
/// banner by id: each variant has its own id, and editing one language's
/// text changes no other language's id.
async fn each_campaign_variant_has_its_own_id(app: TestApp) {
    let backend = app.backend();
    let en0 = campaign(&app, "seed=0&locale=en").await;
    let en1 = campaign(&app, "seed=1&locale=en").await;
    let de = campaign(&app, "seed=0&locale=de").await;
    assert_eq!(en0["banner_message"], "Keep us online");
    assert_eq!(en1["banner_message"], "Servers cost money");
    let ids = [&en0["id"], &en1["id"], &de["id"]];
    for (i, a) in ids.iter().enumerate() {
        assert!(a.as_str().unwrap().starts_with("winter-2026-"), "{a}");
        for b in &ids[i + 1..] {
            assert_ne!(a, b, "every variant has its own id");
        }
    }
    // The same seed gives the same variant, and so the same id.
    assert_eq!(campaign(&app, "seed=2&locale=en").await["id"], en0["id"]);

    // The same campaign with the German text edited, as after a restart.
    let edited = TestApp::spawn_with(backend, |s| {
        with_campaign(s);
        s.pages.mastodon.messages[2] = message("de", "Hilf uns bitte");
    })
    .await
    .unwrap();
    let de_edited = campaign(&edited, "seed=0&locale=de").await;
    assert_eq!(de_edited["banner_message"], "Hilf uns bitte");
    assert_ne!(de_edited["id"], de["id"], "the edited variant is new");
    assert_eq!(campaign(&edited, "seed=0&locale=en").await["id"], en0["id"]);
    assert_eq!(campaign(&edited, "seed=1&locale=en").await["id"], en1["id"]);
}

// ---- donation_url: Mastodon's apps open the support page ----

fn on_our_sites(s: &mut patronage::config::Settings) {
    s.pages.site_url = "https://fund.example.social".into();
    s.pages.instance_url = "https://example.social".into();
}

crate::with_stripe_on_both_backends!(@adjust (crate::formats::on_our_sites) the_support_page_follows_mastodons_donation_url);

/// The form of the page that `attr` marks, from its `<form` to `</form>`.
fn form_with<'a>(page: &'a str, attr: &str) -> &'a str {
    let at = page
        .find(attr)
        .unwrap_or_else(|| panic!("no {attr} in {page}"));
    let start = page[..at].rfind("<form").unwrap();
    let end = at + page[at..].find("</form>").unwrap();
    &page[start..end]
}

/// `amount` (hundredths), `currency` and `frequency` pre-select a tier or
/// fill in an amount; callbacks on our own origins become Stripe's
/// success and cancel URLs, others are dropped.
async fn the_support_page_follows_mastodons_donation_url(
    app: TestApp,
    fake: crate::fake_stripe::FakeStripe,
) {
    let owner = app.owner_token().await;
    let tier = |body: Value| {
        let (app, owner) = (&app, owner.clone());
        async move { app.create_tier(&owner, body).await["id"].as_i64().unwrap() }
    };
    let three =
        tier(json!({"kind": "patron", "name": "Friend", "amount_minor": 300, "interval": "month"}))
            .await;
    let five =
        tier(json!({"kind": "patron", "name": "Patron", "amount_minor": 500, "interval": "month"}))
            .await;
    let any = tier(json!({"kind": "patron", "name": "Any amount", "amount_minor": 1000, "pwyw_min_minor": 700, "interval": "month"})).await;
    app.ctx.public.refresh().await.unwrap();
    let page = |query: &'static str| {
        let app = &app;
        async move {
            let res = app.get(&format!("/support{query}"), None).await;
            assert_eq!(res.status(), StatusCode::OK, "{query}");
            res.text().await.unwrap()
        }
    };

    // Without parameters: nothing chosen.
    let plain = page("").await;
    assert!(!plain.contains("aria-current"), "{plain}");

    // €5 a month: the €5 tier, and only it.
    let monthly =
        page("?amount=500&currency=EUR&frequency=monthly&source=campaign&campaign_id=x").await;
    let chosen = form_with(&monthly, "aria-current=\"true\"");
    assert!(
        chosen.contains(&format!("name=\"tier_id\" value=\"{five}\"")),
        "{chosen}"
    );
    assert_eq!(monthly.matches("aria-current").count(), 1);
    assert!(!chosen.contains(&format!("value=\"{three}\"")));

    // €12.50 a month matches no price: the pay-what-you-want tier, filled in.
    let pwyw = page("?amount=1250&currency=EUR&frequency=monthly").await;
    let chosen = form_with(&pwyw, "aria-current=\"true\"");
    assert!(
        chosen.contains(&format!("name=\"tier_id\" value=\"{any}\"")),
        "{chosen}"
    );
    assert!(chosen.contains("value=\"12.50\""), "{chosen}");

    // A one-time €25: the gift form, filled in.
    let once = page("?amount=2500&currency=EUR&frequency=one_time").await;
    let chosen = form_with(&once, "aria-current=\"true\"");
    assert!(chosen.contains("name=\"kind\" value=\"gift\""), "{chosen}");
    assert!(chosen.contains("value=\"25.00\""), "{chosen}");

    // Another currency, or nonsense: nothing chosen, and still a page.
    for query in [
        "?amount=500&currency=USD&frequency=monthly",
        "?amount=abc&frequency=weekly",
        "?amount=-5&frequency=one_time&currency=EUR",
    ] {
        let other = page(query).await;
        assert!(
            !other.contains("value=\"5.00\"") && !other.contains("value=\"-"),
            "{query}"
        );
        assert!(
            !form_with(&other, "name=\"kind\" value=\"gift\"").contains("value=\"5"),
            "{query}"
        );
    }

    // Callbacks: kept on our origins, dropped elsewhere.
    let with_callbacks = page(
        "?amount=500&currency=EUR&frequency=monthly\
         &success_callback_url=https%3A%2F%2Fexample.social%2Fdonate%2Fok\
         &cancel_callback_url=https%3A%2F%2Fevil.example%2Fcancel\
         &failure_callback_url=https%3A%2F%2Fexample.social%2Fdonate%2Ffail",
    )
    .await;
    assert!(with_callbacks.contains("value=\"https://example.social/donate/ok\""));
    assert!(
        !with_callbacks.contains("evil.example"),
        "off-origin callback dropped"
    );

    // Checkout returns to them; an off-origin one posted directly is
    // dropped again, and the configured URL stays.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let checkout = |email: &'static str, success: &'static str, cancel: &'static str| {
        let (app, client) = (&app, no_redirects.clone());
        let tier = five.to_string();
        async move {
            let form = [
                ("kind", "patron"),
                ("tier_id", tier.as_str()),
                ("email", email),
                ("display_name", "Ann"),
                ("success_callback_url", success),
                ("cancel_callback_url", cancel),
            ];
            let res = client
                .post(app.url("/support/checkout"))
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::SEE_OTHER);
            let location = res.headers()["location"].to_str().unwrap().to_owned();
            location.rsplit('/').next().unwrap().to_owned()
        }
    };
    let session = fake.object(
        &checkout(
            "ann@example.org",
            "https://example.social/donate/ok",
            "https://fund.example.social/support?from=app",
        )
        .await,
    );
    assert_eq!(session["success_url"], "https://example.social/donate/ok");
    assert_eq!(
        session["cancel_url"],
        "https://fund.example.social/support?from=app"
    );
    let session = fake.object(
        &checkout(
            "bob@example.org",
            "https://evil.example/ok",
            "javascript:alert(1)",
        )
        .await,
    );
    assert_eq!(session["success_url"], "https://fund.example.social/thanks");
    assert_eq!(session["cancel_url"], "https://fund.example.social/support");
}

// ---- funding.json, as the FLOSS/fund directory validates it ----

/// The checks of floss-fund/go-funding-json v0.6.0 (`schemas/v1/schema.go`
/// `Validate` and `common/validations.go`), which the directory runs on
/// every manifest; each failure as the field it is about. Lengths are in
/// bytes, as Go's `len` counts them. Not mirrored: license ids against the
/// SPDX list and currency codes against its list (checked here as three
/// capital letters).
fn go_funding_json_errors(m: &Value, manifest_url: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let mut fail = |field: String| errors.push(field);
    let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let len_in =
        |v: &Value, min: usize, max: usize| v.is_string() && (min..=max).contains(&s(v).len());
    let num_in = |v: &Value, min: f64, max: f64| v.as_f64().is_some_and(|n| n >= min && n <= max);
    let in_list = |v: &Value, list: &[&str]| list.contains(&s(v).as_str());
    // IsURL: 10 to 250 bytes, http(s) with a host.
    let is_url = |u: &str| {
        (10..=250).contains(&u.len())
            && url::Url::parse(u)
                .is_ok_and(|p| matches!(p.scheme(), "http" | "https") && p.host_str().is_some())
    };
    // IsID: ^[a-z0-9]([[a-z\d-]+)?[a-z0-9]$, no "--", 3 to 32 bytes.
    let is_id = |v: &Value| {
        let id = s(v);
        let b = id.as_bytes();
        let edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        (3..=32).contains(&id.len())
            && edge(b[0])
            && edge(b[b.len() - 1])
            && b.iter().all(|&c| edge(c) || c == b'-' || c == b'[')
            && !id.contains("--")
    };
    // IsTag: ^[a-z0-9]+(?:-[a-z0-9]+)*$, 2 to 32 bytes.
    let is_tag = |v: &Value| {
        let t = s(v);
        (2..=32).contains(&t.len())
            && t.split('-').all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            })
    };
    // IsEmail: 3 to 250 bytes, and Go's mail.ParseAddress gives back the
    // same bare address.
    let is_email = |v: &Value| {
        let e = s(v);
        let parts: Vec<&str> = e.split('@').collect();
        (3..=250).contains(&e.len())
            && parts.len() == 2
            && !parts[0].is_empty()
            && !parts[1].is_empty()
            && !e.contains(|c: char| c.is_whitespace() || "<>()[],;:\"\\".contains(c))
    };
    let currency = |v: &Value| s(v).len() == 3 && s(v).bytes().all(|c| c.is_ascii_uppercase());
    let manifest = url::Url::parse(manifest_url).unwrap();
    // WellKnownURL: needed when the target is on another host (or another
    // path) than the manifest; when given, it must end in the well-known
    // path and be on the target's host.
    let well_known_ok = |u: &Value| {
        let target = url::Url::parse(&s(&u["url"])).unwrap();
        let required = target.host_str() != manifest.host_str();
        match u.get("wellKnown") {
            Some(wk) if required => {
                let wk = url::Url::parse(&s(wk));
                wk.is_ok_and(|wk| {
                    wk.path()
                        .trim_end_matches('/')
                        .ends_with("/.well-known/funding-manifest-urls")
                        && wk.host_str() == target.host_str()
                })
            }
            _ => true,
        }
    };
    if !s(&m["version"]).starts_with("v1.") {
        fail("version".into());
    }
    if !is_url(manifest_url) {
        fail("manifest URL".into());
    }
    let e = &m["entity"];
    for (field, ok) in [
        (
            "type",
            in_list(
                &e["type"],
                &["individual", "group", "organisation", "other"],
            ),
        ),
        (
            "role",
            in_list(
                &e["role"],
                &["owner", "steward", "maintainer", "contributor", "other"],
            ),
        ),
        ("name", len_in(&e["name"], 2, 250)),
        ("email", is_email(&e["email"])),
        ("description", len_in(&e["description"], 5, 2000)),
        (
            "webpageUrl",
            is_url(&s(&e["webpageUrl"]["url"])) && well_known_ok(&e["webpageUrl"]),
        ),
    ] {
        if !ok {
            fail(format!("entity.{field}"));
        }
    }
    let projects = m["projects"].as_array().cloned().unwrap_or_default();
    if !(1..=30).contains(&projects.len()) {
        fail("projects".into());
    }
    let mut ids = std::collections::HashSet::new();
    for p in &projects {
        let licenses = p["licenses"].as_array().cloned().unwrap_or_default();
        let tags = p["tags"].as_array().cloned().unwrap_or_default();
        for (field, ok) in [
            ("guid", is_id(&p["guid"]) && ids.insert(s(&p["guid"]))),
            ("name", len_in(&p["name"], 1, 250)),
            ("description", len_in(&p["description"], 5, 2000)),
            (
                "webpageUrl",
                is_url(&s(&p["webpageUrl"]["url"])) && well_known_ok(&p["webpageUrl"]),
            ),
            (
                "repositoryUrl",
                is_url(&s(&p["repositoryUrl"]["url"])) && well_known_ok(&p["repositoryUrl"]),
            ),
            (
                "licenses",
                (1..=5).contains(&licenses.len()) && licenses.iter().all(|l| len_in(l, 2, 64)),
            ),
            (
                "tags",
                (1..=10).contains(&tags.len()) && tags.iter().all(is_tag),
            ),
        ] {
            if !ok {
                fail(format!("projects[{}].{field}", s(&p["guid"])));
            }
        }
    }
    let channels = m["funding"]["channels"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !(1..=10).contains(&channels.len()) {
        fail("funding.channels".into());
    }
    let mut channel_ids = std::collections::HashSet::new();
    for c in &channels {
        for (field, ok) in [
            (
                "guid",
                is_id(&c["guid"]) && channel_ids.insert(s(&c["guid"])),
            ),
            (
                "type",
                in_list(
                    &c["type"],
                    &["bank", "payment-provider", "cheque", "cash", "other"],
                ),
            ),
            ("address", len_in(&c["address"], 0, 250)),
            ("description", len_in(&c["description"], 0, 500)),
        ] {
            if !ok {
                fail(format!("channels[{}].{field}", s(&c["guid"])));
            }
        }
    }
    let plans = m["funding"]["plans"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !(1..=10).contains(&plans.len()) {
        fail("funding.plans".into());
    }
    for p in &plans {
        for (field, ok) in [
            ("guid", is_id(&p["guid"])),
            ("status", in_list(&p["status"], &["active", "inactive"])),
            ("name", len_in(&p["name"], 3, 250)),
            ("description", len_in(&p["description"], 0, 500)),
            ("amount", num_in(&p["amount"], 0.0, 1e9)),
            ("currency", currency(&p["currency"])),
            (
                "frequency",
                in_list(
                    &p["frequency"],
                    &[
                        "one-time",
                        "weekly",
                        "fortnightly",
                        "monthly",
                        "yearly",
                        "other",
                    ],
                ),
            ),
            (
                "channels",
                p["channels"]
                    .as_array()
                    .is_some_and(|cs| cs.iter().all(|c| channel_ids.contains(&s(c)))),
            ),
        ] {
            if !ok {
                fail(format!("plans[{}].{field}", s(&p["guid"])));
            }
        }
    }
    let history = m["funding"]["history"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if history.len() > 50 {
        fail("history".into());
    }
    for (n, h) in history.iter().enumerate() {
        for (field, ok) in [
            (
                "year",
                h["year"].is_i64() && num_in(&h["year"], 1970.0, 2075.0),
            ),
            ("income", num_in(&h["income"], 0.0, 1e9)),
            ("expenses", num_in(&h["expenses"], 0.0, 1e9)),
            ("currency", currency(&h["currency"])),
            ("description", len_in(&h["description"], 0, 500)),
        ] {
            if !ok {
                fail(format!("history[{n}].{field}"));
            }
        }
    }
    errors
}

fn a_real_manifest(s: &mut patronage::config::Settings) {
    s.pages.site_url = "https://fund.example.social".into();
    s.pages.instance_url = "https://example.social".into();
    s.pages.entity_email = "funding@example.social".into();
    s.pages.repository_url = "https://github.com/mastodon/mastodon".into();
    s.pages.privacy_threshold = 1;
}

crate::on_both_backends!(@adjust (a_real_manifest) funding_json_passes_the_directorys_validator);
crate::on_both_backends!(@adjust (on_our_sites) funding_json_has_no_made_up_contact);

/// Twelve tiers, one called "XL", one with a long description, a long
/// campaign text, and a year of income: the manifest still passes every
/// check of the directory's validator.
async fn funding_json_passes_the_directorys_validator(app: TestApp) {
    let owner = app.owner_token().await;
    app.patch(
        "/api/v1/admin/campaign",
        &owner,
        json!({"name": "Ex", "description": "Ünïcödé ".repeat(600)}),
    )
    .await;
    for i in 0..12 {
        let name = if i == 0 {
            "XL".to_owned()
        } else {
            format!("Tier {i}")
        };
        let description = if i == 1 {
            "é".repeat(2000)
        } else {
            String::new()
        };
        app.create_tier(
            &owner,
            json!({"kind": "patron", "name": name, "description": description,
                   "amount_minor": 100 * (i + 1), "interval": "month"}),
        )
        .await;
    }
    app.post_ok(
        "/api/v1/admin/contributions",
        &owner,
        json!({"amount_minor": 5025, "date": chrono::Utc::now().date_naive()}),
        StatusCode::CREATED,
    )
    .await;
    let m = app.public_json("/funding.json").await;
    assert_eq!(m["$schema"], "https://fundingjson.org/schema/v1.1.0.json");
    let errors = go_funding_json_errors(&m, "https://fund.example.social/funding.json");
    assert!(errors.is_empty(), "{errors:?}\n{m:#}");
    let plans = m["funding"]["plans"].as_array().unwrap();
    assert_eq!(plans.len(), 10);
    assert_eq!(plans.last().unwrap()["guid"], "one-time-gift");
    assert!(plans.iter().any(|p| p["name"] == "XL tier"), "{plans:?}");
    assert_eq!(m["entity"]["email"], "funding@example.social");
    assert_eq!(m["funding"]["history"][0]["income"].to_string(), "50.25");
}

/// Without `pages.entity_email` the manifest carries no address at all
/// (not a no-reply one), and the validator mirror says so.
async fn funding_json_has_no_made_up_contact(app: TestApp) {
    let m = app.public_json("/funding.json").await;
    assert!(m["entity"].get("email").is_none(), "{m:#}");
    assert!(!m.to_string().contains("localhost"), "{m}");
    assert_eq!(
        go_funding_json_errors(&m, "https://fund.example.social/funding.json"),
        vec!["entity.email".to_owned()]
    );
}

#[test]
fn config_check_warns_without_a_contact_for_funding_json() {
    let dir = tempfile::tempdir().unwrap();
    let run = |email: &str| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_patronage"));
        cmd.current_dir(dir.path());
        for (key, _) in std::env::vars() {
            if key.starts_with("PATRONAGE") {
                cmd.env_remove(key);
            }
        }
        let out = cmd
            .args(["config", "check"])
            .env("PATRONAGE__PAGES__ENTITY_EMAIL", email)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stderr) = run("");
    assert!(ok, "{stderr}");
    assert!(stderr.contains("pages.entity_email"), "{stderr}");
    let (ok, stderr) = run("funding@example.social");
    assert!(ok && !stderr.contains("entity_email"), "{stderr}");
    let (ok, stderr) = run("not an address");
    assert!(!ok && stderr.contains("pages.entity_email"), "{stderr}");
}
