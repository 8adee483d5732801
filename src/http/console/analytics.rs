//! Analytics in the console: the MRR movements (each figure links to the
//! supporters behind it), the cohort heatmaps, concentration and risk, and
//! the forecast; the same service functions as the JSON API.

use axum::{extract::State, response::Response};
use serde::{Deserialize, Serialize};

use super::{Signed, page};
use crate::{
    domain::{
        analytics::Kind,
        money::{Currency, Money},
        month::Month,
    },
    error::{Error, Result},
    http::{
        AppState,
        extract::{Path, Query},
    },
    render::chart::{self, Series},
    service::analytics::{self, MovementRow, RatioView},
    store,
};

#[derive(Serialize)]
struct Cell {
    amount: String,
    count: i64,
    /// The drill-down, when anything moved.
    href: Option<String>,
}

#[derive(Serialize)]
struct Row {
    month: String,
    label: String,
    start: String,
    cells: Vec<Cell>,
    end: String,
    quick_ratio: String,
    nrr: String,
    grr: String,
}

#[derive(Serialize)]
struct HeatCell {
    text: String,
    /// heat-0 (nothing kept) to heat-5 (all kept, or more).
    class: &'static str,
    title: String,
}

#[derive(Serialize)]
struct HeatRow {
    month: String,
    size: i64,
    cells: Vec<Option<HeatCell>>,
}

#[derive(Serialize)]
struct Card {
    label: String,
    value: String,
    note: String,
}

#[derive(Serialize)]
struct ForecastRow {
    month: String,
    committed: String,
    ending: String,
    ending_pledges: i64,
    renewals: String,
    renewal_count: i64,
}

#[derive(Serialize)]
struct AnalyticsPage {
    from: String,
    to: String,
    error: Option<String>,
    chart: String,
    rows: Vec<Row>,
    tiers: Vec<Row>,
    rules: String,
    ages: Vec<usize>,
    people: Vec<HeatRow>,
    money: Vec<HeatRow>,
    summary: Vec<Card>,
    ltv_formula: String,
    concentration: Vec<Card>,
    forecast: Vec<ForecastRow>,
    forecast_rules: String,
    movements_json: String,
    movements_csv: String,
    cohorts_csv: String,
}

fn ratio(r: &Option<RatioView>) -> String {
    r.as_ref()
        .map_or_else(|| "—".to_owned(), |r| r.display.clone())
}

fn heat(bp: Option<i64>) -> &'static str {
    match bp {
        None => "heat-0",
        Some(b) if b >= 10_000 => "heat-5",
        Some(b) if b >= 7_500 => "heat-4",
        Some(b) if b >= 5_000 => "heat-3",
        Some(b) if b >= 2_500 => "heat-2",
        Some(b) if b > 0 => "heat-1",
        Some(_) => "heat-0",
    }
}

fn row(month: &str, label: String, r: &MovementRow, link: bool) -> Row {
    let tier = r
        .tier_id
        .map(|t| format!("&tier_id={t}"))
        .unwrap_or_default();
    let cell = |kind: Kind, m: &analytics::Movement| Cell {
        amount: m.amount.display.clone(),
        count: m.supporters,
        href: (link && m.supporters > 0).then(|| {
            format!(
                "/admin/analytics/movements/{month}?kind={}{tier}",
                kind.as_str()
            )
        }),
    };
    Row {
        month: month.to_owned(),
        label,
        start: r.start.display.clone(),
        cells: vec![
            cell(Kind::New, &r.new),
            cell(Kind::Expansion, &r.expansion),
            cell(Kind::Reactivation, &r.reactivation),
            cell(Kind::Contraction, &r.contraction),
            cell(Kind::Churn, &r.churn),
        ],
        end: r.end.display.clone(),
        quick_ratio: ratio(&r.quick_ratio),
        nrr: ratio(&r.net_revenue_retention),
        grr: ratio(&r.gross_revenue_retention),
    }
}

