//! The monthly report for any range: a table per month, the charts above
//! it (each with its data in that table), the range per tier, and the same
//! report as JSON and CSV from the API (a console session may read it).

use axum::{extract::State, response::Response};
use serde::Serialize;

use super::{Signed, page};
use crate::{
    domain::{
        money::{Currency, Money},
        month::Month,
    },
    error::Result,
    http::{AppState, extract::Query},
    render::chart::{self, Series},
    reports::{self, MonthReport},
    store,
};

#[derive(Serialize)]
struct MonthRow {
    month: String,
    gross: String,
    refunds: String,
    disputes: String,
    fees: String,
    net: String,
    new_patrons: i64,
    churned_patrons: i64,
    active_patrons: i64,
    recurring: String,
}

#[derive(Serialize)]
struct TierRow {
    name: String,
    gross: String,
    fees: String,
    net: String,
    new_pledges: i64,
    ended_pledges: i64,
    active_pledges: i64,
    recurring: String,
}

#[derive(Serialize)]
struct ReportPage {
    from: String,
    to: String,
    months: Vec<MonthRow>,
    tiers: Vec<TierRow>,
    total: MonthRow,
    money_chart: String,
    people_chart: String,
    json: String,
    csv: String,
    error: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<super::RangeQuery>,
) -> Result<Response> {
    let this = Month::of(store::now());
    let (from, to, error) = q.months(this);
    let report = reports::monthly_cached(&state.db, &state.reports, from, to).await?;
    let currency = Currency::parse(&report.currency)
        .ok_or_else(|| crate::error::Error::internal("bad report currency"))?;
    let money = |m: i64| Money::new(m, currency).display();
    let labels: Vec<String> = report.months.iter().map(|m| m.month.clone()).collect();
    let column = |f: fn(&MonthReport) -> i64| report.months.iter().map(f).collect::<Vec<_>>();
    let money_chart = chart::bars(
        "Monthly recurring and net income",
        &labels,
        &[
            Series {
                name: "Monthly recurring",
                class: "s1",
                values: column(|m| m.monthly_recurring.amount_minor),
            },
            Series {
                name: "Net income",
                class: "s2",
                values: column(|m| m.net.amount_minor),
            },
        ],
        &money,
    );
    let people_chart = chart::bars(
        "Patrons joining and leaving",
        &labels,
        &[
            Series {
                name: "Joined",
                class: "s1",
                values: column(|m| m.new_patrons),
            },
            Series {
                name: "Left",
                class: "s3",
                values: column(|m| -m.churned_patrons),
            },
        ],
        &|n| crate::render::thousands(n),
    );
    let row = |m: &MonthReport| MonthRow {
        month: m.month.clone(),
        gross: m.gross.display.clone(),
        refunds: m.refunds.display.clone(),
        disputes: m.disputes.display.clone(),
        fees: m.fees.display.clone(),
        net: m.net.display.clone(),
        new_patrons: m.new_patrons,
        churned_patrons: m.churned_patrons,
        active_patrons: m.active_patrons,
        recurring: m.monthly_recurring.display.clone(),
    };
    let sum = |f: fn(&MonthReport) -> i64| report.months.iter().map(f).sum::<i64>();
    let last = report.months.last();
    let total = MonthRow {
        month: "Total".into(),
        gross: money(sum(|m| m.gross.amount_minor)),
        refunds: money(sum(|m| m.refunds.amount_minor)),
        disputes: money(sum(|m| m.disputes.amount_minor)),
        fees: money(sum(|m| m.fees.amount_minor)),
        net: money(sum(|m| m.net.amount_minor)),
        new_patrons: sum(|m| m.new_patrons),
        churned_patrons: sum(|m| m.churned_patrons),
        active_patrons: last.map_or(0, |m| m.active_patrons),
        recurring: last.map_or_else(|| money(0), |m| m.monthly_recurring.display.clone()),
    };
    // The range per tier: money and pledge moves summed over the months;
    // active pledges and recurring as of the last month.
    #[derive(Default)]
    struct TierSum {
        id: Option<i64>,
        name: String,
        gross: i64,
        fees: i64,
        net: i64,
        new: i64,
        ended: i64,
        active: i64,
        recurring: i64,
    }
    let mut sums: Vec<TierSum> = Vec::new();
    for t in report.months.iter().flat_map(|m| &m.tiers) {
        let i = match sums.iter().position(|x| x.id == t.tier_id) {
            Some(i) => i,
            None => {
                sums.push(TierSum {
                    id: t.tier_id,
                    name: t.tier_name.clone(),
                    ..TierSum::default()
                });
                sums.len() - 1
            }
        };
        let e = &mut sums[i];
        e.gross += t.gross.amount_minor;
        e.fees += t.fees.amount_minor;
        e.net += t.net.amount_minor;
        e.new += t.new_pledges;
        e.ended += t.ended_pledges;
        e.active = t.active_pledges;
        e.recurring = t.monthly_recurring.amount_minor;
    }
    let tiers = sums
        .into_iter()
        .map(|t| TierRow {
            name: t.name,
            gross: money(t.gross),
            fees: money(t.fees),
            net: money(t.net),
            new_pledges: t.new,
            ended_pledges: t.ended,
            active_pledges: t.active,
            recurring: money(t.recurring),
        })
        .collect();
    let api = format!("/api/v1/admin/reports/monthly?from={from}&to={to}");
    page(
        &signed,
        "reports.html",
        "reports",
        ReportPage {
            from: from.to_string(),
            to: to.to_string(),
            months: report.months.iter().map(row).collect(),
            tiers,
            total,
            money_chart,
            people_chart,
            json: format!("{api}&format=json"),
            csv: format!("{api}&format=csv"),
            error,
        },
    )
}
