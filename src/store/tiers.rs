//! Tiers. A price change updates the tier only: pledges carry their own
//! amount, so existing supporters keep paying what they agreed to.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Constraint, Db, Tx, audit::Actor, now, on_constraint};
use crate::{
    db_run,
    domain::{
        money::Currency,
        tier::{Interval, TierDraft, TierKind},
    },
    error::{Error, Result},
    tx_run,
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TierRow {
    pub id: i64,
    pub kind: TierKind,
    pub name: String,
    pub description: String,
    pub amount_minor: i64,
    pub currency: Currency,
    pub interval: Interval,
    pub pwyw_min_minor: Option<i64>,
    pub slots: Option<i64>,
    pub rank: i64,
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TierRow {
    pub fn draft(&self) -> TierDraft {
        TierDraft {
            kind: self.kind,
            name: self.name.clone(),
            description: self.description.clone(),
            amount_minor: self.amount_minor,
            currency: self.currency,
            interval: self.interval,
            pwyw_min_minor: self.pwyw_min_minor,
            slots: self.slots,
            rank: self.rank,
        }
    }
}

macro_rules! cols {
    () => {
        "id, kind, name, description, amount_minor, currency, interval, pwyw_min_minor, slots, rank, archived, created_at, updated_at"
    };
}

fn name_conflict(e: sqlx::Error) -> Error {
    if on_constraint(&e) == Some(Constraint::TierName) {
        Error::conflict("name", "an active tier of this kind already has this name")
    } else {
        e.into()
    }
}

pub async fn list(db: &Db, include_archived: bool) -> Result<Vec<TierRow>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, TierRow>(concat!(
            "SELECT ",
            cols!(),
            " FROM tiers WHERE archived = $1 OR $2 ORDER BY kind, rank, amount_minor, id"
        ))
        .bind(false)
        .bind(include_archived)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

pub async fn get(db: &Db, id: i64) -> Result<TierRow> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, TierRow>(concat!("SELECT ", cols!(), " FROM tiers WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?
    });
    row.ok_or(Error::NotFound("tier"))
}

/// A tier's kind and whether it is archived, read in the caller's
/// transaction; `None` if there is no such tier.
pub async fn kind_and_archived(tx: &mut Tx, id: i64) -> Result<Option<(TierKind, bool)>> {
    let row = tx_run!(tx, |conn| {
        sqlx::query_as::<_, (TierKind, bool)>("SELECT kind, archived FROM tiers WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
    });
    Ok(row)
}

pub async fn create(tx: &mut Tx, actor: &Actor, t: &TierDraft) -> Result<TierRow> {
    let at = now();
    let row = tx_run!(tx, |conn| {
        sqlx::query_as::<_, TierRow>(concat!(
            "INSERT INTO tiers (kind, name, description, amount_minor, currency, interval, \
             pwyw_min_minor, slots, rank, archived, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING ",
            cols!()
        ))
        .bind(t.kind.as_str())
        .bind(&t.name)
        .bind(&t.description)
        .bind(t.amount_minor)
        .bind(t.currency.code())
        .bind(t.interval.as_str())
        .bind(t.pwyw_min_minor)
        .bind(t.slots)
        .bind(t.rank)
        .bind(false)
        .bind(at)
        .fetch_one(&mut *conn)
        .await
        .map_err(name_conflict)?
    });
    tx.audit(
        actor,
        "tier.create",
        "tier",
        row.id,
        json!({
            "kind": t.kind, "name": t.name, "amount_minor": t.amount_minor,
            "currency": t.currency.code(), "interval": t.interval
        }),
    )
    .await?;
    tx.bump_version();
    Ok(row)
}

/// Replaces the editable fields. The audit entry records old and new values.
pub async fn update(
    tx: &mut Tx,
    actor: &Actor,
    id: i64,
    before: &TierRow,
    t: &TierDraft,
) -> Result<TierRow> {
    let at = now();
    let row = tx_run!(tx, |conn| {
        sqlx::query_as::<_, TierRow>(concat!(
            "UPDATE tiers SET name = $2, description = $3, amount_minor = $4, interval = $5, \
             pwyw_min_minor = $6, slots = $7, rank = $8, updated_at = $9 WHERE id = $1 RETURNING ",
            cols!()
        ))
        .bind(id)
        .bind(&t.name)
        .bind(&t.description)
        .bind(t.amount_minor)
        .bind(t.interval.as_str())
        .bind(t.pwyw_min_minor)
        .bind(t.slots)
        .bind(t.rank)
        .bind(at)
        .fetch_optional(&mut *conn)
        .await
        .map_err(name_conflict)?
        .ok_or(Error::NotFound("tier"))?
    });
    tx.audit(
        actor,
        "tier.update",
        "tier",
        id,
        json!({
            "before": {"name": before.name, "amount_minor": before.amount_minor, "interval": before.interval,
                       "pwyw_min_minor": before.pwyw_min_minor, "slots": before.slots, "rank": before.rank},
            "after": {"name": t.name, "amount_minor": t.amount_minor, "interval": t.interval,
                      "pwyw_min_minor": t.pwyw_min_minor, "slots": t.slots, "rank": t.rank}
        }),
    )
    .await?;
    tx.bump_version();
    Ok(row)
}

/// Archives a tier: it leaves the public list and takes no new pledges;
/// pledges already on it continue.
pub async fn archive(tx: &mut Tx, actor: &Actor, id: i64) -> Result<TierRow> {
    let at = now();
    let row = tx_run!(tx, |conn| {
        sqlx::query_as::<_, TierRow>(concat!(
            "UPDATE tiers SET archived = $2, updated_at = $3 WHERE id = $1 RETURNING ",
            cols!()
        ))
        .bind(id)
        .bind(true)
        .bind(at)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(Error::NotFound("tier"))?
    });
    tx.audit(actor, "tier.archive", "tier", id, json!({"name": row.name}))
        .await?;
    tx.bump_version();
    Ok(row)
}

/// Where a tier stands in Stripe's catalogue: the amount of its active
/// price, and the latest sync still waiting or given up, with its error.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CatalogueState {
    pub tier_id: i64,
    pub price_minor: Option<i64>,
    pub sync_status: Option<String>,
    pub sync_error: Option<String>,
}

pub async fn catalogue(db: &Db) -> Result<Vec<CatalogueState>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, CatalogueState>(
            "SELECT t.id AS tier_id, \
               (SELECT p.amount_minor FROM stripe_prices p WHERE p.tier_id = t.id AND p.active = $1 \
                  ORDER BY p.created_at DESC LIMIT 1) AS price_minor, \
               (SELECT k.status FROM tasks k WHERE k.kind = 'sync_tier' AND k.dedupe_key = CAST(t.id AS TEXT) \
                  AND k.status IN ('pending', 'running', 'dead') ORDER BY k.id DESC LIMIT 1) AS sync_status, \
               (SELECT k.last_error FROM tasks k WHERE k.kind = 'sync_tier' AND k.dedupe_key = CAST(t.id AS TEXT) \
                  AND k.status IN ('pending', 'running', 'dead') ORDER BY k.id DESC LIMIT 1) AS sync_error \
             FROM tiers t",
        )
        .bind(true)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}