pub async fn show(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<super::RangeQuery>,
) -> Result<Response> {
    let now = store::now();
    let this = Month::of(now);
    let (from, to, error) = q.months(this);
    let db = &state.db;
    let moves = analytics::movements(db, from, to).await?;
    let cohorts = analytics::cohorts(db, from, to).await?;
    let conc = analytics::concentration(db, now, from, to).await?;
    let forecast = analytics::forecast(db, now).await?;
    let currency =
        Currency::parse(&moves.currency).ok_or_else(|| Error::internal("bad report currency"))?;
    let money = |m: i64| Money::new(m, currency).display();

    let labels: Vec<String> = moves.months.iter().map(|m| m.month.clone()).collect();
    let column = |f: &dyn Fn(&MovementRow) -> i64| {
        moves.months.iter().map(|m| f(&m.total)).collect::<Vec<_>>()
    };
    let chart = chart::bars(
        "MRR gained (new, expansion, reactivation) and lost (contraction, churn)",
        &labels,
        &[
            Series {
                name: "Gained",
                class: "s1",
                values: column(&|r| {
                    r.new.amount.amount_minor
                        + r.expansion.amount.amount_minor
                        + r.reactivation.amount.amount_minor
                }),
            },
            Series {
                name: "Lost",
                class: "s3",
                values: column(&|r| {
                    -(r.contraction.amount.amount_minor + r.churn.amount.amount_minor)
                }),
            },
        ],
        &money,
    );
    let rows = moves
        .months
        .iter()
        .map(|m| row(&m.month, m.month.clone(), &m.total, true))
        .collect();
    // Per tier, the last month of the range, each figure linked.
    let tiers = moves
        .months
        .last()
        .map(|m| {
            m.tiers
                .iter()
                .map(|t| row(&m.month, t.tier_name.clone().unwrap_or_default(), t, true))
                .collect()
        })
        .unwrap_or_default();

    let ages: Vec<usize> = (0..cohorts.cohorts.first().map_or(0, |c| c.cells.len())).collect();
    let heat_rows = |money: bool| -> Vec<HeatRow> {
        cohorts
            .cohorts
            .iter()
            .map(|c| HeatRow {
                month: c.month.clone(),
                size: c.size,
                cells: ages
                    .iter()
                    .map(|&age| {
                        c.cells.get(age).map(|cell| {
                            let r = if money {
                                &cell.mrr_retention
                            } else {
                                &cell.supporter_retention
                            };
                            HeatCell {
                                text: ratio(r),
                                class: heat(r.as_ref().map(|r| r.basis_points)),
                                title: if money {
                                    format!("{}: {}", cell.month, cell.mrr.display)
                                } else {
                                    format!("{}: {} of {}", cell.month, cell.supporters, c.size)
                                },
                            }
                        })
                    })
                    .collect(),
            })
            .collect()
    };
    let card = |label: &str, value: String, note: String| Card {
        label: label.to_owned(),
        value,
        note,
    };
    let summary = vec![
        card(
            "Average revenue per supporter",
            cohorts
                .arps
                .as_ref()
                .map_or_else(|| "—".into(), |m| m.display.clone()),
            format!(
                "{} supporters, {} a month at the end of {to}",
                cohorts.supporters, cohorts.mrr.display
            ),
        ),
        card(
            "Average tenure",
            cohorts
                .average_tenure_months
                .as_ref()
                .map_or_else(|| "—".into(), |t| format!("{t} months")),
            "Month ends with a pledge running, per supporter".into(),
        ),
        card(
            "Monthly churn rate",
            ratio(&cohorts.monthly_churn_rate),
            format!(
                "{} left over {} supporter-months",
                cohorts.churned_supporters, cohorts.supporter_months
            ),
        ),
        card(
            "Lifetime value (estimate)",
            cohorts
                .lifetime_value
                .as_ref()
                .map_or_else(|| "—".into(), |m| m.display.clone()),
            "ARPS ÷ monthly churn rate".into(),
        ),
    ];
    let share = |s: &Option<analytics::SupporterShare>| {
        s.as_ref().map_or_else(
            || ("—".to_owned(), "Nobody".to_owned()),
            |s| {
                (
                    ratio(&s.share),
                    format!("{}: {} a month", s.display_name, s.mrr.display),
                )
            },
        )
    };
    let (largest, largest_note) = share(&conc.largest);
    let (_, sponsor_note) = share(&conc.largest_sponsor);
    let fp = &conc.failed_payments;
    let concentration = vec![
        card(
            "Monthly recurring now",
            conc.mrr.display.clone(),
            format!("{} supporters", conc.supporters),
        ),
        card("Largest supporter's share", largest, largest_note),
        card(
            "Top 10's share",
            ratio(&conc.top10_share),
            format!("{} a month", conc.top10.display),
        ),
        card(
            "Herfindahl index",
            crate::render::thousands(conc.herfindahl),
            "0 to 10,000; above 2,500 is highly concentrated".into(),
        ),
        card(
            "If the largest sponsor leaves",
            conc.mrr_without_largest_sponsor.display.clone(),
            if conc.largest_sponsor.is_some() {
                format!("Monthly recurring falls to this ({sponsor_note})")
            } else {
                "No sponsor pledges".into()
            },
        ),
        card(
            "At risk: past due",
            conc.at_risk_past_due.display.clone(),
            format!(
                "{} supporters' renewals are being retried",
                conc.past_due_supporters
            ),
        ),
        card(
            "Failed payments recovered",
            ratio(&fp.recovery_rate),
            format!(
                "{} of {} ({} of {}) failing {from} to {to}",
                fp.recovered, fp.failed, fp.recovered_amount.display, fp.failed_amount.display
            ),
        ),
    ];
    let forecast_rows = forecast
        .months
        .iter()
        .map(|m| ForecastRow {
            month: m.month.clone(),
            committed: m.committed.display.clone(),
            ending: m.ending.display.clone(),
            ending_pledges: m.ending_pledges,
            renewals: m.yearly_renewals.display.clone(),
            renewal_count: m.yearly_renewal_count,
        })
        .collect();
    let api = format!("from={from}&to={to}");
    page(
        &signed,
        "analytics.html",
        "analytics",
        AnalyticsPage {
            from: from.to_string(),
            to: to.to_string(),
            error,
            chart,
            rows,
            tiers,
            rules: moves.rules.clone(),
            people: heat_rows(false),
            money: heat_rows(true),
            ages,
            summary,
            ltv_formula: cohorts.lifetime_value_formula.clone(),
            concentration,
            forecast: forecast_rows,
            forecast_rules: forecast.rules.clone(),
            movements_json: format!("/api/v1/admin/analytics/movements?{api}&format=json"),
            movements_csv: format!("/api/v1/admin/analytics/movements?{api}&format=csv"),
            cohorts_csv: format!("/api/v1/admin/analytics/cohorts?{api}&format=csv"),
        },
    )
}

