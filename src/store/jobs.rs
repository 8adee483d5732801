//! Scheduled job runs, claimed per (job, slot) so each firing runs once
//! across replicas, plus what the jobs keep: their cursors, the daily
//! funding history and reconciliation findings.

use chrono::{DateTime, NaiveDate, Utc};
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

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct FundingDay {
    pub day: NaiveDate,
    pub patrons: i64,
    pub sponsors: i64,
    pub monthly_minor: i64,
    pub currency: String,
    pub goal_minor: Option<i64>,
}

/// Keeps a day's figures; the first record of a day stays.
pub async fn record_funding_day(db: &Db, day: &FundingDay) -> Result<bool> {
    let inserted = db_run!(db, |pool| {
        sqlx::query(
            "INSERT INTO funding_snapshots (day, patrons, sponsors, monthly_minor, currency, goal_minor, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (day) DO NOTHING",
        )
        .bind(day.day)
        .bind(day.patrons)
        .bind(day.sponsors)
        .bind(day.monthly_minor)
        .bind(&day.currency)
        .bind(day.goal_minor)
        .bind(now())
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(inserted == 1)
}

pub async fn funding_days(db: &Db, from: NaiveDate, to: NaiveDate) -> Result<Vec<FundingDay>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, FundingDay>(
            "SELECT day, patrons, sponsors, monthly_minor, currency, goal_minor FROM funding_snapshots \
             WHERE day >= $1 AND day <= $2 ORDER BY day",
        )
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Mismatch {
    pub run_slot: DateTime<Utc>,
    /// missing (at Stripe, not here), extra (here, not at Stripe), amount, status.
    pub kind: String,
    pub subscription_id: String,
    pub pledge_id: Option<i64>,
    pub ours: Option<String>,
    pub theirs: Option<String>,
    pub detected_at: DateTime<Utc>,
}

pub async fn record_mismatches(db: &Db, found: &[Mismatch]) -> Result<()> {
    db_run!(db, |pool| {
        let mut tx = pool.begin().await?;
        for m in found {
            sqlx::query(
                "INSERT INTO reconciliation_mismatches (run_slot, kind, subscription_id, pledge_id, ours, theirs, detected_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (run_slot, subscription_id, kind) DO NOTHING",
            )
            .bind(m.run_slot)
            .bind(&m.kind)
            .bind(&m.subscription_id)
            .bind(m.pledge_id)
            .bind(&m.ours)
            .bind(&m.theirs)
            .bind(m.detected_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

/// The findings of the latest reconciliation that ran to the end.
pub async fn latest_mismatches(db: &Db) -> Result<(Option<DateTime<Utc>>, Vec<Mismatch>)> {
    let (slot, rows) = db_run!(db, |pool| {
        let slot = sqlx::query_scalar::<_, Option<DateTime<Utc>>>(
            "SELECT MAX(slot) FROM job_runs WHERE job = 'reconcile' AND status = 'succeeded'",
        )
        .fetch_one(pool)
        .await?;
        let rows = sqlx::query_as::<_, Mismatch>(
            "SELECT run_slot, kind, subscription_id, pledge_id, ours, theirs, detected_at \
             FROM reconciliation_mismatches WHERE run_slot = $1 ORDER BY id",
        )
        .bind(slot)
        .fetch_all(pool)
        .await?;
        (slot, rows)
    });
    Ok((slot, rows))
}

/// What our Stripe pledges say, for comparison with Stripe's subscriptions.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StripePledge {
    pub id: i64,
    pub external_ref: String,
    pub status: String,
    pub amount_minor: i64,
}

pub async fn stripe_pledges(db: &Db) -> Result<Vec<StripePledge>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, StripePledge>(
            "SELECT id, external_ref, status, amount_minor FROM pledges WHERE source = 'stripe' ORDER BY id",
        )
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// Payments that failed during `[from, to)`, and failed ones recovered then.
pub async fn payment_issue_counts(
    db: &Db,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<(i64, i64)> {
    let counts = db_run!(db, |pool| {
        sqlx::query_as::<_, (i64, i64)>(
            "SELECT \
               CAST(COALESCE(SUM(CASE WHEN first_failed_at >= $1 AND first_failed_at < $2 THEN 1 ELSE 0 END), 0) AS BIGINT), \
               CAST(COALESCE(SUM(CASE WHEN recovered_at >= $1 AND recovered_at < $2 THEN 1 ELSE 0 END), 0) AS BIGINT) \
             FROM payment_issues",
        )
        .bind(from)
        .bind(to)
        .fetch_one(pool)
        .await?
    });
    Ok(counts)
}

/// An approved sponsor and the end of its paid term.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SponsorTerm {
    pub id: i64,
    pub name: String,
    pub tier_name: Option<String>,
    pub paid_through: NaiveDate,
}

/// Approved sponsors whose paid term ends between `from` and `to`.
pub async fn sponsor_terms_ending(
    db: &Db,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<SponsorTerm>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, SponsorTerm>(
            "SELECT s.id, s.display_name AS name, t.name AS tier_name, s.paid_through FROM supporters s \
             LEFT JOIN tiers t ON t.id = s.tier_id WHERE s.kind = 'sponsor' AND s.sponsor_status = 'approved' \
             AND s.paid_through >= $1 AND s.paid_through <= $2 ORDER BY s.paid_through, s.id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// Queues one renewal reminder per sponsor and term, in one commit.
pub async fn queue_renewal_reminders(
    db: &Db,
    today: NaiveDate,
    terms: &[SponsorTerm],
) -> Result<()> {
    db_run!(db, |pool| {
        let mut tx = super::begin_write!(pool);
        for term in terms {
            let context = serde_json::json!({
                "sponsor_name": term.name,
                "tier_name": term.tier_name,
                "paid_through": term.paid_through.to_string(),
                "days_left": (term.paid_through - today).num_days(),
            });
            let cause = format!("sponsor_expiring:{}:{}", term.id, term.paid_through);
            super::outbox::mail_supporter!(tx, term.id, cause, "sponsor_expiring", context);
        }
        tx.commit().await?;
    });
    Ok(())
}

/// Queues, once per sponsor and term, the notice that a sponsorship ended
/// (to the sponsor, and to the owners), in one commit.
pub async fn queue_sponsorships_ended(db: &Db, terms: &[SponsorTerm]) -> Result<()> {
    db_run!(db, |pool| {
        let mut tx = super::begin_write!(pool);
        for term in terms {
            let context = serde_json::json!({
                "sponsor_name": term.name,
                "tier_name": term.tier_name,
                "paid_through": term.paid_through.to_string(),
            });
            let cause = format!("sponsor_ended:{}:{}", term.id, term.paid_through);
            super::outbox::mail_supporter!(tx, term.id, cause.as_str(), "sponsor_ended", context);
            super::outbox::mail_admins!(
                tx,
                super::outbox::AdminAudience::Owners,
                cause.as_str(),
                "sponsor_ended_admin",
                context
            );
        }
        tx.commit().await?;
    });
    Ok(())
}
