//! The `admin_sessions` table: console sign-ins, kept by the hash of the
//! cookie's id.

use chrono::{DateTime, Utc};

use super::Db;
use crate::{db_run, error::Result};

/// A live session: not revoked, not past its expiry, not idle too long.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub admin_id: i64,
    pub csrf_token: String,
    pub last_seen_at: DateTime<Utc>,
    /// The password was right; the second factor is still to come.
    pub second_factor_due: bool,
}

pub struct NewSession<'a> {
    pub id_hash: &'a str,
    pub admin_id: i64,
    pub csrf_token: &'a str,
    pub at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub user_agent: &'a str,
    pub second_factor_due: bool,
}

pub async fn create(db: &Db, s: &NewSession<'_>) -> Result<()> {
    let _turn = db.turn().await?;
    db_run!(db, |pool| {
        sqlx::query(
            "INSERT INTO admin_sessions (id_hash, admin_id, csrf_token, created_at, last_seen_at, expires_at, user_agent, second_factor_due) \
             VALUES ($1, $2, $3, $4, $4, $5, $6, $7)",
        )
        .bind(s.id_hash)
        .bind(s.admin_id)
        .bind(s.csrf_token)
        .bind(s.at)
        .bind(s.expires_at)
        .bind(s.user_agent)
        .bind(s.second_factor_due)
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// The session behind `id_hash` if it is live at `at`: seen since
/// `idle_since` and not expired or revoked.
pub async fn find_live(
    db: &Db,
    id_hash: &str,
    at: DateTime<Utc>,
    idle_since: DateTime<Utc>,
) -> Result<Option<SessionRow>> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, SessionRow>(
            "SELECT admin_id, csrf_token, last_seen_at, second_factor_due FROM admin_sessions \
             WHERE id_hash = $1 AND revoked_at IS NULL AND expires_at > $2 AND last_seen_at > $3",
        )
        .bind(id_hash)
        .bind(at)
        .bind(idle_since)
        .fetch_optional(pool)
        .await?
    });
    Ok(row)
}

/// The second factor passed: the session opens the console, under a new
/// id (`new_hash`), so an id seen before this step is worth nothing.
pub async fn pass_second_factor(
    db: &Db,
    old_hash: &str,
    new_hash: &str,
    at: DateTime<Utc>,
) -> Result<bool> {
    let _turn = db.turn().await?;
    let n = db_run!(db, |pool| {
        sqlx::query(
            "UPDATE admin_sessions SET id_hash = $2, second_factor_due = $3, last_seen_at = $4 \
             WHERE id_hash = $1 AND second_factor_due = $5 AND revoked_at IS NULL AND expires_at > $4",
        )
        .bind(old_hash)
        .bind(new_hash)
        .bind(false)
        .bind(at)
        .bind(true)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(n == 1)
}

/// Counts a wrong second-factor code; past `max` the session is revoked,
/// so guessing needs the password again (whose tries the login limits
/// count). Returns whether the session still stands.
pub async fn wrong_second_factor(
    db: &Db,
    id_hash: &str,
    max: i32,
    at: DateTime<Utc>,
) -> Result<bool> {
    let _turn = db.turn().await?;
    let standing = db_run!(db, |pool| {
        sqlx::query_scalar::<_, i32>(
            "UPDATE admin_sessions SET second_factor_tries = second_factor_tries + 1, \
             revoked_at = CASE WHEN second_factor_tries + 1 >= $2 THEN $3 ELSE revoked_at END \
             WHERE id_hash = $1 RETURNING second_factor_tries",
        )
        .bind(id_hash)
        .bind(max)
        .bind(at)
        .fetch_optional(pool)
        .await?
    });
    Ok(standing.is_some_and(|tries| tries < max))
}

/// Marks the session used now, which keeps it from going idle.
pub async fn touch(db: &Db, id_hash: &str, at: DateTime<Utc>) -> Result<()> {
    let _turn = db.turn().await?;
    db_run!(db, |pool| {
        sqlx::query("UPDATE admin_sessions SET last_seen_at = $2 WHERE id_hash = $1")
            .bind(id_hash)
            .bind(at)
            .execute(pool)
            .await?;
    });
    Ok(())
}

pub async fn revoke(db: &Db, id_hash: &str, at: DateTime<Utc>) -> Result<()> {
    let _turn = db.turn().await?;
    db_run!(db, |pool| {
        sqlx::query(
            "UPDATE admin_sessions SET revoked_at = $2 WHERE id_hash = $1 AND revoked_at IS NULL",
        )
        .bind(id_hash)
        .bind(at)
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// Ends every session of one admin; returns how many were live.
pub async fn revoke_all(db: &Db, admin_id: i64, at: DateTime<Utc>) -> Result<u64> {
    let _turn = db.turn().await?;
    let n = db_run!(db, |pool| {
        sqlx::query(
            "UPDATE admin_sessions SET revoked_at = $2 WHERE admin_id = $1 AND revoked_at IS NULL \
             AND expires_at > $2",
        )
        .bind(admin_id)
        .bind(at)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(n)
}

/// Forgets sessions that ended before `before` (housekeeping).
pub async fn purge_ended(db: &Db, before: DateTime<Utc>) -> Result<u64> {
    let _turn = db.turn().await?;
    let n = db_run!(db, |pool| {
        sqlx::query(
            "DELETE FROM admin_sessions WHERE expires_at < $1 OR (revoked_at IS NOT NULL AND revoked_at < $1)",
        )
        .bind(before)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(n)
}
