//! What needs an admin's attention, counted in one read for the overview.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::Db;
use crate::{db_run, error::Result};

#[derive(Debug, Clone, Default, Serialize, sqlx::FromRow)]
pub struct Attention {
    /// Stripe events that could not be applied.
    pub failed_events: i64,
    /// Emails given up on, and emails waiting to be tried again.
    pub failed_mail: i64,
    pub retrying_mail: i64,
    /// Tasks dead-lettered, and tasks overdue by more than an hour.
    pub dead_tasks: i64,
    pub overdue_tasks: i64,
    pub past_due_pledges: i64,
    pub pending_sponsors: i64,
    /// Approved sponsors whose paid term ends within 30 days.
    pub terms_ending: i64,
}

pub async fn counts(db: &Db, now: DateTime<Utc>, today: NaiveDate) -> Result<Attention> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, Attention>(
            "SELECT \
               (SELECT CAST(COUNT(*) AS BIGINT) FROM stripe_events WHERE status = 'failed') AS failed_events, \
               (SELECT CAST(COUNT(*) AS BIGINT) FROM outbox WHERE status = 'failed') AS failed_mail, \
               (SELECT CAST(COUNT(*) AS BIGINT) FROM outbox WHERE status = 'pending' AND attempts > 0) AS retrying_mail, \
               (SELECT CAST(COUNT(*) AS BIGINT) FROM tasks WHERE status = 'dead') AS dead_tasks, \
               (SELECT CAST(COUNT(*) AS BIGINT) FROM tasks WHERE status = 'pending' AND run_at < $1) AS overdue_tasks, \
               (SELECT CAST(COUNT(*) AS BIGINT) FROM pledges WHERE status = 'past_due') AS past_due_pledges, \
               (SELECT CAST(COUNT(*) AS BIGINT) FROM supporters WHERE kind = 'sponsor' AND sponsor_status = 'pending') AS pending_sponsors, \
               (SELECT CAST(COUNT(*) AS BIGINT) FROM supporters WHERE kind = 'sponsor' AND sponsor_status = 'approved' \
                  AND paid_through >= $2 AND paid_through < $3) AS terms_ending",
        )
        .bind(now - chrono::Duration::hours(1))
        .bind(today)
        .bind(today + chrono::Duration::days(30))
        .fetch_one(pool)
        .await?
    });
    Ok(row)
}
