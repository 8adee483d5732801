//! The few aggregate reads behind the public snapshot. None scans the ledger:
//! money comes from `ledger_monthly`.

use chrono::NaiveDate;

use super::Db;
use crate::{
    db_run,
    domain::{
        funding::{FundingFacts, TierFacts, YearTotals},
        money::Currency,
        month::Month,
        tier::{Interval, TierKind},
    },
    error::Result,
};

#[derive(sqlx::FromRow)]
struct TierCount {
    id: i64,
    name: String,
    kind: TierKind,
    amount_minor: i64,
    interval: Interval,
    supporters: i64,
}

/// Givers are counted up to this many: enough for any sensible privacy
/// threshold, and the count stops early on a large ledger.
pub const GIVERS_COUNTED: i64 = 100;

/// An upper bound no entry reaches (year 9999).
const FAR_FUTURE: chrono::DateTime<chrono::Utc> =
    match chrono::DateTime::from_timestamp(253_402_300_799, 0) {
        Some(t) => t,
        None => panic!("a valid time"),
    };

/// How many people paid in `[from, until)` (each unattributed entry counts
/// as one), up to `GIVERS_COUNTED`. A macro, as each backend's pool has
/// its own type.
macro_rules! count_givers {
    ($pool:expr, $currency:expr, $from:expr, $until:expr) => {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM (SELECT DISTINCT COALESCE(supporter_id, -id) FROM ledger_entries \
             WHERE kind IN ('payment', 'manual') AND currency = $1 AND occurred_at >= $2 \
             AND occurred_at < $4 LIMIT $3) AS givers",
        )
        .bind($currency.code())
        // Bounds always, so a month's count reads that month through the
        // `occurred_at` index, not the whole ledger up to it.
        .bind(
            ($from as Option<chrono::DateTime<chrono::Utc>>)
                .unwrap_or(chrono::DateTime::UNIX_EPOCH),
        )
        .bind(GIVERS_COUNTED)
        .bind(($until as Option<chrono::DateTime<chrono::Utc>>).unwrap_or(FAR_FUTURE))
        .fetch_one($pool)
    };
}

/// `grace_days`: sponsors are counted while approved and paid through
/// `today` less the grace period, exactly as they are shown.
pub async fn facts(db: &Db, today: NaiveDate, grace_days: i64) -> Result<FundingFacts> {
    let cutoff = crate::domain::supporter::visible_paid_through(today, grace_days);
    let campaign = super::campaign::get(db).await?;
    let currency: Currency = campaign.currency;
    let this_month = Month::of(today.and_hms_opt(0, 0, 0).expect("midnight").and_utc()).to_string();
    let (sums, patrons, sponsors, raised, givers, tiers) = db_run!(db, |pool| {
        let sums: Vec<(Interval, i64)> = sqlx::query_as(
            "SELECT interval, CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM pledges \
             WHERE status IN ('active', 'past_due') AND currency = $1 GROUP BY interval",
        )
        .bind(currency.code())
        .fetch_all(pool)
        .await?;
        let patrons: i64 = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT supporter_id) FROM pledges WHERE status IN ('active', 'past_due') \
             AND tier_id IN (SELECT id FROM tiers WHERE kind = 'patron')",
        )
        .fetch_one(pool)
        .await?;
        let sponsors: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM supporters WHERE kind = 'sponsor' AND sponsor_status = 'approved' \
             AND paid_through >= $1",
        )
        .bind(cutoff)
        .fetch_one(pool)
        .await?;
        let raised: (i64, i64) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN month = $2 THEN amount_minor ELSE 0 END), 0) AS BIGINT) \
             FROM ledger_monthly WHERE currency = $1 AND kind IN ('payment', 'manual', 'refund', 'dispute')",
        )
        .bind(currency.code())
        .bind(&this_month)
        .fetch_one(pool)
        .await?;
        // The people behind the raised sums, counted only as far as the
        // privacy rule needs (see GIVERS_COUNTED).
        let month_start =
            Month::of(today.and_hms_opt(0, 0, 0).expect("midnight").and_utc()).start();
        let givers = (
            count_givers!(pool, currency, None, None).await?,
            count_givers!(pool, currency, Some(month_start), None).await?,
        );
        // Patron tiers count people with a running pledge; sponsor tiers
        // count the sponsors currently shown.
        let tiers: Vec<TierCount> = sqlx::query_as(
            "SELECT t.id, t.name, t.kind, t.amount_minor, t.interval, \
             CASE WHEN t.kind = 'patron' THEN \
               (SELECT COUNT(DISTINCT p.supporter_id) FROM pledges p WHERE p.tier_id = t.id AND p.status IN ('active', 'past_due')) \
             ELSE \
               (SELECT COUNT(*) FROM supporters s WHERE s.tier_id = t.id AND s.kind = 'sponsor' \
                AND s.sponsor_status = 'approved' AND s.paid_through >= $1) \
             END AS supporters \
             FROM tiers t WHERE t.archived = $2 ORDER BY t.kind, t.rank, t.amount_minor, t.id",
        )
        .bind(cutoff)
        .bind(false)
        .fetch_all(pool)
        .await?;
        (sums, patrons, sponsors, raised, givers, tiers)
    });
    let years = yearly_history(db, currency).await?;
    // "Cover our costs": the goal follows the monthly costs when the owner
    // chose so and there are costs to cover.
    let monthly_goal_minor = super::costs::costs_goal(db, currency, today)
        .await?
        .or(campaign.monthly_goal_minor);
    let sum_of = |i: Interval| sums.iter().find(|(k, _)| *k == i).map_or(0, |(_, s)| *s);
    Ok(FundingFacts {
        currency,
        monthly_goal_minor,
        monthly_pledges_sum: sum_of(Interval::Month),
        yearly_pledges_sum: sum_of(Interval::Year),
        patrons_count: patrons,
        sponsors_count: sponsors,
        raised_total: raised.0,
        raised_this_month: raised.1,
        givers_total: givers.0,
        givers_this_month: givers.1,
        tiers: tiers
            .into_iter()
            .map(|t| TierFacts {
                id: t.id,
                name: t.name,
                kind: t.kind,
                amount_minor: t.amount_minor,
                interval: t.interval,
                supporters: t.supporters,
            })
            .collect(),
        years,
        updated_at: super::now(),
    })
}

