//! Defining tiers, and what a price change may not do.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, expect_json, expect_problem, minor};
use crate::on_both_backends;

on_both_backends!(
    owner_defines_updates_and_archives_tiers,
    a_price_change_never_changes_what_existing_supporters_pay,
    duplicate_active_names_are_a_conflict,
    slots_limit_how_many_can_pledge,
    pay_what_you_want_tiers_enforce_their_minimum,
);

async fn owner_defines_updates_and_archives_tiers(app: TestApp) {
    let owner = app.owner_token().await;
    let gold = app
        .create_tier(&owner, json!({"kind": "sponsor", "name": "Gold", "description": "Logo on the about page",
                                   "amount_minor": 120000, "interval": "year", "slots": 3, "rank": 1}))
        .await;
    assert_eq!(gold["amount"]["display"], "€1,200");
    assert_eq!(gold["slots"], 3);
    let id = gold["id"].as_i64().unwrap();

    let updated = expect_json(
        app.patch(
            &format!("/api/v1/admin/tiers/{id}"),
            &owner,
            json!({"name": "Gold sponsor", "slots": null}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(updated["name"], "Gold sponsor");
    assert_eq!(updated["slots"], serde_json::Value::Null);
    assert_eq!(updated["description"], "Logo on the about page");

    let public = app.get_json("/api/v1/tiers", None).await;
    assert_eq!(public["tiers"][0]["name"], "Gold sponsor");

    let archived = app
        .post_ok(
            &format!("/api/v1/admin/tiers/{id}/archive"),
            &owner,
            json!({}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(archived["archived"], true);
    let public = app.get_json("/api/v1/tiers", None).await;
    assert_eq!(
        public["tiers"].as_array().unwrap().len(),
        0,
        "archived tiers leave the public list"
    );
    let all = app
        .get_json("/api/v1/admin/tiers?include_archived=true", Some(&owner))
        .await;
    assert_eq!(all.as_array().unwrap().len(), 1);

    let audit = app.get_json("/api/v1/admin/audit", Some(&owner)).await;
    let actions: Vec<_> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        &actions[..3],
        ["tier.archive", "tier.update", "tier.create"]
    );
    assert_eq!(audit["items"][1]["details"]["before"]["name"], "Gold");
    assert_eq!(audit["items"][1]["actor"], crate::helpers::OWNER_EMAIL);
}

async fn a_price_change_never_changes_what_existing_supporters_pay(app: TestApp) {
    let owner = app.owner_token().await;
    let tier = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "Patron", "amount_minor": 500, "interval": "month"}),
        )
        .await;
    let tier_id = tier["id"].as_i64().unwrap();
    let ann = app.create_patron(&owner, "ann@example.org", "Ann").await;
    let pledge = app.create_pledge(&owner, ann, tier_id, None).await;
    assert_eq!(minor(&pledge["amount"]), 500);

    app.patch(
        &format!("/api/v1/admin/tiers/{tier_id}"),
        &owner,
        json!({"amount_minor": 800}),
    )
    .await;
    let bob = app.create_patron(&owner, "bob@example.org", "Bob").await;
    let bobs = app.create_pledge(&owner, bob, tier_id, None).await;
    assert_eq!(
        minor(&bobs["amount"]),
        800,
        "new pledges take the new price"
    );

    let pledges = app
        .get_json(
            &format!("/api/v1/admin/pledges?supporter_id={ann}"),
            Some(&owner),
        )
        .await;
    assert_eq!(
        minor(&pledges["items"][0]["amount"]),
        500,
        "Ann still pays what she agreed to"
    );
    assert_eq!(minor(&app.funding().await["monthly_recurring"]), 1300);
}

async fn duplicate_active_names_are_a_conflict(app: TestApp) {
    let owner = app.owner_token().await;
    let body =
        json!({"kind": "patron", "name": "Supporter", "amount_minor": 300, "interval": "month"});
    let first = app.create_tier(&owner, body.clone()).await;
    let mut shouty = body.clone();
    shouty["name"] = json!("SUPPORTER");
    let res = app.post("/api/v1/admin/tiers", &owner, shouty).await;
    let problem = expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    assert_eq!(problem["errors"][0]["field"], "name");

    // Once archived, the name is free again.
    app.post_ok(
        &format!("/api/v1/admin/tiers/{}/archive", first["id"]),
        &owner,
        json!({}),
        StatusCode::OK,
    )
    .await;
    app.create_tier(&owner, body).await;
}

async fn slots_limit_how_many_can_pledge(app: TestApp) {
    let owner = app.owner_token().await;
    let tier = app.create_tier(&owner, json!({"kind": "patron", "name": "Founders", "amount_minor": 10000, "interval": "month", "slots": 1})).await;
    let tier_id = tier["id"].as_i64().unwrap();
    let ann = app.create_patron(&owner, "ann@example.org", "Ann").await;
    let bob = app.create_patron(&owner, "bob@example.org", "Bob").await;
    app.create_pledge(&owner, ann, tier_id, None).await;
    let res = app
        .post(
            "/api/v1/admin/pledges",
            &owner,
            json!({"supporter_id": bob, "tier_id": tier_id}),
        )
        .await;
    expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    let public = app.get_json("/api/v1/tiers", None).await;
    assert_eq!(public["tiers"][0]["sold_out"], true);
}

async fn pay_what_you_want_tiers_enforce_their_minimum(app: TestApp) {
    let owner = app.owner_token().await;
    let tier = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "Any amount", "amount_minor": 500,
                                             "pwyw_min_minor": 100, "interval": "month"}),
        )
        .await;
    let tier_id = tier["id"].as_i64().unwrap();
    let ann = app.create_patron(&owner, "ann@example.org", "Ann").await;
    let res = app
        .post(
            "/api/v1/admin/pledges",
            &owner,
            json!({"supporter_id": ann, "tier_id": tier_id, "amount_minor": 99}),
        )
        .await;
    let problem = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "amount_minor");
    let ok = app
        .post_ok(
            "/api/v1/admin/pledges",
            &owner,
            json!({"supporter_id": ann, "tier_id": tier_id, "amount_minor": 2500}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(minor(&ok["amount"]), 2500);
    // The public tier shows the minimum, never what a person chose.
    let public = app.get_json("/api/v1/tiers", None).await.to_string();
    assert!(public.contains("\"pay_what_you_want_min\""));
    assert!(!public.contains("2500"));
}
