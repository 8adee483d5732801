//! Reads behind the public transparency report: income per month split by
//! where it came from, from `ledger_monthly`, and how many people are
//! behind each part, counted only as far as the privacy rule needs.

use chrono::{DateTime, Utc};

use super::Db;
use crate::{
    db_run,
    domain::{money::Currency, month::Month, transparency::Source},
    error::Result,
};

/// One month's sum for one source and ledger kind.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IncomeCell {
    pub month: String,
    /// `payment`, `manual`, `refund`, `dispute` or `fee`.
    pub kind: String,
    /// `patron`, `sponsor` or `none` (no tier).
    pub tier_kind: String,
    pub amount_minor: i64,
}

/// Sums per month, ledger kind and kind of tier in `[from, to]`.
pub async fn income(
    db: &Db,
    currency: Currency,
    from: Month,
    to: Month,
) -> Result<Vec<IncomeCell>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, IncomeCell>(
            "SELECT m.month, m.kind, COALESCE(t.kind, 'none') AS tier_kind, \
               CAST(SUM(m.amount_minor) AS BIGINT) AS amount_minor \
             FROM ledger_monthly m LEFT JOIN tiers t ON t.id = m.tier_key \
             WHERE m.currency = $1 AND m.month >= $2 AND m.month <= $3 \
             GROUP BY m.month, m.kind, COALESCE(t.kind, 'none')",
        )
        .bind(currency.code())
        .bind(from.to_string())
        .bind(to.to_string())
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// Up to `limit` of the people who paid into `source` in `[from, until)`,
/// as keys (each unattributed entry is a person of its own): enough to
/// know whether the privacy threshold is met. One person at a time, each
/// read stopping at the first entry of someone not yet found, so a month
/// of thousands of payments costs a few index steps.
pub async fn givers(
    db: &Db,
    currency: Currency,
    source: Source,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<i64>> {
    let filter = match source {
        Source::Recurring => "tier_id IN (SELECT id FROM tiers WHERE kind = 'patron')",
        Source::Sponsors => "tier_id IN (SELECT id FROM tiers WHERE kind = 'sponsor')",
        Source::OneTime => "tier_id IS NULL AND kind = 'payment'",
        Source::Other => "tier_id IS NULL AND kind = 'manual'",
    };
    let mut found: Vec<i64> = Vec::new();
    while (found.len() as i64) < limit {
        // The keys are integers read back from the database, never text.
        let not_found = if found.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = found.iter().map(i64::to_string).collect();
            format!(
                " AND COALESCE(supporter_id, -id) NOT IN ({})",
                list.join(", ")
            )
        };
        let sql = format!(
            "SELECT COALESCE(supporter_id, -id) FROM ledger_entries \
             WHERE kind IN ('payment', 'manual') AND currency = $1 AND occurred_at >= $2 \
             AND occurred_at < $3 AND ({filter}){not_found} LIMIT 1"
        );
        let next = db_run!(db, |pool| {
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(currency.code())
                .bind(from)
                .bind(until)
                .fetch_optional(pool)
                .await?
        });
        match next {
            Some(key) => found.push(key),
            None => break,
        }
    }
    Ok(found)
}

/// How many entries each month holds in `[from, to]`: entries are never
/// deleted (a void is a new entry), so a month whose count has not changed
/// has the same people behind it.
pub async fn entries_per_month(db: &Db, from: Month, to: Month) -> Result<Vec<(String, i64)>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, (String, i64)>(
            "SELECT month, CAST(SUM(entries) AS BIGINT) FROM ledger_monthly \
             WHERE month >= $1 AND month <= $2 GROUP BY month",
        )
        .bind(from.to_string())
        .bind(to.to_string())
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// Expenses that count (not voided), summed per month, category and vendor
/// in `[from, to]`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CostCell {
    pub month: String,
    pub category: String,
    pub vendor: String,
    pub amount_minor: i64,
}

pub async fn costs(db: &Db, currency: Currency, from: Month, to: Month) -> Result<Vec<CostCell>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, CostCell>(
            "SELECT e.month, e.category, e.vendor, CAST(SUM(e.amount_minor) AS BIGINT) AS amount_minor \
             FROM expenses e WHERE e.currency = $1 AND e.month >= $2 AND e.month <= $3 \
             AND NOT EXISTS (SELECT 1 FROM expense_voids v WHERE v.expense_id = e.id) \
             GROUP BY e.month, e.category, e.vendor",
        )
        .bind(currency.code())
        .bind(from.to_string())
        .bind(to.to_string())
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// Changes whenever the transparency report could: entries in months
/// before `current` (the ledger only grows; a void is a new entry), any
/// expense or void, a public name, the opening balance, a tier or the
/// campaign. Read from small tables and indexes only.
pub async fn fingerprint(db: &Db, current: Month) -> Result<String> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, (i64, i64, i64, Option<String>, Option<String>, Option<String>, Option<String>)>(
            "SELECT (SELECT CAST(COALESCE(SUM(entries), 0) AS BIGINT) FROM ledger_monthly WHERE month < $1), \
               (SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM expenses), \
               (SELECT CAST(COUNT(*) AS BIGINT) FROM expense_voids), \
               (SELECT CAST(MAX(updated_at) AS TEXT) FROM cost_labels), \
               (SELECT CAST(MAX(updated_at) AS TEXT) FROM cost_settings), \
               (SELECT CAST(MAX(updated_at) AS TEXT) FROM tiers), \
               (SELECT CAST(MAX(updated_at) AS TEXT) FROM campaign)",
        )
        .bind(current.to_string())
        .fetch_one(pool)
        .await?
    });
    Ok(format!("{current} {row:?}"))
}
