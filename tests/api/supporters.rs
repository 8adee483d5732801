//! Patrons and sponsors: search, pagination, and sponsor publication.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, expect_problem};
use crate::on_both_backends;

on_both_backends!(
    patrons_are_searchable_and_paginated,
    a_sponsor_is_public_only_while_approved_and_paid,
    sponsor_input_is_validated,
);

async fn patrons_are_searchable_and_paginated(app: TestApp) {
    let owner = app.owner_token().await;
    for i in 0..5 {
        app.create_patron(
            &owner,
            &format!("person{i}@example.org"),
            &format!("Person {i}"),
        )
        .await;
    }
    app.create_patron(&owner, "ann_100%@example.org", "Ann Lovelace")
        .await;
    let res = app
        .post(
            "/api/v1/admin/patrons",
            &owner,
            json!({"email": "PERSON0@example.org", "display_name": "Dup"}),
        )
        .await;
    let problem = expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    assert_eq!(problem["errors"][0]["field"], "email");

    let page1 = app
        .get_json("/api/v1/admin/patrons?limit=2", Some(&owner))
        .await;
    assert_eq!(page1["items"].as_array().unwrap().len(), 2);
    let after = page1["next_after"].as_i64().unwrap();
    let page2 = app
        .get_json(
            &format!("/api/v1/admin/patrons?limit=2&after={after}"),
            Some(&owner),
        )
        .await;
    assert_eq!(page2["items"][0]["email"], "person2@example.org");

    let found = app
        .get_json("/api/v1/admin/patrons?q=LOVELACE", Some(&owner))
        .await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    // LIKE wildcards in the search are literal characters.
    let found = app
        .get_json("/api/v1/admin/patrons?q=100%25", Some(&owner))
        .await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    let found = app
        .get_json("/api/v1/admin/patrons?q=_", Some(&owner))
        .await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    assert!(found["next_after"].is_null());

    expect_problem(
        app.get("/api/v1/admin/patrons?limit=0", Some(&owner)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
    expect_problem(
        app.get("/api/v1/admin/patrons?limit=5000", Some(&owner))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
}

async fn a_sponsor_is_public_only_while_approved_and_paid(app: TestApp) {
    let owner = app.owner_token().await;
    let tier = app.create_tier(&owner, json!({"kind": "sponsor", "name": "Gold", "amount_minor": 100000, "interval": "year", "slots": 1})).await;
    let today = chrono::Utc::now().date_naive();
    let sponsor = |name: &str, paid: chrono::NaiveDate| {
        json!({
        "company_name": name, "website_url": format!("https://{}.example/", name.to_lowercase()),
        "contact_email": "billing@example.com", "tier_id": tier["id"], "paid_through": paid.to_string()})
    };
    let acme = app
        .post_ok(
            "/api/v1/admin/sponsors",
            &owner,
            sponsor("Acme", today + chrono::Duration::days(10)),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(acme["sponsor_status"], "pending");
    let public = || async {
        app.get_json("/api/v1/sponsors", None).await["sponsors"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(public().await, 0, "pending sponsors are hidden");
    assert_eq!(app.funding().await["sponsors_count"], 0);

    let approve = format!("/api/v1/admin/sponsors/{}/approve", acme["id"]);
    app.post_ok(
        &approve,
        &owner,
        json!({"reason": "known company"}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(public().await, 1);
    assert_eq!(app.funding().await["sponsors_count"], 1);
    let listed = app.get_json("/api/v1/sponsors", None).await;
    assert_eq!(listed["sponsors"][0]["url"], "https://acme.example/");
    assert_eq!(listed["sponsors"][0]["tier"]["name"], "Gold");

    // The only slot is taken: a second approval is refused.
    let beta = app
        .post_ok(
            "/api/v1/admin/sponsors",
            &owner,
            sponsor("Beta", today + chrono::Duration::days(10)),
            StatusCode::CREATED,
        )
        .await;
    let res = app
        .post(
            &format!("/api/v1/admin/sponsors/{}/approve", beta["id"]),
            &owner,
            json!({}),
        )
        .await;
    expect_problem(res, StatusCode::CONFLICT, "conflict").await;

    // The paid period ends: the sponsor stays for the grace period (14
    // days by default), then disappears.
    let set_paid_through = |date: chrono::NaiveDate| {
        let (app, owner, id) = (&app, &owner, acme["id"].clone());
        async move {
            app.post_ok(
                &format!("/api/v1/admin/sponsors/{id}/paid-through"),
                owner,
                json!({"paid_through": date}),
                StatusCode::OK,
            )
            .await;
        }
    };
    set_paid_through(today - chrono::Duration::days(1)).await;
    assert_eq!(public().await, 1, "in its grace period");
    set_paid_through(today - chrono::Duration::days(15)).await;
    assert_eq!(public().await, 0, "expired sponsors vanish");

    let reject = format!("/api/v1/admin/sponsors/{}/reject", beta["id"]);
    expect_problem(
        app.post(&reject, &owner, json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
    let rejected = app
        .post_ok(&reject, &owner, json!({"reason": "casino"}), StatusCode::OK)
        .await;
    assert_eq!(rejected["sponsor_status"], "rejected");
    let pending = app
        .get_json("/api/v1/admin/sponsors?status=rejected", Some(&owner))
        .await;
    assert_eq!(pending["items"][0]["display_name"], "Beta");
    let audit = app
        .get_json("/api/v1/admin/audit?action=sponsor.reject", Some(&owner))
        .await;
    assert_eq!(audit["items"][0]["details"]["reason"], "casino");
}

async fn sponsor_input_is_validated(app: TestApp) {
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
    let bad = json!({"company_name": "", "website_url": "javascript:alert(1)", "contact_email": "not-an-email", "tier_id": tier["id"]});
    let problem = expect_problem(
        app.post("/api/v1/admin/sponsors", &owner, bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
    let fields: Vec<_> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["company_name", "website_url", "contact_email"]);

    for url in [
        "https://user:pw@evil.example",
        "ftp://files.example",
        "data:text/html,x",
    ] {
        let body = json!({"company_name": "X", "website_url": url, "contact_email": "a@b.example", "tier_id": tier["id"]});
        let res = app.post("/api/v1/admin/sponsors", &owner, body).await;
        expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
    }
    let wrong_tier = json!({"company_name": "X", "website_url": "https://x.example", "contact_email": "a@b.example", "tier_id": patron_tier["id"]});
    let problem = expect_problem(
        app.post("/api/v1/admin/sponsors", &owner, wrong_tier).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "tier_id");
}
