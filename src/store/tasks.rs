//! The `tasks` table: durable work queued with the change that needs it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{Db, Tx, lease, now};
use crate::{
    db_run,
    domain::work::TaskStatus,
    error::{Error, Result},
    tx_run,
};

/// A task to queue (`Tx::enqueue`).
pub(crate) struct NewTask {
    pub kind: &'static str,
    pub key: String,
    pub payload: String,
    pub run_at: DateTime<Utc>,
}

/// Queues tasks, a few hundred to a statement. A `(kind, key)` that is
/// pending already keeps its payload, and the earlier of the two run
/// times. The keys must be distinct (`Tx` merges repeats first): one
/// statement may not update a row twice.
pub(crate) async fn insert(tx: &mut Tx, tasks: &[NewTask]) -> Result<()> {
    let created = now();
    for chunk in tasks.chunks(super::ROWS_PER_STATEMENT) {
        tx_run!(tx, |conn| {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO tasks (kind, dedupe_key, payload, status, attempts, run_at, created_at) ",
            );
            q.push_values(chunk, |mut row, t| {
                row.push_bind(t.kind)
                    .push_bind(&t.key)
                    .push_bind(&t.payload)
                    .push("'pending', 0")
                    .push_bind(t.run_at)
                    .push_bind(created);
            });
            q.push(
                " ON CONFLICT (kind, dedupe_key) WHERE status = 'pending' DO UPDATE SET run_at = \
                 CASE WHEN excluded.run_at < tasks.run_at THEN excluded.run_at ELSE tasks.run_at END",
            );
            q.build().execute(&mut *conn).await?;
        });
    }
    Ok(())
}

/// A task this worker holds.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedTask {
    pub id: i64,
    pub kind: String,
    pub dedupe_key: String,
    pub payload: String,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
}

