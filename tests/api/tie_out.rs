//! Every report ties out to the books: a year of pseudo-random income,
//! voids and costs, then each report (monthly, costs, transparency; JSON
//! and CSV) is compared with a brute-force recount of the ledger rows and
//! expense rows the API lists.

use std::collections::BTreeMap;

use chrono::{Datelike, Months, NaiveDate, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, minor};
use crate::on_both_backends;

on_both_backends!(every_report_ties_out_to_the_ledger_rows);

/// A small deterministic generator: the same history on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

fn first_of_month(back: u32) -> NaiveDate {
    let today = Utc::now().date_naive();
    NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap() - Months::new(back)
}

/// Every page of a keyset-paged admin list.
async fn all(app: &TestApp, token: &str, path: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match before {
            Some(b) => format!("{path}{sep}limit=200&before={b}"),
            None => format!("{path}{sep}limit=200"),
        };
        let page = app.get_json(&url, Some(token)).await;
        out.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_after"].as_i64() {
            Some(b) => before = Some(b),
            None => return out,
        }
    }
}

#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
struct Books {
    gross: i64,
    refunds: i64,
    fees: i64,
    expenses: i64,
}

async fn every_report_ties_out_to_the_ledger_rows(app: TestApp) {
    let owner = app.owner_token().await;
    let mut rng = Lcg(7);
    let monthly = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "Monthly", "amount_minor": 500, "interval": "month"}),
        )
        .await["id"]
        .clone();
    let yearly = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "Yearly", "amount_minor": 6000, "interval": "year"}),
        )
        .await["id"]
        .clone();
    let mut pledges = Vec::new();
    for i in 0..6 {
        let who = app
            .create_patron(&owner, &format!("p{i}@example.org"), &format!("Patron {i}"))
            .await;
        let tier = if i % 3 == 0 { &yearly } else { &monthly };
        let start = first_of_month(12 - u32::try_from(rng.next(6)).unwrap());
        let p = app
            .create_pledge(
                &owner,
                who,
                tier.as_i64().unwrap(),
                Some(&start.to_string()),
            )
            .await;
        pledges.push(p["id"].clone());
    }
    // Income: 40 entries over the last 12 complete months, a few voided.
    let mut recorded = Vec::new();
    for n in 0..40 {
        let back = 1 + u32::try_from(rng.next(12)).unwrap();
        let date = first_of_month(back)
            .with_day(1 + u32::try_from(rng.next(27)).unwrap())
            .unwrap();
        let amount = 100 + i64::try_from(rng.next(20_000)).unwrap();
        let mut body =
            json!({"amount_minor": amount, "date": date.to_string(), "note": format!("entry {n}")});
        if rng.next(3) > 0 {
            body["pledge_id"] = pledges[usize::try_from(rng.next(6)).unwrap()].clone();
        }
        let e = app
            .post_ok(
                "/api/v1/admin/contributions",
                &owner,
                body,
                StatusCode::CREATED,
            )
            .await;
        recorded.push(e["id"].clone());
    }
    for id in recorded.iter().step_by(7) {
        app.post_ok(
            &format!("/api/v1/admin/contributions/{id}/void"),
            &owner,
            json!({"reason": "recorded by mistake"}),
            StatusCode::CREATED,
        )
        .await;
    }
    // Costs: 30 expenses in three categories, a few voided.
    let mut expenses = Vec::new();
    for n in 0..30 {
        let back = 1 + u32::try_from(rng.next(12)).unwrap();
        let date = first_of_month(back)
            .with_day(1 + u32::try_from(rng.next(27)).unwrap())
            .unwrap();
        let category = ["Hosting", "Email", "Legal"][usize::try_from(rng.next(3)).unwrap()];
        let body = json!({"date": date.to_string(), "vendor": format!("Vendor {}", rng.next(4)),
                          "category": category, "amount_minor": 50 + i64::try_from(rng.next(9_000)).unwrap(),
                          "note": format!("cost {n}")});
        let e = app
            .post_ok("/api/v1/admin/expenses", &owner, body, StatusCode::CREATED)
            .await;
        expenses.push(e["id"].clone());
    }
    for id in expenses.iter().step_by(5) {
        app.post_ok(
            &format!("/api/v1/admin/expenses/{id}/void"),
            &owner,
            json!({"reason": "duplicate"}),
            StatusCode::OK,
        )
        .await;
    }
    let opening_month = first_of_month(12);
    let res = app
        .send(
            reqwest::Method::PUT,
            "/api/v1/admin/costs/settings",
            Some(&owner),
            json!({"opening_balance_minor": 12345, "as_of": opening_month.to_string(), "goal_follows_costs": false}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    // The brute-force books, from the rows themselves.
    let mut books: BTreeMap<String, Books> = BTreeMap::new();
    for e in all(&app, &owner, "/api/v1/admin/ledger").await {
        let month = e["occurred_at"].as_str().unwrap()[..7].to_owned();
        let amount = minor(&e["amount"]);
        let b = books.entry(month).or_default();
        match e["kind"].as_str().unwrap() {
            "payment" | "manual" => b.gross += amount,
            "refund" | "dispute" => b.refunds -= amount,
            "fee" => b.fees -= amount,
            other => panic!("unknown kind {other}"),
        }
    }
    let listed = all(&app, &owner, "/api/v1/admin/expenses").await;
    assert_eq!(listed.len(), 30);
    for e in listed {
        if !e["void"].is_null() {
            continue;
        }
        let month = e["date"].as_str().unwrap()[..7].to_owned();
        books.entry(month).or_default().expenses += minor(&e["amount"]);
    }
    let months: Vec<String> = (1..=12)
        .rev()
        .map(|b| first_of_month(b).format("%Y-%m").to_string())
        .collect();
    let (from, to) = (&months[0], &months[11]);
    let mut balance = 12345;
    let mut expected = Vec::new();
    for m in &months {
        let b = books.get(m).copied().unwrap_or_default();
        balance += b.gross - b.refunds - b.fees - b.expenses;
        expected.push((m.clone(), b, balance));
    }
    assert!(
        expected
            .iter()
            .any(|(_, b, _)| b.expenses > 0 && b.gross > 0)
    );

    // The monthly report.
    let report = app
        .get_json(
            &format!("/api/v1/admin/reports/monthly?from={from}&to={to}"),
            Some(&owner),
        )
        .await;
    for ((m, b, _), r) in expected.iter().zip(report["months"].as_array().unwrap()) {
        assert_eq!(r["month"], m.as_str());
        assert_eq!(minor(&r["gross"]), b.gross, "{m}: gross");
        assert_eq!(minor(&r["net"]), b.gross - b.refunds - b.fees, "{m}: net");
    }

    // The costs report, JSON and CSV.
    let costs = app
        .get_json(
            &format!("/api/v1/admin/reports/costs?from={from}&to={to}"),
            Some(&owner),
        )
        .await;
    for ((m, b, bal), r) in expected.iter().zip(costs["months"].as_array().unwrap()) {
        assert_eq!(r["month"], m.as_str());
        assert_eq!(minor(&r["gross"]), b.gross, "{m}: gross");
        assert_eq!(minor(&r["expenses"]), b.expenses, "{m}: expenses");
        assert_eq!(minor(&r["balance"]), *bal, "{m}: balance");
    }
    let csv = app
        .get(
            &format!("/api/v1/admin/reports/costs?from={from}&to={to}&format=csv"),
            Some(&owner),
        )
        .await
        .text()
        .await
        .unwrap();
    let dec = |minor: i64| format!("{}.{:02}", minor / 100, minor % 100);
    for (m, b, bal) in &expected {
        let line = csv
            .lines()
            .find(|l| l.starts_with(&format!("{m},total,")))
            .unwrap_or_else(|| panic!("no total row for {m} in {csv}"));
        assert!(
            line.contains(&format!(",{},", dec(b.expenses))),
            "{m}: {line}"
        );
        assert!(
            line.contains(&format!(",{},", dec(*bal)))
                || line.ends_with(&format!(",{}", dec(*bal))),
            "{m}: {line}"
        );
    }

    // The public transparency report (threshold 1 in tests: every month
    // its own period), JSON and CSV.
    let t = app.public_json("/transparency.json").await;
    let periods = t["periods"].as_array().unwrap();
    for p in periods {
        let m = p["from"].as_str().unwrap();
        let (_, b, bal) = expected.iter().find(|(x, ..)| x == m).unwrap();
        assert_eq!(p["to"], m);
        assert_eq!(minor(&p["income_total"]), b.gross, "{m}: income");
        assert_eq!(minor(&p["costs_total"]), b.expenses, "{m}: costs");
        assert_eq!(
            minor(&p["result"]),
            b.gross - b.refunds - b.fees - b.expenses,
            "{m}: result"
        );
        assert_eq!(minor(&p["balance"]), *bal, "{m}: balance");
    }
    let shown: Vec<&str> = periods
        .iter()
        .map(|p| p["from"].as_str().unwrap())
        .collect();
    let first_active = expected
        .iter()
        .position(|(_, b, _)| *b != Books::default())
        .unwrap();
    assert_eq!(
        shown,
        months[first_active..]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    let tcsv = app
        .get("/transparency.csv", None)
        .await
        .text()
        .await
        .unwrap();
    for (m, _, bal) in &expected[first_active..] {
        assert!(
            tcsv.contains(&format!("{m},{m},{m},balance,,,{},EUR", dec(*bal))),
            "{m}: {tcsv}"
        );
    }
}
