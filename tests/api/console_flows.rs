//! Whole flows through the admin console in a real browser, on both
//! databases: refunding a payment, replaying a failed Stripe event,
//! approving a sponsor with a logo, and checking that a report agrees with
//! its CSV and with the ledger. Each ends with a screenshot
//! (`target/screenshots/console-flow-*.png`).

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cdp::Browser;
use crate::console::{cookie_client, minor_of, row_with, session_cookie, shoot, sign_in, totals};
use crate::fake_stripe::{Delivery, FakeStripe};
use crate::helpers::{TestApp, expect_json, minor};
use crate::{on_both_backends, with_stripe_on_both_backends};

with_stripe_on_both_backends!(an_owner_refunds_a_payment_from_the_supporters_page);

// No task worker in the background: the failed event stays failed until
// the owner replays it (a worker would otherwise retry it on its own once
// Stripe is back).
with_stripe_on_both_backends!(@adjust (|s| s.queue.enabled = false)
    an_owner_replays_a_failed_webhook_from_operations,
);

on_both_backends!(
    an_owner_approves_a_sponsor_with_a_logo,
    a_report_totals_equal_the_csv_and_the_ledger_page,
);

/// A patron checks out for a monthly tier of `amount` through the fake
/// Stripe; the checkout session's id.
async fn patron_checkout(app: &TestApp, owner: &str, amount: i64, email: &str) -> String {
    let tier = app
        .create_tier(
            owner,
            json!({"kind": "patron", "name": "Friend", "amount_minor": amount, "interval": "month"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let res = app
        .send(
            reqwest::Method::POST,
            "/api/v1/checkout",
            None,
            json!({"kind": "patron", "tier_id": tier, "email": email,
                   "display_name": "Ann", "visibility": "public"}),
        )
        .await;
    let body = expect_json(res, StatusCode::OK).await;
    body["checkout_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned()
}

async fn ledger_api(app: &TestApp, owner: &str) -> Vec<Value> {
    app.get_json("/api/v1/admin/ledger?limit=200", Some(owner))
        .await["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn of_kind(entries: &[Value], kind: &str) -> Vec<i64> {
    entries
        .iter()
        .filter(|e| e["kind"] == kind)
        .map(|e| minor(&e["amount"]))
        .collect()
}

async fn an_owner_refunds_a_payment_from_the_supporters_page(app: TestApp, fake: FakeStripe) {
    let owner = app.owner_token().await;
    let session = patron_checkout(&app, &owner, 900, "ann@example.org").await;
    fake.deliver(&fake.complete_checkout(&session), Delivery::ONCE)
        .await;
    assert_eq!(of_kind(&ledger_api(&app, &owner).await, "payment"), [900]);
    let charge = fake.latest_charge(&fake.subscription_of(&session));

    let b = Browser::launch().await;
    sign_in(&b, &app).await;
    b.click("nav a[href='/admin/supporters']").await;
    let href = b
        .eval("[...document.querySelectorAll('tbody th a')].find(a => a.innerText == 'Ann').getAttribute('href')")
        .await;
    let href = href.as_str().expect("a link to Ann").to_owned();
    b.click(&format!("tbody th a[href='{href}']")).await;
    assert_eq!(b.path().await, href);
    assert!(b.text("h1").await.starts_with("Ann"));

    // The payment's row offers a refund, behind a disclosure.
    let row = row_with(&b, "section[aria-labelledby=money] table", "payment").await;
    assert!(row.contains("€9"), "{row}");
    let entry = b
        .eval("document.querySelector('[id^=refund-amount-]').id.replace('refund-amount-', '')")
        .await;
    let entry: i64 = entry.as_str().unwrap().parse().unwrap();
    let amount_field = format!("#refund-amount-{entry}");
    b.eval(&format!(
        "document.querySelector('{amount_field}').closest('details.void').querySelector('summary').click()"
    ))
    .await;
    assert_eq!(
        b.eval(&format!(
            "document.querySelector('{amount_field}').closest('details').open"
        ))
        .await,
        true
    );
    b.type_into(&amount_field, "4.50").await;
    b.type_into(&format!("#refund-reason-{entry}"), "Asked for half back")
        .await;
    let button = b
        .text(&format!(
            "form[action='{href}/payments/{entry}/refund'] button[type=submit]"
        ))
        .await;
    assert_eq!(button, format!("Refund payment #{entry}"));
    b.click(&format!(
        "form[action='{href}/payments/{entry}/refund'] button[type=submit]"
    ))
    .await;
    assert_eq!(b.path().await, href);
    assert_eq!(
        b.text(".flash.ok").await,
        format!("Refunded €4.50 of payment #{entry}.")
    );
    // Stripe was asked, for that amount and no more.
    let refunds: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("POST /v1/refunds "))
        .collect();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(fake.object(&charge)["amount_refunded"], 450);

    // Stripe's own webhook for it follows; it books nothing twice.
    let refunded = {
        let mut e = fake.unhandled_event();
        e["type"] = json!("charge.refunded");
        e["data"]["object"] = fake.object(&charge);
        e
    };
    fake.deliver(&[refunded], Delivery::HOSTILE).await;
    fake.settle().await;
    assert_eq!(of_kind(&ledger_api(&app, &owner).await, "refund"), [-450]);

    b.click("nav a[href='/admin/ledger']").await;
    let row = row_with(&b, "table.ledger", "refund").await;
    assert!(row.contains("-€4.50"), "{row}");
    let rows = b.texts("table.ledger tbody tr").await;
    assert_eq!(
        rows.iter().filter(|r| r.contains("\trefund\t")).count(),
        1,
        "{rows:?}"
    );
    let t = totals(&b).await;
    assert_eq!(t["Refunds"], "€4.50", "{t:?}");
    assert_eq!(minor_of(&t["Income"]), 900, "{t:?}");
    shoot(&b, "flow-refund", false, false).await;
    assert_eq!(b.csp_violations(), Vec::<String>::new());
}

async fn an_owner_replays_a_failed_webhook_from_operations(app: TestApp, fake: FakeStripe) {
    let owner = app.owner_token().await;
    let session = patron_checkout(&app, &owner, 700, "ann@example.org").await;
    // Stripe cannot be asked for the subscription: the payment, of a
    // pledge not known yet, cannot be applied.
    fake.break_endpoint("subscriptions");
    fake.deliver(&fake.complete_checkout(&session), Delivery::ONCE)
        .await;
    let failed = app
        .get_json("/api/v1/admin/stripe/events?status=failed", Some(&owner))
        .await;
    let failed = failed.as_array().unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["type"], "invoice.paid", "{failed:?}");
    let id = failed[0]["id"].as_str().unwrap().to_owned();
    assert!(of_kind(&ledger_api(&app, &owner).await, "payment").is_empty());

    let b = Browser::launch().await;
    sign_in(&b, &app).await;
    b.goto(&app.url("/admin/operations?events=failed")).await;
    let row = row_with(&b, "#events table", &id).await;
    assert!(row.contains("invoice.paid"), "{row}");
    assert!(row.contains("failed"), "{row}");
    let ledger_before = {
        b.goto(&app.url("/admin/ledger")).await;
        totals(&b).await
    };
    assert_eq!(minor_of(&ledger_before["Income"]), 0);

    // Stripe is back; the owner replays it.
    fake.restore();
    b.goto(&app.url("/admin/operations?events=failed")).await;
    b.click(&format!(
        "form[action='/admin/operations/events/{id}/replay'] button[type=submit]"
    ))
    .await;
    assert_eq!(b.text(".flash.ok").await, format!("Event {id} applied."));
    assert!(
        !b.text("#events table").await.contains(&id),
        "no longer among the failed"
    );
    b.choose("#events-status", "processed").await;
    b.click("#events form.filters button[type=submit]").await;
    assert!(b.path().await.contains("events=processed"));
    let row = row_with(&b, "#events table", &id).await;
    assert!(row.contains("processed"), "{row}");
    assert_eq!(
        b.eval(&format!(
            "document.querySelectorAll(\"form[action='/admin/operations/events/{id}/replay']\").length"
        ))
        .await,
        0,
        "a processed event has nothing to replay"
    );

    // Its money is in the ledger.
    b.click("nav a[href='/admin/ledger']").await;
    let row = row_with(&b, "table.ledger", "payment").await;
    assert!(row.contains("€7"), "{row}");
    let t = totals(&b).await;
    assert_eq!(minor_of(&t["Income"]), 700, "{t:?}");
    assert_eq!(of_kind(&ledger_api(&app, &owner).await, "payment"), [700]);
    shoot(&b, "flow-replay", false, false).await;
    assert_eq!(b.csp_violations(), Vec::<String>::new());
}

async fn sponsors_svg(app: &TestApp) -> String {
    let res = reqwest::get(app.url("/sponsors.svg")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.unwrap()
}

async fn an_owner_approves_a_sponsor_with_a_logo(app: TestApp) {
    let owner = app.owner_token().await;
    let tier = crate::public_pages::sponsor_tier(&app, &owner, "Gold sponsor", 120_000).await;
    let today = chrono::Utc::now().date_naive();
    let name = "Acme Hosting";
    let id = crate::public_pages::create_sponsor(
        &app,
        &owner,
        tier,
        name,
        "https://acme.example/",
        today + chrono::Duration::days(365),
    )
    .await;
    let svg = sponsors_svg(&app).await;
    assert!(
        !svg.contains(name) && !svg.contains("<image"),
        "pending: not on the wall: {svg}"
    );

    let b = Browser::launch().await;
    sign_in(&b, &app).await;
    b.click("nav a[href='/admin/sponsors']").await;
    let article = format!("article:has(#sponsor-{id})");
    assert_eq!(b.text(&format!("#sponsor-{id}")).await, name);
    assert_eq!(b.text(&format!("{article} .state")).await, "pending");
    assert_eq!(
        b.eval(&format!(
            "document.querySelectorAll('{article} .logos img').length"
        ))
        .await,
        0
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acme.png");
    std::fs::write(&file, crate::public_pages::png(240, 80, [200, 40, 40])).unwrap();
    b.set_file(&format!("#file-{id}"), &file).await;
    assert_eq!(
        b.eval(&format!(
            "document.querySelector('#file-{id}').files[0].name"
        ))
        .await,
        "acme.png"
    );
    b.click(&format!(
        "form[action='/admin/sponsors/{id}/logo'] button[type=submit]"
    ))
    .await;
    assert_eq!(
        b.text(".flash.ok").await,
        "Logo saved (240×80, light variant)."
    );
    // Shown on a light and a dark background, and actually loaded.
    for side in ["on-light", "on-dark"] {
        let img = format!("{article} .logos .{side} img");
        let loaded = b
            .eval(&format!(
                "(async () => {{ const i = document.querySelector('{img}'); if (!i) return 'missing'; await i.decode(); return [i.naturalWidth, i.naturalHeight, i.alt]; }})()"
            ))
            .await;
        assert_eq!(loaded, json!([240, 80, name]), "{side}");
    }

    b.type_into(&format!("#approve-{id}"), "Checked their site")
        .await;
    let approve = format!("#approve-{id} ~ button[type=submit]");
    assert_eq!(b.text(&approve).await, format!("Approve {name}"));
    b.click(&approve).await;
    assert_eq!(
        b.text(".flash.ok").await,
        format!("{name} is approved: shown while paid.")
    );

    // The public wall (no cookie) shows them within seconds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let svg = sponsors_svg(&app).await;
        if svg.contains(name) || svg.contains("<image") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not on the wall: {svg}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    b.goto(&app.url("/admin/sponsors?status=all")).await;
    assert_eq!(b.text(&format!("{article} .state")).await, "approved");
    shoot(&b, "flow-sponsor", false, false).await;
    assert_eq!(b.csp_violations(), Vec::<String>::new());
}

/// The report page's Total row, by column: {"Gross": "€40", ...}.
async fn report_total(b: &Browser) -> HashMap<String, String> {
    let v = b
        .eval("(() => { const t = document.querySelector('table'); const heads = [...t.querySelectorAll('thead th')].map(h => h.innerText); const cells = [...t.querySelectorAll('tfoot tr.total > *')].map(c => c.innerText); return Object.fromEntries(heads.map((h, i) => [h, cells[i]])); })()")
        .await;
    serde_json::from_value(v).unwrap()
}

async fn a_report_totals_equal_the_csv_and_the_ledger_page(app: TestApp) {
    let owner = app.owner_token().await;
    let today = chrono::Utc::now().date_naive();
    let last_month = today.checked_sub_months(chrono::Months::new(1)).unwrap();
    let mut ids = Vec::new();
    for (amount, date, reference) in [
        (2_500, today, "BANK-THIS-1"),
        (1_050, today, "BANK-THIS-2"),
        (4_000, last_month, "BANK-LAST-1"),
        (700, last_month, "BANK-LAST-2"),
    ] {
        let e = app
            .post_ok(
                "/api/v1/admin/contributions",
                &owner,
                json!({"amount_minor": amount, "date": date, "external_reference": reference}),
                StatusCode::CREATED,
            )
            .await;
        ids.push(e["id"].as_i64().unwrap());
    }
    app.post_ok(
        &format!("/api/v1/admin/contributions/{}/void", ids[3]),
        &owner,
        json!({"reason": "Entered by mistake"}),
        StatusCode::CREATED,
    )
    .await;
    let expected = 2_500 + 1_050 + 4_000;

    let b = Browser::launch().await;
    sign_in(&b, &app).await;
    b.click("nav a[href='/admin/reports']").await;
    let from = b.eval("document.querySelector('#from').value").await;
    let to = b.eval("document.querySelector('#to').value").await;
    let (from, to) = (from.as_str().unwrap(), to.as_str().unwrap());
    let first = chrono::NaiveDate::parse_from_str(&format!("{from}-01"), "%Y-%m-%d").unwrap();
    let to_first = chrono::NaiveDate::parse_from_str(&format!("{to}-01"), "%Y-%m-%d").unwrap();
    let last = to_first
        .checked_add_months(chrono::Months::new(1))
        .unwrap()
        .pred_opt()
        .unwrap();
    assert_eq!(to, today.format("%Y-%m").to_string(), "ends this month");
    assert_eq!(
        first,
        to_first
            .checked_sub_months(chrono::Months::new(11))
            .unwrap(),
        "twelve months"
    );
    let total = report_total(&b).await;
    let (gross, net) = (minor_of(&total["Gross"]), minor_of(&total["Net"]));
    assert_eq!(gross, expected, "{total:?}");
    assert_eq!(net, expected, "{total:?}");

    // The report's CSV, with the browser's session.
    let csv_href = b
        .eval("[...document.querySelectorAll('a')].find(a => a.innerText == 'CSV').href")
        .await;
    let cookie = session_cookie(&b, &app).await;
    let res = cookie_client(&cookie)
        .get(csv_href.as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    let rows: Vec<HashMap<String, String>> = csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .collect::<Result<_, _>>()
        .unwrap();
    let totals_rows: Vec<_> = rows.iter().filter(|r| r["scope"] == "total").collect();
    assert_eq!(totals_rows.len(), 12, "{text}");
    let csv_net: i64 = totals_rows.iter().map(|r| minor_of(&r["net"])).sum();
    let csv_gross: i64 = totals_rows.iter().map(|r| minor_of(&r["gross"])).sum();
    assert_eq!((csv_gross, csv_net), (gross, net), "{text}");

    // The ledger, filtered on the same dates through its form.
    b.click("nav a[href='/admin/ledger']").await;
    b.eval(&format!(
        "document.querySelector('#from').value = '{first}'; document.querySelector('#to').value = '{last}'"
    ))
    .await;
    b.click("form.filters button[type=submit]").await;
    let path = b.path().await;
    assert!(
        path.contains(&format!("from={first}")) && path.contains(&format!("to={last}")),
        "{path}"
    );
    let t = totals(&b).await;
    assert_eq!(
        (minor_of(&t["Income"]), minor_of(&t["Net"])),
        (gross, net),
        "ledger {t:?} vs report {total:?}"
    );

    // One more contribution through the ledger's form: the report, cached
    // until the books change, shows it.
    b.type_into("#amount", "12.34").await;
    b.type_into("#reference", "CASH-FLOW-1").await;
    b.click("form#record-form button[type=submit]").await;
    let flash = b.text(".flash.ok").await;
    assert!(flash.starts_with("Recorded €12.34 on "), "{flash}");
    b.click("nav a[href='/admin/reports']").await;
    let after = report_total(&b).await;
    assert_eq!(minor_of(&after["Gross"]), gross + 1234, "{after:?}");
    assert_eq!(minor_of(&after["Net"]), net + 1234, "{after:?}");
    shoot(&b, "flow-report", false, false).await;
    assert_eq!(b.csp_violations(), Vec::<String>::new());
}
