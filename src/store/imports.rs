//! What an import reads and writes besides the ledger: patrons found by
//! email, pledges found by their platform's key, tiers by name, and the
//! console's uploaded files waiting for confirmation.

use chrono::{DateTime, Utc};

use super::{Db, Tx, now};
use crate::{
    db_run,
    domain::{
        money::Currency,
        pledge::{PledgeStatus, Source},
        tier::Interval,
    },
    error::{Error, Result},
    tx_run,
};

/// The patron with this (normalised) email, created when there is none.
/// Returns the id and whether it was created.
pub async fn patron(tx: &mut Tx, email: &str, normalized: &str, name: &str) -> Result<(i64, bool)> {
    let at = now();
    let found = tx_run!(tx, |conn| {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM supporters WHERE email_normalized = $1 AND kind = 'patron'",
        )
        .bind(normalized)
        .fetch_optional(&mut *conn)
        .await?;
        match found {
            Some(id) => (id, false),
            None => {
                // Private: a person moved over from another platform chose
                // nothing here yet, so they are counted, never named.
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO supporters (kind, email, email_normalized, display_name, visibility, created_at, updated_at) \
                     VALUES ('patron', $1, $2, $3, 'private', $4, $4) RETURNING id",
                )
                .bind(email)
                .bind(normalized)
                .bind(name)
                .bind(at)
                .fetch_one(&mut *conn)
                .await?;
                (id, true)
            }
        }
    });
    Ok(found)
}

/// An active patron tier of this name (any case).
pub async fn tier_by_name(tx: &mut Tx, name: &str) -> Result<Option<i64>> {
    let id = tx_run!(tx, |conn| {
        sqlx::query_scalar::<_, i64>(
            "SELECT id FROM tiers WHERE kind = 'patron' AND archived = $2 AND lower(name) = lower($1) \
             ORDER BY id LIMIT 1",
        )
        .bind(name)
        .bind(false)
        .fetch_optional(&mut *conn)
        .await?
    });
    Ok(id)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImportedPledge {
    pub id: i64,
    pub supporter_id: i64,
    pub tier_id: Option<i64>,
    pub amount_minor: i64,
    pub status: PledgeStatus,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
}

pub async fn pledge(tx: &mut Tx, source: Source, key: &str) -> Result<Option<ImportedPledge>> {
    let row = tx_run!(tx, |conn| {
        sqlx::query_as::<_, ImportedPledge>(
            "SELECT id, supporter_id, tier_id, amount_minor, status, started_at, ended_at, current_period_end \
             FROM pledges WHERE source = $1 AND external_ref = $2",
        )
        .bind(source.as_str())
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?
    });
    Ok(row)
}

/// A pledge as an import leaves it.
#[derive(Debug, Clone)]
pub struct PledgeState {
    pub supporter_id: i64,
    pub tier_id: Option<i64>,
    pub amount_minor: i64,
    pub currency: Currency,
    pub interval: Interval,
    pub status: PledgeStatus,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
}

pub async fn insert_pledge(tx: &mut Tx, source: Source, key: &str, p: &PledgeState) -> Result<i64> {
    let at = now();
    let id = tx_run!(tx, |conn| {
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO pledges (supporter_id, tier_id, amount_minor, currency, interval, status, source, \
             external_ref, started_at, ended_at, current_period_end, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) RETURNING id",
        )
        .bind(p.supporter_id)
        .bind(p.tier_id)
        .bind(p.amount_minor)
        .bind(p.currency.code())
        .bind(p.interval.as_str())
        .bind(p.status.as_str())
        .bind(source.as_str())
        .bind(key)
        .bind(p.started_at)
        .bind(p.ended_at)
        .bind(p.current_period_end)
        .bind(at)
        .fetch_one(&mut *conn)
        .await?
    });
    Ok(id)
}

pub async fn update_pledge(tx: &mut Tx, id: i64, p: &PledgeState) -> Result<()> {
    let at = now();
    tx_run!(tx, |conn| {
        sqlx::query(
            "UPDATE pledges SET tier_id = $2, amount_minor = $3, status = $4, started_at = $5, ended_at = $6, \
             current_period_end = $7, updated_at = $8 WHERE id = $1",
        )
        .bind(id)
        .bind(p.tier_id)
        .bind(p.amount_minor)
        .bind(p.status.as_str())
        .bind(p.started_at)
        .bind(p.ended_at)
        .bind(p.current_period_end)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    });
    Ok(())
}

/// A console upload waiting for its owner's confirmation.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Upload {
    pub id: i64,
    pub token: String,
    pub admin_id: i64,
    pub file_name: String,
    pub format: String,
    pub mapping: String,
    pub content: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub committed_at: Option<DateTime<Utc>>,
}

pub struct NewUpload<'a> {
    pub token: &'a str,
    pub admin_id: i64,
    pub file_name: &'a str,
    pub format: &'a str,
    pub mapping: &'a str,
    pub content: &'a [u8],
}

/// Keeps an upload; uploads older than a day are dropped on the way.
pub async fn save_upload(db: &Db, u: &NewUpload<'_>) -> Result<i64> {
    let at = now();
    let id = db_run!(db, |pool| {
        sqlx::query("DELETE FROM import_uploads WHERE created_at < $1")
            .bind(at - chrono::Duration::days(1))
            .execute(pool)
            .await?;
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO import_uploads (token, admin_id, file_name, format, mapping, content, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(u.token)
        .bind(u.admin_id)
        .bind(u.file_name)
        .bind(u.format)
        .bind(u.mapping)
        .bind(u.content)
        .bind(at)
        .fetch_one(pool)
        .await?
    });
    Ok(id)
}

pub async fn upload(db: &Db, token: &str) -> Result<Upload> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, Upload>(
            "SELECT id, token, admin_id, file_name, format, mapping, content, created_at, committed_at \
             FROM import_uploads WHERE token = $1",
        )
        .bind(token)
        .fetch_optional(pool)
        .await?
    });
    row.ok_or(Error::NotFound("upload"))
}

/// Marks an upload committed and drops its content (the people in it are
/// in the books now); false when it was already.
pub async fn mark_committed(db: &Db, id: i64) -> Result<bool> {
    let done = db_run!(db, |pool| {
        sqlx::query(
            "UPDATE import_uploads SET committed_at = $2, content = $3 WHERE id = $1 AND committed_at IS NULL",
        )
        .bind(id)
        .bind(now())
        .bind(Vec::<u8>::new())
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(done == 1)
}