/// Income and expenses (payment fees and recorded costs) per calendar
/// year, from the monthly aggregates and the expenses, oldest
/// first; and the people behind each year's income, counted as far as the
/// privacy rule needs.
pub async fn yearly_history(db: &Db, currency: Currency) -> Result<Vec<YearTotals>> {
    let rows: Vec<(String, i64, i64)> = db_run!(db, |pool| {
        sqlx::query_as(
            "SELECT SUBSTR(month, 1, 4) AS year, \
             CAST(COALESCE(SUM(CASE WHEN kind IN ('payment', 'manual', 'refund', 'dispute') THEN amount_minor ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN kind = 'fee' THEN -amount_minor ELSE 0 END), 0) AS BIGINT) \
             FROM ledger_monthly WHERE currency = $1 GROUP BY SUBSTR(month, 1, 4) ORDER BY 1",
        )
        .bind(currency.code())
        .fetch_all(pool)
        .await?
    });
    // Costs recorded in the books (not voided), per year.
    let costs: Vec<(String, i64)> = db_run!(db, |pool| {
        sqlx::query_as(
            "SELECT SUBSTR(e.month, 1, 4) AS year, CAST(SUM(e.amount_minor) AS BIGINT) FROM expenses e \
             WHERE e.currency = $1 AND NOT EXISTS (SELECT 1 FROM expense_voids v WHERE v.expense_id = e.id) \
             GROUP BY SUBSTR(e.month, 1, 4)",
        )
        .bind(currency.code())
        .fetch_all(pool)
        .await?
    });
    let costs_in = |year: &str| costs.iter().find(|(y, _)| y == year).map_or(0, |(_, c)| *c);
    let mut years = Vec::with_capacity(rows.len());
    for (year, income, fees) in rows {
        let expenses = crate::domain::money::add(fees, costs_in(&year))?;
        let Ok(year) = year.parse::<i32>() else {
            continue;
        };
        let start = |y: i32| {
            NaiveDate::from_ymd_opt(y, 1, 1)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| d.and_utc())
        };
        let (from, until) = (start(year), start(year + 1));
        let givers = db_run!(db, |pool| count_givers!(pool, currency, from, until)
            .await?);
        years.push(YearTotals {
            year,
            income,
            expenses,
            givers,
        });
    }
    Ok(years)
}
