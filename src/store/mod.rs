//! All SQL lives here. One `Db` handle speaks SQLite or PostgreSQL, chosen by
//! the URL scheme; `db_run!` expands the same body once per backend, so the
//! SQL is written once and branches only where the dialects really differ.

pub mod admins;
pub mod analytics;
pub mod attention;
pub mod audit;
pub mod campaign;
pub mod costs;
pub mod directory;
pub mod fediverse;
pub mod funding;
pub mod history;
pub mod imports;
pub mod jobs;
mod lease;
pub mod ledger;
pub mod logos;
pub mod nodelay;
pub mod notify;
pub mod oauth;
pub mod outbox;
pub mod pledges;
pub mod reconciliation;
pub mod reports;
pub mod sessions;
pub mod stripe;
pub mod supporters;
pub mod tasks;
pub mod tiers;
pub mod transparency;
mod tx;
pub mod webhooks;

pub use tx::{Tx, TxConn};

use std::{str::FromStr, sync::Arc, time::Duration};

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::{
    PgPool, SqlitePool,
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};

const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub enum Db {
    /// The pool, and the gate its write transactions queue at (see
    /// `Db::begin_write`).
    Sqlite(SqlitePool, Arc<Semaphore>),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the backend's concrete pool type.
#[macro_export]
macro_rules! db_run {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool, _) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}

impl Db {
    /// Connects to `url` (`sqlite:` or `postgres:`). A SQLite file and its
    /// folder are created if missing.
    pub async fn connect(url: &str, max_connections: u32, acquire_timeout: Duration) -> Result<Db> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| Error::Config(format!("database.url: {e}")))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(SQLITE_BUSY_TIMEOUT);
            if let Some(parent) = options.get_filename().parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(|e| {
                    Error::Config(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(acquire_timeout)
                .connect_with(options)
                .await?;
            Ok(Db::Sqlite(pool, Arc::new(Semaphore::new(1))))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url)
                .map_err(|e| Error::Config(format!("database.url: {e}")))?;
            let server_port = options.get_port();
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(acquire_timeout)
                .after_connect(move |conn, _| Box::pin(nodelay::set(conn, server_port)))
                .connect_with(options)
                .await?;
            Ok(Db::Postgres(pool))
        } else {
            Err(Error::Config(
                "database.url must start with sqlite: or postgres:".into(),
            ))
        }
    }

    /// Applies pending migrations. PostgreSQL takes an advisory lock, so
    /// replicas starting together are safe.
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Db::Sqlite(pool, _) => sqlx::migrate!("migrations/sqlite").run(pool).await?,
            Db::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// Opens a write transaction (see `WritePool`). On SQLite, which has
    /// one writer at a time, writers first queue here in turn: waiting in
    /// SQLite's busy handler instead means sleeping in growing steps (up
    /// to 100 ms) and retrying, which under load made p99 ten times p50.
    pub async fn begin_write(&self) -> Result<Tx> {
        Ok(match self {
            Db::Sqlite(pool, gate) => {
                let turn = Self::wait_turn(gate).await?;
                Tx::new(TxConn::Sqlite(WritePool::begin_write(pool).await?, turn))
            }
            Db::Postgres(pool) => Tx::new(TxConn::Postgres(WritePool::begin_write(pool).await?)),
        })
    }

    /// A turn at SQLite's writer gate, for a write outside `begin_write`
    /// (a single statement, or a transaction of the older `begin_write!`
    /// form): hold it until the write ends. `None` on PostgreSQL.
    pub async fn turn(&self) -> Result<Option<OwnedSemaphorePermit>> {
        match self {
            Db::Sqlite(_, gate) => Ok(Some(Self::wait_turn(gate).await?)),
            Db::Postgres(_) => Ok(None),
        }
    }

    /// Waits as long as SQLite's own busy timeout would have.
    async fn wait_turn(gate: &Arc<Semaphore>) -> Result<OwnedSemaphorePermit> {
        let busy = || Error::Unavailable("the database is busy".into());
        tokio::time::timeout(SQLITE_BUSY_TIMEOUT, gate.clone().acquire_owned())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())
    }

    pub async fn ping(&self) -> Result<()> {
        db_run!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    pub async fn close(&self) {
        db_run!(self, |pool| pool.close().await)
    }

    /// A counter bumped by every write that changes what the public sees; a
    /// replica compares it to decide whether its snapshot is stale.
    pub async fn data_version(&self) -> Result<i64> {
        let version = db_run!(self, |pool| {
            sqlx::query_scalar::<_, i64>(
                "SELECT CAST(COALESCE(SUM(version), 0) AS BIGINT) FROM data_version_shards",
            )
            .fetch_one(pool)
            .await?
        });
        Ok(version)
    }
}

