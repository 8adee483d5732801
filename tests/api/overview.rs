//! The console's overview, fetched signed in as a second device would (no
//! browser): its cards and its attention list, on both databases.

use std::time::Duration;

use chrono::Datelike;
use reqwest::StatusCode;
use serde_json::json;

use crate::console::{form_client, minor_of};
use crate::fake_stripe::{Delivery, FakeStripe};
use crate::helpers::{OWNER_EMAIL, TestApp, expect_json};
use crate::with_stripe_on_both_backends;

with_stripe_on_both_backends!(committed_recurring_leaves_out_pledges_set_to_cancel_at_period_end);

with_stripe_on_both_backends!(@adjust (|s| s.jobs.reconcile = "* * * * * *".into())
    an_overdue_job_shows_in_the_attention_list,
);

/// The overview's HTML, for a signed-in `client`.
async fn overview(app: &TestApp, client: &reqwest::Client) -> String {
    let res = client.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // minijinja escapes apostrophes; read the text as a person would.
    res.text().await.unwrap().replace("&#39;", "'")
}

/// A card's value and change, by its label.
fn card(html: &str, label: &str) -> (String, String) {
    let re = regex::Regex::new(&format!(
        r#"<p class="label">{}</p>\s*<p class="value">([^<]*)</p>\s*<p class="change [a-z]+">([^<]*)</p>"#,
        regex::escape(label)
    ))
    .unwrap();
    let c = re
        .captures(html)
        .unwrap_or_else(|| panic!("no card {label:?} with a change in {html}"));
    (c[1].to_owned(), c[2].to_owned())
}

/// A patron checks out for a new monthly tier of `amount`; the session.
async fn checkout(app: &TestApp, owner: &str, name: &str, amount: i64, email: &str) -> String {
    let tier = app
        .create_tier(
            owner,
            json!({"kind": "patron", "name": name, "amount_minor": amount, "interval": "month"}),
        )
        .await;
    let res = app
        .send(
            reqwest::Method::POST,
            "/api/v1/checkout",
            None,
            json!({"kind": "patron", "tier_id": tier["id"], "email": email,
                   "display_name": name, "visibility": "public"}),
        )
        .await;
    let body = expect_json(res, StatusCode::OK).await;
    let url = body["checkout_url"].as_str().unwrap();
    url.rsplit('/').next().unwrap().to_owned()
}

/// Last month a reader gave €5 a month; this month two patrons join at €9
/// and €4, and the €4 one is set to cancel at the end of its period.
async fn committed_recurring_leaves_out_pledges_set_to_cancel_at_period_end(
    app: TestApp,
    fake: FakeStripe,
) {
    let owner = app.owner_token().await;
    let reader_tier = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "Reader", "amount_minor": 500, "interval": "month"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let reader = app
        .create_patron(&owner, "reader@example.org", "Reader")
        .await;
    let today = chrono::Utc::now().date_naive();
    let last_month = (today.with_day(1).unwrap() - chrono::Days::new(1))
        .with_day(1)
        .unwrap()
        .to_string();
    app.create_pledge(&owner, reader, reader_tier, Some(&last_month))
        .await;

    for (name, amount, email) in [
        ("Friend", 900, "ann@example.org"),
        ("Helper", 400, "bob@example.org"),
    ] {
        let session = checkout(&app, &owner, name, amount, email).await;
        fake.deliver(&fake.complete_checkout(&session), Delivery::ONCE)
            .await;
    }
    let pledges = app.get_json("/api/v1/admin/pledges", Some(&owner)).await;
    let helper = pledges["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["amount"]["amount_minor"] == 400)
        .unwrap_or_else(|| panic!("no €4 pledge in {pledges}"))
        .clone();

    let (owner_console, _) = form_client(&app, OWNER_EMAIL).await;
    let html = overview(&app, &owner_console).await;
    let (value, change) = card(&html, "Committed monthly recurring");
    assert_eq!(minor_of(&value), 1800, "nothing set to cancel yet");
    assert_eq!(change, "+€13 on last month's monthly recurring");

    app.post_ok(
        &format!("/api/v1/admin/pledges/{}/cancel", helper["id"]),
        &owner,
        json!({"at_period_end": true, "reason": "moving on"}),
        StatusCode::OK,
    )
    .await;

    let html = overview(&app, &owner_console).await;
    let (value, change) = card(&html, "Monthly recurring");
    assert_eq!(minor_of(&value), 1800, "still paid until its period ends");
    assert_eq!(change, "+€13 on last month");
    let (value, change) = card(&html, "Committed monthly recurring");
    assert_eq!(minor_of(&value), 1400, "the €4 pledge is not committed");
    assert_eq!(change, "+€9 on last month's monthly recurring");
}

/// Reconciliation runs every second and fails (Stripe's event list is
/// down): the overview lists it, linking to the jobs on the operations page.
async fn an_overdue_job_shows_in_the_attention_list(app: TestApp, fake: FakeStripe) {
    app.owner_token().await;
    let (client, _) = form_client(&app, OWNER_EMAIL).await;
    let item =
        r#"<a href="/admin/operations#jobs"><strong>1</strong> scheduled job is overdue</a>"#;
    assert!(!overview(&app, &client).await.contains("overdue</a>"));
    fake.break_endpoint("events");
    let mut html = String::new();
    for _ in 0..100 {
        html = overview(&app, &client).await;
        if html.contains(item) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(html.contains(item), "{html}");
    let ops = crate::helpers::page_text(&client, app.url("/admin/operations")).await;
    assert!(ops.contains(r#"id="jobs""#), "the link's anchor exists");
}
