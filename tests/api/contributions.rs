//! Money that arrives outside Stripe: recorded once, voided by reversal.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, expect_problem, minor};
use crate::on_both_backends;

on_both_backends!(
    a_contribution_raises_the_totals_and_is_audited,
    the_same_bank_reference_is_never_recorded_twice,
    concurrent_duplicates_record_exactly_once,
    voiding_writes_a_reversing_entry_and_keeps_the_original,
    contributions_in_another_currency_are_refused,
);

fn today() -> String {
    chrono::Utc::now().date_naive().to_string()
}

async fn a_contribution_raises_the_totals_and_is_audited(app: TestApp) {
    let owner = app.owner_token().await;
    let ann = app.create_patron(&owner, "ann@example.org", "Ann").await;
    let entry = app
        .post_ok("/api/v1/admin/contributions", &owner,
                 json!({"supporter_id": ann, "amount_minor": 2550, "date": today(), "note": "bank transfer", "external_reference": "IBAN-2026-001"}),
                 StatusCode::CREATED)
        .await;
    assert_eq!(entry["kind"], "manual");
    assert_eq!(entry["amount"]["display"], "€25.50");
    assert_eq!(entry["supporter_id"], ann);

    let funding = app.funding().await;
    assert_eq!(minor(&funding["raised_this_month"]), 2550);
    assert_eq!(minor(&funding["raised_total"]), 2550);

    let audit = app
        .get_json(
            "/api/v1/admin/audit?action=contribution.record",
            Some(&owner),
        )
        .await;
    assert_eq!(audit["items"][0]["target_id"], entry["id"]);
    assert_eq!(
        audit["items"][0]["details"]["external_reference"],
        "IBAN-2026-001"
    );
}

async fn the_same_bank_reference_is_never_recorded_twice(app: TestApp) {
    let owner = app.owner_token().await;
    let body = json!({"amount_minor": 1000, "date": today(), "external_reference": "TX-42"});
    app.post_ok(
        "/api/v1/admin/contributions",
        &owner,
        body.clone(),
        StatusCode::CREATED,
    )
    .await;
    let problem = expect_problem(
        app.post("/api/v1/admin/contributions", &owner, body).await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "external_reference");
    assert_eq!(minor(&app.funding().await["raised_total"]), 1000);
}

async fn concurrent_duplicates_record_exactly_once(app: TestApp) {
    let owner = app.owner_token().await;
    let body = json!({"amount_minor": 700, "date": today(), "external_reference": "SAME-REF"});
    let attempts = (0..8).map(|_| app.post("/api/v1/admin/contributions", &owner, body.clone()));
    let statuses: Vec<_> = futures::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status())
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        7,
        "{statuses:?}"
    );
    let ledger = app.get_json("/api/v1/admin/ledger", Some(&owner)).await;
    assert_eq!(ledger["items"].as_array().unwrap().len(), 1);
    assert_eq!(minor(&app.funding().await["raised_total"]), 700);
}

async fn voiding_writes_a_reversing_entry_and_keeps_the_original(app: TestApp) {
    let owner = app.owner_token().await;
    let keep = app
        .post_ok(
            "/api/v1/admin/contributions",
            &owner,
            json!({"amount_minor": 4000, "date": today()}),
            StatusCode::CREATED,
        )
        .await;
    let wrong = app
        .post_ok(
            "/api/v1/admin/contributions",
            &owner,
            json!({"amount_minor": 9900, "date": today()}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(minor(&app.funding().await["raised_total"]), 13900);

    let path = format!("/api/v1/admin/contributions/{}/void", wrong["id"]);
    let res = app.post(&path, &owner, json!({"reason": ""})).await;
    expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
    let reversal = app
        .post_ok(
            &path,
            &owner,
            json!({"reason": "typed the wrong amount"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(minor(&reversal["amount"]), -9900);
    assert_eq!(reversal["reverses_entry_id"], wrong["id"]);
    assert_eq!(reversal["occurred_at"], wrong["occurred_at"]);
    assert_eq!(minor(&app.funding().await["raised_total"]), 4000);

    expect_problem(
        app.post(&path, &owner, json!({"reason": "again"})).await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    let reversal_path = format!("/api/v1/admin/contributions/{}/void", reversal["id"]);
    expect_problem(
        app.post(&reversal_path, &owner, json!({"reason": "undo"}))
            .await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;

    let ledger = app.get_json("/api/v1/admin/ledger", Some(&owner)).await;
    let items = ledger["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "nothing is deleted");
    let original = items.iter().find(|e| e["id"] == wrong["id"]).unwrap();
    assert_eq!(original["reversed_by_entry_id"], reversal["id"]);
    assert_eq!(minor(&original["amount"]), 9900);
    assert!(
        items
            .iter()
            .any(|e| e["id"] == keep["id"] && e["reversed_by_entry_id"].is_null())
    );
    let audit = app
        .get_json("/api/v1/admin/audit?action=contribution.void", Some(&owner))
        .await;
    assert_eq!(
        audit["items"][0]["details"]["reason"],
        "typed the wrong amount"
    );
}

async fn contributions_in_another_currency_are_refused(app: TestApp) {
    let owner = app.owner_token().await;
    let res = app
        .post(
            "/api/v1/admin/contributions",
            &owner,
            json!({"amount_minor": 1000, "currency": "CAD", "date": today()}),
        )
        .await;
    let problem = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "currency");
    let res = app
        .post(
            "/api/v1/admin/contributions",
            &owner,
            json!({"amount_minor": 1000, "currency": "eur", "date": today()}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    // Once money is recorded, the campaign currency is fixed.
    let res = app
        .patch("/api/v1/admin/campaign", &owner, json!({"currency": "USD"}))
        .await;
    expect_problem(res, StatusCode::CONFLICT, "conflict").await;
}
