//! Scheduled job runs, claimed per (job, slot) so each firing runs once
//! across replicas, and the jobs' cursors.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{Db, now};
use crate::{db_run, error::Result};

/// Claims a slot for `owner`. True if this call inserted the run, so the
/// caller runs it; false if any replica claimed it before.
pub async fn claim(
    db: &Db,
    job: &str,
    slot: DateTime<Utc>,
    owner: &str,
    lease: chrono::Duration,
) -> Result<bool> {
    let at = now();
    let inserted = db_run!(db, |pool| {
        sqlx::query(
            "INSERT INTO job_runs (job, slot, owner, status, attempts, started_at, lease_until) \
             VALUES ($1, $2, $3, 'running', 1, $4, $5) ON CONFLICT (job, slot) DO NOTHING",
        )
        .bind(job)
        .bind(slot)
        .bind(owner)
        .bind(at)
        .bind(at + lease)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(inserted == 1)
}

/// Runs to take over: running ones whose lease lapsed (their replica
/// died), and failed ones still under `max_attempts` after `retry_after`.
pub async fn stalled(
    db: &Db,
    job: &str,
    max_attempts: i32,
    retry_after: chrono::Duration,
) -> Result<Vec<DateTime<Utc>>> {
    let at = now();
    let slots = db_run!(db, |pool| {
        sqlx::query_scalar::<_, DateTime<Utc>>(
            "SELECT slot FROM job_runs WHERE job = $1 AND ((status = 'running' AND lease_until < $2) \
             OR (status = 'failed' AND attempts < $3 AND finished_at < $4)) ORDER BY slot",
        )
        .bind(job)
        .bind(at)
        .bind(max_attempts)
        .bind(at - retry_after)
        .fetch_all(pool)
        .await?
    });
    Ok(slots)
}

/// Takes over a stalled run. The condition is checked again in the update,
/// so of several replicas trying at once exactly one wins.
pub async fn take_over(
    db: &Db,
    job: &str,
    slot: DateTime<Utc>,
    owner: &str,
    lease: chrono::Duration,
    max_attempts: i32,
) -> Result<bool> {
    let at = now();
    let changed = db_run!(db, |pool| {
        sqlx::query(
            "UPDATE job_runs SET owner = $3, status = 'running', attempts = attempts + 1, started_at = $4, \
             lease_until = $5, finished_at = NULL WHERE job = $1 AND slot = $2 \
             AND ((status = 'running' AND lease_until < $4) OR (status = 'failed' AND attempts < $6))",
        )
        .bind(job)
        .bind(slot)
        .bind(owner)
        .bind(at)
        .bind(at + lease)
        .bind(max_attempts)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(changed == 1)
}

/// Extends the lease of a run this owner holds.
pub async fn renew(
    db: &Db,
    job: &str,
    slot: DateTime<Utc>,
    owner: &str,
    lease: chrono::Duration,
) -> Result<bool> {
    let changed = db_run!(db, |pool| {
        sqlx::query(
            "UPDATE job_runs SET lease_until = $4 WHERE job = $1 AND slot = $2 AND owner = $3 AND status = 'running'",
        )
        .bind(job)
        .bind(slot)
        .bind(owner)
        .bind(now() + lease)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(changed == 1)
}

/// Records how a run ended, if this owner still holds it.
pub async fn finish(
    db: &Db,
    job: &str,
    slot: DateTime<Utc>,
    owner: &str,
    outcome: std::result::Result<&str, &str>,
) -> Result<()> {
    let (status, summary, error) = match outcome {
        Ok(summary) => ("succeeded", Some(summary), None),
        Err(error) => ("failed", None, Some(error)),
    };
    db_run!(db, |pool| {
        sqlx::query(
            "UPDATE job_runs SET status = $4, finished_at = $5, summary = $6, error = $7 \
             WHERE job = $1 AND slot = $2 AND owner = $3 AND status = 'running'",
        )
        .bind(job)
        .bind(slot)
        .bind(owner)
        .bind(status)
        .bind(now())
        .bind(summary)
        .bind(error.map(|e| e.chars().take(2000).collect::<String>()))
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// The newest slot ever claimed for a job: catching up starts after it.
pub async fn last_slot(db: &Db, job: &str) -> Result<Option<DateTime<Utc>>> {
    let slot = db_run!(db, |pool| {
        sqlx::query_scalar::<_, Option<DateTime<Utc>>>(
            "SELECT MAX(slot) FROM job_runs WHERE job = $1",
        )
        .bind(job)
        .fetch_one(pool)
        .await?
    });
    Ok(slot)
}

/// When a job last succeeded.
pub async fn last_success(db: &Db) -> Result<Vec<(String, DateTime<Utc>)>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, (String, DateTime<Utc>)>(
            "SELECT job, MAX(finished_at) FROM job_runs WHERE status = 'succeeded' GROUP BY job",
        )
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct JobRun {
    pub job: String,
    pub slot: DateTime<Utc>,
    pub owner: String,
    pub status: String,
    pub attempts: i32,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub summary: Option<String>,
}

/// Job history, newest slot first.
pub async fn history(
    db: &Db,
    job: Option<&str>,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<JobRun>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, JobRun>(
            "SELECT job, slot, owner, status, attempts, started_at, finished_at, error, summary FROM job_runs \
             WHERE ($1 IS NULL OR job = $1) AND ($2 IS NULL OR status = $2) ORDER BY slot DESC, job LIMIT $3",
        )
        .bind(job)
        .bind(status)
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// Deletes finished runs older than `before`, keeping each job's newest.
pub async fn prune(db: &Db, before: DateTime<Utc>) -> Result<u64> {
    let n = db_run!(db, |pool| {
        sqlx::query(
            "DELETE FROM job_runs WHERE finished_at < $1 \
             AND slot < (SELECT MAX(j.slot) FROM job_runs j WHERE j.job = job_runs.job)",
        )
        .bind(before)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(n)
}

pub async fn state(db: &Db, key: &str) -> Result<Option<String>> {
    let value = db_run!(db, |pool| {
        sqlx::query_scalar::<_, String>("SELECT value FROM job_state WHERE key = $1")
            .bind(key)
            .fetch_optional(pool)
            .await?
    });
    Ok(value)
}

pub async fn set_state(db: &Db, key: &str, value: &str) -> Result<()> {
    db_run!(db, |pool| {
        sqlx::query(
            "INSERT INTO job_state (key, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(value)
        .bind(now())
        .execute(pool)
        .await?;
    });
    Ok(())
}
