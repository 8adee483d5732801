//! Pledges as Stripe reports their subscriptions.

use std::collections::HashMap;

use super::prelude::*;

/// A subscription as Stripe reports it now.
#[derive(Debug, Clone)]
pub struct SubscriptionState {
    pub subscription_id: String,
    pub supporter_id: i64,
    pub tier_id: Option<i64>,
    pub amount_minor: i64,
    pub currency: Currency,
    pub interval: Interval,
    pub status: PledgeStatus,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    /// Why Stripe canceled it: "payment_failed" when it gave up collecting.
    pub cancel_reason: Option<String>,
}

/// The status of a subscription's pledge, if it has one.
pub async fn subscription_pledge_status(
    tx: &mut Tx,
    subscription_id: &str,
) -> Result<Option<PledgeStatus>> {
    let status = tx_run!(tx, |conn| {
        sqlx::query_scalar::<_, PledgeStatus>(
            "SELECT status FROM pledges WHERE source = 'stripe' AND external_ref = $1",
        )
        .bind(subscription_id)
        .fetch_optional(&mut *conn)
        .await?
    });
    Ok(status)
}

/// Creates or updates the pledge for a subscription. A canceled pledge
/// stays canceled (Stripe never revives a subscription), so a stale read
/// cannot bring it back. A sponsorship ended early (cancelled now, or
/// Stripe gave up on an unpaid renewal) is paid through the day before it
/// ended, no later.
pub async fn upsert_subscription_pledge(tx: &mut Tx, s: &SubscriptionState) -> Result<i64> {
    let at = now();
    let id = tx_run!(tx, |conn| {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO pledges (supporter_id, tier_id, amount_minor, currency, interval, status, source, external_ref, \
             started_at, ended_at, current_period_end, cancel_at_period_end, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'stripe', $7, $8, $9, $10, $11, $12, $12) \
             ON CONFLICT (source, external_ref) DO UPDATE SET \
               status = CASE WHEN pledges.status = 'canceled' THEN pledges.status ELSE excluded.status END, \
               ended_at = COALESCE(pledges.ended_at, excluded.ended_at), \
               amount_minor = excluded.amount_minor, \
               tier_id = excluded.tier_id, \
               interval = excluded.interval, \
               current_period_end = excluded.current_period_end, \
               cancel_at_period_end = excluded.cancel_at_period_end, \
               updated_at = excluded.updated_at \
             RETURNING id",
        )
        .bind(s.supporter_id)
        .bind(s.tier_id)
        .bind(s.amount_minor)
        .bind(s.currency.code())
        .bind(s.interval.as_str())
        .bind(s.status.as_str())
        .bind(&s.subscription_id)
        .bind(s.started_at)
        .bind(s.ended_at)
        .bind(s.current_period_end)
        .bind(s.cancel_at_period_end)
        .bind(at)
        .fetch_one(&mut *conn)
        .await?;
        if let (PledgeStatus::Canceled, Some(ended)) = (s.status, s.ended_at) {
            let last_day = ended.date_naive().pred_opt().unwrap_or(ended.date_naive());
            sqlx::query(
                "UPDATE supporters SET paid_through = $2, updated_at = $3 WHERE id = $1 AND kind = 'sponsor' \
                 AND paid_through > $2",
            )
            .bind(s.supporter_id)
            .bind(last_day)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
        id
    });
    tx.bump_version();
    Ok(id)
}

/// A supporter's kind and a tier's name, for the emails about a pledge.
pub async fn pledge_brief(
    tx: &mut Tx,
    supporter_id: i64,
    tier_id: Option<i64>,
) -> Result<(String, Option<String>)> {
    let brief = tx_run!(tx, |conn| {
        sqlx::query_as(
            "SELECT s.kind, t.name FROM supporters s LEFT JOIN tiers t ON t.id = $2 WHERE s.id = $1",
        )
        .bind(supporter_id)
        .bind(tier_id)
        .fetch_one(&mut *conn)
        .await?
    });
    Ok(brief)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PledgeRef {
    pub id: i64,
    pub subscription_id: String,
    pub supporter_id: i64,
    pub tier_id: Option<i64>,
    /// The supporter is a sponsor (whose payments extend its paid term).
    pub sponsor: bool,
    /// The tier's name and interval, for receipts.
    pub tier_name: Option<String>,
    pub tier_interval: Option<String>,
}

pub async fn pledge_by_subscription(db: &Db, subscription_id: &str) -> Result<Option<PledgeRef>> {
    let mut found = pledges_by_subscription(db, &[subscription_id.to_owned()]).await?;
    Ok(found.remove(subscription_id))
}

/// The pledges of these subscriptions, by subscription id, in one read
/// (the ids travel as one JSON array).
pub async fn pledges_by_subscription(
    db: &Db,
    subscription_ids: &[String],
) -> Result<HashMap<String, PledgeRef>> {
    if subscription_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let ids = crate::store::in_json_texts(db);
    let sql = format!(
        "SELECT p.id, p.external_ref AS subscription_id, p.supporter_id, p.tier_id, \
         s.kind = 'sponsor' AS sponsor, t.name AS tier_name, t.interval AS tier_interval \
         FROM pledges p JOIN supporters s ON s.id = p.supporter_id LEFT JOIN tiers t ON t.id = p.tier_id \
         WHERE p.source = 'stripe' AND p.external_ref {ids}"
    );
    let ids = serde_json::to_string(subscription_ids)
        .map_err(|e| crate::error::Error::internal(format!("subscription ids: {e}")))?;
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, PledgeRef>(sqlx::AssertSqlSafe(sql))
            .bind(ids)
            .fetch_all(pool)
            .await?
    });
    Ok(rows
        .into_iter()
        .map(|p| (p.subscription_id.clone(), p))
        .collect())
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
