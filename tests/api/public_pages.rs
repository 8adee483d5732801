//! The about-page views: the support page, the embed, badges, the sponsor
//! wall, funding.json and Mastodon's campaign; sponsors moving through
//! approval, payment, expiry and grace; hostile input; privacy.

use std::io::Cursor;

use chrono::{Datelike, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_json, expect_problem};
use crate::on_both_backends;

on_both_backends!(
    a_sponsor_is_shown_from_approval_until_its_grace_period_ends,
    an_expired_sponsor_vanishes_even_before_the_sweep,
    hostile_names_links_and_alt_text_come_out_escaped,
    hostile_logos_are_refused_or_reduced_to_pixels,
    a_sponsor_uploads_its_logo_through_a_signed_link,
    embed_badges_and_wall_follow_their_conventions,
    funding_json_follows_schema_v1_1_0,
    another_replica_follows_within_its_poll,
    a_huge_logo_is_refused_from_its_header,
    any_wall_parameters_answer_a_wall,
    an_empty_wall_is_a_real_png,
    views_before_the_router_answer_as_the_router_does,
);

/// Every view a visitor or an app can fetch without signing in.
pub const PUBLIC_VIEWS: [&str; 12] = [
    "/api/v1/sponsors",
    "/api/v1/funding",
    "/support",
    "/embed/progress",
    "/embed/progress?theme=dark",
    "/sponsors.svg",
    "/sponsors.svg?avatarHeight=40&width=600",
    "/badge/patrons.svg",
    "/badge/patrons.json",
    "/funding.json",
    "/badge/goal.svg",
    "/badge/monthly.json",
];

pub fn today() -> chrono::NaiveDate {
    Utc::now().date_naive()
}

/// A solid PNG of one colour.
pub fn png(w: u32, h: u32, rgb: [u8; 3]) -> Vec<u8> {
    let img = image::RgbaImage::from_pixel(w, h, image::Rgba([rgb[0], rgb[1], rgb[2], 255]));
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

pub async fn sponsor_tier(app: &TestApp, owner: &str, name: &str, amount: i64) -> i64 {
    app.create_tier(
        owner,
        json!({"kind": "sponsor", "name": name, "amount_minor": amount, "interval": "year"}),
    )
    .await["id"]
        .as_i64()
        .unwrap()
}

pub async fn create_sponsor(
    app: &TestApp,
    owner: &str,
    tier: i64,
    name: &str,
    url: &str,
    paid_through: chrono::NaiveDate,
) -> i64 {
    app.post_ok(
        "/api/v1/admin/sponsors",
        owner,
        json!({"company_name": name, "website_url": url, "contact_email": "billing@acme.example",
               "tier_id": tier, "paid_through": paid_through}),
        StatusCode::CREATED,
    )
    .await["id"]
        .as_i64()
        .unwrap()
}

pub async fn upload_logo(
    app: &TestApp,
    owner: &str,
    id: i64,
    bytes: Vec<u8>,
    alt: &str,
) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/admin/sponsors/{id}/logo")))
        .query(&[("alt_text", alt)])
        .bearer_auth(owner)
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap()
}

pub async fn approve(app: &TestApp, owner: &str, id: i64) {
    app.post_ok(
        &format!("/api/v1/admin/sponsors/{id}/approve"),
        owner,
        json!({"reason": "checked"}),
        StatusCode::OK,
    )
    .await;
}

async fn set_paid_through(app: &TestApp, owner: &str, id: i64, date: chrono::NaiveDate) {
    app.post_ok(
        &format!("/api/v1/admin/sponsors/{id}/paid-through"),
        owner,
        json!({"paid_through": date}),
        StatusCode::OK,
    )
    .await;
}

/// The bodies of every public view, after the snapshot caught up.
async fn all_views(app: &TestApp) -> Vec<(String, String)> {
    app.ctx.public.refresh().await.unwrap();
    let mut out = Vec::new();
    for path in PUBLIC_VIEWS {
        let res = app.get(path, None).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        out.push((path.to_owned(), res.text().await.unwrap()));
    }
    out
}

async fn assert_everywhere(app: &TestApp, needle: &str, shown: bool, skip: &[&str]) {
    for (path, body) in all_views(app).await {
        if skip.iter().any(|s| path.starts_with(s)) {
            continue;
        }
        assert_eq!(
            body.contains(needle),
            shown,
            "{path} should {}show {needle:?}: {}",
            if shown { "" } else { "not " },
            &body[..body.len().min(600)]
        );
    }
}

/// Views that list sponsors (the others show only totals).
const NO_SPONSORS: [&str; 6] = [
    "/api/v1/funding",
    "/embed/progress",
    "/badge",
    "/funding.json",
    "/embed",
    "/badge/monthly",
];

