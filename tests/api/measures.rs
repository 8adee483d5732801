//! The instance in context: active users read from a fake Mastodon on
//! loopback (which checks the admin token and the request), set against
//! the supporters and the monthly costs, and checked against figures worked
//! out by hand. Mastodon down or not configured: the report says so and the
//! Costs page still renders. The token never comes out.

use std::sync::{Arc, Mutex};

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode as AxumStatus},
    routing::post,
};
use chrono::{Datelike, Days, NaiveDate, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::console::form_client;
use crate::helpers::{Backend, OWNER_EMAIL, TestApp, minor};

const TOKEN: &str = "measures-admin-token-0123456789-secret";

/// What the fake instance was asked.
#[derive(Clone, Default)]
struct Asked(Arc<Mutex<Vec<Value>>>);

async fn measures(
    State(asked): State<Asked>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (AxumStatus, Json<Value>) {
    asked.0.lock().unwrap().push(body.clone());
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if bearer != format!("Bearer {TOKEN}") {
        return (
            AxumStatus::FORBIDDEN,
            Json(json!({"error": "This action is not allowed"})),
        );
    }
    if body["keys"] != json!(["active_users"]) {
        return (
            AxumStatus::UNPROCESSABLE_ENTITY,
            Json(json!({"error": "bad keys"})),
        );
    }
    (
        AxumStatus::OK,
        Json(json!([{
            "key": "active_users",
            "unit": null,
            "total": "1234",
            "human_value": "1,234",
            "previous_total": "1180",
            "data": [
                {"date": body["start_at"], "value": "1000"},
                {"date": body["end_at"], "value": "1100"}
            ]
        }])),
    )
}

async fn fake_instance() -> (String, Asked) {
    let asked = Asked::default();
    let router = Router::new()
        .route("/api/v1/admin/measures", post(measures))
        .with_state(asked.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, asked)
}

/// An address where nothing listens.
async fn nobody_home() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(crate::helpers::Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name(crate::helpers::Backend::Postgres).await;
                }
            }
        )*
    };
}

on_both!(
    active_users_from_mastodon_set_against_supporters_and_costs_give_the_figures_worked_out_by_hand,
    with_mastodon_down_the_report_is_unavailable_and_the_costs_page_still_renders,
    with_a_token_mastodon_refuses_the_report_is_unavailable,
    without_an_admin_token_there_is_no_card_and_the_report_says_not_configured,
);

/// The app, with `instance` and `token` as the measures settings; `None`
/// when PostgreSQL is not available for this run.
async fn spawn(backend: Backend, instance: String, token: &'static str) -> Option<TestApp> {
    let app = TestApp::spawn_with(backend, move |s| {
        s.pages.instance_url = instance;
        s.mastodon.admin_token = token.to_owned().into();
    })
    .await;
    if app.is_none() {
        eprintln!("skipped: set PATRONAGE_TEST_DATABASE_URL to run on PostgreSQL");
    }
    app
}

/// Day `d` of the month `back` months before the current one.
fn day(back: u32, d: u32) -> String {
    let today = Utc::now().date_naive();
    let index = today.year() * 12 + today.month() as i32 - 1 - back as i32;
    NaiveDate::from_ymd_opt(index.div_euclid(12), index.rem_euclid(12) as u32 + 1, d)
        .unwrap()
        .to_string()
}

/// Costs of €310, €300 and €290 in the 3 complete months before this one
/// (€300 a month on average), and one this month that does not count yet.
async fn three_months_of_costs(app: &TestApp, owner: &str) {
    for (back, amount) in [(1, 31_000), (2, 30_000), (3, 29_000), (0, 99_000)] {
        if back == 0 && Utc::now().date_naive().day() < 2 {
            continue;
        }
        app.post_ok(
            "/api/v1/admin/expenses",
            owner,
            json!({"date": day(back, 1), "vendor": "Hetzner", "category": "Hosting",
                   "amount_minor": amount}),
            StatusCode::CREATED,
        )
        .await;
    }
}