/// Opens a write transaction. SQLite takes the write lock at BEGIN
/// (IMMEDIATE), so two writers never deadlock upgrading a read lock.
pub(crate) trait WritePool {
    type Database: sqlx::Database;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Database>, sqlx::Error>;
}

impl WritePool for SqlitePool {
    type Database = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl WritePool for PgPool {
    type Database = sqlx::Postgres;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }
}

macro_rules! begin_write {
    ($pool:expr) => {
        $crate::store::WritePool::begin_write($pool).await?
    };
}
pub(crate) use begin_write;

/// Every row of `SELECT {columns} {rest}`, for reads of many small rows
/// (every pledge, for a report). A column is a plain column or an
/// `expression AS name`; `T`'s fields come in the columns' order, with the
/// columns' names. Values bound to `$1`… are text.
///
/// SQLite answers one JSON document (`json_group_array`) instead of rows:
/// sqlx's SQLite driver hands rows over from its worker thread one at a
/// time, which at 100,000 pledges was most of a report's time (190 against
/// 64 ms, benches/README.md). PostgreSQL reads rows: there the document is
/// twice as slow (it formats every timestamp as text). Booleans arrive from
/// SQLite as 0 or 1: read them with `json_bool`.
pub(crate) async fn read_many<T>(
    db: &Db,
    columns: &[&str],
    rest: &str,
    binds: &[&str],
) -> Result<Vec<T>>
where
    T: serde::de::DeserializeOwned
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + Send
        + Unpin,
{
    match db {
        Db::Sqlite(pool, _) => {
            let values: Vec<&str> = columns
                .iter()
                .map(|c| c.rsplit_once(" AS ").map_or(*c, |(value, _)| value))
                .collect();
            let sql = format!(
                "SELECT json_group_array(json_array({})) {rest}",
                values.join(", ")
            );
            let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
            for b in binds {
                q = q.bind(*b);
            }
            let doc = q.fetch_one(pool).await?;
            serde_json::from_str(&doc)
                .map_err(|e| Error::Database(sqlx::Error::Decode(Box::new(e))))
        }
        Db::Postgres(pool) => {
            let sql = format!("SELECT {} {rest}", columns.join(", "));
            let mut q = sqlx::query_as::<_, T>(sqlx::AssertSqlSafe(sql));
            for b in binds {
                q = q.bind(*b);
            }
            Ok(q.fetch_all(pool).await?)
        }
    }
}

/// A boolean of a `read_many` row: SQLite's JSON has it as 0 or 1.
pub(crate) fn json_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(<i64 as serde::Deserialize>::deserialize(d)? != 0)
}

/// Counter shards, so concurrent writers rarely wait on one row.
pub const SHARDS: i32 = 16;

/// `IN` the strings of a JSON array bound as `$1` (text): one statement
/// text for a list of any length. PostgreSQL gets `= ANY(ARRAY(…))`, which
/// it reads through the column's index; as `IN (SELECT …)` it guessed the
/// list long and scanned the whole table instead.
pub(crate) fn in_json_texts(db: &Db) -> &'static str {
    match db {
        Db::Sqlite(..) => SQLITE_IN_JSON,
        Db::Postgres(_) => "= ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)))",
    }
}

