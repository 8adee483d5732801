//! The public transparency report: three months of income and costs, read
//! back as a visitor does (page, JSON, CSV, Markdown) and compared with
//! figures worked out by hand; no single gift shows, private names stay
//! private, hostile names come out escaped.

use chrono::{Datelike, Months, NaiveDate, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::browser::screenshots;
use crate::cdp::Browser;
use crate::helpers::{TestApp, minor};
use crate::on_both_backends;

on_both_backends!(
    @adjust (|s| s.pages.privacy_threshold = 3)
    the_transparency_report_adds_up_and_hides_single_gifts,
);

/// The first day of the month `back` months before this one, and its
/// `YYYY-MM`.
fn month(back: u32) -> (NaiveDate, String) {
    let today = Utc::now().date_naive();
    let first =
        NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap() - Months::new(back);
    (first, first.format("%Y-%m").to_string())
}

fn day(back: u32, d: u32) -> String {
    let (first, _) = month(back);
    first.with_day(d).unwrap().format("%Y-%m-%d").to_string()
}

async fn the_transparency_report_adds_up_and_hides_single_gifts(app: TestApp) {
    let owner = app.owner_token().await;
    let tier = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "Patron", "amount_minor": 1000, "interval": "month"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let mut pledges = Vec::new();
    for (email, name) in [
        ("a@example.org", "A"),
        ("b@example.org", "B"),
        ("c@example.org", "C"),
    ] {
        let p = app.create_patron(&owner, email, name).await;
        pledges.push(app.create_pledge(&owner, p, tier, Some(&day(3, 1))).await["id"].clone());
    }
    let contribution = |body: Value| {
        let owner = owner.clone();
        let app = &app;
        async move {
            app.post_ok(
                "/api/v1/admin/contributions",
                &owner,
                body,
                StatusCode::CREATED,
            )
            .await
        }
    };
    // Three months ago: three patrons pay 10.00 each, three people give
    // 20.00 each by hand.
    for p in &pledges {
        contribution(json!({"pledge_id": p, "amount_minor": 1000, "date": day(3, 5)})).await;
    }
    for _ in 0..3 {
        contribution(json!({"amount_minor": 2000, "date": day(3, 6), "note": "gift"})).await;
    }
    // Two months ago one patron alone pays: that month cannot be shown on
    // its own. Last month two patrons pay and one person gives 20.00.
    contribution(json!({"pledge_id": pledges[0], "amount_minor": 1000, "date": day(2, 5)})).await;
    contribution(json!({"pledge_id": pledges[0], "amount_minor": 1000, "date": day(1, 5)})).await;
    contribution(json!({"pledge_id": pledges[1], "amount_minor": 1000, "date": day(1, 5)})).await;
    contribution(json!({"amount_minor": 2000, "date": day(1, 6)})).await;

    let hosting = "<b>Hosting & co</b>";
    let vendor = "=HYPERLINK(\"http://evil.example\")";
    let expense = |date: String, vendor: &str, category: &str, amount: i64| {
        let owner = owner.clone();
        let app = &app;
        let body =
            json!({"date": date, "vendor": vendor, "category": category, "amount_minor": amount});
        async move {
            app.post_ok("/api/v1/admin/expenses", &owner, body, StatusCode::CREATED)
                .await
        }
    };
    expense(day(3, 10), vendor, hosting, 4000).await;
    expense(day(3, 11), "<script>alert(1)</script>", "Email", 500).await;
    expense(day(1, 10), vendor, hosting, 4000).await;
    expense(day(1, 12), "Lawyer", "Legal", 10000).await;
    let mistake = expense(day(1, 13), "Lawyer", "Legal", 99900).await;
    app.post_ok(
        &format!("/api/v1/admin/expenses/{}/void", mistake["id"]),
        &owner,
        json!({"reason": "typed twice"}),
        StatusCode::OK,
    )
    .await;
    for (kind, name) in [
        ("category", hosting),
        ("category", "Email"),
        ("vendor", vendor),
    ] {
        let res = app
            .send(
                reqwest::Method::PUT,
                "/api/v1/admin/costs/labels",
                Some(&owner),
                json!({"kind": kind, "name": name, "public": true}),
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "{}",
            res.text().await.unwrap()
        );
    }
    let res = app
        .send(
            reqwest::Method::PUT,
            "/api/v1/admin/costs/settings",
            Some(&owner),
            json!({"opening_balance_minor": 20000, "as_of": day(3, 1), "goal_follows_costs": false}),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );

    let t = app.public_json("/transparency.json").await;
    let periods = t["periods"].as_array().unwrap();
    assert_eq!(periods.len(), 2, "{t:#}");
    assert!(t["withheld_from"].is_null());

    // Three months ago, by hand: 30.00 recurring (3 people) and 60.00
    // other (3 people); costs 40.00 + 5.00; balance 200 + 90 - 45 = 245;
    // runway 245 / (45 / 3) = 16.3 months; coverage 30 / 45 = 66%.
    let first = &periods[0];
    assert_eq!(first["label"], month(3).1);
    let lines: Vec<(String, i64)> = first["income"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["label"].as_str().unwrap().to_owned(), minor(&l["amount"])))
        .collect();
    assert_eq!(
        lines,
        [
            ("Recurring".to_owned(), 3000),
            ("Other income".to_owned(), 6000)
        ]
    );
    assert_eq!(minor(&first["income_total"]), 9000);
    assert_eq!(minor(&first["costs_total"]), 4500);
    assert_eq!(minor(&first["result"]), 4500);
    assert_eq!(minor(&first["balance"]), 24500);
    assert_eq!(first["runway_tenths"], 163);
    assert_eq!(first["coverage"]["percent"], 66);
    let costs = first["costs"].as_array().unwrap();
    assert_eq!(costs[0]["category"], hosting);
    assert_eq!(costs[0]["vendors"][0]["vendor"], vendor);
    assert_eq!(costs[1]["category"], "Email");
    assert_eq!(
        costs[1]["vendors"].as_array().unwrap().len(),
        0,
        "a private vendor is not named"
    );

    // The month with one payer is shown only together with the next:
    // 10 + 20 + 20 = 50.00 from three people, as one line; costs 140.00
    // (the voided 999.00 counts nowhere, the private "Legal" is "Other");
    // balance 245 - 90 = 155; runway 155 / (185 / 3) = 2.5.
    let run = &periods[1];
    assert_eq!(run["from"], month(2).1);
    assert_eq!(run["to"], month(1).1);
    assert_eq!(run["label"], format!("{} to {}", month(2).1, month(1).1));
    let lines = run["income"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "{run:#}");
    assert_eq!(lines[0]["label"], "Income");
    assert_eq!(minor(&lines[0]["amount"]), 5000);
    assert_eq!(minor(&run["costs_total"]), 14000);
    let categories: Vec<&str> = run["costs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["category"].as_str().unwrap())
        .collect();
    assert_eq!(categories, [hosting, "Other"]);
    assert_eq!(minor(&run["balance"]), 15500);
    assert_eq!(run["runway_tenths"], 25);
    assert!(
        !t.to_string().contains("Legal"),
        "a private category is not named"
    );
    assert!(!t.to_string().contains("Lawyer"));
    // Monthly pledges of 30.00 against 185 / 3 = 61.66 a month.
    assert_eq!(minor(&t["monthly_costs"]), 6166);
    assert_eq!(t["coverage_now"]["percent"], 48);

    // funding.json's yearly history counts the costs as expenses; the
    // "costs covered" badge and embed say what the report says.
    let manifest = app.get_json("/funding.json", None).await;
    let expenses: f64 = manifest["funding"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|y| y["expenses"].as_f64().unwrap())
        .sum();
    assert_eq!(expenses, 185.0, "{manifest:#}");
    let badge = app.get_json("/badge/costs.json", None).await;
    assert_eq!(badge["label"], "costs covered");
    assert_eq!(badge["message"], "48%");
    let embed = app.get("/embed/progress?show=costs&theme=dark", None).await;
    assert_eq!(embed.status(), StatusCode::OK);
    let embed = embed.text().await.unwrap();
    assert!(
        embed.contains("Pledges cover 48% of our €61.66 monthly costs"),
        "{embed}"
    );
    assert!(embed.contains("value=\"48\""));

    // The quarterly view sums the same books.
    let q = app
        .get_json("/transparency.json?period=quarter", None)
        .await;
    let total: i64 = q["periods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| minor(&p["income_total"]))
        .sum();
    assert!(total <= 14000, "quarters show complete quarters only");

    // The page: escaped, and the figures a person reads.
    let res = app.get("/transparency", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let html = res.text().await.unwrap();
    assert!(
        html.contains("&lt;b&gt;Hosting &amp; co&lt;&#x2f;b&gt;")
            || html.contains("&lt;b&gt;Hosting &amp; co&lt;/b&gt;"),
        "{html}"
    );
    assert!(!html.contains("<b>Hosting"));
    assert!(!html.contains("<script>alert"));
    assert!(html.contains("€155"), "the latest balance is shown");
    assert!(html.contains("2.5 months"));
    assert!(html.contains("Below our target of 6 months"));

    // The CSV carries the same figures, with formulas neutralised.
    let csv = app
        .get("/transparency.csv", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("period,from,to,section,name,vendor,amount,currency"));
    assert!(csv.contains(&format!(
        "{},{},{},balance,,,245.00,EUR",
        month(3).1,
        month(3).1,
        month(3).1
    )));
    assert!(csv.contains(",155.00,EUR"));
    assert!(csv.contains(",\"'=HYPERLINK"), "{csv}");
    assert!(!csv.contains(",=HYPERLINK") && !csv.contains(",\"=HYPERLINK"));

    // The post to share: the latest period against the one before.
    let md = app
        .get("/transparency.md", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(md.contains("## Against"), "{md}");
    assert!(md.contains("Balance at the end of"));
    assert!(md.contains("€155"));
    // Outside the text chart's code block (where nothing is markup), names
    // are escaped: they cannot become HTML or links in the post.
    let prose: String = md.split("```").step_by(2).collect();
    assert!(prose.contains("\\<b\\>Hosting"), "{md}");
    assert!(!prose.contains("<b>"), "{md}");

    let bad = app.get("/transparency.json?period=decade", None).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // In a real browser, light and dark, desktop and phone: the figures a
    // person reads, nothing wider than the screen, no script run, nothing
    // refused by the page's policy.
    let b = Browser::launch().await;
    for (dark, width, name) in [
        (false, 1280, "light"),
        (true, 1280, "dark"),
        (false, 390, "phone"),
        (true, 390, "phone-dark"),
    ] {
        b.set_viewport(width, 900, width < 600).await;
        b.set_dark(dark).await;
        b.goto(&app.url("/transparency")).await;
        assert_eq!(b.text("#balance").await.trim(), "€155");
        assert_eq!(b.text("#runway").await.trim(), "2.5 months");
        assert_eq!(
            b.texts("section.period h3").await,
            [format!("{} to {}", month(2).1, month(1).1), month(3).1]
        );
        let fits = b
            .eval("document.documentElement.scrollWidth <= window.innerWidth")
            .await;
        assert_eq!(
            fits,
            json!(true),
            "{name}: the page is wider than the screen"
        );
        b.screenshot(&screenshots().join(format!("transparency-{name}.png")))
            .await;
    }
    b.goto(&app.url("/transparency?period=quarter")).await;
    b.screenshot(&screenshots().join("transparency-quarter.png"))
        .await;
    assert_eq!(b.csp_violations(), Vec::<String>::new());
    assert_eq!(b.dialogs(), Vec::<String>::new());
}
