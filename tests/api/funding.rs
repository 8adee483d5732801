//! The public totals an about page shows.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, minor};
use crate::on_both_backends;

on_both_backends!(
    totals_count_patrons_and_normalise_yearly_pledges,
    progress_toward_the_monthly_goal,
    public_responses_are_cacheable_and_cors_open,
    public_views_never_expose_emails,
);

async fn totals_count_patrons_and_normalise_yearly_pledges(app: TestApp) {
    let owner = app.owner_token().await;
    let monthly = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "Monthly", "amount_minor": 500, "interval": "month"}),
        )
        .await;
    let yearly = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "Yearly", "amount_minor": 6000, "interval": "year"}),
        )
        .await;
    let (m, y) = (
        monthly["id"].as_i64().unwrap(),
        yearly["id"].as_i64().unwrap(),
    );
    let ann = app.create_patron(&owner, "ann@example.org", "Ann").await;
    let bob = app.create_patron(&owner, "bob@example.org", "Bob").await;
    let cat = app.create_patron(&owner, "cat@example.org", "Cat").await;
    app.create_pledge(&owner, ann, m, None).await;
    app.create_pledge(&owner, ann, y, None).await; // two pledges, one patron
    app.create_pledge(&owner, bob, y, None).await;
    let cats = app.create_pledge(&owner, cat, m, None).await;

    let f = app.funding().await;
    assert_eq!(f["patrons_count"], 3);
    // 500 + 500 (Ann, Cat) + (6000 + 6000) / 12
    assert_eq!(minor(&f["monthly_recurring"]), 2000);
    assert_eq!(f["monthly_recurring"]["display"], "€20");
    let tiers = f["tiers"].as_array().unwrap();
    assert_eq!(
        tiers.iter().find(|t| t["name"] == "Monthly").unwrap()["supporters"],
        2
    );
    assert_eq!(
        tiers.iter().find(|t| t["name"] == "Yearly").unwrap()["supporters"],
        2
    );

    let path = format!("/api/v1/admin/pledges/{}/cancel", cats["id"]);
    app.post_ok(
        &path,
        &owner,
        json!({"reason": "moved away"}),
        StatusCode::OK,
    )
    .await;
    let f = app.funding().await;
    assert_eq!(f["patrons_count"], 2);
    assert_eq!(minor(&f["monthly_recurring"]), 1500);
}

async fn progress_toward_the_monthly_goal(app: TestApp) {
    let owner = app.owner_token().await;
    assert!(app.funding().await["goal"].is_null());
    assert!(app.funding().await["progress"].is_null());
    app.patch(
        "/api/v1/admin/campaign",
        &owner,
        json!({"monthly_goal_minor": 3000}),
    )
    .await;
    let tier = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "Patron", "amount_minor": 1000, "interval": "month"}),
        )
        .await;
    let ann = app.create_patron(&owner, "ann@example.org", "Ann").await;
    app.create_pledge(&owner, ann, tier["id"].as_i64().unwrap(), None)
        .await;
    let f = app.funding().await;
    assert_eq!(f["goal"]["display"], "€30");
    assert_eq!(f["progress"]["percent"], 33);
    assert_eq!(f["progress"]["basis_points"], 3333);
}

async fn public_responses_are_cacheable_and_cors_open(app: TestApp) {
    let owner = app.owner_token().await;
    for path in ["/api/v1/funding", "/api/v1/tiers", "/api/v1/sponsors"] {
        let res = app
            .client
            .get(app.url(path))
            .header("origin", "https://social.example")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["access-control-allow-origin"], "*");
        assert!(
            res.headers()["cache-control"]
                .to_str()
                .unwrap()
                .starts_with("public, max-age=")
        );
        let etag = res.headers()["etag"].to_str().unwrap().to_owned();
        let again = app
            .client
            .get(app.url(path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    }
    // A change gives a new ETag, so a cached copy is not reused.
    let before = app.get("/api/v1/funding", None).await.headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    app.post_ok(
        "/api/v1/admin/contributions",
        &owner,
        json!({"amount_minor": 100, "date": chrono::Utc::now().date_naive()}),
        StatusCode::CREATED,
    )
    .await;
    let res = app
        .client
        .get(app.url("/api/v1/funding"))
        .header("if-none-match", &before)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

async fn public_views_never_expose_emails(app: TestApp) {
    let owner = app.owner_token().await;
    let tier = app
        .create_tier(
            &owner,
            json!({"kind": "sponsor", "name": "Gold", "amount_minor": 100000, "interval": "year"}),
        )
        .await;
    let patron_tier = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "P", "amount_minor": 100, "interval": "month"}),
        )
        .await;
    let ann = app
        .create_patron(&owner, "secret.ann@example.org", "Ann")
        .await;
    app.create_pledge(&owner, ann, patron_tier["id"].as_i64().unwrap(), None)
        .await;
    let paid = (chrono::Utc::now().date_naive() + chrono::Duration::days(30)).to_string();
    let sponsor = app.post_ok("/api/v1/admin/sponsors", &owner,
        json!({"company_name": "ACME", "website_url": "https://acme.example", "contact_email": "billing@acme.example",
               "tier_id": tier["id"], "paid_through": paid}), StatusCode::CREATED).await;
    app.post_ok(
        &format!("/api/v1/admin/sponsors/{}/approve", sponsor["id"]),
        &owner,
        json!({}),
        StatusCode::OK,
    )
    .await;
    for path in ["/api/v1/funding", "/api/v1/tiers", "/api/v1/sponsors"] {
        let body = app.get(path, None).await.text().await.unwrap();
        assert!(!body.contains('@'), "{path} leaks an email: {body}");
    }
    let sponsors = app.get_json("/api/v1/sponsors", None).await;
    assert_eq!(sponsors["sponsors"][0]["name"], "ACME");
}