/// `in_json_texts` for an array of ids (integers).
pub(crate) fn in_json_ids(db: &Db) -> &'static str {
    match db {
        Db::Sqlite(..) => SQLITE_IN_JSON,
        Db::Postgres(_) => POSTGRES_IN_JSON_IDS,
    }
}

/// `in_json_ids` for the database a transaction runs on.
pub(crate) fn in_json_ids_for(tx: &Tx) -> &'static str {
    match tx.conn {
        TxConn::Sqlite(..) => SQLITE_IN_JSON,
        TxConn::Postgres(_) => POSTGRES_IN_JSON_IDS,
    }
}

const SQLITE_IN_JSON: &str = "IN (SELECT value FROM json_each($1))";
const POSTGRES_IN_JSON_IDS: &str =
    "= ANY(ARRAY(SELECT CAST(jsonb_array_elements_text($1::jsonb) AS BIGINT)))";

/// Rows in one multi-row INSERT: well under SQLite's limit on bound values
/// (32,766) at the widest row we write.
pub(crate) const ROWS_PER_STATEMENT: usize = 500;

/// A shard for this write, at random.
pub fn shard() -> i32 {
    rand::random_range(0..SHARDS)
}

/// The current time at the precision both databases keep (microseconds), so a
/// value reads back exactly as it was written.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// The unique keys whose violation means something to a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Constraint {
    AdminEmail,
    TierName,
    PatronEmail,
    /// A ledger entry's `(source, external_ref)`: booked already.
    LedgerRef,
    /// An entry may be reversed once.
    Reversal,
    /// The same work is queued already.
    PendingTask,
}

impl Constraint {
    const ALL: [Constraint; 6] = [
        Constraint::AdminEmail,
        Constraint::TierName,
        Constraint::PatronEmail,
        Constraint::LedgerRef,
        Constraint::Reversal,
        Constraint::PendingTask,
    ];

    /// The constraint or index name, and the columns SQLite names when the
    /// index is on plain columns.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Constraint::AdminEmail => ("admins_email_normalized_key", "admins.email_normalized"),
            Constraint::TierName => ("tiers_active_name_key", "tiers.kind, lower(name)"),
            Constraint::PatronEmail => (
                "supporters_email_normalized_patron_key",
                "supporters.email_normalized",
            ),
            Constraint::LedgerRef => (
                "ledger_entries_external_ref_key",
                "ledger_entries.source, ledger_entries.external_ref",
            ),
            Constraint::Reversal => (
                "ledger_entries_reverses_entry_id_key",
                "ledger_entries.reverses_entry_id",
            ),
            Constraint::PendingTask => ("tasks_pending_once", "tasks.kind, tasks.dedupe_key"),
        }
    }
}

/// Which known unique key `err` violated, if it is such a violation.
pub fn on_constraint(err: &sqlx::Error) -> Option<Constraint> {
    let sqlx::Error::Database(db) = err else {
        return None;
    };
    if !db.is_unique_violation() {
        return None;
    }
    // SQLite: "UNIQUE constraint failed: t.a, t.b" or "…: index 'name'".
    let sqlite = db.message().strip_prefix("UNIQUE constraint failed: ");
    Constraint::ALL.into_iter().find(|c| {
        let (name, columns) = c.names();
        match (db.constraint(), sqlite) {
            (Some(constraint), _) => constraint == name,
            (None, Some(detail)) => detail == columns || detail == format!("index '{name}'"),
            (None, None) => false,
        }
    })
}

/// A `LIKE` pattern that matches `needle` literally anywhere, lower-cased.
pub fn contains_pattern(needle: &str) -> String {
    let escaped = needle
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Keyset pagination: at most `limit` rows after id `after`.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub after: i64,
    pub limit: i64,
}
