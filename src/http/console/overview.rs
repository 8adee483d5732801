//! The overview: this month against the last, a year of recurring and net
//! income, and what needs attention, each linking to where it is fixed.

use axum::{extract::State, response::Response};
use serde::Serialize;

use super::{Signed, page};
use crate::{
    domain::{funding::Progress, month::Month},
    error::Result,
    http::AppState,
    render::chart::{self, Series},
    reports::{self, MonthReport},
    store,
};

#[derive(Serialize)]
struct Card {
    label: &'static str,
    value: String,
    /// "+€120 on last month", or None when there is nothing to compare.
    change: Option<String>,
    /// "up", "down" or "flat", for the arrow's colour.
    trend: &'static str,
}

fn card(label: &'static str, now: i64, before: i64, shown: impl Fn(i64) -> String) -> Card {
    compared(label, now, before, "last month", shown)
}

/// A card whose change is against `against` ("last month").
fn compared(
    label: &'static str,
    now: i64,
    before: i64,
    against: &str,
    shown: impl Fn(i64) -> String,
) -> Card {
    let delta = now - before;
    let (trend, sign) = match delta.signum() {
        1 => ("up", "+"),
        -1 => ("down", "−"),
        _ => ("flat", "±"),
    };
    Card {
        label,
        value: shown(now),
        change: Some(format!("{sign}{} on {against}", shown(delta.abs()))),
        trend,
    }
}

#[derive(Serialize)]
struct Item {
    count: i64,
    text: &'static str,
    href: &'static str,
}

#[derive(Serialize)]
struct Overview {
    month: String,
    cards: Vec<Card>,
    goal: Option<Goal>,
    chart: String,
    rows: Vec<ChartRow>,
    attention: Vec<Item>,
}

#[derive(Serialize)]
struct Goal {
    goal: String,
    percent: i64,
    /// Width class of the bar, in steps of 5 (CSP: no inline style).
    step: i64,
}

#[derive(Serialize)]
struct ChartRow {
    month: String,
    recurring: String,
    net: String,
}