/// Takes up to `limit` due tasks for `owner` until `lease` ends. A copy of
/// a task that another worker runs waits until that run ends (or its lease
/// lapses and it is taken over): both would otherwise act on the same
/// thing at once, say each create the Stripe price the other is creating.
pub async fn claim(
    db: &Db,
    owner: &str,
    lease: chrono::Duration,
    limit: i64,
) -> Result<Vec<ClaimedTask>> {
    let at = now();
    let sql = lease::claim_sql(
        db,
        "tasks",
        ", status = 'running'",
        "status IN ('pending', 'running') AND run_at <= $3 \
         AND NOT EXISTS (SELECT 1 FROM tasks other WHERE other.kind = tasks.kind \
             AND other.dedupe_key = tasks.dedupe_key AND other.status = 'running' AND other.id <> tasks.id)",
        "id, kind, dedupe_key, payload, attempts, created_at",
    );
    let mut tx = db.begin_write().await?;
    let rows = crate::tx_run!(&mut tx, |conn| {
        sqlx::query_as::<_, ClaimedTask>(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(owner)
            .bind(at + lease)
            .bind(at)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?
    });
    tx.commit().await?;
    Ok(rows)
}

/// How a held task ended.
pub enum Outcome {
    Done,
    /// Due again at the time, with the error kept.
    Retry(DateTime<Utc>, String),
    /// Given up: kept for an admin to read and retry.
    Dead(String),
}

/// Records how a task ended, if `owner` still holds it. A task that was
/// retried while it ran (enqueued again) stays a single pending row: the
/// repeat was absorbed by this one, so it runs again rather than finishing.
pub async fn finish(db: &Db, id: i64, owner: &str, outcome: Outcome) -> Result<()> {
    match record_end(db, id, owner, &outcome).await {
        // A copy was queued between the check and the write (PostgreSQL):
        // this time the check sees it, and the copy supersedes this run.
        Err(Error::Database(e))
            if super::on_constraint(&e) == Some(super::Constraint::PendingTask) =>
        {
            record_end(db, id, owner, &outcome).await
        }
        ended => ended,
    }
}

async fn record_end(db: &Db, id: i64, owner: &str, outcome: &Outcome) -> Result<()> {
    let (status, run_at, error) = match outcome {
        Outcome::Done => (TaskStatus::Done, None, None),
        Outcome::Retry(at, e) => (TaskStatus::Pending, Some(*at), Some(e.as_str())),
        Outcome::Dead(e) => (TaskStatus::Dead, None, Some(e.as_str())),
    };
    let mut tx = db.begin_write().await?;
    crate::tx_run!(&mut tx, |conn| {
        let changed = sqlx::query(
            "UPDATE tasks SET status = $3, run_at = COALESCE($4, run_at), last_error = $5, \
             locked_by = NULL, locked_until = NULL, finished_at = CASE WHEN $3 = 'pending' THEN NULL ELSE $6 END \
             WHERE id = $1 AND locked_by = $2 AND status = 'running' \
             AND ($3 <> 'pending' OR NOT EXISTS (SELECT 1 FROM tasks p WHERE p.kind = tasks.kind \
                  AND p.dedupe_key = tasks.dedupe_key AND p.status = 'pending'))",
        )
        .bind(id)
        .bind(owner)
        .bind(status.as_str())
        .bind(run_at)
        .bind(error.map(|e| e.chars().take(2000).collect::<String>()))
        .bind(now())
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if changed == 0 && status == TaskStatus::Pending {
            // A newer copy is pending already; this one is superseded.
            sqlx::query(
                "UPDATE tasks SET status = 'done', last_error = $3, locked_by = NULL, locked_until = NULL, \
                 finished_at = $4 WHERE id = $1 AND locked_by = $2 AND status = 'running'",
            )
            .bind(id)
            .bind(owner)
            .bind(error.map(|e| format!("superseded: {e}")))
            .bind(now())
            .execute(&mut *conn)
            .await?;
        }
    });
    tx.commit().await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct TaskRow {
    pub id: i64,
    pub kind: String,
    pub dedupe_key: String,
    pub status: TaskStatus,
    pub attempts: i32,
    pub run_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// The newest tasks first, optionally of one status, before id `before`.
pub async fn list(
    db: &Db,
    status: Option<TaskStatus>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<TaskRow>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, TaskRow>(
            "SELECT id, kind, dedupe_key, status, attempts, run_at, last_error, created_at, finished_at \
             FROM tasks WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(status.map(|s| s.as_str()))
        .bind(before)
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// Puts a dead task back in the queue, from the first attempt. Another
/// pending copy of the same work makes this one unnecessary (conflict).
pub async fn revive(tx: &mut Tx, id: i64) -> Result<TaskRow> {
    let row = tx_run!(tx, |conn| {
        sqlx::query_as::<_, TaskRow>(
            "UPDATE tasks SET status = 'pending', attempts = 0, run_at = $2, finished_at = NULL \
             WHERE id = $1 AND status = 'dead' \
             RETURNING id, kind, dedupe_key, status, attempts, run_at, last_error, created_at, finished_at",
        )
        .bind(id)
        .bind(now())
        .fetch_optional(&mut *conn)
        .await
    });
    match row {
        Ok(Some(row)) => Ok(row),
        Ok(None) => Err(Error::NotFound("dead task")),
        Err(e) if super::on_constraint(&e) == Some(super::Constraint::PendingTask) => {
            Err(Error::conflict("id", "the same work is already queued"))
        }
        Err(e) => Err(e.into()),
    }
}

/// Tasks due now or held by a worker.
pub async fn busy(db: &Db) -> Result<i64> {
    let n = db_run!(db, |pool| {
        sqlx::query_scalar::<_, i64>(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM tasks WHERE status = 'running' \
             OR (status = 'pending' AND run_at <= $1)",
        )
        .bind(now())
        .fetch_one(pool)
        .await?
    });
    Ok(n)
}

/// How many tasks are in each status.
pub async fn counts(db: &Db) -> Result<Vec<(TaskStatus, i64)>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, (TaskStatus, i64)>(
            "SELECT status, CAST(COUNT(*) AS BIGINT) FROM tasks GROUP BY status ORDER BY status",
        )
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// Deletes finished tasks older than `before`; dead ones stay.
pub async fn prune_done(db: &Db, before: DateTime<Utc>) -> Result<u64> {
    let n = db_run!(db, |pool| {
        sqlx::query("DELETE FROM tasks WHERE status = 'done' AND finished_at < $1")
            .bind(before)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(n)
}
