//! Reads behind the monthly report. Money comes from `ledger_monthly`; people
//! and recurring amounts from pledge start and end dates, so any past month
//! can be reported as it stood at its end.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::Db;
use crate::{
    db_run,
    domain::{ledger::EntryKind, money::Currency, month::Month, tier::Interval},
    error::Result,
};

/// Ledger sums for one month, kind and tier (0 = no tier).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LedgerSum {
    pub month: String,
    pub kind: EntryKind,
    pub tier_key: i64,
    pub amount_minor: i64,
}

pub async fn ledger_sums(
    db: &Db,
    currency: Currency,
    from: Month,
    to: Month,
) -> Result<Vec<LedgerSum>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, LedgerSum>(
            "SELECT month, kind, tier_key, CAST(SUM(amount_minor) AS BIGINT) AS amount_minor FROM ledger_monthly \
             WHERE currency = $1 AND month >= $2 AND month <= $3 GROUP BY month, kind, tier_key",
        )
        .bind(currency.code())
        .bind(from.to_string())
        .bind(to.to_string())
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// Patron counts for one month.
#[derive(Debug, Clone, Default)]
pub struct PatronCounts {
    pub new: i64,
    pub churned: i64,
    pub active_at_end: i64,
}

/// Per-tier pledge figures for one month.
#[derive(Debug, Clone, Default)]
pub struct TierPledges {
    pub started: i64,
    pub ended: i64,
    pub active_at_end: i64,
    pub monthly_sum_at_end: i64,
    pub yearly_sum_at_end: i64,
}

pub async fn patron_counts(
    db: &Db,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<PatronCounts> {
    let counts = db_run!(db, |pool| {
        // New: the patron's first pledge ever began this month.
        let new: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT supporter_id, MIN(started_at) AS first_start FROM pledges \
             WHERE tier_id IN (SELECT id FROM tiers WHERE kind = 'patron') GROUP BY supporter_id) f \
             WHERE f.first_start >= $1 AND f.first_start < $2",
        )
        .bind(start)
        .bind(end)
        .fetch_one(pool)
        .await?;
        // Churned: a pledge ended this month and none was running at its end.
        let churned: i64 = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT p.supporter_id) FROM pledges p \
             WHERE p.tier_id IN (SELECT id FROM tiers WHERE kind = 'patron') \
             AND p.ended_at >= $1 AND p.ended_at < $2 \
             AND NOT EXISTS (SELECT 1 FROM pledges q WHERE q.supporter_id = p.supporter_id \
               AND q.started_at < $2 AND (q.ended_at IS NULL OR q.ended_at >= $2))",
        )
        .bind(start)
        .bind(end)
        .fetch_one(pool)
        .await?;
        let active: i64 = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT supporter_id) FROM pledges \
             WHERE tier_id IN (SELECT id FROM tiers WHERE kind = 'patron') \
             AND started_at < $1 AND (ended_at IS NULL OR ended_at >= $1)",
        )
        .bind(end)
        .fetch_one(pool)
        .await?;
        PatronCounts {
            new,
            churned,
            active_at_end: active,
        }
    });
    Ok(counts)
}

/// Pledge figures per tier id for one month, in `currency`.
pub async fn tier_pledges(
    db: &Db,
    currency: Currency,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<HashMap<i64, TierPledges>> {
    let (started, ended, active) = db_run!(db, |pool| {
        let started: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT tier_id, COUNT(*) FROM pledges WHERE tier_id IS NOT NULL AND currency = $3 \
             AND started_at >= $1 AND started_at < $2 GROUP BY tier_id",
        )
        .bind(start)
        .bind(end)
        .bind(currency.code())
        .fetch_all(pool)
        .await?;
        let ended: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT tier_id, COUNT(*) FROM pledges WHERE tier_id IS NOT NULL AND currency = $3 \
             AND ended_at >= $1 AND ended_at < $2 GROUP BY tier_id",
        )
        .bind(start)
        .bind(end)
        .bind(currency.code())
        .fetch_all(pool)
        .await?;
        let active: Vec<(i64, Interval, i64, i64)> = sqlx::query_as(
            "SELECT tier_id, interval, COUNT(*), CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM pledges \
             WHERE tier_id IS NOT NULL AND currency = $2 AND started_at < $1 AND (ended_at IS NULL OR ended_at >= $1) \
             GROUP BY tier_id, interval",
        )
        .bind(end)
        .bind(currency.code())
        .fetch_all(pool)
        .await?;
        (started, ended, active)
    });
    let mut out: HashMap<i64, TierPledges> = HashMap::new();
    for (tier, n) in started {
        out.entry(tier).or_default().started = n;
    }
    for (tier, n) in ended {
        out.entry(tier).or_default().ended = n;
    }
    for (tier, interval, n, sum) in active {
        let t = out.entry(tier).or_default();
        t.active_at_end += n;
        match interval {
            Interval::Month => t.monthly_sum_at_end += sum,
            Interval::Year => t.yearly_sum_at_end += sum,
        }
    }
    Ok(out)
}
