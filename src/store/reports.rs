//! Reads behind the monthly report. Money comes from `ledger_monthly`; people
//! and recurring amounts from pledge start and end dates, so any past month
//! can be reported as it stood at its end.

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
    /// The same sums without pledges set to cancel at period end.
    pub committed_monthly_sum_at_end: i64,
    pub committed_yearly_sum_at_end: i64,
}

/// A pledge as the reports read it: who, which tier (and whether it is a
/// patron tier), what it pays, and when it ran. Read with `read_many`: its
/// fields in the order `pledge_spans` selects them.
#[derive(Debug, Clone, serde::Deserialize, sqlx::FromRow)]
pub struct PledgeSpan {
    pub supporter_id: i64,
    pub tier_id: Option<i64>,
    /// 1 when its tier is a patron tier.
    pub patron: i64,
    pub interval: Interval,
    pub amount_minor: i64,
    pub currency: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Set to cancel at period end, as of now: when it was set is not kept.
    #[serde(deserialize_with = "super::json_bool")]
    pub cancel_at_period_end: bool,
}

/// Every pledge that began before `until`, by supporter: one read for a
/// report of any length (the figures per month are computed from it),
/// filtered and sorted here. A report wants nearly every pledge: filtered
/// in SQL, SQLite walked the `started_at` index and looked up each row,
/// three times slower than its scan of the table (148 against 50 ms at
/// 100,000 pledges).
pub async fn pledge_spans(db: &Db, until: DateTime<Utc>) -> Result<Vec<PledgeSpan>> {
    let mut rows: Vec<PledgeSpan> = super::read_many(
        db,
        &[
            "p.supporter_id",
            "p.tier_id",
            "CAST(CASE WHEN t.kind = 'patron' THEN 1 ELSE 0 END AS BIGINT) AS patron",
            "p.interval",
            "p.amount_minor",
            "p.currency",
            "p.started_at",
            "p.ended_at",
            "p.cancel_at_period_end",
        ],
        "FROM pledges p LEFT JOIN tiers t ON t.id = p.tier_id",
        &[],
    )
    .await?;
    rows.retain(|r| r.started_at < until);
    rows.sort_by_key(|r| r.supporter_id);
    Ok(rows)
}

/// What a report is computed from, summarised: the newest ledger entry (the
/// ledger only grows), the newest pledge (pledges are never deleted), and
/// the pledges', tiers' and campaign's latest changes; all read from
/// indexes. Equal fingerprints mean an equal report for any range.
pub async fn fingerprint(db: &Db) -> Result<String> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, (i64, i64, Option<String>, Option<String>, Option<String>)>(
            "SELECT (SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM ledger_entries), \
               (SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM pledges), \
               (SELECT CAST(MAX(updated_at) AS TEXT) FROM pledges), \
               (SELECT CAST(MAX(updated_at) AS TEXT) FROM tiers), \
               (SELECT CAST(MAX(updated_at) AS TEXT) FROM campaign)",
        )
        .fetch_one(pool)
        .await?
    });
    Ok(format!("{row:?}"))
}
