//! The single campaign row.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{
    Db,
    audit::{Actor, audit},
    bump_version, now,
};
use crate::{
    db_run,
    domain::{campaign::Campaign, money::Currency},
    error::{Error, Result},
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

/// Saves the settings. The currency can change only while no tier, pledge or
/// ledger entry exists: amounts are never silently reinterpreted.
pub async fn update(db: &Db, actor: &Actor, c: &Campaign) -> Result<CampaignRow> {
    let at = now();
    let mut tx = db.begin_write().await?;
    let row = crate::tx_run!(&mut tx, |conn| {
        let current: String = sqlx::query_scalar("SELECT currency FROM campaign WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?;
        if current != c.currency.code() {
            let used: i64 = sqlx::query_scalar(
                "SELECT (SELECT COUNT(*) FROM tiers) + (SELECT COUNT(*) FROM pledges) \
                 + (SELECT COUNT(*) FROM ledger_entries)",
            )
            .fetch_one(&mut *conn)
            .await?;
            if used > 0 {
                return Err(Error::conflict(
                    "currency",
                    "the currency cannot change once tiers, pledges or ledger entries exist",
                ));
            }
        }
        let row = sqlx::query_as::<_, CampaignRow>(
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
        .await?;
        audit!(
            conn,
            actor,
            "campaign.update",
            "campaign",
            1i64,
            json!({
                "name": c.name, "currency": c.currency.code(),
                "monthly_goal_minor": c.monthly_goal_minor, "public_base_url": c.public_base_url
            })
        );
        bump_version!(conn);
        row
    });
    tx.commit().await?;
    Ok(row)
}
