//! Input refused at the edge: absurd dates, amounts past the cap, control
//! characters and bidirectional overrides. Each answers 422 problem+json,
//! never a 5xx or a panic, and leaves the public figures served.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::fake_stripe::FakeStripe;
use crate::helpers::{OWNER_EMAIL, TestApp, expect_json, expect_problem, minor};
use crate::{on_both_backends, with_stripe_on_both_backends};

on_both_backends!(
    absurd_dates_are_refused_on_every_route,
    control_characters_are_refused_before_the_database,
);

with_stripe_on_both_backends!(
    amounts_past_the_cap_are_refused_and_totals_stay_served,
    bidi_overrides_never_reach_a_public_name,
);

async fn refused(res: reqwest::Response) -> Value {
    expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await
}

async fn absurd_dates_are_refused_on_every_route(app: TestApp) {
    let owner = app.owner_token().await;
    let get = |path: String| {
        let app = &app;
        let owner = owner.clone();
        async move { app.get(&path, Some(&owner)).await }
    };

    // The reported panic, and its relatives.
    for query in [
        "to=-262143-01-01",
        "from=-262143-01-01",
        "to=+262142-12-31",
        "from=1999-12-31",
        "to=2026-02-30",
        "from=2026-05-02&to=2026-05-01",
        "from=2000-01-01&to=2026-01-01",
    ] {
        let problem = refused(get(format!("/api/v1/admin/funding/history?{query}")).await).await;
        assert!(
            problem["errors"][0]["message"].is_string(),
            "{query}: {problem}"
        );
    }
    let fine = expect_json(
        get("/api/v1/admin/funding/history?from=2026-01-01&to=2026-03-01".into()).await,
        StatusCode::OK,
    )
    .await;
    assert!(fine["days"].is_array());
    expect_json(
        get("/api/v1/admin/funding/history".into()).await,
        StatusCode::OK,
    )
    .await;

    for query in [
        "from=-262143-01-01",
        "until=+262142-01-01",
        "from=2026-05-02&until=2026-05-01",
    ] {
        refused(get(format!("/api/v1/admin/ledger?{query}")).await).await;
    }
    expect_json(
        get("/api/v1/admin/ledger?from=2026-01-01&until=2026-02-01".into()).await,
        StatusCode::OK,
    )
    .await;
    refused(get("/api/v1/admin/reports/monthly?from=-262143-01&to=2026-01".into()).await).await;

    // Dates in bodies: the field is named.
    let problem = refused(
        app.post(
            "/api/v1/admin/contributions",
            &owner,
            json!({"amount_minor": 500, "date": "-262143-01-01"}),
        )
        .await,
    )
    .await;
    assert!(
        problem["errors"][0]["field"]
            .as_str()
            .unwrap()
            .contains("date"),
        "{problem}"
    );
    let tier = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "Friend", "amount_minor": 500, "interval": "month"}),
        )
        .await["id"]
        .clone();
    let ann = app.create_patron(&owner, "ann@example.org", "Ann").await;
    refused(
        app.post(
            "/api/v1/admin/pledges",
            &owner,
            json!({"supporter_id": ann, "tier_id": tier, "started_on": "-262143-01-01"}),
        )
        .await,
    )
    .await;
    let sponsor_tier = app
        .create_tier(
            &owner,
            json!({"kind": "sponsor", "name": "Gold", "amount_minor": 50000, "interval": "year"}),
        )
        .await["id"]
        .clone();
    let sponsor = json!({"company_name": "Acme", "website_url": "https://acme.example", "contact_email": "ops@acme.example", "tier_id": sponsor_tier});
    let mut far = sponsor.clone();
    far["paid_through"] = json!("+262142-12-31");
    refused(app.post("/api/v1/admin/sponsors", &owner, far).await).await;
    let acme = app
        .post_ok(
            "/api/v1/admin/sponsors",
            &owner,
            sponsor,
            StatusCode::CREATED,
        )
        .await;
    refused(
        app.post(
            &format!("/api/v1/admin/sponsors/{}/paid-through", acme["id"]),
            &owner,
            json!({"paid_through": "-262143-01-01"}),
        )
        .await,
    )
    .await;
}

