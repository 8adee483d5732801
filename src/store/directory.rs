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
            SortKey::Joined => "s.id",
            SortKey::Name => "lower(s.display_name)",
            SortKey::Lifetime => "m.lifetime_minor",
        }
    }

    /// The id that breaks ties, from the table whose index serves the sort.
    fn id_column(self) -> &'static str {
        match self {
            SortKey::Lifetime => "m.supporter_id",
            SortKey::Joined | SortKey::Name => "s.id",
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
    /// A patron's linked fediverse account (user@host) and its profile.
    pub fediverse_acct: Option<String>,
    pub fediverse_url: Option<String>,
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

const SELECT: &str = "SELECT s.id, s.kind, s.email, s.display_name, s.visibility, s.sponsor_status, s.created_at, \
     lower(s.display_name) AS sort_name, m.lifetime_minor, m.last_payment_at, m.pledge_status, t.name AS tier_name, \
     s.fediverse_acct, s.fediverse_url \
     FROM supporters s JOIN supporter_summaries m ON m.supporter_id = s.id \
     LEFT JOIN tiers t ON t.id = COALESCE(m.pledge_tier_id, s.tier_id)";

/// A value bound to a placeholder of the directory's query.
enum Arg {
    Text(String),
    Number(i64),
    Time(DateTime<Utc>),
}

/// The WHERE clause of only the filters given, every value bound. A single
/// query with `($1 IS NULL OR …)` for each absent filter gets one generic
/// plan on PostgreSQL, and that plan can use no index for any of them.
#[derive(Default)]
struct Conditions {
    sql: Vec<String>,
    args: Vec<Arg>,
}

impl Conditions {
    /// Binds `arg`, answering its placeholder.
    fn bind(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    /// Adds `condition`, whose `$` stands for the bound `arg`.
    fn and(&mut self, condition: &str, arg: Arg) {
        let placeholder = self.bind(arg);
        self.sql.push(condition.replace('$', &placeholder));
    }

    fn clause(&self) -> String {
        if self.sql.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.sql.join(" AND "))
        }
    }
}

/// One page of the directory, sorted by `sort` (then id), after `cursor`.
pub async fn page(
    db: &Db,
    f: &DirectoryFilter,
    sort: SortKey,
    descending: bool,
    cursor: Option<&Cursor>,
    limit: i64,
) -> Result<Vec<DirectoryRow>> {
    let mut c = Conditions::default();
    if let Some(kind) = f.kind {
        c.and("s.kind = $", Arg::Text(kind.as_str().into()));
    }
    if let Some(visibility) = f.visibility {
        c.and("s.visibility = $", Arg::Text(visibility.as_str().into()));
    }
    if let Some(from) = f.joined_from {
        c.and("s.created_at >= $", Arg::Time(from));
    }
    if let Some(until) = f.joined_until {
        c.and("s.created_at < $", Arg::Time(until));
    }
    if let Some(q) = &f.q {
        c.and(
            "(s.email_normalized LIKE $ ESCAPE '\\' OR lower(s.display_name) LIKE $ ESCAPE '\\')",
            Arg::Text(contains_pattern(q)),
        );
        // PostgreSQL serves the LIKE from its trigram indexes. SQLite has
        // them in a separate FTS5 table, which needs three characters.
        if matches!(db, Db::Sqlite(..)) && q.chars().count() >= 3 {
            c.and(
                "s.id IN (SELECT rowid FROM supporters_search WHERE supporters_search MATCH $)",
                Arg::Text(format!("\"{}\"", q.to_lowercase().replace('"', "\"\""))),
            );
        }
    }
    if let Some(tier) = f.tier_id {
        c.and(
            "(s.tier_id = $ OR EXISTS (SELECT 1 FROM pledges p WHERE p.supporter_id = s.id \
             AND p.tier_id = $ AND p.status IN ('active', 'past_due')))",
            Arg::Number(tier),
        );
    }
    match f.pledge_status.as_deref() {
        Some("none") => c.sql.push("m.pledge_status IS NULL".into()),
        Some(status) => c.and("m.pledge_status = $", Arg::Text(status.into())),
        None => {}
    }
    let (col, id_col) = (sort.column(), sort.id_column());
    let (cmp, dir) = if descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    // Row values compare as the index is ordered, so the walk starts at the
    // cursor instead of at the first row.
    match cursor {
        Some(Cursor::Number(_, id)) if sort == SortKey::Joined => {
            c.and(&format!("s.id {cmp} $"), Arg::Number(*id));
        }
        Some(Cursor::Number(n, id)) => {
            let (n, id) = (c.bind(Arg::Number(*n)), c.bind(Arg::Number(*id)));
            c.sql.push(format!("({col}, {id_col}) {cmp} ({n}, {id})"));
        }
        Some(Cursor::Text(t, id)) => {
            let (t, id) = (c.bind(Arg::Text(t.clone())), c.bind(Arg::Number(*id)));
            c.sql.push(format!("({col}, {id_col}) {cmp} ({t}, {id})"));
        }
        None => {}
    }
    // Only fixed fragments are formatted in: the column and direction come
    // from the enum above, every value is bound.
    let order = if sort == SortKey::Joined {
        format!("s.id {dir}")
    } else {
        format!("{col} {dir}, {id_col} {dir}")
    };
    let sql = format!("{SELECT} {} ORDER BY {order} LIMIT {limit}", c.clause());
    let rows = db_run!(db, |pool| {
        let mut q = sqlx::query_as::<_, DirectoryRow>(sqlx::AssertSqlSafe(sql.as_str()));
        for arg in &c.args {
            q = match arg {
                Arg::Text(t) => q.bind(t.as_str()),
                Arg::Number(n) => q.bind(*n),
                Arg::Time(t) => q.bind(*t),
            };
        }
        q.fetch_all(pool).await?
    });
    Ok(rows)
}
