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

/// Stores a verified event and takes the lease on it in one commit. A
/// duplicate delivery stores nothing; it gets the lease only if the first
/// copy is not being applied right now (and not applied already).
pub async fn store_event(
    db: &Db,
    id: &str,
    type_: &str,
    created: i64,
    payload: &str,
    lease: chrono::Duration,
) -> Result<Option<EventRow>> {
    let at = now();
    let inserted = db_run!(db, |pool| {
        sqlx::query_as::<_, EventRow>(
            "INSERT INTO stripe_events (id, type, created, payload, status, attempts, next_attempt_at, locked_until, received_at) \
             VALUES ($1, $2, $3, $4, 'pending', 1, $5, $6, $5) ON CONFLICT (id) DO NOTHING \
             RETURNING id, type, created, payload, status, attempts, next_attempt_at, last_error, received_at, processed_at",
        )
        .bind(id)
        .bind(type_)
        .bind(created)
        .bind(payload)
        .bind(at)
        .bind(at + lease)
        .fetch_optional(pool)
        .await?
    });
    match inserted {
        Some(row) => Ok(Some(row)),
        None => claim_event(db, id, lease).await,
    }
}

/// Takes a lease on a pending or due event, so one worker on one replica
/// applies it at a time. `None` if it is done or someone else holds it.
pub async fn claim_event(db: &Db, id: &str, lease: chrono::Duration) -> Result<Option<EventRow>> {
    let at = now();
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, EventRow>(
            "UPDATE stripe_events SET locked_until = $2, attempts = attempts + 1 \
             WHERE id = $1 AND status <> 'processed' AND next_attempt_at <= $3 \
             AND (locked_until IS NULL OR locked_until < $3) \
             RETURNING id, type, created, payload, status, attempts, next_attempt_at, last_error, received_at, processed_at",
        )
        .bind(id)
        .bind(at + lease)
        .bind(at)
        .fetch_optional(pool)
        .await?
    });
    Ok(row)
}

/// Marks an event processed, through `$exec` (a pool, or a transaction's
/// connection so it commits with the effects).
macro_rules! mark_processed {
    ($exec:expr, $id:expr) => {
        sqlx::query(
            "UPDATE stripe_events SET status = 'processed', processed_at = $2, locked_until = NULL, \
             last_error = NULL, waits_for = NULL WHERE id = $1",
        )
        .bind($id)
        .bind($crate::store::now())
        .execute($exec)
        .await?
    };
}
pub(crate) use mark_processed;

pub async fn event_processed(db: &Db, id: &str) -> Result<()> {
    db_run!(db, |pool| {
        mark_processed!(pool, id);
    });
    Ok(())
}

pub async fn event_failed(db: &Db, id: &str, error: &str, retry_at: DateTime<Utc>) -> Result<()> {
    db_run!(db, |pool| {
        sqlx::query("UPDATE stripe_events SET status = 'failed', last_error = $2, next_attempt_at = $3, locked_until = NULL WHERE id = $1")
            .bind(id)
            .bind(error)
            .bind(retry_at)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Leaves an event for later because something it needs has not happened
/// yet. It stays `pending` (not a failure) unless `overdue`, when admins
/// should look at it. With `waits_for` (a charge), it is due at once if
/// that charge's payment was booked meanwhile, and booking it later makes
/// the event due then (see `record_payment`).
pub async fn event_waiting(
    db: &Db,
    id: &str,
    reason: &str,
    waits_for: Option<&str>,
    retry_at: DateTime<Utc>,
    overdue: bool,
) -> Result<()> {
    db_run!(db, |pool| {
        sqlx::query(
            "UPDATE stripe_events SET status = $2, last_error = $3, waits_for = $4, locked_until = NULL, \
             next_attempt_at = CASE WHEN EXISTS (SELECT 1 FROM stripe_payments WHERE charge_id = $4) \
             THEN $5 ELSE $6 END WHERE id = $1",
        )
        .bind(id)
        .bind(if overdue { "failed" } else { "pending" })
        .bind(reason)
        .bind(waits_for)
        .bind(now())
        .bind(retry_at)
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// Events whose retry time has come (and nobody holds).
pub async fn due_events(db: &Db, limit: i64) -> Result<Vec<String>> {
    let at = now();
    let ids = db_run!(db, |pool| {
        sqlx::query_scalar::<_, String>(
            "SELECT id FROM stripe_events WHERE status <> 'processed' AND next_attempt_at <= $1 \
             AND (locked_until IS NULL OR locked_until < $1) ORDER BY created, id LIMIT $2",
        )
        .bind(at)
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    Ok(ids)
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

/// Makes a stored event due now (an admin's replay).
pub async fn replay_event(db: &Db, actor: &Actor, id: &str) -> Result<()> {
    let at = now();
    db_run!(db, |pool| {
        let mut tx = begin_write!(pool);
        let n = sqlx::query("UPDATE stripe_events SET status = 'pending', next_attempt_at = $2, locked_until = NULL WHERE id = $1")
            .bind(id)
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(Error::NotFound("event"));
        }
        audit!(
            tx,
            actor,
            "stripe_event.replay",
            "stripe_event",
            0i64,
            json!({"event_id": id})
        );
        tx.commit().await?;
        Ok::<_, Error>(())
    })?;
    Ok(())
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