#[derive(Deserialize, Default)]
pub struct DetailQuery {
    kind: Option<String>,
    tier_id: Option<i64>,
}

#[derive(Serialize)]
struct DetailRow {
    id: i64,
    name: String,
    kind: String,
    amount: String,
    before: String,
    after: String,
}

#[derive(Serialize)]
struct DetailPage {
    month: String,
    kind: Option<String>,
    tier: Option<String>,
    supporters: i64,
    total: String,
    items: Vec<DetailRow>,
    more: bool,
}

/// Supporters shown on the drill-down page (the JSON API pages further).
const DETAIL_LIMIT: usize = 500;

/// The supporters behind one figure of the movements table.
pub async fn movement(
    State(state): State<AppState>,
    signed: Signed,
    Path(month): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Result<Response> {
    let month = Month::parse("month", &month)?;
    let kind = match q.kind.as_deref().filter(|k| !k.is_empty()) {
        None => None,
        Some(k) => Some(Kind::parse(k).ok_or_else(|| Error::field("kind", "unknown movement"))?),
    };
    let d = analytics::movement_details(&state.db, month, q.tier_id, kind, DETAIL_LIMIT).await?;
    let tier = match q.tier_id {
        Some(id) => Some(
            store::tiers::list(&state.db, true)
                .await?
                .into_iter()
                .find(|t| t.id == id)
                .map_or_else(|| format!("tier {id}"), |t| t.name),
        ),
        None => None,
    };
    page(
        &signed,
        "analytics_detail.html",
        "analytics",
        DetailPage {
            month: d.month.clone(),
            kind: d.kind.clone(),
            tier,
            supporters: d.supporters,
            total: d.total.display.clone(),
            more: d.supporters > d.items.len() as i64,
            items: d
                .items
                .into_iter()
                .map(|i| DetailRow {
                    id: i.supporter_id,
                    name: i.display_name,
                    kind: i.kind,
                    amount: i.amount.display,
                    before: i.before.display,
                    after: i.after.display,
                })
                .collect(),
        },
    )
}
