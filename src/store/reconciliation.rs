//! Findings of the reconciliation with Stripe
//! (`reconciliation_mismatches`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::Db;
use crate::{db_run, error::Result};

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
