//! Raw webhook events: stored before we answer, applied under a lease.

use super::prelude::*;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub id: String,
    #[sqlx(rename = "type")]
    pub type_: String,
    pub created: i64,
    pub payload: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub received_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
}

/// Stores a verified event in the caller's transaction, as `processed`
/// when its effects commit with it. False when it was stored before (a
/// repeated delivery): that copy is applied, or queued.
pub async fn insert_event(
    tx: &mut Tx,
    id: &str,
    type_: &str,
    created: i64,
    payload: &str,
    processed: bool,
) -> Result<bool> {
    let event = NewEvent {
        id,
        type_,
        created,
        payload,
        processed,
    };
    Ok(!insert_events(tx, &[event]).await?.is_empty())
}

/// An event about to be stored.
pub struct NewEvent<'a> {
    pub id: &'a str,
    pub type_: &'a str,
    pub created: i64,
    pub payload: &'a str,
    /// Its effects commit with it.
    pub processed: bool,
}

/// `insert_event` for many, a few hundred to a statement. Returns the ids
/// stored now; the others were stored before (or come twice in `events`).
pub async fn insert_events(
    tx: &mut Tx,
    events: &[NewEvent<'_>],
) -> Result<std::collections::HashSet<String>> {
    let at = now();
    let mut stored = std::collections::HashSet::new();
    for chunk in events.chunks(crate::store::ROWS_PER_STATEMENT) {
        let ids: Vec<String> = tx_run!(tx, |conn| {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO stripe_events (id, type, created, payload, status, attempts, next_attempt_at, received_at, processed_at) ",
            );
            q.push_values(chunk, |mut row, e| {
                row.push_bind(e.id)
                    .push_bind(e.type_)
                    .push_bind(e.created)
                    .push_bind(e.payload)
                    .push_bind(if e.processed { "processed" } else { "pending" })
                    .push("1")
                    .push_bind(at)
                    .push_bind(at)
                    .push_bind(e.processed.then_some(at));
            });
            q.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
            q.build_query_scalar().fetch_all(&mut *conn).await?
        });
        stored.extend(ids);
    }
    Ok(stored)
}

/// A stored event.
pub async fn event(db: &Db, id: &str) -> Result<Option<EventRow>> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, EventRow>(
            "SELECT id, type, created, payload, status, attempts, next_attempt_at, last_error, received_at, processed_at \
             FROM stripe_events WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?
    });
    Ok(row)
}

/// Marks an event applied (by its task; the webhook stores it so).
pub async fn event_processed(db: &Db, id: &str) -> Result<()> {
    db_run!(db, |pool| {
        sqlx::query(
            "UPDATE stripe_events SET status = 'processed', processed_at = $2, locked_until = NULL, \
             last_error = NULL, waits_for = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(now())
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// Records a failed try; the event's task retries it.
pub async fn event_failed(db: &Db, id: &str, error: &str) -> Result<()> {
    db_run!(db, |pool| {
        sqlx::query(
            "UPDATE stripe_events SET status = 'failed', last_error = $2, attempts = attempts + 1 \
             WHERE id = $1 AND status <> 'processed'",
        )
        .bind(id)
        .bind(error)
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// Leaves an event for later because something it needs has not happened
/// yet. It stays `pending` (not a failure) unless `overdue`, when admins
/// should look at it. With `waits_for` (a charge), booking that charge's
/// payment makes its task due (see `settle_fee`).
pub async fn event_waiting(
    db: &Db,
    id: &str,
    reason: &str,
    waits_for: Option<&str>,
    overdue: bool,
) -> Result<()> {
    db_run!(db, |pool| {
        sqlx::query(
            "UPDATE stripe_events SET status = $2, last_error = $3, waits_for = $4, attempts = attempts + 1 \
             WHERE id = $1 AND status <> 'processed'",
        )
        .bind(id)
        .bind(if overdue { "failed" } else { "pending" })
        .bind(reason)
        .bind(waits_for)
        .execute(pool)
        .await?;
    });
    Ok(())
}

pub async fn list_events(db: &Db, status: Option<&str>, limit: i64) -> Result<Vec<EventRow>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, EventRow>(
            "SELECT id, type, created, payload, status, attempts, next_attempt_at, last_error, received_at, processed_at \
             FROM stripe_events WHERE ($1 IS NULL OR status = $1) ORDER BY received_at DESC, id LIMIT $2",
        )
        .bind(status)
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// Marks a stored event to be applied again (an admin's replay), audited.
pub async fn replay_event(tx: &mut Tx, actor: &Actor, id: &str) -> Result<()> {
    let n = tx_run!(tx, |conn| {
        sqlx::query("UPDATE stripe_events SET status = 'pending' WHERE id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected()
    });
    if n == 0 {
        return Err(Error::NotFound("event"));
    }
    tx.audit(
        actor,
        "stripe_event.replay",
        "stripe_event",
        0,
        json!({"event_id": id}),
    )
    .await
}

/// Deletes raw events applied before `before`. Failed and pending ones stay.
pub async fn prune_events(db: &Db, before: DateTime<Utc>) -> Result<u64> {
    let n = db_run!(db, |pool| {
        sqlx::query("DELETE FROM stripe_events WHERE status = 'processed' AND processed_at < $1")
            .bind(before)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(n)
}
