//! Reads behind the analytics: every pledge in one read (the figures are
//! computed from it in memory, `domain::analytics`), the names behind a
//! drill-down, and failed payments and their recovery.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::Db;
use crate::{
    db_run,
    domain::{
        analytics::Pledge,
        money::Currency,
        pledge::{PledgeStatus, Source},
        tier::Interval,
    },
    error::Result,
};

/// A pledge as read (`read_many`), its fields in `COLUMNS` order.
#[derive(serde::Deserialize, sqlx::FromRow)]
struct Row {
    supporter_id: i64,
    tier_id: i64,
    interval: Interval,
    amount_minor: i64,
    status: PledgeStatus,
    source: Source,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "super::json_bool")]
    cancel_at_period_end: bool,
    current_period_end: Option<DateTime<Utc>>,
}

const COLUMNS: &[&str] = &[
    "supporter_id",
    "tier_id",
    "interval",
    "amount_minor",
    "status",
    "source",
    "started_at",
    "ended_at",
    "cancel_at_period_end",
    "current_period_end",
];

/// Every pledge on a tier in `currency`, sorted by supporter. A sponsor's
/// pledge recorded by hand (paid on terms, no automatic renewal) carries
/// the sponsor's `paid_through` as its term's end.
///
/// One scan of `pledges` alone: tiers' kinds and sponsors' terms are a few
/// rows read apart, and the sort by supporter is done here, in memory.
pub async fn pledges(db: &Db, currency: Currency) -> Result<Vec<Pledge>> {
    let rows: Vec<Row> = super::read_many(
        db,
        COLUMNS,
        "FROM pledges WHERE currency = $1 AND tier_id IS NOT NULL",
        &[currency.code()],
    )
    .await?;
    let (sponsor_tiers, terms) = db_run!(db, |pool| {
        let sponsor_tiers: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM tiers WHERE kind = 'sponsor'")
                .fetch_all(pool)
                .await?;
        let terms: Vec<(i64, NaiveDate)> = sqlx::query_as(
            "SELECT id, paid_through FROM supporters WHERE kind = 'sponsor' AND paid_through IS NOT NULL",
        )
        .fetch_all(pool)
        .await?;
        (sponsor_tiers, terms)
    });
    let terms: HashMap<i64, NaiveDate> = terms.into_iter().collect();
    let mut out: Vec<Pledge> = rows
        .into_iter()
        .map(|r| {
            let sponsor = sponsor_tiers.contains(&r.tier_id);
            Pledge {
                supporter_id: r.supporter_id,
                tier_id: r.tier_id,
                sponsor,
                interval: r.interval,
                amount_minor: r.amount_minor,
                started_at: r.started_at,
                ended_at: r.ended_at,
                past_due: r.status == PledgeStatus::PastDue,
                cancel_at_period_end: r.cancel_at_period_end,
                current_period_end: r.current_period_end,
                term_end: if sponsor && r.source == Source::Manual {
                    terms.get(&r.supporter_id).copied()
                } else {
                    None
                },
            }
        })
        .collect();
    out.sort_by_key(|p| p.supporter_id);
    Ok(out)
}

/// Display names of the given supporters (a drill-down's page; never
/// emails).
pub async fn names(db: &Db, ids: &[i64]) -> Result<HashMap<i64, String>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(500) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT id, display_name FROM supporters WHERE id IN ({})",
            marks.join(", ")
        );
        let rows: Vec<(i64, String)> = db_run!(db, |pool| {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
            for id in chunk {
                q = q.bind(*id);
            }
            q.fetch_all(pool).await?
        });
        out.extend(rows);
    }
    Ok(out)
}

/// Failed payments (invoices) first failing in `[from, to)` in
/// `currency`, and how many of them (and how much) were recovered since.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct Recovery {
    pub failed: i64,
    pub failed_minor: i64,
    pub recovered: i64,
    pub recovered_minor: i64,
}

pub async fn recovery(
    db: &Db,
    currency: Currency,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Recovery> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, Recovery>(
            "SELECT CAST(COUNT(*) AS BIGINT) AS failed, \
               CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS failed_minor, \
               CAST(COALESCE(SUM(CASE WHEN recovered_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS recovered, \
               CAST(COALESCE(SUM(CASE WHEN recovered_at IS NOT NULL THEN amount_minor ELSE 0 END), 0) AS BIGINT) AS recovered_minor \
             FROM payment_issues WHERE currency = $1 AND first_failed_at >= $2 AND first_failed_at < $3",
        )
        .bind(currency.code())
        .bind(from)
        .bind(to)
        .fetch_one(pool)
        .await?
    });
    Ok(row)
}