pub async fn show(State(state): State<AppState>, signed: Signed) -> Result<Response> {
    let now = store::now();
    let this = Month::of(now);
    let report = reports::monthly_cached(&state.db, &state.reports, this.back(11), this).await?;
    let campaign = store::campaign::get(&state.db).await?;
    // Sponsors on the wall are what the public sees: the snapshot has them.
    let sponsors_on_wall = state.public.current().data.funding.sponsors_count;
    let money = |minor: i64| crate::domain::money::Money::new(minor, campaign.currency).display();
    let count = |n: i64| crate::render::thousands(n);
    let last = report.months.last();
    let prev = report.months.iter().rev().nth(1);
    let pick = |m: Option<&MonthReport>, f: fn(&MonthReport) -> i64| m.map(f).unwrap_or(0);
    let mut cards = vec![
        card(
            "Monthly recurring",
            pick(last, |m| m.monthly_recurring.amount_minor),
            pick(prev, |m| m.monthly_recurring.amount_minor),
            money,
        ),
        // Whether a pledge was set to cancel is known as of now, not as of
        // last month's end: the honest comparison is with last month's
        // monthly recurring, and the card says so.
        compared(
            "Committed monthly recurring",
            pick(last, |m| {
                m.committed_monthly_recurring
                    .as_ref()
                    .unwrap_or(&m.monthly_recurring)
                    .amount_minor
            }),
            pick(prev, |m| m.monthly_recurring.amount_minor),
            "last month's monthly recurring",
            money,
        ),
        card(
            "Active patrons",
            pick(last, |m| m.active_patrons),
            pick(prev, |m| m.active_patrons),
            count,
        ),
        card(
            "Gross this month",
            pick(last, |m| m.gross.amount_minor),
            pick(prev, |m| m.gross.amount_minor),
            money,
        ),
        card(
            "Fees",
            pick(last, |m| m.fees.amount_minor),
            pick(prev, |m| m.fees.amount_minor),
            money,
        ),
        card(
            "Refunds and disputes",
            pick(last, |m| m.refunds.amount_minor + m.disputes.amount_minor),
            pick(prev, |m| m.refunds.amount_minor + m.disputes.amount_minor),
            money,
        ),
        card(
            "Net this month",
            pick(last, |m| m.net.amount_minor),
            pick(prev, |m| m.net.amount_minor),
            money,
        ),
    ];
    // The report has no sponsors per month (their terms are dates on the
    // sponsor, not pledges), so there is nothing honest to compare with.
    cards.insert(
        3,
        Card {
            label: "Sponsors on the wall",
            value: count(sponsors_on_wall),
            change: None,
            trend: "flat",
        },
    );
    // The goal the public sees: with "cover our costs", the monthly costs.
    let goal_minor = store::costs::costs_goal(
        &state.db,
        campaign.currency,
        chrono::Utc::now().date_naive(),
    )
    .await?
    .or(campaign.monthly_goal_minor);
    let goal = goal_minor.map(|goal| {
        let recurring = pick(last, |m| m.monthly_recurring.amount_minor);
        let percent = Progress::toward(recurring, goal).map_or(0, |p| p.percent);
        Goal {
            goal: money(goal),
            percent,
            step: (percent.clamp(0, 100) / 5) * 5,
        }
    });

    let labels: Vec<String> = report.months.iter().map(|m| m.month.clone()).collect();
    let series = [
        Series {
            name: "Monthly recurring",
            class: "s1",
            values: report
                .months
                .iter()
                .map(|m| m.monthly_recurring.amount_minor)
                .collect(),
        },
        Series {
            name: "Net income",
            class: "s2",
            values: report.months.iter().map(|m| m.net.amount_minor).collect(),
        },
    ];
    let chart = chart::bars(
        "Monthly recurring and net income, last 12 months",
        &labels,
        &series,
        &money,
    );
    let rows = report
        .months
        .iter()
        .map(|m| ChartRow {
            month: m.month.clone(),
            recurring: m.monthly_recurring.display.clone(),
            net: m.net.display.clone(),
        })
        .collect();

    let a = store::attention::counts(&state.db, now, now.date_naive()).await?;
    let (_, findings) = store::reconciliation::latest_mismatches(&state.db).await?;
    let overdue_jobs = crate::jobs::health(&state)
        .await?
        .iter()
        .filter(|j| j.overdue)
        .count() as i64;
    // (count, what one is, what several are, where it is fixed)
    let attention = [
        (
            a.failed_events,
            "Stripe event failed to apply",
            "Stripe events failed to apply",
            "/admin/operations?events=failed#events",
        ),
        (
            a.failed_mail,
            "email could not be sent",
            "emails could not be sent",
            "/admin/operations?mail=failed#outbox",
        ),
        (
            a.retrying_mail,
            "email waits to be tried again",
            "emails wait to be tried again",
            "/admin/operations?mail=pending#outbox",
        ),
        (
            a.dead_tasks,
            "task gave up",
            "tasks gave up",
            "/admin/operations#tasks",
        ),
        (
            a.overdue_tasks,
            "task is overdue by more than an hour",
            "tasks are overdue by more than an hour",
            "/admin/operations#tasks",
        ),
        (
            overdue_jobs,
            "scheduled job is overdue",
            "scheduled jobs are overdue",
            "/admin/operations#jobs",
        ),
        (
            findings.len() as i64,
            "reconciliation finding",
            "reconciliation findings",
            "/admin/operations#reconciliation",
        ),
        (
            a.past_due_pledges,
            "pledge is past due",
            "pledges are past due",
            "/admin/supporters?status=past_due",
        ),
        (
            a.pending_sponsors,
            "sponsor waits for approval",
            "sponsors wait for approval",
            "/admin/sponsors",
        ),
        (
            a.terms_ending,
            "sponsor term ends within 30 days",
            "sponsor terms end within 30 days",
            "/admin/sponsors#ending",
        ),
    ]
    .into_iter()
    .filter(|(count, ..)| *count > 0)
    .map(|(count, one, several, href)| Item {
        count,
        text: if count == 1 { one } else { several },
        href,
    })
    .collect();

    page(
        &signed,
        "overview.html",
        "overview",
        Overview {
            month: this.to_string(),
            cards,
            goal,
            chart,
            rows,
            attention,
        },
    )
}