/// Three patrons support: Ann with two pledges, Bob, Cat; Dan's pledge was
/// cancelled.
async fn three_patrons(app: &TestApp, owner: &str) {
    let monthly = app
        .create_tier(
            owner,
            json!({"kind": "patron", "name": "Monthly", "amount_minor": 500, "interval": "month"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let yearly = app
        .create_tier(
            owner,
            json!({"kind": "patron", "name": "Yearly", "amount_minor": 6000, "interval": "year"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let ann = app.create_patron(owner, "ann@example.org", "Ann").await;
    let bob = app.create_patron(owner, "bob@example.org", "Bob").await;
    let cat = app.create_patron(owner, "cat@example.org", "Cat").await;
    let dan = app.create_patron(owner, "dan@example.org", "Dan").await;
    app.create_pledge(owner, ann, monthly, None).await;
    app.create_pledge(owner, ann, yearly, None).await;
    app.create_pledge(owner, bob, yearly, None).await;
    app.create_pledge(owner, cat, monthly, None).await;
    let dans = app.create_pledge(owner, dan, monthly, None).await;
    app.post_ok(
        &format!("/api/v1/admin/pledges/{}/cancel", dans["id"]),
        owner,
        json!({}),
        StatusCode::OK,
    )
    .await;
}

async fn costs_page(app: &TestApp) -> String {
    let (console, _) = form_client(app, OWNER_EMAIL).await;
    let page = console.get(app.url("/admin/costs")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    page.text().await.unwrap()
}

async fn instance_report(app: &TestApp, token: &str) -> Value {
    let res = app.get("/api/v1/admin/reports/instance", Some(token)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    assert!(!text.contains(TOKEN), "the admin token never comes out");
    serde_json::from_str(&text).unwrap()
}

async fn active_users_from_mastodon_set_against_supporters_and_costs_give_the_figures_worked_out_by_hand(
    backend: Backend,
) {
    let (url, asked) = fake_instance().await;
    let Some(app) = spawn(backend, url, TOKEN).await else {
        return;
    };
    let owner = app.owner_token().await;
    three_months_of_costs(&app, &owner).await;
    three_patrons(&app, &owner).await;

    let r = instance_report(&app, &owner).await;
    assert_eq!(r["available"], true, "{r}");
    assert_eq!(r["reason"], Value::Null);
    assert_eq!(r["active_users"], 1234);
    assert_eq!(r["supporters"], 3);
    // 3 ÷ 1234 = 0.243…% → 24 basis points, rounded down.
    assert_eq!(r["supporters_share_basis_points"], 24);
    // (31,000 + 30,000 + 29,000) ÷ 3 = 30,000 cents a month.
    assert_eq!(minor(&r["monthly_costs"]), 30_000);
    assert_eq!(r["monthly_costs"]["currency"], "EUR");
    // 30,000 ÷ 1234 = 24.3… → 25 cents, rounded up.
    assert_eq!(minor(&r["cost_per_active_user"]), 25);
    // 30,000 ÷ 3 = 10,000 cents.
    assert_eq!(minor(&r["cost_per_supporter"]), 10_000);

    // Mastodon was asked for the last 30 days' active users, once.
    let today = Utc::now().date_naive();
    {
        let asked = asked.0.lock().unwrap();
        assert_eq!(asked.len(), 1);
        assert_eq!(
            asked[0],
            json!({"keys": ["active_users"],
                   "start_at": (today - Days::new(29)).to_string(),
                   "end_at": today.to_string()})
        );
    }
    assert_eq!(r["period_start"], (today - Days::new(29)).to_string());
    assert_eq!(r["period_end"], today.to_string());

    // A viewer may read it; neither that nor the page asks Mastodon again.
    let viewer = app.viewer_token("books@example.org").await;
    let again = instance_report(&app, &viewer).await;
    assert_eq!(again, r);
    let html = costs_page(&app).await;
    assert_eq!(asked.0.lock().unwrap().len(), 1, "the figure is kept");
    assert!(html.contains("Your instance"));
    assert!(html.contains("1,234"), "active users shown");
    assert!(html.contains("0.24%"), "share shown");
    let per_user = r["cost_per_active_user"]["display"].as_str().unwrap();
    assert!(
        html.contains(per_user),
        "cost per active user {per_user} shown"
    );
    assert!(!html.contains(TOKEN));
}

async fn with_mastodon_down_the_report_is_unavailable_and_the_costs_page_still_renders(
    backend: Backend,
) {
    let Some(app) = spawn(backend, nobody_home().await, TOKEN).await else {
        return;
    };
    let owner = app.owner_token().await;
    three_months_of_costs(&app, &owner).await;
    let r = instance_report(&app, &owner).await;
    assert_eq!(r["available"], false, "{r}");
    assert!(r["reason"].as_str().unwrap().contains("unavailable"), "{r}");
    assert_eq!(r["active_users"], Value::Null);
    assert_eq!(r["cost_per_active_user"], Value::Null);
    assert_eq!(r["supporters_share_basis_points"], Value::Null);
    // What needs no Mastodon is still there; without supporters, no share.
    assert_eq!(minor(&r["monthly_costs"]), 30_000);
    assert_eq!(r["supporters"], 0);
    assert_eq!(r["cost_per_supporter"], Value::Null);

    let html = costs_page(&app).await;
    assert!(html.contains("Your instance"));
    assert!(html.contains("Active users unavailable"));
    assert!(!html.contains(TOKEN));
}

async fn with_a_token_mastodon_refuses_the_report_is_unavailable(backend: Backend) {
    let (url, asked) = fake_instance().await;
    let Some(app) = spawn(backend, url, "a-token-the-instance-does-not-know").await else {
        return;
    };
    let owner = app.owner_token().await;
    let r = instance_report(&app, &owner).await;
    assert_eq!(r["available"], false, "{r}");
    assert!(r["reason"].as_str().unwrap().contains("403"), "{r}");
    assert_eq!(asked.0.lock().unwrap().len(), 1, "Mastodon was asked");
    let text = app
        .get("/api/v1/admin/reports/instance", Some(&owner))
        .await
        .text()
        .await
        .unwrap();
    assert!(!text.contains("a-token-the-instance-does-not-know"));
    let html = costs_page(&app).await;
    assert!(html.contains("Active users unavailable"));
    assert!(!html.contains("a-token-the-instance-does-not-know"));
}

async fn without_an_admin_token_there_is_no_card_and_the_report_says_not_configured(
    backend: Backend,
) {
    // An instance URL alone is not enough: the token turns it on.
    let (url, asked) = fake_instance().await;
    let Some(app) = spawn(backend, url, "").await else {
        return;
    };
    let owner = app.owner_token().await;
    let r = instance_report(&app, &owner).await;
    assert_eq!(r["available"], false, "{r}");
    assert!(
        r["reason"].as_str().unwrap().contains("not configured"),
        "{r}"
    );
    assert_eq!(r["active_users"], Value::Null);
    let html = costs_page(&app).await;
    assert!(!html.contains("Your instance"));
    assert!(
        asked.0.lock().unwrap().is_empty(),
        "Mastodon was never asked"
    );
}
