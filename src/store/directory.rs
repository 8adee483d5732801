//! The supporter directory behind the console's list and its CSV: filters,
//! a sort, keyset pages, and each supporter's lifetime value, last payment,
//! pledge state and tier.

use chrono::{DateTime, Utc};

use super::{Db, contains_pattern};
use crate::{
    db_run,
    domain::supporter::{SponsorStatus, SupporterKind, Visibility},
    error::Result,
};

#[derive(Debug, Clone, Default)]
pub struct DirectoryFilter {
    pub kind: Option<SupporterKind>,
    /// "active", "past_due", "canceled" (pledges, none running) or "none".
    pub pledge_status: Option<String>,
    pub tier_id: Option<i64>,
    pub visibility: Option<Visibility>,
    pub joined_from: Option<DateTime<Utc>>,
    pub joined_until: Option<DateTime<Utc>>,
    /// Matches email or name, case-insensitively.
    pub q: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Joined,
    Name,
    Lifetime,
}

impl SortKey {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "joined" => SortKey::Joined,
            "name" => SortKey::Name,
            "lifetime" => SortKey::Lifetime,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Joined => "joined",
            SortKey::Name => "name",
            SortKey::Lifetime => "lifetime",
        }
    }

    fn column(self) -> &'static str {
        match self {
            SortKey::Joined => "x.id",
            SortKey::Name => "x.sort_name",
            SortKey::Lifetime => "x.lifetime_minor",
        }
    }
}

/// Where the previous page ended: its last row's sort value and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    Text(String, i64),
    Number(i64, i64),
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DirectoryRow {
    pub id: i64,
    pub kind: SupporterKind,
    pub email: String,
    pub display_name: String,
    pub visibility: Visibility,
    pub sponsor_status: Option<SponsorStatus>,
    pub created_at: DateTime<Utc>,
    /// Payments and manual contributions less refunds and disputes.
    pub lifetime_minor: i64,
    pub last_payment_at: Option<DateTime<Utc>>,
    /// The most pressing pledge's status: past due, else active, else
    /// canceled; none without pledges.
    pub pledge_status: Option<String>,
    pub tier_name: Option<String>,
    pub sort_name: String,
}

impl DirectoryRow {
    pub fn cursor(&self, sort: SortKey) -> Cursor {
        match sort {
            SortKey::Joined => Cursor::Number(self.id, self.id),
            SortKey::Name => Cursor::Text(self.sort_name.clone(), self.id),
            SortKey::Lifetime => Cursor::Number(self.lifetime_minor, self.id),
        }
    }
}

const ROWS: &str = "SELECT s.id, s.kind, s.email, s.display_name, s.visibility, s.sponsor_status, s.created_at, \
     lower(s.display_name) AS sort_name, \
     CAST(COALESCE((SELECT SUM(e.amount_minor) FROM ledger_entries e WHERE e.supporter_id = s.id \
        AND e.kind IN ('payment', 'manual', 'refund', 'dispute')), 0) AS BIGINT) AS lifetime_minor, \
     (SELECT MAX(e.occurred_at) FROM ledger_entries e WHERE e.supporter_id = s.id \
        AND e.kind IN ('payment', 'manual')) AS last_payment_at, \
     (SELECT p.status FROM pledges p WHERE p.supporter_id = s.id ORDER BY \
        CASE p.status WHEN 'past_due' THEN 0 WHEN 'active' THEN 1 ELSE 2 END, p.id DESC LIMIT 1) AS pledge_status, \
     COALESCE((SELECT t.name FROM pledges p JOIN tiers t ON t.id = p.tier_id WHERE p.supporter_id = s.id \
        AND p.status IN ('active', 'past_due') ORDER BY p.id DESC LIMIT 1), \
        (SELECT t.name FROM tiers t WHERE t.id = s.tier_id)) AS tier_name \
     FROM supporters s \
     WHERE ($1 IS NULL OR s.kind = $1) AND ($2 IS NULL OR s.visibility = $2) \
     AND ($3 IS NULL OR s.created_at >= $3) AND ($4 IS NULL OR s.created_at < $4) \
     AND ($5 IS NULL OR s.email_normalized LIKE $5 ESCAPE '\\' OR lower(s.display_name) LIKE $5 ESCAPE '\\') \
     AND ($6 IS NULL OR s.tier_id = $6 OR EXISTS (SELECT 1 FROM pledges p WHERE p.supporter_id = s.id \
        AND p.tier_id = $6 AND p.status IN ('active', 'past_due')))";

/// One page of the directory, sorted by `sort` (then id), after `cursor`.
pub async fn page(
    db: &Db,
    f: &DirectoryFilter,
    sort: SortKey,
    descending: bool,
    cursor: Option<&Cursor>,
    limit: i64,
) -> Result<Vec<DirectoryRow>> {
    let (cmp, dir) = if descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    let col = sort.column();
    // Only fixed fragments are formatted in: the column and direction
    // come from the enum above, every value is bound.
    // By id (joining order), the keyset is a range of the primary key, kept
    // inside so the database reads from there rather than from the start.
    let (inner, outer) = if sort == SortKey::Joined {
        (
            format!("AND ($9 IS NULL OR s.id {cmp} $9 OR $8 IS NULL)"),
            String::new(),
        )
    } else {
        (
            String::new(),
            format!("AND ($9 IS NULL OR {col} {cmp} $8 OR ({col} = $8 AND x.id {cmp} $9))"),
        )
    };
    let sql = format!(
        "SELECT * FROM ({ROWS} {inner}) x WHERE ($7 IS NULL OR x.pledge_status = $7 OR ($7 = 'none' AND x.pledge_status IS NULL)) \
         {outer} ORDER BY {col} {dir}, x.id {dir} LIMIT $10"
    );
    let (text, number, id) = match cursor {
        Some(Cursor::Text(t, id)) => (Some(t.clone()), None, Some(*id)),
        Some(Cursor::Number(n, id)) => (None, Some(*n), Some(*id)),
        None => (None, None, None),
    };
    let pattern = f.q.as_deref().map(contains_pattern);
    let rows = db_run!(db, |pool| {
        let q = sqlx::query_as::<_, DirectoryRow>(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(f.kind.map(|k| k.as_str()))
            .bind(f.visibility.map(|v| v.as_str()))
            .bind(f.joined_from)
            .bind(f.joined_until)
            .bind(pattern)
            .bind(f.tier_id)
            .bind(f.pledge_status.as_deref());
        let q = match sort {
            SortKey::Name => q.bind(text),
            _ => q.bind(number),
        };
        q.bind(id).bind(limit).fetch_all(pool).await?
    });
    Ok(rows)
}