async fn audit_actions(app: &TestApp, owner: &str, id: i64) -> Vec<(String, String)> {
    let audit = app
        .get_json("/api/v1/admin/audit?limit=200", Some(owner))
        .await;
    audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target_id"] == id)
        .map(|e| {
            let details: Value = match &e["details"] {
                Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
                other => other.clone(),
            };
            (
                e["action"].as_str().unwrap().to_owned(),
                details["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

async fn a_sponsor_is_shown_from_approval_until_its_grace_period_ends(app: TestApp) {
    let owner = app.owner_token().await;
    let gold = sponsor_tier(&app, &owner, "Gold", 120_000).await;
    let id = create_sponsor(
        &app,
        &owner,
        gold,
        "Acme Hosting",
        "https://acme.example/",
        today() + Duration::days(30),
    )
    .await;
    let logo = upload_logo(
        &app,
        &owner,
        id,
        png(300, 100, [255, 0, 255]),
        "Acme Hosting logo",
    )
    .await;
    let logo = expect_json(logo, StatusCode::CREATED).await;
    let logo_url = logo["url"].as_str().unwrap().to_owned();

    // Pending: nowhere, not even its logo.
    assert_everywhere(&app, "Acme Hosting", false, &[]).await;
    assert_eq!(
        app.get(&logo_url, None).await.status(),
        StatusCode::NOT_FOUND
    );

    // Approved and paid: everywhere sponsors are listed, with its logo.
    approve(&app, &owner, id).await;
    assert_everywhere(&app, "Acme Hosting", true, &NO_SPONSORS).await;
    let res = app.get(&logo_url, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert!(
        res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let sponsors = app.get_json("/api/v1/sponsors", None).await;
    assert_eq!(sponsors["sponsors"][0]["logo"]["url"], logo_url.as_str());
    assert_eq!(sponsors["sponsors"][0]["logo"]["alt"], "Acme Hosting logo");
    let page = app.get("/support", None).await.text().await.unwrap();
    assert!(
        page.contains(r#"rel="sponsored noopener nofollow""#),
        "{page}"
    );
    assert!(page.contains(&format!(r#"src="{logo_url}""#)));
    let wall = app.get("/sponsors.svg", None).await.text().await.unwrap();
    assert!(wall.contains("data:image/png;base64,"), "logo inlined");
    assert!(wall.contains(r#"rel="sponsored noopener nofollow""#));
    assert_eq!(app.funding().await["sponsors_count"], 1);
    assert!(
        audit_actions(&app, &owner, id)
            .await
            .contains(&("sponsor.publish".to_owned(), "approved and paid".to_owned()))
    );

    // The paid period ended 10 days ago: still inside the 14 days of grace.
    set_paid_through(&app, &owner, id, today() - Duration::days(10)).await;
    assert_everywhere(&app, "Acme Hosting", true, &NO_SPONSORS).await;

    // 15 days ago: gone from every view, the logo too, and the audit log says why.
    set_paid_through(&app, &owner, id, today() - Duration::days(15)).await;
    assert_everywhere(&app, "Acme Hosting", false, &[]).await;
    assert_eq!(
        app.get(&logo_url, None).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.funding().await["sponsors_count"], 0);
    assert!(audit_actions(&app, &owner, id).await.contains(&(
        "sponsor.unpublish".to_owned(),
        "paid period and grace ended".to_owned()
    )));

    // Paid again: back.
    set_paid_through(&app, &owner, id, today() + Duration::days(365)).await;
    assert_everywhere(&app, "Acme Hosting", true, &NO_SPONSORS).await;
    // Rejected: gone, with the reason.
    app.post_ok(
        &format!("/api/v1/admin/sponsors/{id}/reject"),
        &owner,
        json!({"reason": "now a casino"}),
        StatusCode::OK,
    )
    .await;
    assert_everywhere(&app, "Acme Hosting", false, &[]).await;
    let actions = audit_actions(&app, &owner, id).await;
    assert!(
        actions.contains(&("sponsor.unpublish".to_owned(), "rejected".to_owned())),
        "{actions:?}"
    );
}

/// The public filter is by date: a sponsor past its grace period is never
/// rendered, even if the sweep that records it has not run yet.
async fn an_expired_sponsor_vanishes_even_before_the_sweep(app: TestApp) {
    let owner = app.owner_token().await;
    let gold = sponsor_tier(&app, &owner, "Gold", 120_000).await;
    let id = create_sponsor(
        &app,
        &owner,
        gold,
        "Lapsed Corp",
        "https://lapsed.example/",
        today() + Duration::days(3),
    )
    .await;
    approve(&app, &owner, id).await;
    assert_everywhere(&app, "Lapsed Corp", true, &NO_SPONSORS).await;

    // Time passes in the database only: no admin write, no sweep.
    let expired = today() - Duration::days(15);
    patronage::db_run!(&app.db, |pool| {
        sqlx::query("UPDATE supporters SET paid_through = $1 WHERE id = $2")
            .bind(expired)
            .bind(id)
            .execute(pool)
            .await
            .unwrap();
    });
    assert_everywhere(&app, "Lapsed Corp", false, &[]).await;

    // The sweep then records it, once, with the reason.
    let changes = patronage::store::supporters::sweep_publication(&app.db, today(), 14)
        .await
        .unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].supporter_id, id);
    assert!(!changes[0].published);
    assert_eq!(changes[0].reason, "paid period and grace ended");
    let again = patronage::store::supporters::sweep_publication(&app.db, today(), 14)
        .await
        .unwrap();
    assert!(again.is_empty(), "a second sweep changes nothing");
}

const XSS_NAME: &str = r#"<script>alert('n')</script>"><img src=x onerror=alert(1)>"#;
const XSS_ALT: &str = r#""><svg onload=alert('alt')>"#;
const XSS_PATRON: &str = r#"<img src=x onerror=alert('p')>"#;

fn assert_no_markup_injected(path: &str, body: &str) {
    for bad in ["<script", "<img src=x", "<svg onload", "onerror=alert(1)>"] {
        assert!(!body.contains(bad), "{path} lets {bad:?} through: {body}");
    }
}

async fn hostile_names_links_and_alt_text_come_out_escaped(app: TestApp) {
    let owner = app.owner_token().await;
    let gold = sponsor_tier(&app, &owner, "Gold", 120_000).await;
    // Links: http(s) only, no credentials.
    for bad in [
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "https://user:pw@acme.example/",
        "ftp://acme.example/",
    ] {
        let res = app
            .post(
                "/api/v1/admin/sponsors",
                &owner,
                json!({"company_name": "X", "website_url": bad, "contact_email": "a@acme.example", "tier_id": gold}),
            )
            .await;
        expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
    }
    let id = create_sponsor(
        &app,
        &owner,
        gold,
        XSS_NAME,
        "https://acme.example/?q=\"><script>alert(1)</script>",
        today() + Duration::days(30),
    )
    .await;
    let res = upload_logo(&app, &owner, id, png(64, 64, [255, 0, 255]), XSS_ALT).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    approve(&app, &owner, id).await;
    let patron_tier = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "P", "amount_minor": 500, "interval": "month"}),
        )
        .await;
    let patron = app.create_patron(&owner, "p@example.org", XSS_PATRON).await;
    app.create_pledge(&owner, patron, patron_tier["id"].as_i64().unwrap(), None)
        .await;

    for (path, body) in all_views(&app).await {
        if path.starts_with("/api/") || path.ends_with(".json") {
            continue; // JSON carries the text as data; checked below.
        }
        assert_no_markup_injected(&path, &body);
        if path.contains(".svg") {
            roxmltree::Document::parse(&body).unwrap_or_else(|e| panic!("{path}: {e}"));
        }
    }
    let page = app.get("/support", None).await.text().await.unwrap();
    assert!(
        page.contains("&lt;script&gt;"),
        "the name is shown, escaped"
    );
    assert!(
        page.contains("&lt;img src=x onerror=alert("),
        "the patron is shown, escaped"
    );
    let wall = app.get("/sponsors.svg", None).await.text().await.unwrap();
    let doc = roxmltree::Document::parse(&wall).unwrap();
    assert!(doc.descendants().all(|n| n.tag_name().name() != "script"));
    assert!(
        doc.descendants()
            .flat_map(|n| n.attributes())
            .all(|a| !a.name().starts_with("on")),
        "no event handler attribute"
    );
    let title = doc
        .descendants()
        .find(|n| n.tag_name().name() == "title" && n.parent().unwrap().tag_name().name() == "a")
        .unwrap();
    assert_eq!(title.text(), Some(XSS_NAME), "the name survives as text");
    // JSON carries the same text as data, exactly.
    let sponsors = app.get_json("/api/v1/sponsors", None).await;
    assert_eq!(sponsors["sponsors"][0]["name"], XSS_NAME);
    assert_eq!(sponsors["sponsors"][0]["logo"]["alt"], XSS_ALT);
    let res = app.get("/api/v1/sponsors", None).await;
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    // The URL was normalised (percent-encoded), so it cannot break out either.
    let url = sponsors["sponsors"][0]["url"].as_str().unwrap();
    assert!(
        url.starts_with("https://acme.example/?q=") && !url.contains('"') && !url.contains('<'),
        "{url}"
    );
}

async fn hostile_logos_are_refused_or_reduced_to_pixels(app: TestApp) {
    let owner = app.owner_token().await;
    let gold = sponsor_tier(&app, &owner, "Gold", 120_000).await;
    let id = create_sponsor(
        &app,
        &owner,
        gold,
        "Acme",
        "https://acme.example/",
        today() + Duration::days(30),
    )
    .await;
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script><image href="https://evil.example/x.png"/></svg>"#;
    let mut fake_png = b"\x89PNG\r\n\x1a\n".to_vec();
    fake_png.extend_from_slice(b"<html><script>alert(1)</script></html>");
    let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec();
    for (what, bytes) in [
        ("svg", svg.to_vec()),
        ("png header on html", fake_png),
        ("gif", gif),
        ("html", b"<!doctype html><script>alert(1)</script>".to_vec()),
        ("too small", png(4, 4, [0, 0, 0])),
        ("too large", vec![0x89; 1_048_577]),
    ] {
        let res = upload_logo(&app, &owner, id, bytes, "Acme").await;
        let problem =
            expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
        assert_eq!(problem["errors"][0]["field"], "logo", "{what}");
    }
    // Alt text is required.
    let res = upload_logo(&app, &owner, id, png(64, 64, [1, 2, 3]), " ").await;
    let problem = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "alt_text");

    // A PNG with a script appended (a polyglot): only its pixels are kept,
    // scaled into the configured box.
    let mut polyglot = png(1600, 400, [10, 200, 30]);
    polyglot.extend_from_slice(b"<script>alert(1)</script>");
    let res = upload_logo(&app, &owner, id, polyglot, "Acme").await;
    let logo = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(
        (logo["width"].as_u64(), logo["height"].as_u64()),
        (Some(400), Some(100))
    );
    approve(&app, &owner, id).await;
    app.ctx.public.refresh().await.unwrap();
    let served = app
        .get(logo["url"].as_str().unwrap(), None)
        .await
        .bytes()
        .await
        .unwrap();
    assert!(served.starts_with(b"\x89PNG"));
    assert!(!served.windows(7).any(|w| w == b"<script"));
    let decoded = image::load_from_memory(&served).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (400, 100));
}

async fn a_sponsor_uploads_its_logo_through_a_signed_link(app: TestApp) {
    let owner = app.owner_token().await;
    let gold = sponsor_tier(&app, &owner, "Gold", 120_000).await;
    let id = create_sponsor(
        &app,
        &owner,
        gold,
        "Linked Ltd",
        "https://linked.example/",
        today() + Duration::days(30),
    )
    .await;
    approve(&app, &owner, id).await;
    let link = app
        .post_ok(
            &format!("/api/v1/admin/sponsors/{id}/upload-link"),
            &owner,
            json!({}),
            StatusCode::OK,
        )
        .await;
    let url = link["url"].as_str().unwrap();
    let token = url.split("token=").nth(1).unwrap().to_owned();
    let form = app.get(&format!("/sponsor/logo?token={token}"), None).await;
    assert_eq!(form.status(), StatusCode::OK);
    let html = form.text().await.unwrap();
    assert!(html.contains(r#"enctype="multipart/form-data""#) && html.contains("Linked Ltd"));

    let send = |token: String, bytes: Vec<u8>| {
        let part = reqwest::multipart::Part::bytes(bytes).file_name("logo.svg");
        let body = reqwest::multipart::Form::new()
            .text("token", token)
            .text("alt_text", "Linked Ltd")
            .text("variant", "light")
            .part("logo", part);
        app.client
            .post(app.url("/sponsor/logo"))
            .multipart(body)
            .send()
    };
    // A forged or altered token is refused.
    let forged = format!("{}x", &token[..token.len() - 1]);
    let res = send(forged, png(64, 64, [0, 0, 255])).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // An admin's token is not an upload link.
    let res = send(owner.clone(), png(64, 64, [0, 0, 255])).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // The file's name does not matter: its content does.
    let res = send(token.clone(), png(64, 64, [0, 0, 255])).await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );
    // One upload per link: the link is spent, the form no longer opens.
    let res = send(token.clone(), png(64, 64, [0, 255, 0])).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let form = app.get(&format!("/sponsor/logo?token={token}"), None).await;
    assert_eq!(form.status(), StatusCode::UNAUTHORIZED);

    // Not public before an admin approves it.
    app.ctx.public.refresh().await.unwrap();
    let sponsors = app.get_json("/api/v1/sponsors", None).await;
    assert!(sponsors["sponsors"][0]["logo"].is_null(), "{sponsors}");
    let res = app
        .post(
            &format!("/api/v1/admin/sponsors/{id}/logo/approve"),
            &owner,
            json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let sponsors = app.public_json("/api/v1/sponsors").await;
    assert_eq!(sponsors["sponsors"][0]["logo"]["alt"], "Linked Ltd");

    // A rejection revokes the links given out, and no new one is issued.
    let fresh = app
        .post_ok(
            &format!("/api/v1/admin/sponsors/{id}/upload-link"),
            &owner,
            json!({}),
            StatusCode::OK,
        )
        .await;
    let fresh = fresh["url"].as_str().unwrap();
    let fresh = fresh.split("token=").nth(1).unwrap().to_owned();
    let form = app.get(&format!("/sponsor/logo?token={fresh}"), None).await;
    assert_eq!(form.status(), StatusCode::OK, "a new link works");
    app.post_ok(
        &format!("/api/v1/admin/sponsors/{id}/reject"),
        &owner,
        json!({"reason": "changed our minds"}),
        StatusCode::OK,
    )
    .await;
    let form = app.get(&format!("/sponsor/logo?token={fresh}"), None).await;
    assert_eq!(form.status(), StatusCode::UNAUTHORIZED);
    let res = send(fresh.clone(), png(64, 64, [0, 255, 0])).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app
        .post(
            &format!("/api/v1/admin/sponsors/{id}/upload-link"),
            &owner,
            json!({}),
        )
        .await;
    expect_problem(res, StatusCode::CONFLICT, "conflict").await;
}

async fn embed_badges_and_wall_follow_their_conventions(app: TestApp) {
    let owner = app.owner_token().await;
    app.patch(
        "/api/v1/admin/campaign",
        &owner,
        json!({"monthly_goal_minor": 2000}),
    )
    .await;
    let tier = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "P", "amount_minor": 500, "interval": "month"}),
        )
        .await;
    for i in 0..3 {
        let p = app
            .create_patron(&owner, &format!("p{i}@example.org"), &format!("P{i}"))
            .await;
        app.create_pledge(&owner, p, tier["id"].as_i64().unwrap(), None)
            .await;
    }
    let gold = sponsor_tier(&app, &owner, "Gold", 120_000).await;
    let silver = sponsor_tier(&app, &owner, "Silver", 60_000).await;
    for (i, t) in [(0, gold), (1, silver), (2, silver)] {
        let id = create_sponsor(
            &app,
            &owner,
            t,
            &format!("Sponsor{i}"),
            &format!("https://s{i}.example/"),
            today() + Duration::days(30),
        )
        .await;
        upload_logo(
            &app,
            &owner,
            id,
            png(200, 100, [200, 0, 200]),
            &format!("Sponsor{i} logo"),
        )
        .await;
        approve(&app, &owner, id).await;
    }
    app.ctx.public.refresh().await.unwrap();

    // The embed can be framed, has a fixed height, opens links on top.
    let res = app.get("/embed/progress", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("x-frame-options").is_none());
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("frame-ancestors 'none'"),
        "no instance configured: {csp}"
    );
    assert!(!csp.contains("script-src") || csp.contains("script-src 'none'"));
    let html = res.text().await.unwrap();
    assert!(html.contains("3 patrons contribute €15 a month"), "{html}");
    assert!(html.contains("75% of the €20 monthly goal"), "{html}");
    assert!(html.contains(r#"target="_top""#) && !html.contains("<script"));
    assert!(html.contains("height: 120px"));
    assert!(!html.contains("<link rel=\"stylesheet\""), "CSS is inline");
    let dark = app
        .get("/embed/progress?theme=dark", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(dark.contains("#191b22") && !html.contains("#191b22"));

    // Badges: SVG that parses, and shields.io endpoint JSON.
    for name in ["patrons", "monthly", "goal"] {
        let res = app.get(&format!("/badge/{name}.svg"), None).await;
        assert_eq!(res.headers()["content-type"], "image/svg+xml");
        let svg = res.text().await.unwrap();
        roxmltree::Document::parse(&svg).unwrap();
        let j = app.get_json(&format!("/badge/{name}.json"), None).await;
        assert_eq!(j["schemaVersion"], 1);
        assert_eq!(j["label"], name);
        assert!(j["message"].is_string() && j["color"].is_string());
        assert!(j["cacheSeconds"].as_u64().unwrap() >= 300);
        assert!(svg.contains(j["message"].as_str().unwrap()));
    }
    assert_eq!(
        app.get_json("/badge/patrons.json", None).await["message"],
        "3"
    );
    assert_eq!(
        app.get_json("/badge/monthly.json", None).await["message"],
        "€15/month"
    );
    assert_eq!(
        app.get_json("/badge/goal.json", None).await["message"],
        "75% of €20"
    );
    assert_eq!(
        app.get("/badge/nope.svg", None).await.status(),
        StatusCode::NOT_FOUND
    );
    let res = app.get("/badge/patrons.svg", None).await;
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    let again = app
        .client
        .get(app.url("/badge/patrons.svg"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // The wall: Open Collective parameters; higher tiers larger.
    let wall = app
        .get("/sponsors.svg?avatarHeight=80&margin=10&width=500", None)
        .await
        .text()
        .await
        .unwrap();
    let doc = roxmltree::Document::parse(&wall).unwrap();
    assert_eq!(doc.root_element().attribute("width"), Some("500"));
    let heights: Vec<u32> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "image")
        .map(|n| n.attribute("height").unwrap().parse().unwrap())
        .collect();
    assert_eq!(heights, [80, 60, 60], "gold larger than silver");
    let silver_only = app
        .get("/sponsors.svg?tier=silver&limit=1", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        silver_only.contains("Sponsor1")
            && !silver_only.contains("Sponsor0")
            && !silver_only.contains("Sponsor2")
    );
    let by_id = app
        .get(&format!("/sponsors.svg?tier={gold}"), None)
        .await
        .text()
        .await
        .unwrap();
    assert!(by_id.contains("Sponsor0") && !by_id.contains("Sponsor1"));
    let res = app.get("/sponsors.svg?format=png&width=400", None).await;
    assert_eq!(res.headers()["content-type"], "image/png");
    let img = image::load_from_memory(&res.bytes().await.unwrap())
        .unwrap()
        .to_rgba8();
    assert_eq!(img.width(), 400);
    assert!(
        img.pixels().filter(|p| p.0 == [200, 0, 200, 255]).count() > 1000,
        "logos drawn"
    );
    expect_problem(
        app.get("/sponsors.svg?format=gif", None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;

    // The link-preview card.
    let res = app.get("/support/card.png", None).await;
    assert_eq!(res.headers()["content-type"], "image/png");
    let card = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
    assert_eq!((card.width(), card.height()), (1200, 630));
    let page = app.get("/support", None).await.text().await.unwrap();
    for tag in [
        "og:title",
        "og:description",
        "og:image\" content=\"",
        "og:image:width\" content=\"1200",
        "og:image:height\" content=\"630",
    ] {
        assert!(page.contains(tag), "{tag}");
    }
}

async fn funding_json_follows_schema_v1_1_0(app: TestApp) {
    let owner = app.owner_token().await;
    app.patch(
        "/api/v1/admin/campaign",
        &owner,
        json!({"name": "Example Social", "description": "A friendly server.", "public_base_url": "https://fund.example.social"}),
    )
    .await;
    app.create_tier(
        &owner,
        json!({"kind": "patron", "name": "Supporter", "amount_minor": 300, "interval": "month"}),
    )
    .await;
    app.create_tier(
        &owner,
        json!({"kind": "sponsor", "name": "Gold", "amount_minor": 120_050, "interval": "year"}),
    )
    .await;
    app.post_ok(
        "/api/v1/admin/contributions",
        &owner,
        json!({"amount_minor": 5025, "date": today()}),
        StatusCode::CREATED,
    )
    .await;
    let res = app.get("/funding.json", None).await;
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let f: Value = app.public_json("/funding.json").await;
    let guid = regex_like(r"^[a-z0-9-]+$");

    assert_eq!(f["$schema"], "https://fundingjson.org/schema/v1.1.0.json");
    assert_eq!(f["version"], "v1.1.0");
    let e = &f["entity"];
    assert!(
        ["individual", "group", "organisation", "other"].contains(&e["type"].as_str().unwrap())
    );
    assert!(
        ["owner", "steward", "maintainer", "contributor", "other"]
            .contains(&e["role"].as_str().unwrap())
    );
    assert_eq!(e["name"], "Example Social");
    // No pages.entity_email: no made-up address (see formats.rs).
    assert!(e.get("email").is_none());
    assert_eq!(e["description"], "A friendly server.");
    assert_eq!(e["webpageUrl"]["url"], "https://fund.example.social");
    assert!(
        e["webpageUrl"].get("wellKnown").is_none(),
        "same host, no wellKnown"
    );

    let p = &f["projects"][0];
    assert!(guid(p["guid"].as_str().unwrap()), "{}", p["guid"]);
    assert_eq!(p["name"], "Example Social");
    assert!(
        p["webpageUrl"]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    assert!(
        p["repositoryUrl"]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    assert!(!p["licenses"].as_array().unwrap().is_empty());
    for l in p["licenses"].as_array().unwrap() {
        assert!(l.as_str().unwrap().starts_with("spdx:"), "{l}");
    }
    for t in p["tags"].as_array().unwrap() {
        assert!(guid(t.as_str().unwrap()), "{t}");
    }

    let channels = f["funding"]["channels"].as_array().unwrap();
    assert_eq!(channels.len(), 1);
    assert_eq!(channels[0]["type"], "payment-provider");
    assert_eq!(
        channels[0]["address"],
        "https://fund.example.social/support"
    );
    let channel_guid = channels[0]["guid"].as_str().unwrap();
    assert!(guid(channel_guid));

    let plans = f["funding"]["plans"].as_array().unwrap();
    assert_eq!(plans.len(), 3);
    let by_name = |n: &str| plans.iter().find(|p| p["name"] == n).unwrap();
    let supporter = by_name("Supporter");
    assert_eq!(supporter["amount"], json!(3));
    assert_eq!(supporter["frequency"], "monthly");
    assert_eq!(supporter["currency"], "EUR");
    assert_eq!(supporter["status"], "active");
    let gold = by_name("Gold");
    assert_eq!(gold["amount"].to_string(), "1200.5", "exact main units");
    assert_eq!(gold["frequency"], "yearly");
    let gift = by_name("One-time gift");
    assert_eq!(gift["amount"], json!(0));
    assert_eq!(gift["frequency"], "one-time");
    let mut guids = std::collections::HashSet::new();
    for plan in plans {
        assert!(guid(plan["guid"].as_str().unwrap()));
        assert!(
            guids.insert(plan["guid"].as_str().unwrap().to_owned()),
            "guids are unique"
        );
        assert_eq!(plan["channels"], json!([channel_guid]));
        assert!(plan["description"].is_string());
    }

    let history = f["funding"]["history"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    let year = &history[0];
    assert_eq!(year["year"], today().year());
    assert_eq!(year["income"].to_string(), "50.25");
    assert_eq!(year["expenses"], json!(0));
    assert_eq!(year["taxes"], json!(0));
    assert_eq!(year["currency"], "EUR");
}

fn regex_like(_pattern: &str) -> impl Fn(&str) -> bool {
    // ^[a-z0-9-]+$
    |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    }
}

// ---- Privacy, with the default threshold of 3 ----

on_both_backends!(@adjust (|s| s.pages.privacy_threshold = 3) no_public_number_reveals_one_persons_amount);

async fn no_public_number_reveals_one_persons_amount(app: TestApp) {
    let owner = app.owner_token().await;
    app.patch(
        "/api/v1/admin/campaign",
        &owner,
        json!({"monthly_goal_minor": 10_000}),
    )
    .await;
    let big = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "Big", "amount_minor": 1700, "interval": "month"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let small = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "Small", "amount_minor": 300, "interval": "month"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let person = |email: &'static str, name: &'static str, visibility: &'static str| {
        let app = &app;
        let owner = owner.clone();
        async move {
            app.post_ok(
                "/api/v1/admin/patrons",
                &owner,
                json!({"email": email, "display_name": name, "visibility": visibility}),
                StatusCode::CREATED,
            )
            .await["id"]
                .as_i64()
                .unwrap()
        }
    };
    let ann = person("ann@example.org", "Ann Public", "public").await;
    let bob = person("bob@example.org", "Bob Private", "private").await;
    app.create_pledge(&owner, ann, big, None).await;
    app.create_pledge(&owner, bob, big, None).await;

    // Two contributors: counted, but no total and no tier count.
    let f = app.funding().await;
    assert_eq!(f["patrons_count"], 2);
    assert!(f["monthly_recurring"].is_null() && f["progress"].is_null());
    assert!(f["raised_total"].is_null());
    assert!(
        f["tiers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["supporters"].is_null())
    );
    assert_eq!(
        app.get_json("/badge/monthly.json", None).await["message"],
        "not shown yet"
    );
    let goal = app.get_json("/badge/goal.json", None).await["message"].clone();
    assert!(!goal.as_str().unwrap().contains('%'), "{goal}");
    for (path, body) in all_views(&app).await {
        assert!(
            !body.contains("€34") && !body.contains("3400") && !body.contains("34%"),
            "{path}: {body}"
        );
    }
    let page = app.get("/support", None).await.text().await.unwrap();
    assert!(page.contains("2 patrons contribute every month"), "{page}");

    // A secret patron joins: three contributors, totals appear; the small
    // tier's single supporter is still not counted publicly.
    let cat = person("cat@example.org", "Cat Secret", "secret").await;
    app.create_pledge(&owner, cat, small, None).await;
    let f = app.funding().await;
    assert_eq!(f["patrons_count"], 3);
    assert_eq!(f["monthly_recurring"]["amount_minor"], 3700);
    let tiers = f["tiers"].as_array().unwrap();
    assert!(tiers.iter().find(|t| t["name"] == "Small").unwrap()["supporters"].is_null());
    // Big has 2 < 3 supporters as well.
    assert!(tiers.iter().find(|t| t["name"] == "Big").unwrap()["supporters"].is_null());
    let page = app.get("/support", None).await.text().await.unwrap();
    assert!(page.contains("3 patrons contribute €37 a month"), "{page}");
    assert!(page.contains("Ann Public"));
    assert!(page.contains("and 2 more who prefer not to be named"));
    for (path, body) in all_views(&app).await {
        assert!(
            !body.contains("Bob Private"),
            "{path} names a private patron"
        );
        assert!(!body.contains("Cat Secret"), "{path} names a secret patron");
        assert!(!body.contains("@example.org"), "{path} leaks an email");
    }
}

// ---- Mastodon's donation campaign ----

on_both_backends!(without_a_campaign_mastodon_gets_204);

async fn without_a_campaign_mastodon_gets_204(app: TestApp) {
    let res = app
        .get(
            "/mastodon/campaign?platform=web&seed=7&locale=en&environment=production",
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
}

fn message(locale: &str, banner: &str) -> patronage::config::CampaignMessage {
    patronage::config::CampaignMessage {
        locale: locale.into(),
        banner_message: banner.into(),
        banner_button_text: "Donate".into(),
        donation_message: format!("{banner}: we are funded by people like you."),
        donation_button_text: "Donate".into(),
        donation_success_post: "I just donated to keep example.social running!".into(),
    }
}

fn with_campaign(s: &mut patronage::config::Settings) {
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

on_both_backends!(@adjust (with_campaign) campaign_json_follows_mastodon);

async fn campaign_json_follows_mastodon(app: TestApp) {
    let get = |q: &'static str| {
        let app = &app;
        async move {
            let res = app
                .get(
                    &format!("/mastodon/campaign?platform=web&environment=production&{q}"),
                    None,
                )
                .await;
            expect_json(res, StatusCode::OK).await
        }
    };
    let en0 = get("seed=0&locale=en").await;
    // Field by field, as Mastodon 4.6 reads it.
    for field in [
        "id",
        "locale",
        "banner_message",
        "banner_button_text",
        "donation_message",
        "donation_button_text",
        "donation_success_post",
        "default_currency",
        "donation_url",
    ] {
        assert!(
            en0[field].is_string() && !en0[field].as_str().unwrap().is_empty(),
            "{field}: {en0}"
        );
    }
    assert_eq!(en0["locale"], "en");
    assert_eq!(en0["default_currency"], "EUR");
    assert_eq!(en0["donation_url"], "https://fund.example.social/support");
    let amounts = &en0["amounts"];
    for (kind, expected) in [
        ("one_time", json!([1000, 2500, 5000])),
        ("monthly", json!([300, 500, 1000])),
        ("yearly", json!([3000, 6000])),
    ] {
        assert_eq!(amounts[kind]["EUR"], expected, "{kind}");
        assert!(
            amounts[kind]["EUR"]
                .as_array()
                .unwrap()
                .iter()
                .all(|a| a.is_i64()),
            "hundredths of the main unit, integers"
        );
    }
    assert_eq!(en0["banner_message"], "Keep us online");
    // The seed picks a variant, deterministically; each has its own id.
    let en1 = get("seed=1&locale=en").await;
    assert_eq!(en1["banner_message"], "Servers cost money");
    assert_eq!(get("seed=98&locale=en").await, en0);
    assert_ne!(en1["id"], en0["id"]);
    assert!(en0["id"].as_str().unwrap().starts_with("winter-2026"));
    // Locales: exact, by language, else the default.
    let de = get("seed=5&locale=de-AT").await;
    assert_eq!(de["locale"], "de");
    assert_eq!(de["banner_message"], "Hilf uns");
    assert_ne!(de["id"], en0["id"]);
    let fr = get("seed=0&locale=fr").await;
    assert_eq!(fr["locale"], "en");
    assert_eq!(get("seed=oops").await["locale"], "en");
    // Cacheable, like every public view.
    let res = app.get("/mastodon/campaign?seed=0&locale=en", None).await;
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    let again = app
        .client
        .get(app.url("/mastodon/campaign?seed=0&locale=en"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
}

// ---- The blocklist ----

fn blocking(s: &mut patronage::config::Settings) {
    s.sponsors.domain_blocklist = vec!["casino.example".into()];
}

on_both_backends!(@adjust (blocking) blocked_domains_are_refused_on_application_and_approval);

async fn blocked_domains_are_refused_on_application_and_approval(app: TestApp) {
    let owner = app.owner_token().await;
    let gold = sponsor_tier(&app, &owner, "Gold", 120_000).await;
    let res = app
        .post(
            "/api/v1/admin/sponsors",
            &owner,
            json!({"company_name": "Lucky", "website_url": "https://WWW.Casino.Example/win", "contact_email": "a@lucky.example", "tier_id": gold}),
        )
        .await;
    let problem = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "website_url");
    // Applied before the domain was blocked (written straight to the store):
    // approval refuses it.
    let draft = patronage::domain::supporter::SponsorDraft::parse(
        "Lucky",
        "https://casino.example/",
        "a@lucky.example",
        gold,
        Some(today() + Duration::days(30)),
        None,
    )
    .unwrap();
    // `record` skips the blocklist check that `create` makes.
    let row = patronage::service::sponsors::record(
        &app.db,
        &patronage::store::audit::Actor::cli(),
        &draft,
        None,
        false,
    )
    .await
    .unwrap();
    let res = app
        .post(
            &format!("/api/v1/admin/sponsors/{}/approve", row.id),
            &owner,
            json!({}),
        )
        .await;
    let problem = expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    assert_eq!(problem["errors"][0]["field"], "website_url");
    assert_everywhere(&app, "Lucky", false, &[]).await;
}

// ---- The support page's forms ----

crate::with_stripe_on_both_backends!(the_support_page_forms_lead_to_checkout);

async fn the_support_page_forms_lead_to_checkout(
    app: TestApp,
    _fake: crate::fake_stripe::FakeStripe,
) {
    let owner = app.owner_token().await;
    let tier = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "Patron", "amount_minor": 500, "interval": "month"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    app.ctx.public.refresh().await.unwrap();
    let page = app.get("/support", None).await.text().await.unwrap();
    assert!(
        page.contains(r#"action="/support/checkout""#) && page.contains(r#"<label for="email-"#)
    );

    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let tier_s = tier.to_string();
    let form = [
        ("kind", "patron"),
        ("tier_id", tier_s.as_str()),
        ("email", "ann@example.org"),
        ("display_name", "Ann"),
        ("visibility", "public"),
    ];
    let res = no_redirects
        .post(app.url("/support/checkout"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let location = res.headers()["location"].to_str().unwrap();
    assert!(
        location.contains("cs_"),
        "to the Checkout session: {location}"
    );

    // Mistakes come back as a page that says what to fix, escaped.
    let bad = [
        ("kind", "gift"),
        ("amount", "abc"),
        ("email", "<b>nope</b>"),
        ("display_name", "Ann"),
    ];
    let res = no_redirects
        .post(app.url("/support/checkout"))
        .form(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = res.text().await.unwrap();
    assert!(
        html.contains("amount") && !html.contains("<b>nope"),
        "{html}"
    );
}

/// A replica notices the database's data version and rebuilds its own
/// snapshot: the page, the wall and the badges follow (within
/// `public.snapshot_poll_secs`; polled here until they do).
async fn another_replica_follows_within_its_poll(app: TestApp) {
    // The owner first: a replica started while no owner exists would issue
    // a new setup token.
    let owner = app.owner_token().await;
    let replica = app.replica().await;
    let gold = sponsor_tier(&app, &owner, "Gold", 120_000).await;
    let id = create_sponsor(
        &app,
        &owner,
        gold,
        "Replicated Inc",
        "https://replicated.example/",
        today() + Duration::days(30),
    )
    .await;
    let on_replica = |path: &'static str| {
        let url = format!("{}{path}", replica.base);
        let client = app.client.clone();
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    };
    assert!(!on_replica("/sponsors.svg").await.contains("Replicated Inc"));
    approve(&app, &owner, id).await;
    let mut seen = false;
    for _ in 0..100 {
        if on_replica("/sponsors.svg").await.contains("Replicated Inc")
            && on_replica("/support").await.contains("Replicated Inc")
        {
            seen = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(seen, "the replica never showed the approved sponsor");
}

async fn a_huge_logo_is_refused_from_its_header(app: TestApp) {
    let owner = app.owner_token().await;
    let gold = sponsor_tier(&app, &owner, "Gold", 120_000).await;
    let id = create_sponsor(
        &app,
        &owner,
        gold,
        "Acme",
        "https://acme.example/",
        today() + Duration::days(30),
    )
    .await;
    // 8 KiB of PNG that decodes to 8192x8192 pixels (256 MiB as RGBA).
    let bomb = include_bytes!("../fixtures/empty-8192x8192.png").to_vec();
    let res = upload_logo(&app, &owner, id, bomb, "Acme").await;
    let problem = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "logo");
    let message = problem["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("8192x8192"), "{message}");
    // A real logo still goes through.
    let res = upload_logo(&app, &owner, id, png(800, 400, [1, 2, 3]), "Acme").await;
    expect_json(res, StatusCode::CREATED).await;
}

async fn any_wall_parameters_answer_a_wall(app: TestApp) {
    let owner = app.owner_token().await;
    let gold = sponsor_tier(&app, &owner, "Gold", 120_000).await;
    let id = create_sponsor(
        &app,
        &owner,
        gold,
        "Acme",
        "https://acme.example/",
        today() + Duration::days(30),
    )
    .await;
    approve(&app, &owner, id).await;
    app.ctx.public.refresh().await.unwrap();
    // This one used to panic (a clamp whose minimum was above its maximum).
    for query in [
        "width=100&margin=50&avatarHeight=256",
        "width=100&margin=50&avatarHeight=256&format=png",
        "width=0&margin=0&avatarHeight=0&limit=0",
        "width=4294967295&margin=4294967295&avatarHeight=4294967295&limit=18446744073709551615",
        "width=4294967295&margin=4294967295&avatarHeight=4294967295&format=png",
    ] {
        let res = app.get(&format!("/sponsors.svg?{query}"), None).await;
        assert_eq!(res.status(), StatusCode::OK, "{query}");
        let body = res.bytes().await.unwrap();
        if query.ends_with("png") {
            image::load_from_memory(&body).unwrap_or_else(|e| panic!("{query}: {e}"));
        } else {
            let text = String::from_utf8(body.to_vec()).unwrap();
            assert!(text.contains("Acme"), "{query}");
        }
    }
}

async fn an_empty_wall_is_a_real_png(app: TestApp) {
    let res = app.get("/sponsors.svg?format=png", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/png");
    let img = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(img.width(), 900);
    assert!(img.height() > 0);
    // The SVG has the same size.
    let svg = app.get("/sponsors.svg", None).await.text().await.unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    assert_eq!(
        doc.root_element().attribute("height"),
        Some(img.height().to_string().as_str())
    );
}

/// The hot views are served before the router (`http::views`), for GET
/// only: HEAD still takes the router, its layers and handlers, and answers
/// with the headers its GET would have. So a GET and a HEAD of each view
/// must agree on status and every header but the date and request id, in
/// full and as 304; and the GETs are counted in the router's metric.
async fn views_before_the_router_answer_as_the_router_does(app: TestApp) {
    let owner = app.owner_token().await;
    sponsor_tier(&app, &owner, "Gold", 120_000).await;
    let counted = |metrics: &str| -> u64 {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("patronage_http_requests_total{")
                    && l.contains(r#"method="GET""#)
                    && l.contains(r#"route="/badge/{file}""#)
                    && l.contains(r#"status="200""#)
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    let before = counted(&app.get("/metrics", None).await.text().await.unwrap());

    let headers = |res: &reqwest::Response| {
        let mut h: Vec<(String, String)> = res
            .headers()
            .iter()
            .filter(|(name, _)| *name != "date" && *name != "x-request-id")
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        h.sort();
        h
    };
    let mut paths = PUBLIC_VIEWS.to_vec();
    paths.extend([
        "/api/v1/tiers",
        "/embed/progress?theme=light",
        "/badge/goal.json",
        "/healthz",
    ]);
    for path in paths {
        let ask = |method: reqwest::Method, etag: Option<&str>| {
            let mut req = app
                .client
                .request(method, app.url(path))
                .header("origin", "https://elsewhere.example");
            if let Some(etag) = etag {
                req = req.header("if-none-match", etag);
            }
            req.send()
        };
        let get = ask(reqwest::Method::GET, None).await.unwrap();
        let head = ask(reqwest::Method::HEAD, None).await.unwrap();
        assert_eq!(get.status(), StatusCode::OK, "{path}");
        assert_eq!(head.status(), StatusCode::OK, "{path}");
        assert_eq!(headers(&get), headers(&head), "{path}");
        assert_eq!(get.headers()["x-request-id"].len(), 36, "{path}");
        let Some(etag) = get
            .headers()
            .get("etag")
            .map(|e| e.to_str().unwrap().to_owned())
        else {
            continue;
        };
        let get = ask(reqwest::Method::GET, Some(&etag)).await.unwrap();
        let head = ask(reqwest::Method::HEAD, Some(&etag)).await.unwrap();
        assert_eq!(get.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(head.status(), StatusCode::NOT_MODIFIED, "{path}");
        // The router adds a zero Content-Length to a HEAD's 304; a GET's
        // 304 goes without, from the router as from here.
        let mut head_headers = headers(&head);
        head_headers
            .retain(|(name, value)| (name.as_str(), value.as_str()) != ("content-length", "0"));
        assert_eq!(headers(&get), head_headers, "{path}");
    }

    let after = counted(&app.get("/metrics", None).await.text().await.unwrap());
    assert!(
        after >= before + 3,
        "badge GETs counted: {before} then {after}"
    );
}
