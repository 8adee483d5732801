//! Monthly reports agree with what was recorded, in JSON and CSV.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, expect_problem, minor};
use crate::on_both_backends;

on_both_backends!(
    the_monthly_report_matches_the_recorded_money_and_people,
    the_csv_report_carries_the_same_figures,
    bad_report_ranges_are_refused,
);

/// Two months of activity: January and February 2026.
async fn record_history(app: &TestApp, owner: &str) -> (i64, i64) {
    let tier = app
        .create_tier(
            owner,
            json!({"kind": "patron", "name": "Patron", "amount_minor": 1000, "interval": "month"}),
        )
        .await;
    let yearly = app
        .create_tier(
            owner,
            json!({"kind": "patron", "name": "Annual", "amount_minor": 12000, "interval": "year"}),
        )
        .await;
    let (t, y) = (tier["id"].as_i64().unwrap(), yearly["id"].as_i64().unwrap());
    let ann = app.create_patron(owner, "ann@example.org", "Ann").await;
    let bob = app.create_patron(owner, "bob@example.org", "Bob").await;
    let anns = app.create_pledge(owner, ann, t, Some("2026-01-05")).await;
    app.create_pledge(owner, bob, y, Some("2026-02-10")).await;
    let c = |body: serde_json::Value| {
        app.post_ok(
            "/api/v1/admin/contributions",
            owner,
            body,
            StatusCode::CREATED,
        )
    };
    c(json!({"pledge_id": anns["id"], "amount_minor": 1000, "date": "2026-01-05"})).await;
    c(json!({"pledge_id": anns["id"], "amount_minor": 1000, "date": "2026-02-05"})).await;
    c(json!({"amount_minor": 5000, "date": "2026-02-14", "note": "gift"})).await;
    let oops = c(json!({"amount_minor": 777, "date": "2026-02-20"})).await;
    app.post_ok(
        &format!("/api/v1/admin/contributions/{}/void", oops["id"]),
        owner,
        json!({"reason": "duplicate"}),
        StatusCode::CREATED,
    )
    .await;
    (t, y)
}

async fn the_monthly_report_matches_the_recorded_money_and_people(app: TestApp) {
    let owner = app.owner_token().await;
    let (t, y) = record_history(&app, &owner).await;
    let viewer = app.viewer_token("books@example.org").await;
    let report = app
        .get_json(
            "/api/v1/admin/reports/monthly?from=2025-12&to=2026-02",
            Some(&viewer),
        )
        .await;
    assert_eq!(report["currency"], "EUR");
    let months = report["months"].as_array().unwrap();
    assert_eq!(months.len(), 3);

    let dec = &months[0];
    assert_eq!(dec["month"], "2025-12");
    assert_eq!(minor(&dec["gross"]), 0);
    assert_eq!(dec["active_patrons"], 0);

    let jan = &months[1];
    assert_eq!(minor(&jan["gross"]), 1000);
    assert_eq!(minor(&jan["net"]), 1000);
    assert_eq!(jan["new_patrons"], 1);
    assert_eq!(jan["active_patrons"], 1);
    assert_eq!(minor(&jan["monthly_recurring"]), 1000);

    let feb = &months[2];
    assert_eq!(
        minor(&feb["gross"]),
        6000,
        "the voided 7.77 nets to zero in its month"
    );
    assert_eq!(minor(&feb["refunds"]), 0);
    assert_eq!(minor(&feb["fees"]), 0);
    assert_eq!(minor(&feb["net"]), 6000);
    assert_eq!(feb["new_patrons"], 1);
    assert_eq!(feb["churned_patrons"], 0);
    assert_eq!(feb["active_patrons"], 2);
    assert_eq!(minor(&feb["monthly_recurring"]), 2000);

    let tiers = feb["tiers"].as_array().unwrap();
    let by_id = |id: Option<i64>| tiers.iter().find(|r| r["tier_id"].as_i64() == id).unwrap();
    assert_eq!(minor(&by_id(Some(t))["gross"]), 1000);
    assert_eq!(by_id(Some(t))["active_pledges"], 1);
    assert_eq!(by_id(Some(y))["new_pledges"], 1);
    assert_eq!(minor(&by_id(Some(y))["monthly_recurring"]), 1000);
    assert_eq!(minor(&by_id(None)["gross"]), 5000);

    // The public total agrees with the sum of the months.
    assert_eq!(minor(&app.funding().await["raised_total"]), 7000);
}

async fn the_csv_report_carries_the_same_figures(app: TestApp) {
    let owner = app.owner_token().await;
    record_history(&app, &owner).await;
    let res = app
        .get(
            "/api/v1/admin/reports/monthly?from=2026-01&to=2026-02&format=csv",
            Some(&owner),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("patronage-2026-01-to-2026-02.csv")
    );
    let csv = res.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "month,scope,tier_id,tier,currency,gross,refunds,disputes,fees,net,new,churned,active,monthly_recurring"
    );
    assert!(
        lines.contains(&"2026-01,total,,,EUR,10.00,0.00,0.00,0.00,10.00,1,0,1,10.00"),
        "{csv}"
    );
    assert!(
        lines.contains(&"2026-02,total,,,EUR,60.00,0.00,0.00,0.00,60.00,1,0,2,20.00"),
        "{csv}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("2026-02,tier,,No tier,EUR,50.00")),
        "{csv}"
    );

    let via_accept = app
        .client
        .get(app.url("/api/v1/admin/reports/monthly?from=2026-01&to=2026-02"))
        .bearer_auth(&owner)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(via_accept, csv);
}

async fn bad_report_ranges_are_refused(app: TestApp) {
    let owner = app.owner_token().await;
    for query in [
        "from=2026-13&to=2026-14",
        "from=2026-05&to=2026-01",
        "from=2000-01&to=2030-01",
        "from=2026-01",
        "from=2026-01&to=2026-02&format=xlsx",
    ] {
        let res = app
            .get(
                &format!("/api/v1/admin/reports/monthly?{query}"),
                Some(&owner),
            )
            .await;
        expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
    }
    expect_problem(
        app.get(
            "/api/v1/admin/reports/monthly?from=2026-01&to=2026-02",
            None,
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
}
