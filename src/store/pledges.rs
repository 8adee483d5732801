//! Pledges: standing commitments at the amount agreed when they began.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{
    Db, Page,
    audit::{Actor, audit},
    bump_version, now,
};
use crate::{
    db_run,
    domain::{
        money::Currency,
        pledge::{PledgeStatus, Source},
        tier::Interval,
    },
    error::{Error, Result},
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

/// Creates an active pledge on a tier. The tier row is locked first, so the
/// slot count cannot be raced past on either database.
pub async fn create(db: &Db, actor: &Actor, p: &NewPledge) -> Result<PledgeRow> {
    let at = now();
    let mut tx = db.begin_write().await?;
    let row = crate::tx_run!(&mut tx, |conn| {
        let tier = sqlx::query_as::<_, super::tiers::TierRow>(
            "UPDATE tiers SET updated_at = updated_at WHERE id = $1 RETURNING id, kind, name, description, \
             amount_minor, currency, interval, pwyw_min_minor, slots, rank, archived, created_at, updated_at",
        )
        .bind(p.tier_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| Error::field("tier_id", "no such tier"))?;
        if tier.archived {
            return Err(Error::field("tier_id", "this tier is archived"));
        }
        let kind: Option<String> = sqlx::query_scalar("SELECT kind FROM supporters WHERE id = $1")
            .bind(p.supporter_id)
            .fetch_optional(&mut *conn)
            .await?;
        match kind {
            None => return Err(Error::field("supporter_id", "no such supporter")),
            Some(k) if k != tier.kind.as_str() => {
                return Err(Error::field(
                    "tier_id",
                    format!("a {k} cannot pledge on a {} tier", tier.kind),
                ));
            }
            Some(_) => {}
        }
        let amount = tier
            .draft()
            .pledge_amount(p.amount_minor)
            .map_err(|m| Error::field("amount_minor", m))?;
        if let Some(slots) = tier.slots {
            let taken: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pledges WHERE tier_id = $1 AND status IN ('active', 'past_due')",
            )
            .bind(tier.id)
            .fetch_one(&mut *conn)
            .await?;
            if taken >= slots {
                return Err(Error::conflict(
                    "tier_id",
                    "every slot of this tier is taken",
                ));
            }
        }
        let row = sqlx::query_as::<_, PledgeRow>(concat!(
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
        .await?;
        audit!(
            conn,
            actor,
            "pledge.create",
            "pledge",
            row.id,
            json!({
                "supporter_id": p.supporter_id, "tier_id": tier.id, "amount_minor": amount, "interval": tier.interval
            })
        );
        bump_version!(conn);
        row
    });
    tx.commit().await?;
    Ok(row)
}

/// Ends a pledge at `ended_at` (now, or the end of the paid period).
pub async fn cancel(
    db: &Db,
    actor: &Actor,
    id: i64,
    ended_at: DateTime<Utc>,
    reason: &str,
) -> Result<PledgeRow> {
    let at = now();
    let mut tx = db.begin_write().await?;
    let row = crate::tx_run!(&mut tx, |conn| {
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
        audit!(
            conn,
            actor,
            "pledge.cancel",
            "pledge",
            id,
            json!({"ended_at": ended_at, "reason": reason})
        );
        bump_version!(conn);
        row
    });
    tx.commit().await?;
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
