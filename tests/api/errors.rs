//! Bad input gets a clear problem+json answer and changes nothing.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, expect_problem};
use crate::on_both_backends;

on_both_backends!(
    malformed_bodies_are_refused_with_problems,
    oversized_bodies_get_413,
    hostile_text_is_refused_or_stored_verbatim_never_executed,
    unknown_routes_and_methods_are_problems_too,
);

async fn malformed_bodies_are_refused_with_problems(app: TestApp) {
    let owner = app.owner_token().await;
    let url = app.url("/api/v1/admin/tiers");
    let raw = |body: &'static str, content_type: &'static str| {
        app.client
            .post(&url)
            .bearer_auth(&owner)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    expect_problem(
        raw("{not json", "application/json").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "malformed-request",
    )
    .await;
    expect_problem(
        raw("{}", "text/plain").await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    )
    .await;

    let unknown = json!({"kind": "patron", "name": "X", "amount_minor": 100, "interval": "month", "is_admin": true});
    let problem = expect_problem(
        app.post("/api/v1/admin/tiers", &owner, unknown).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("is_admin")
    );

    let wrong_type =
        json!({"kind": "patron", "name": "X", "amount_minor": "100", "interval": "month"});
    expect_problem(
        app.post("/api/v1/admin/tiers", &owner, wrong_type).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
    let bad_enum = json!({"kind": "admin", "name": "X", "amount_minor": 100, "interval": "month"});
    expect_problem(
        app.post("/api/v1/admin/tiers", &owner, bad_enum).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
    let float = json!({"kind": "patron", "name": "X", "amount_minor": 1.5, "interval": "month"});
    expect_problem(
        app.post("/api/v1/admin/tiers", &owner, float).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;

    for amount in [0i64, -100, i64::MAX] {
        let body =
            json!({"kind": "patron", "name": "X", "amount_minor": amount, "interval": "month"});
        let problem = expect_problem(
            app.post("/api/v1/admin/tiers", &owner, body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], "amount_minor");
    }
    let tiers = app.get_json("/api/v1/admin/tiers", Some(&owner)).await;
    assert_eq!(tiers.as_array().unwrap().len(), 0, "nothing was stored");
}

async fn oversized_bodies_get_413(app: TestApp) {
    let owner = app.owner_token().await;
    let huge = "x".repeat(100 * 1024);
    let body = json!({"kind": "patron", "name": "X", "description": huge, "amount_minor": 100, "interval": "month"});
    expect_problem(
        app.post("/api/v1/admin/tiers", &owner, body).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
    )
    .await;
    // Under the body limit but over the field limit: a validation error.
    let long = "x".repeat(5000);
    let body = json!({"kind": "patron", "name": "X", "description": long, "amount_minor": 100, "interval": "month"});
    expect_problem(
        app.post("/api/v1/admin/tiers", &owner, body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
}

async fn hostile_text_is_refused_or_stored_verbatim_never_executed(app: TestApp) {
    let owner = app.owner_token().await;
    let res = app
        .post(
            "/api/v1/admin/patrons",
            &owner,
            json!({"email": "a@example.org", "display_name": "bad\u{0}name"}),
        )
        .await;
    expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
    let res = app
        .post(
            "/api/v1/admin/patrons",
            &owner,
            json!({"email": "a@example.org\r\nBcc: all@example.org", "display_name": "A"}),
        )
        .await;
    expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;

    let injection = "Robert'); DROP TABLE supporters;--";
    let id = app
        .create_patron(&owner, "bobby@example.org", injection)
        .await;
    let stored = app
        .get_json(&format!("/api/v1/admin/supporters/{id}"), Some(&owner))
        .await;
    assert_eq!(stored["display_name"], injection);
    let html = "<script>alert(1)</script>";
    let tier = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": html, "amount_minor": 100, "interval": "month"}),
        )
        .await;
    let public = app.get("/api/v1/tiers", None).await;
    assert_eq!(public.headers()["content-type"], "application/json");
    let public: serde_json::Value = public.json().await.unwrap();
    assert_eq!(public["tiers"][0]["name"], tier["name"]);

    // A CSV export neutralises names that a spreadsheet would run.
    app.create_tier(&owner, json!({"kind": "patron", "name": "=HYPERLINK(\"http://evil\")", "amount_minor": 100, "interval": "month"})).await;
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let csv = app
        .get(
            &format!("/api/v1/admin/reports/monthly?from={month}&to={month}&format=csv"),
            Some(&owner),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.contains("'=HYPERLINK"), "{csv}");
}

async fn unknown_routes_and_methods_are_problems_too(app: TestApp) {
    expect_problem(
        app.get("/api/v1/nope", None).await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    let res = app
        .client
        .delete(app.url("/api/v1/funding"))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed").await;
    let owner = app.owner_token().await;
    expect_problem(
        app.get("/api/v1/admin/tiers/999", Some(&owner)).await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    expect_problem(
        app.get("/api/v1/admin/tiers/abc", Some(&owner)).await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
}
