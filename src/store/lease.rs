//! The lease every queue shares (tasks, the outbox): a worker takes due rows
//! for a while; a row whose holder died comes due again when the lease
//! lapses. PostgreSQL skips rows another worker is taking (`FOR UPDATE SKIP
//! LOCKED`); SQLite has one writer, so its claim runs in a write transaction.

use super::Db;

/// A row nobody holds now: never leased, or its lease lapsed at `$at`.
pub(crate) fn free(at: &str) -> String {
    format!("(locked_until IS NULL OR locked_until < {at})")
}

/// The claim statement for `table`: rows matching `due` (which may use $3,
/// the time now) and free, oldest first, at most $4, leased to $1 until $2,
/// with `set` applied too. Returns `returning`.
pub(crate) fn claim_sql(db: &Db, table: &str, set: &str, due: &str, returning: &str) -> String {
    let lock = match db {
        Db::Sqlite(..) => "",
        Db::Postgres(_) => "FOR UPDATE SKIP LOCKED",
    };
    format!(
        "UPDATE {table} SET locked_by = $1, locked_until = $2, attempts = attempts + 1{set} \
         WHERE id IN (SELECT id FROM {table} WHERE {due} AND {free} ORDER BY id LIMIT $4 {lock}) \
         RETURNING {returning}",
        free = free("$3"),
    )
}
