//! Pledges: standing commitments at the amount agreed when they began.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Db, Page, Tx, audit::Actor, now, tiers::TierRow};
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

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PledgeRow {
    pub id: i64,
    pub supporter_id: i64,
    pub tier_id: Option<i64>,
    pub amount_minor: i64,
    pub currency: Currency,
    pub interval: Interval,
    pub status: PledgeStatus,
    pub source: Source,
    pub external_ref: Option<String>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

macro_rules! cols {
    () => {
        "id, supporter_id, tier_id, amount_minor, currency, interval, status, source, external_ref, \
         started_at, ended_at, created_at, updated_at"
    };
}

/// A pledge recorded by an admin, e.g. a standing bank order.
#[derive(Debug, Clone)]
pub struct NewPledge {
    pub supporter_id: i64,
    pub tier_id: i64,
    /// `None` takes the tier's current price.
    pub amount_minor: Option<i64>,
    pub started_at: DateTime<Utc>,
}

/// A tier's row for a pledge on it, locked until the transaction ends, so
/// two pledges cannot both take its last slot.
pub async fn lock_tier(tx: &mut Tx, tier_id: i64) -> Result<Option<TierRow>> {
    let tier = tx_run!(tx, |conn| {
        sqlx::query_as::<_, TierRow>(
            "UPDATE tiers SET updated_at = updated_at WHERE id = $1 RETURNING id, kind, name, description, \
             amount_minor, currency, interval, pwyw_min_minor, slots, rank, archived, created_at, updated_at",
        )
        .bind(tier_id)
        .fetch_optional(&mut *conn)
        .await?
    });
    Ok(tier)
}

/// Pledges on a tier that hold a slot.
pub async fn slots_taken(tx: &mut Tx, tier_id: i64) -> Result<i64> {
    let taken = tx_run!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM pledges WHERE tier_id = $1 AND status IN ('active', 'past_due')",
        )
        .bind(tier_id)
        .fetch_one(&mut *conn)
        .await?
    });
    Ok(taken)
}

/// Inserts an active manual pledge of `amount` on `tier`, audited.
pub async fn insert_manual(
    tx: &mut Tx,
    actor: &Actor,
    p: &NewPledge,
    tier: &TierRow,
    amount: i64,
) -> Result<PledgeRow> {
    let at = now();
    let row = tx_run!(tx, |conn| {
        sqlx::query_as::<_, PledgeRow>(concat!(
            "INSERT INTO pledges (supporter_id, tier_id, amount_minor, currency, interval, status, source, \
             started_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'active', 'manual', $6, $7, $7) RETURNING ",
            cols!()
        ))
        .bind(p.supporter_id)
        .bind(tier.id)
        .bind(amount)
        .bind(tier.currency.code())
        .bind(tier.interval.as_str())
        .bind(p.started_at)
        .bind(at)
        .fetch_one(&mut *conn)
        .await?
    });
    tx.audit(
        actor,
        "pledge.create",
        "pledge",
        row.id,
        json!({
            "supporter_id": p.supporter_id, "tier_id": tier.id, "amount_minor": amount, "interval": tier.interval
        }),
    )
    .await?;
    tx.bump_version();
    Ok(row)
}

/// Ends a pledge at `ended_at` (now, or the end of the paid period),
/// audited. `NotFound`, or a conflict when it has ended already.
pub async fn cancel(
    tx: &mut Tx,
    actor: &Actor,
    id: i64,
    ended_at: DateTime<Utc>,
    reason: &str,
) -> Result<PledgeRow> {
    let at = now();
    let row = tx_run!(tx, |conn| {
        let row = sqlx::query_as::<_, PledgeRow>(concat!(
            "UPDATE pledges SET status = 'canceled', ended_at = $2, updated_at = $3 \
             WHERE id = $1 AND status <> 'canceled' RETURNING ",
            cols!()
        ))
        .bind(id)
        .bind(ended_at)
        .bind(at)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else {
            let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM pledges WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
            return Err(match exists {
                Some(_) => Error::conflict("status", "the pledge is already canceled"),
                None => Error::NotFound("pledge"),
            });
        };
        row
    });
    tx.audit(
        actor,
        "pledge.cancel",
        "pledge",
        id,
        json!({"ended_at": ended_at, "reason": reason}),
    )
    .await?;
    tx.bump_version();
    Ok(row)
}

pub async fn list(db: &Db, supporter_id: Option<i64>, page: Page) -> Result<Vec<PledgeRow>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, PledgeRow>(concat!(
            "SELECT ",
            cols!(),
            " FROM pledges WHERE id > $1 AND ($2 IS NULL OR supporter_id = $2) ORDER BY id LIMIT $3"
        ))
        .bind(page.after)
        .bind(supporter_id)
        .bind(page.limit)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

pub async fn get(db: &Db, id: i64) -> Result<PledgeRow> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, PledgeRow>(concat!("SELECT ", cols!(), " FROM pledges WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?
    });
    row.ok_or(Error::NotFound("pledge"))
}
