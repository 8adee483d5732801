//! The single campaign row.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Db, Tx, audit::Actor, now};
use crate::{
    db_run,
    domain::{campaign::Campaign, money::Currency},
    error::Result,
    tx_run,
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CampaignRow {
    pub name: String,
    pub description: String,
    pub currency: Currency,
    pub monthly_goal_minor: Option<i64>,
    pub public_base_url: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl CampaignRow {
    pub fn settings(&self) -> Campaign {
        Campaign {
            name: self.name.clone(),
            description: self.description.clone(),
            currency: self.currency,
            monthly_goal_minor: self.monthly_goal_minor,
            public_base_url: self.public_base_url.clone(),
        }
    }
}

pub async fn get(db: &Db) -> Result<CampaignRow> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, CampaignRow>(
            "SELECT name, description, currency, monthly_goal_minor, public_base_url, updated_at \
             FROM campaign WHERE id = 1",
        )
        .fetch_one(pool)
        .await?
    });
    Ok(row)
}

/// The currency the campaign counts in now, read in the caller's
/// transaction.
pub async fn currency(tx: &mut Tx) -> Result<Currency> {
    let currency = tx_run!(tx, |conn| {
        sqlx::query_scalar::<_, Currency>("SELECT currency FROM campaign WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?
    });
    Ok(currency)
}

/// Whether any amount is recorded in the campaign's currency: a tier, a
/// pledge, a ledger entry, an expense or a recurring cost.
pub async fn has_amounts(tx: &mut Tx) -> Result<bool> {
    let used: i64 = tx_run!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM tiers) + (SELECT COUNT(*) FROM pledges) \
             + (SELECT COUNT(*) FROM ledger_entries) + (SELECT COUNT(*) FROM expenses) \
             + (SELECT COUNT(*) FROM recurring_costs)",
        )
        .fetch_one(&mut *conn)
        .await?
    });
    Ok(used > 0)
}

/// Saves the settings, audited.
pub async fn update(tx: &mut Tx, actor: &Actor, c: &Campaign) -> Result<CampaignRow> {
    let at = now();
    let row = tx_run!(tx, |conn| {
        sqlx::query_as::<_, CampaignRow>(
            "UPDATE campaign SET name = $1, description = $2, currency = $3, monthly_goal_minor = $4, \
             public_base_url = $5, updated_at = $6 WHERE id = 1 \
             RETURNING name, description, currency, monthly_goal_minor, public_base_url, updated_at",
        )
        .bind(&c.name)
        .bind(&c.description)
        .bind(c.currency.code())
        .bind(c.monthly_goal_minor)
        .bind(&c.public_base_url)
        .bind(at)
        .fetch_one(&mut *conn)
        .await?
    });
    tx.audit(
        actor,
        "campaign.update",
        "campaign",
        1,
        json!({
            "name": c.name, "currency": c.currency.code(),
            "monthly_goal_minor": c.monthly_goal_minor, "public_base_url": c.public_base_url
        }),
    )
    .await?;
    tx.bump_version();
    Ok(row)
}
