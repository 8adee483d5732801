//! The daily funding history (`funding_snapshots`), kept by a job.

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use super::{Db, now};
use crate::{db_run, error::Result};

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
