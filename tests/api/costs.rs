//! Costs: a year of expenses and income, recorded as an admin would, and
//! the balance, runway and coverage the report gives, checked against
//! figures worked out by hand here. Also: voids, recurring costs matched
//! by actual expenses, a foreign-currency expense, viewers who may only
//! read, bad input, and hostile text in the console and the CSV.

use chrono::{Datelike, NaiveDate, Utc};
use patronage::{
    domain::{ledger::EntryKind, money::Currency, pledge::Source},
    store::ledger::NewEntry,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::console::form_client;
use crate::helpers::{OWNER_EMAIL, TestApp, expect_problem, minor};
use crate::on_both_backends;

on_both_backends!(
    a_year_of_costs_and_income_gives_the_balance_runway_and_coverage_worked_out_by_hand,
    a_viewer_reads_the_costs_but_every_change_is_refused_and_changes_nothing,
    bad_costs_input_is_refused_with_a_stable_problem_type,
    hostile_vendor_and_note_text_is_escaped_in_the_console_and_neutralised_in_the_csv,
);

/// `(year, month)` `back` months before the current one.
fn month_back(back: u32) -> (i32, u32) {
    let today = Utc::now().date_naive();
    let index = today.year() * 12 + today.month() as i32 - 1 - back as i32;
    (index.div_euclid(12), index.rem_euclid(12) as u32 + 1)
}

fn ym(back: u32) -> String {
    let (y, m) = month_back(back);
    format!("{y:04}-{m:02}")
}

/// Day `d` of the month `back` months before the current one.
fn day(back: u32, d: u32) -> String {
    let (y, m) = month_back(back);
    NaiveDate::from_ymd_opt(y, m, d).unwrap().to_string()
}

/// Books a ledger entry as the payment gateway would (payments, fees,
/// refunds and disputes only arrive from Stripe).
async fn book(app: &TestApp, kind: EntryKind, amount_minor: i64, back: u32, reference: &str) {
    let (y, m) = month_back(back);
    let mut tx = app.db.begin_write().await.unwrap();
    tx.append(&NewEntry {
        kind,
        amount_minor,
        currency: Currency::parse("EUR").unwrap(),
        pledge_id: None,
        supporter_id: None,
        tier_id: None,
        source: Source::Stripe,
        external_ref: reference.to_owned(),
        occurred_at: NaiveDate::from_ymd_opt(y, m, 10)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap()
            .and_utc(),
        note: String::new(),
        reverses_entry_id: None,
        created_by: None,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

async fn expense(app: &TestApp, owner: &str, body: Value) -> Value {
    app.post_ok("/api/v1/admin/expenses", owner, body, StatusCode::CREATED)
        .await
}

async fn recurring_cost(app: &TestApp, owner: &str, body: Value) -> Value {
    app.post_ok(
        "/api/v1/admin/recurring-costs",
        owner,
        body,
        StatusCode::CREATED,
    )
    .await
}

async fn report(app: &TestApp, token: &str) -> Value {
    app.get_json(
        &format!("/api/v1/admin/reports/costs?from={}&to={}", ym(13), ym(0)),
        Some(token),
    )
    .await
}

/// The month `back` months ago in a report from 13 months back to now.
fn month(report: &Value, back: u32) -> &Value {
    let m = &report["months"][(13 - back) as usize];
    assert_eq!(m["month"], ym(back));
    m
}

async fn a_year_of_costs_and_income_gives_the_balance_runway_and_coverage_worked_out_by_hand(
    app: TestApp,
) {
    let owner = app.owner_token().await;

    // The books before patronage: €1,000 at the start of the month a year ago.
    app.send(
        reqwest::Method::PUT,
        "/api/v1/admin/costs/settings",
        Some(&owner),
        json!({"opening_balance_minor": 100_000, "as_of": day(12, 1)}),
    )
    .await;
    let settings = app
        .get_json("/api/v1/admin/costs/settings", Some(&owner))
        .await;
    assert_eq!(minor(&settings["opening_balance"]), 100_000);
    assert_eq!(settings["as_of"], day(12, 1));

    // Recurring costs: hosting €200 a month and a domain €120 a year, both
    // from a year ago (the domain renews this month).
    let hosting = recurring_cost(
        &app,
        &owner,
        json!({"vendor": "Hetzner", "category": "Hosting", "amount_minor": 20_000,
                   "interval": "month", "starts_on": day(12, 1)}),
    )
    .await;
    let domain = recurring_cost(
        &app,
        &owner,
        json!({"vendor": "Gandi", "category": "Domains", "amount_minor": 12_000,
                   "interval": "year", "starts_on": day(12, 3)}),
    )
    .await;
    assert_eq!(minor(&domain["monthly"]), 1_000);
    let (hosting_id, domain_id) = (
        hosting["id"].as_i64().unwrap(),
        domain["id"].as_i64().unwrap(),
    );

    // A year of income: €300 a month less €9 fees; a €50 refund five
    // months in and a €20 dispute seven months in.
    for back in 1..=12 {
        book(
            &app,
            EntryKind::Payment,
            30_000,
            back,
            &format!("ch_{back}"),
        )
        .await;
        book(&app, EntryKind::Fee, -900, back, &format!("fee_{back}")).await;
    }
    book(&app, EntryKind::Refund, -5_000, 7, "re_1").await;
    book(&app, EntryKind::Dispute, -2_000, 5, "dp_1").await;

    // A year of costs: hosting paid each month but the last, matched to its
    // recurring cost; the domain paid when it started.
    for back in 2..=12 {
        let paid = expense(
            &app,
            &owner,
            json!({"date": day(back, 5), "vendor": "Hetzner", "category": "Hosting",
                   "amount_minor": 20_000, "recurring_cost_id": hosting_id,
                   "external_reference": format!("INV-{back}")}),
        )
        .await;
        assert_eq!(paid["recurring_month"], ym(back));
    }
    expense(
        &app,
        &owner,
        json!({"date": day(12, 3), "vendor": "Gandi", "category": "Domains",
               "amount_minor": 12_000, "recurring_cost_id": domain_id}),
    )
    .await;
    // Paid in dollars: $50, which cost €46.
    let cdn = expense(
        &app,
        &owner,
        json!({"date": day(2, 20), "vendor": "Fastly", "category": "CDN", "amount_minor": 4_600,
               "original_amount_minor": 5_000, "original_currency": "usd", "note": "card in USD"}),
    )
    .await;
    assert_eq!(minor(&cdn["amount"]), 4_600);
    assert_eq!(cdn["amount"]["currency"], "EUR");
    assert_eq!(cdn["original_amount"]["currency"], "USD");
    assert_eq!(minor(&cdn["original_amount"]), 5_000);
    expense(
        &app,
        &owner,
        json!({"date": day(1, 8), "vendor": "Backblaze", "category": "Storage", "amount_minor": 3_000}),
    )
    .await;
    // A mistake, voided: it stays listed and counts nowhere.
    let typo = expense(
        &app,
        &owner,
        json!({"date": day(3, 9), "vendor": "Hetzner", "category": "Hosting", "amount_minor": 99_900}),
    )
    .await;
    let void = format!("/api/v1/admin/expenses/{}/void", typo["id"]);
    let voided = app
        .post_ok(
            &void,
            &owner,
            json!({"reason": "typed 999 for 9.99"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(voided["void"]["reason"], "typed 999 for 9.99");
    assert_eq!(
        minor(&voided["amount"]),
        99_900,
        "the amount is never changed"
    );
    expect_problem(
        app.post(&void, &owner, json!({"reason": "again"})).await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    let listed = app
        .get_json("/api/v1/admin/expenses?limit=200", Some(&owner))
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 15);
    assert_eq!(listed["items"][0]["id"], typo["id"]);
    assert!(listed["items"][0]["void"].is_object());

    // Recurring income now: €10 a month and €120 a year (€10 a month).
    let monthly = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "Patron", "amount_minor": 1_000, "interval": "month"}),
        )
        .await;
    let yearly = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "Annual", "amount_minor": 12_000, "interval": "year"}),
        )
        .await;
    let ann = app.create_patron(&owner, "ann@example.org", "Ann").await;
    let bob = app.create_patron(&owner, "bob@example.org", "Bob").await;
    app.create_pledge(&owner, ann, monthly["id"].as_i64().unwrap(), None)
        .await;
    app.create_pledge(&owner, bob, yearly["id"].as_i64().unwrap(), None)
        .await;

    // By hand. Net income per month: 30,000 − 900 = 29,100; less the
    // refund and the dispute in their months.
    let net = |back: u32| -> i64 {
        match back {
            1..=12 => {
                29_100 - if back == 7 { 5_000 } else { 0 } - if back == 5 { 2_000 } else { 0 }
            }
            _ => 0,
        }
    };
    let spent = |back: u32| -> i64 {
        let hosting = if (2..=12).contains(&back) { 20_000 } else { 0 };
        let domain = if back == 12 { 12_000 } else { 0 };
        let cdn = if back == 2 { 4_600 } else { 0 };
        let backup = if back == 1 { 3_000 } else { 0 };
        hosting + domain + cdn + backup
    };
    let mut balance = 100_000;
    let r = report(&app, &owner).await;
    assert_eq!(r["currency"], "EUR");
    assert_eq!(r["opening_month"], ym(12));
    assert!(
        month(&r, 13)["balance"].is_null(),
        "no balance before the opening month"
    );
    for back in (0..=12).rev() {
        let m = month(&r, back);
        balance += net(back) - spent(back);
        assert_eq!(minor(&m["net"]), net(back), "net in {}", ym(back));
        assert_eq!(
            minor(&m["expenses"]),
            spent(back),
            "expenses in {}",
            ym(back)
        );
        assert_eq!(
            minor(&m["balance"]),
            balance,
            "balance at the end of {}",
            ym(back)
        );
        // Hosting, and a twelfth of the domain, run every month from the start.
        assert_eq!(minor(&m["expected_recurring"]), 21_000);
    }
    assert_eq!(minor(&month(&r, 13)["expected_recurring"]), 0);
    assert_eq!(minor(&month(&r, 7)["refunds"]), 5_000);
    assert_eq!(minor(&month(&r, 5)["disputes"]), 2_000);
    assert_eq!(minor(&month(&r, 5)["fees"]), 900);
    assert_eq!(minor(&month(&r, 5)["gross"]), 30_000);
    // 100,000 + (12 × 29,100 − 7,000) − (11 × 20,000 + 12,000 + 4,600 + 3,000)
    assert_eq!(balance, 202_600);
    let by_category = &month(&r, 2)["categories"];
    assert_eq!(by_category[0]["category"], "CDN");
    assert_eq!(minor(&by_category[0]["amount"]), 4_600);
    assert_eq!(by_category[1]["category"], "Hosting");
    assert_eq!(minor(&by_category[1]["amount"]), 20_000);
    assert_eq!(
        minor(&month(&r, 3)["expenses"]),
        20_000,
        "the voided expense does not count"
    );

    // Matched and unmatched: last month's hosting is not paid yet; this
    // month hosting and the domain's renewal are due.
    let unmatched = |back: u32| -> Vec<i64> {
        month(&r, back)["unmatched"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["recurring_cost_id"].as_i64().unwrap())
            .collect()
    };
    for back in 2..=12 {
        assert_eq!(unmatched(back), Vec::<i64>::new(), "{}", ym(back));
    }
    assert_eq!(unmatched(1), [hosting_id]);
    assert_eq!(unmatched(0), [hosting_id, domain_id]);
    assert_eq!(minor(&month(&r, 0)["unmatched"][1]["amount"]), 12_000);

    // Now: the costs of the last 3 complete months average
    // (20,000 + 24,600 + 3,000) / 3 = 15,866; the runway is
    // 202,600 / 15,866.67 = 12.77 months, so 12.7; the coverage
    // 2,000 / 15,866.67 = 12.60 %.
    let now = &r["now"];
    assert_eq!(now["month"], ym(0));
    assert_eq!(
        (now["averaged_from"].clone(), now["averaged_to"].clone()),
        (json!(ym(3)), json!(ym(1)))
    );
    assert_eq!(minor(&now["balance"]), 202_600);
    assert_eq!(minor(&now["monthly_costs"]), 15_866);
    assert_eq!(minor(&now["monthly_recurring"]), 2_000);
    assert_eq!(minor(&now["expected_recurring"]), 21_000);
    assert_eq!(now["runway"]["tenths"], 127);
    assert_eq!(now["runway"]["months"], "12.7");
    assert_eq!(now["runway"]["target_months"], 6);
    assert_eq!(now["runway"]["meets_target"], true);
    assert_eq!(now["coverage"]["basis_points"], 1_260);
    assert_eq!(now["coverage"]["percent"], 12);

    // Ending the hosting last month: nothing is due from it this month.
    app.post_ok(
        &format!("/api/v1/admin/recurring-costs/{hosting_id}/end"),
        &owner,
        json!({"ends_on": day(1, 28)}),
        StatusCode::OK,
    )
    .await;
    let r = report(&app, &owner).await;
    assert_eq!(unmatched_of(&month(&r, 0)["unmatched"]), [domain_id]);
    assert_eq!(minor(&month(&r, 0)["expected_recurring"]), 1_000);
    assert_eq!(minor(&month(&r, 1)["expected_recurring"]), 21_000);

    // The CSV carries the same figures.
    let csv = app
        .get(
            &format!(
                "/api/v1/admin/reports/costs?from={}&to={}&format=csv",
                ym(13),
                ym(0)
            ),
            Some(&owner),
        )
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text().await.unwrap();
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    let total = rows
        .iter()
        .find(|r| r[0] == ym(1) && &r[1] == "total")
        .unwrap();
    assert_eq!(&total[8], "291.00");
    assert_eq!(&total[9], "30.00");
    assert_eq!(&total[11], "2026.00");
    let runway = rows.iter().find(|r| &r[2] == "runway_months").unwrap();
    assert_eq!(&runway[12], "12.7");
    let coverage = rows.iter().find(|r| &r[2] == "coverage_percent").unwrap();
    assert_eq!(&coverage[12], "12.60");

    // "Cover our costs": the public goal follows the monthly costs.
    app.patch(
        "/api/v1/admin/campaign",
        &owner,
        json!({"monthly_goal_minor": 50_000}),
    )
    .await;
    assert_eq!(minor(&app.funding().await["goal"]), 50_000);
    let res = app
        .send(
            reqwest::Method::PUT,
            "/api/v1/admin/costs/settings",
            Some(&owner),
            json!({"opening_balance_minor": 100_000, "as_of": day(12, 1), "goal_follows_costs": true}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(minor(&app.funding().await["goal"]), 15_866);
    // The console's overview shows the same goal.
    let (console, _) = form_client(&app, OWNER_EMAIL).await;
    let overview = crate::helpers::page_text(&console, app.url("/admin")).await;
    assert!(overview.contains("€158.66 a month"), "{overview}");

    // Every change is in the audit log.
    let audit = app
        .get_json("/api/v1/admin/audit?limit=200", Some(&owner))
        .await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    for action in [
        "expense.record",
        "expense.void",
        "recurring_cost.create",
        "recurring_cost.end",
        "costs.settings",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
}

fn unmatched_of(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|u| u["recurring_cost_id"].as_i64().unwrap())
        .collect()
}

async fn a_viewer_reads_the_costs_but_every_change_is_refused_and_changes_nothing(app: TestApp) {
    let owner = app.owner_token().await;
    let cost = recurring_cost(
        &app,
        &owner,
        json!({"vendor": "Hetzner", "category": "Hosting", "amount_minor": 20_000,
                   "interval": "month", "starts_on": day(2, 1)}),
    )
    .await;
    let spent = expense(
        &app,
        &owner,
        json!({"date": day(1, 5), "vendor": "Hetzner", "category": "Hosting", "amount_minor": 20_000}),
    )
    .await;
    let viewer = app.viewer_token("books@example.org").await;
    let state = || async {
        (
            app.get_json("/api/v1/admin/expenses", Some(&viewer)).await,
            app.get_json("/api/v1/admin/recurring-costs", Some(&viewer))
                .await,
            app.get_json("/api/v1/admin/costs/settings", Some(&viewer))
                .await,
            app.get_json("/api/v1/admin/costs/labels", Some(&viewer))
                .await,
            app.get_json("/api/v1/admin/audit", Some(&owner)).await,
        )
    };
    let before = state().await;
    report(&app, &viewer).await;
    let refused = [
        (
            reqwest::Method::POST,
            "/api/v1/admin/expenses".to_owned(),
            json!({"date": day(1, 6), "vendor": "X", "category": "Y", "amount_minor": 1}),
        ),
        (
            reqwest::Method::POST,
            format!("/api/v1/admin/expenses/{}/void", spent["id"]),
            json!({"reason": "no"}),
        ),
        (
            reqwest::Method::POST,
            "/api/v1/admin/recurring-costs".to_owned(),
            json!({"vendor": "X", "category": "Y", "amount_minor": 1, "interval": "month", "starts_on": day(1, 1)}),
        ),
        (
            reqwest::Method::POST,
            format!("/api/v1/admin/recurring-costs/{}/end", cost["id"]),
            json!({"ends_on": day(1, 1)}),
        ),
        (
            reqwest::Method::PUT,
            "/api/v1/admin/costs/settings".to_owned(),
            json!({"opening_balance_minor": 5, "as_of": day(1, 1)}),
        ),
        (
            reqwest::Method::PUT,
            "/api/v1/admin/costs/labels".to_owned(),
            json!({"kind": "vendor", "name": "Hetzner", "public": true}),
        ),
    ];
    for (method, path, body) in refused {
        let res = app.send(method, &path, Some(&viewer), body).await;
        expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    }
    // The console refuses the viewer's forms too.
    let (as_viewer, csrf) = form_client(&app, "books@example.org").await;
    let page = as_viewer.get(app.url("/admin/costs")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Hetzner"), "a viewer sees the costs");
    assert!(
        !html.contains("action=\"/admin/costs/expenses\""),
        "but no forms"
    );
    for (path, form) in [
        (
            "/admin/costs/expenses".to_owned(),
            vec![
                ("date", day(1, 6)),
                ("vendor", "X".into()),
                ("category", "Y".into()),
                ("amount", "1.00".into()),
            ],
        ),
        (
            format!("/admin/costs/expenses/{}/void", spent["id"]),
            vec![("reason", "no".into())],
        ),
        (
            "/admin/costs/recurring".to_owned(),
            vec![
                ("vendor", "X".into()),
                ("category", "Y".into()),
                ("amount", "1.00".into()),
                ("interval", "month".into()),
                ("starts_on", day(1, 1)),
            ],
        ),
        (
            format!("/admin/costs/recurring/{}/end", cost["id"]),
            vec![("ends_on", day(1, 1))],
        ),
        (
            "/admin/costs/settings".to_owned(),
            vec![("opening_balance", "5".into()), ("as_of", ym(1))],
        ),
        (
            "/admin/costs/labels".to_owned(),
            vec![
                ("kind", "vendor".into()),
                ("name", "Hetzner".into()),
                ("public", "on".into()),
            ],
        ),
    ] {
        let mut form = form.clone();
        form.push(("csrf", csrf.clone()));
        let res = as_viewer
            .post(app.url(&path))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(state().await, before, "nothing changed");
}

async fn bad_costs_input_is_refused_with_a_stable_problem_type(app: TestApp) {
    let owner = app.owner_token().await;
    // A yearly cost from two months ago: due then, and in a year.
    let yearly = recurring_cost(
        &app,
        &owner,
        json!({"vendor": "Gandi", "category": "Domains", "amount_minor": 1_200,
                   "interval": "year", "starts_on": day(2, 1)}),
    )
    .await;
    let tomorrow = (Utc::now().date_naive() + chrono::Duration::days(1)).to_string();
    let fields = |body: &Value| -> Vec<String> {
        body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_owned())
            .collect()
    };
    let res = app
        .post(
            "/api/v1/admin/expenses",
            &owner,
            json!({"date": tomorrow, "vendor": " ", "category": "x".repeat(61), "amount_minor": 0,
                   "original_amount_minor": 100}),
        )
        .await;
    let body = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
    assert_eq!(
        fields(&body),
        [
            "date",
            "vendor",
            "category",
            "amount_minor",
            "original_currency"
        ]
    );
    for (body, field) in [
        (
            json!({"date": day(1, 1), "vendor": "V", "category": "C", "amount_minor": 5,
                   "original_amount_minor": 5, "original_currency": "EURO"}),
            "original_currency",
        ),
        (
            json!({"date": day(1, 1), "vendor": "V", "category": "C", "amount_minor": 5,
                   "original_amount_minor": 5, "original_currency": "EUR"}),
            "original_currency",
        ),
        (
            json!({"date": day(1, 1), "vendor": "V", "category": "C", "amount_minor": 5, "currency": "USD"}),
            "currency",
        ),
        (
            json!({"date": day(1, 1), "vendor": "V", "category": "C", "amount_minor": 5, "recurring_cost_id": 999}),
            "recurring_cost_id",
        ),
        (
            json!({"date": day(1, 1), "vendor": "V\u{202e}", "category": "C", "amount_minor": 5}),
            "vendor",
        ),
        (
            json!({"date": day(1, 1), "vendor": "V", "category": "C", "amount_minor": 5,
                   "recurring_cost_id": yearly["id"]}),
            "recurring_month",
        ),
        (
            json!({"date": day(1, 1), "vendor": "V", "category": "C", "amount_minor": 5,
                   "recurring_cost_id": yearly["id"], "recurring_month": ym(3)}),
            "recurring_month",
        ),
    ] {
        let res = app.post("/api/v1/admin/expenses", &owner, body).await;
        let problem =
            expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
        assert_eq!(fields(&problem), [field]);
    }
    let res = app
        .post(
            "/api/v1/admin/expenses",
            &owner,
            json!({"date": "2026-02-30", "vendor": "V", "category": "C", "amount_minor": 5}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let res = app
        .post(
            "/api/v1/admin/recurring-costs",
            &owner,
            json!({"vendor": "V", "category": "C", "amount_minor": 5, "interval": "month",
                   "starts_on": day(1, 10), "ends_on": day(1, 9)}),
        )
        .await;
    let problem = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
    assert_eq!(fields(&problem), ["ends_on"]);
    let res = app
        .send(
            reqwest::Method::PUT,
            "/api/v1/admin/costs/settings",
            Some(&owner),
            json!({"opening_balance_minor": 5, "as_of": day(1, 2)}),
        )
        .await;
    let problem = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
    assert_eq!(fields(&problem), ["as_of"]);
    let res = app
        .post(
            "/api/v1/admin/expenses/999/void",
            &owner,
            json!({"reason": "gone"}),
        )
        .await;
    expect_problem(res, StatusCode::NOT_FOUND, "not-found").await;
    let res = app
        .get(
            "/api/v1/admin/reports/costs?from=2026-13&to=2026-01",
            Some(&owner),
        )
        .await;
    expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
    let res = app
        .get(
            "/api/v1/admin/reports/costs?from=2026-05&to=2026-01",
            Some(&owner),
        )
        .await;
    expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
    // Nothing was recorded.
    let listed = app.get_json("/api/v1/admin/expenses", Some(&owner)).await;
    assert_eq!(listed["items"], json!([]));
    // Paid a month late, for the month it fell due: matched.
    let late = expense(
        &app,
        &owner,
        json!({"date": day(1, 1), "vendor": "Gandi", "category": "Domains", "amount_minor": 1_200,
               "recurring_cost_id": yearly["id"], "recurring_month": ym(2)}),
    )
    .await;
    assert_eq!(late["recurring_month"], ym(2));
    let r = app
        .get_json(
            &format!("/api/v1/admin/reports/costs?from={}&to={}", ym(2), ym(0)),
            Some(&owner),
        )
        .await;
    assert_eq!(r["months"][0]["unmatched"], json!([]));
    assert_eq!(minor(&r["months"][1]["expenses"]), 1_200);
}

async fn hostile_vendor_and_note_text_is_escaped_in_the_console_and_neutralised_in_the_csv(
    app: TestApp,
) {
    const HOSTILE: &str = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    let owner = app.owner_token().await;
    let formula = "=HYPERLINK(\"http://evil.example\",\"x\")";
    expense(
        &app,
        &owner,
        json!({"date": day(1, 5), "vendor": HOSTILE, "category": formula, "amount_minor": 1_234,
               "note": format!("{HOSTILE} note")}),
    )
    .await;
    // Stored as typed.
    let listed = app.get_json("/api/v1/admin/expenses", Some(&owner)).await;
    assert_eq!(listed["items"][0]["vendor"], HOSTILE);
    assert_eq!(listed["items"][0]["category"], formula);

    let (client, _) = form_client(&app, OWNER_EMAIL).await;
    let html = crate::helpers::page_text(&client, app.url("/admin/costs")).await;
    assert!(!html.contains("<script>alert(1)"), "escaped: {html}");
    assert!(!html.contains("<img src=x"), "escaped");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));

    let csv = app
        .get(
            &format!(
                "/api/v1/admin/reports/costs?from={}&to={}&format=csv",
                ym(1),
                ym(0)
            ),
            Some(&owner),
        )
        .await
        .text()
        .await
        .unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let category = reader
        .records()
        .map(Result::unwrap)
        .find(|r| &r[1] == "category")
        .unwrap();
    assert_eq!(&category[2], format!("'{formula}"));
    // The expenses CSV of the console neutralises vendor and note too.
    let csv = crate::helpers::page_text(&client, app.url("/admin/costs/expenses.csv")).await;
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let row = reader.records().next().unwrap().unwrap();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    assert_eq!(
        &row[col("vendor")],
        HOSTILE,
        "text that runs nothing stays as typed"
    );
    assert_eq!(&row[col("category")], format!("'{formula}"));
    assert_eq!(&row[col("amount")], "12.34");
}