async fn control_characters_are_refused_before_the_database(app: TestApp) {
    let owner = app.owner_token().await;

    // The login email (a 500 on PostgreSQL before), escaped in JSON.
    for email in [format!("{OWNER_EMAIL}\u{0}"), format!("\u{0}{OWNER_EMAIL}")] {
        let res = app
            .send(
                Method::POST,
                "/api/v1/admin/login",
                None,
                json!({"email": email, "password": "x"}),
            )
            .await;
        let problem = refused(res).await;
        assert_eq!(problem["errors"][0]["field"], "email", "{problem}");
    }
    // Searches, paths and other query strings.
    for path in [
        "/api/v1/admin/patrons?q=%00",
        "/api/v1/admin/patrons?q=ann%00",
        "/api/v1/admin/sponsors?q=%1b",
        "/api/v1/admin/audit?action=%00",
        "/api/v1/admin/stripe/events/evt_%00/replay",
    ] {
        let res = if path.ends_with("replay") {
            app.post(path, &owner, json!({})).await
        } else {
            app.get(path, Some(&owner)).await
        };
        refused(res).await;
    }
    let res = app.get("/logos/x%00.png", None).await;
    refused(res).await;
    // Names and notes in bodies; tabs and line breaks stay fine in notes.
    let res = app
        .post(
            "/api/v1/admin/patrons",
            &owner,
            json!({"email": "ann@example.org", "display_name": "Ann\u{0}"}),
        )
        .await;
    assert_eq!(refused(res).await["errors"][0]["field"], "display_name");
    let res = app
        .post(
            "/api/v1/admin/contributions",
            &owner,
            json!({"amount_minor": 500, "date": "2026-01-02", "note": "bank\u{7f}"}),
        )
        .await;
    refused(res).await;
    app.post_ok(
        "/api/v1/admin/contributions",
        &owner,
        json!({"amount_minor": 500, "date": "2026-01-02", "note": "bank transfer\n\tref 1"}),
        StatusCode::CREATED,
    )
    .await;
    // Nothing got in, and the service is fine.
    let patrons = app
        .get_json("/api/v1/admin/patrons?q=ann", Some(&owner))
        .await;
    assert_eq!(patrons["items"].as_array().unwrap().len(), 0);
    assert_eq!(
        app.login(OWNER_EMAIL, crate::helpers::PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
}

async fn amounts_past_the_cap_are_refused_and_totals_stay_served(app: TestApp, _fake: FakeStripe) {
    const CAP: i64 = 1_000_000_000_000;
    let owner = app.owner_token().await;
    let pwyw = app
        .create_tier(&owner, json!({"kind": "patron", "name": "Any", "amount_minor": 500, "pwyw_min_minor": 100, "interval": "month"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let ann = app.create_patron(&owner, "ann@example.org", "Ann").await;
    let pledge =
        |amount: i64| json!({"supporter_id": ann, "tier_id": pwyw, "amount_minor": amount});

    // The reported pledge of i64::MAX, and just past the cap.
    for amount in [i64::MAX, CAP + 1] {
        refused(
            app.post("/api/v1/admin/pledges", &owner, pledge(amount))
                .await,
        )
        .await;
    }
    // The public checkout: 422, not Stripe's 502.
    for (kind, amount) in [
        ("patron", i64::MAX),
        ("patron", CAP + 1),
        ("gift", i64::MAX),
    ] {
        let res = app
            .send(
                Method::POST,
                "/api/v1/checkout",
                None,
                json!({"kind": kind, "tier_id": pwyw, "amount_minor": amount, "email": "bo@example.org", "display_name": "Bo"}),
            )
            .await;
        let problem = refused(res).await;
        assert_eq!(problem["errors"][0]["field"], "amount_minor", "{problem}");
    }
    for (path, body) in [
        (
            "/api/v1/admin/contributions",
            json!({"amount_minor": i64::MAX, "date": "2026-01-02"}),
        ),
        (
            "/api/v1/admin/tiers",
            json!({"kind": "patron", "name": "Huge", "amount_minor": 500, "pwyw_min_minor": i64::MAX, "interval": "month"}),
        ),
    ] {
        refused(app.post(path, &owner, body).await).await;
    }
    refused(
        app.patch(
            "/api/v1/admin/campaign",
            &owner,
            json!({"monthly_goal_minor": i64::MAX}),
        )
        .await,
    )
    .await;

    // Pledges at the cap itself are accepted, and their totals still add up.
    for email in ["cy@example.org", "di@example.org"] {
        let id = app.create_patron(&owner, email, "C").await;
        app.post_ok(
            "/api/v1/admin/pledges",
            &owner,
            json!({"supporter_id": id, "tier_id": pwyw, "amount_minor": CAP}),
            StatusCode::CREATED,
        )
        .await;
    }
    let funding = app.funding().await;
    assert_eq!(minor(&funding["monthly_recurring"]), 2 * CAP);
    assert_eq!(app.get("/support", None).await.status(), StatusCode::OK);
}

async fn bidi_overrides_never_reach_a_public_name(app: TestApp, _fake: FakeStripe) {
    const RLO: char = '\u{202E}';
    let owner = app.owner_token().await;
    let tier = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "Friend", "amount_minor": 500, "interval": "month"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let sponsor_tier = app
        .create_tier(
            &owner,
            json!({"kind": "sponsor", "name": "Gold", "amount_minor": 50000, "interval": "month"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let spoof = format!("Ann{RLO}nimda");

    let res = app
        .post(
            "/api/v1/admin/patrons",
            &owner,
            json!({"email": "ann@example.org", "display_name": spoof, "visibility": "public"}),
        )
        .await;
    assert_eq!(refused(res).await["errors"][0]["field"], "display_name");
    for body in [
        json!({"kind": "patron", "tier_id": tier, "email": "bo@example.org", "display_name": spoof, "visibility": "public"}),
        json!({"kind": "gift", "amount_minor": 1000, "email": "bo@example.org", "display_name": format!("\u{2067}{spoof}"), "visibility": "public"}),
        json!({"kind": "sponsor", "tier_id": sponsor_tier, "email": "ops@acme.example", "company_name": spoof, "website_url": "https://acme.example"}),
    ] {
        refused(app.send(Method::POST, "/api/v1/checkout", None, body).await).await;
    }
    // The support page's form takes the same path.
    let res = app
        .client
        .post(app.url("/support/checkout"))
        .form(&[
            ("kind", "patron"),
            ("tier_id", &tier.to_string()),
            ("email", "cy@example.org"),
            ("display_name", &spoof),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Right-to-left names with direction marks are fine.
    app.create_patron(
        &owner,
        "dana@example.org",
        "\u{5d3}\u{5e0}\u{5d4} \u{200f}(Dana)",
    )
    .await;

    app.ctx.public.refresh().await.unwrap();
    for path in [
        "/support",
        "/sponsors.svg",
        "/api/v1/sponsors",
        "/api/v1/funding",
        "/funding.json",
    ] {
        let body = app.get(path, None).await.text().await.unwrap();
        assert!(
            !body.contains(RLO) && !body.contains("nimda"),
            "{path}: {body}"
        );
    }
    let supporters = app.get_json("/api/v1/admin/patrons", Some(&owner)).await;
    assert!(!supporters.to_string().contains("nimda"), "{supporters}");
}
