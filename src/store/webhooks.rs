//! Outbound webhooks: the event log (`events`), endpoints, the delivery
//! log, and the goal milestones. `emit` writes an event and one delivery
//! task per subscribed endpoint in the caller's transaction.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{Db, Tx, TxConn, now};
use crate::{
    db_run,
    domain::webhooks::{EventType, subscribed},
    error::{Error, Result},
    queue::DeliverWebhook,
    tx_run,
};

/// Something that happened, to be told to the endpoints subscribed to it.
/// The payload is read in the emitting transaction, so it is the state the
/// change left.
#[derive(Debug, Clone)]
pub struct OutboundEvent {
    pub kind: EventType,
    pub subject: Subject,
}

/// What an event is about; its row is read into the payload.
#[derive(Debug, Clone)]
pub enum Subject {
    Supporter(i64),
    Pledge(i64),
    /// A ledger entry (a payment or a refund).
    Entry(i64),
    /// The monthly goal, and the recurring total that reached it.
    Goal {
        goal_minor: i64,
        currency: String,
        monthly_recurring_minor: i64,
    },
    Ping,
}

impl OutboundEvent {
    pub fn new(kind: EventType, subject: Subject) -> Self {
        OutboundEvent { kind, subject }
    }
}

#[derive(sqlx::FromRow)]
struct SupporterSnap {
    id: i64,
    kind: String,
    display_name: String,
    email: String,
    visibility: String,
    website_url: Option<String>,
    sponsor_status: Option<String>,
    paid_through: Option<NaiveDate>,
    created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct PledgeSnap {
    id: i64,
    supporter_id: i64,
    tier_id: Option<i64>,
    tier_name: Option<String>,
    amount_minor: i64,
    currency: String,
    interval: String,
    status: String,
    source: String,
    cancel_at_period_end: bool,
    current_period_end: Option<DateTime<Utc>>,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct EntrySnap {
    id: i64,
    kind: String,
    amount_minor: i64,
    currency: String,
    pledge_id: Option<i64>,
    supporter_id: Option<i64>,
    tier_id: Option<i64>,
    occurred_at: DateTime<Utc>,
}

/// Supporters' payloads, by id, in one read.
async fn supporters(tx: &mut Tx, ids: &[i64]) -> Result<HashMap<i64, Value>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let list = serde_json::to_string(ids).map_err(|e| Error::internal(format!("ids: {e}")))?;
    let sql = format!(
        "SELECT id, kind, display_name, email, visibility, website_url, sponsor_status, \
         paid_through, created_at FROM supporters WHERE id {}",
        super::in_json_ids_for(tx)
    );
    let rows = tx_run!(tx, |conn| {
        sqlx::query_as::<_, SupporterSnap>(sqlx::AssertSqlSafe(sql))
            .bind(list)
            .fetch_all(&mut *conn)
            .await?
    });
    Ok(rows
        .into_iter()
        .map(|s| {
            let mut v = json!({
                "id": s.id, "kind": s.kind, "name": s.display_name, "email": s.email,
                "visibility": s.visibility, "created_at": s.created_at,
            });
            if s.kind == "sponsor" {
                v["website_url"] = json!(s.website_url);
                v["sponsor_status"] = json!(s.sponsor_status);
                v["paid_through"] = json!(s.paid_through);
            }
            (s.id, v)
        })
        .collect())
}

async fn supporter(tx: &mut Tx, id: i64) -> Result<Value> {
    Ok(supporters(tx, &[id])
        .await?
        .remove(&id)
        .unwrap_or(Value::Null))
}

/// Ledger entries' rows, by id, in one read.
async fn entries(tx: &mut Tx, ids: &[i64]) -> Result<HashMap<i64, EntrySnap>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let list = serde_json::to_string(ids).map_err(|e| Error::internal(format!("ids: {e}")))?;
    let sql = format!(
        "SELECT id, kind, amount_minor, currency, pledge_id, supporter_id, tier_id, \
         occurred_at FROM ledger_entries WHERE id {}",
        super::in_json_ids_for(tx)
    );
    let rows = tx_run!(tx, |conn| {
        sqlx::query_as::<_, EntrySnap>(sqlx::AssertSqlSafe(sql))
            .bind(list)
            .fetch_all(&mut *conn)
            .await?
    });
    Ok(rows.into_iter().map(|e| (e.id, e)).collect())
}

/// The payloads of events about `subjects`, as the transaction sees them:
/// the entries and their supporters in one read each (a batch of payments
/// tells of many), pledges one by one.
async fn snapshots(tx: &mut Tx, subjects: &[&Subject]) -> Result<Vec<Value>> {
    let entry_ids: Vec<i64> = subjects
        .iter()
        .filter_map(|s| match s {
            Subject::Entry(id) => Some(*id),
            _ => None,
        })
        .collect();
    let entries = entries(tx, &entry_ids).await?;
    let supporter_ids: Vec<i64> = subjects
        .iter()
        .filter_map(|s| match s {
            Subject::Supporter(id) => Some(*id),
            Subject::Entry(id) => entries.get(id).and_then(|e| e.supporter_id),
            _ => None,
        })
        .collect();
    let people = supporters(tx, &supporter_ids).await?;
    let mut out = Vec::with_capacity(subjects.len());
    for subject in subjects {
        out.push(match subject {
            Subject::Supporter(id) => {
                json!({ "supporter": people.get(id).cloned().unwrap_or(Value::Null) })
            }
            Subject::Entry(id) => {
                let e = entries.get(id).ok_or(Error::NotFound("ledger entry"))?;
                let who = e
                    .supporter_id
                    .and_then(|s| people.get(&s).cloned())
                    .unwrap_or(Value::Null);
                json!({
                    "payment": {
                        "id": e.id, "kind": e.kind,
                        // Refunds are booked negative; receivers get what moved.
                        "amount_minor": e.amount_minor.abs(), "currency": e.currency,
                        "pledge_id": e.pledge_id, "tier_id": e.tier_id, "occurred_at": e.occurred_at,
                    },
                    "supporter": who,
                })
            }
            other => snapshot(tx, other).await?,
        });
    }
    Ok(out)
}

async fn snapshot(tx: &mut Tx, subject: &Subject) -> Result<Value> {
    Ok(match subject {
        // Read in bulk by `snapshots`.
        Subject::Supporter(_) | Subject::Entry(_) => Value::Null,
        Subject::Pledge(id) => {
            let p = tx_run!(tx, |conn| {
                sqlx::query_as::<_, PledgeSnap>(
                    "SELECT p.id, p.supporter_id, p.tier_id, t.name AS tier_name, p.amount_minor, \
                     p.currency, p.interval, p.status, p.source, p.cancel_at_period_end, \
                     p.current_period_end, p.started_at, p.ended_at \
                     FROM pledges p LEFT JOIN tiers t ON t.id = p.tier_id WHERE p.id = $1",
                )
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
            })
            .ok_or(Error::NotFound("pledge"))?;
            json!({
                "pledge": {
                    "id": p.id, "status": p.status, "amount_minor": p.amount_minor,
                    "currency": p.currency, "interval": p.interval, "source": p.source,
                    "tier": p.tier_id.map(|id| json!({"id": id, "name": p.tier_name})),
                    "cancel_at_period_end": p.cancel_at_period_end,
                    "current_period_end": p.current_period_end,
                    "started_at": p.started_at, "ended_at": p.ended_at,
                },
                "supporter": supporter(tx, p.supporter_id).await?,
            })
        }
        Subject::Goal {
            goal_minor,
            currency,
            monthly_recurring_minor,
        } => json!({
            "goal": {"amount_minor": goal_minor, "currency": currency},
            "monthly_recurring_minor": monthly_recurring_minor,
        }),
        Subject::Ping => json!({"message": "A test ping from patronage."}),
    })
}

/// Writes an event and, in the same transaction, a delivery task for each
/// enabled endpoint subscribed to its type. Returns the event's id.
pub async fn emit(tx: &mut Tx, event: &OutboundEvent) -> Result<i64> {
    let ids = emit_all(tx, std::slice::from_ref(event)).await?;
    ids.first()
        .copied()
        .ok_or_else(|| Error::internal("an event insert returned no id"))
}

/// `emit` for many events, their payloads read and rows written a few
/// statements in all. Returns their ids, in order.
pub async fn emit_all(tx: &mut Tx, events: &[OutboundEvent]) -> Result<Vec<i64>> {
    let subjects: Vec<&Subject> = events.iter().map(|e| &e.subject).collect();
    let data = snapshots(tx, &subjects).await?;
    let rows: Vec<(EventType, Value)> = events.iter().map(|e| e.kind).zip(data).collect();
    let ids = insert_events(tx, &rows).await?;
    let endpoints: Vec<(i64, String)> = match tx.webhook_endpoints.take() {
        Some(endpoints) => endpoints,
        None => tx_run!(tx, |conn| {
            sqlx::query_as("SELECT id, event_types FROM webhook_endpoints WHERE enabled = $1")
                .bind(true)
                .fetch_all(&mut *conn)
                .await?
        }),
    };
    for (event, &(id, _)) in events.iter().zip(&ids) {
        let kind = event.kind.as_str();
        for (endpoint_id, types) in &endpoints {
            if subscribed(types, kind) {
                tx.enqueue(&DeliverWebhook {
                    endpoint_id: *endpoint_id,
                    event_id: id,
                })
                .await?;
            }
        }
        metrics::counter!("patronage_webhook_events_total", "type" => kind).increment(1);
    }
    tx.webhook_endpoints = Some(endpoints);
    Ok(ids.into_iter().map(|(id, _)| id).collect())
}

/// Writes an event with a new message id; returns its id and message id.
pub async fn insert_event(tx: &mut Tx, kind: EventType, data: &Value) -> Result<(i64, String)> {
    let mut ids = insert_events(tx, &[(kind, data.clone())]).await?;
    ids.pop()
        .ok_or_else(|| Error::internal("an event insert returned no id"))
}

/// Writes events, each with a new message id, a few hundred to a
/// statement; returns their ids and message ids, in order.
async fn insert_events(tx: &mut Tx, events: &[(EventType, Value)]) -> Result<Vec<(i64, String)>> {
    let at = now();
    let rows: Vec<(String, &str, String)> = events
        .iter()
        .map(|(kind, data)| {
            let webhook_id = format!("msg_{}", uuid::Uuid::new_v4().simple());
            (webhook_id, kind.as_str(), data.to_string())
        })
        .collect();
    let mut ids: HashMap<String, i64> = HashMap::new();
    for chunk in rows.chunks(super::ROWS_PER_STATEMENT) {
        let written: Vec<(i64, String)> = tx_run!(tx, |conn| {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO events (webhook_id, type, occurred_at, payload) ",
            );
            q.push_values(chunk, |mut row, (webhook_id, kind, payload)| {
                row.push_bind(webhook_id)
                    .push_bind(*kind)
                    .push_bind(at)
                    .push_bind(payload);
            });
            q.push(" RETURNING id, webhook_id");
            q.build_query_as().fetch_all(&mut *conn).await?
        });
        ids.extend(written.into_iter().map(|(id, webhook_id)| (webhook_id, id)));
    }
    rows.into_iter()
        .map(|(webhook_id, _, _)| {
            let id = ids
                .remove(&webhook_id)
                .ok_or_else(|| Error::internal("an event insert returned no id"))?;
            Ok((id, webhook_id))
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
    /// The `webhook-id` of every delivery of this event.
    pub webhook_id: String,
    #[sqlx(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    #[serde(skip)]
    pub payload: String,
}

pub async fn event(db: &Db, id: i64) -> Result<Option<EventRow>> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, EventRow>(
            "SELECT id, webhook_id, type, occurred_at, payload FROM events WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?
    });
    Ok(row)
}

/// Events, newest first, before id `before`.
pub async fn events(db: &Db, before: Option<i64>, limit: i64) -> Result<Vec<EventRow>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, EventRow>(
            "SELECT id, webhook_id, type, occurred_at, payload FROM events \
             WHERE ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// The ids and types of events since `since`, oldest first.
pub async fn events_since(tx: &mut Tx, since: DateTime<Utc>) -> Result<Vec<(i64, String)>> {
    let rows = tx_run!(tx, |conn| {
        sqlx::query_as::<_, (i64, String)>(
            "SELECT id, type FROM events WHERE occurred_at >= $1 ORDER BY id",
        )
        .bind(since)
        .fetch_all(&mut *conn)
        .await?
    });
    Ok(rows)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndpointRow {
    pub id: i64,
    pub url: String,
    pub description: String,
    pub event_types: String,
    pub enabled: bool,
    pub trusted: bool,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub failing_since: Option<DateTime<Utc>>,
    pub consecutive_failures: i32,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl EndpointRow {
    /// The secrets that sign now: the current one, and the previous one
    /// until it expires.
    pub fn signing_secrets(&self, at: DateTime<Utc>) -> Vec<&str> {
        let mut out = vec![self.secret.as_str()];
        if let (Some(prev), Some(until)) = (&self.previous_secret, self.previous_secret_expires_at)
            && until > at
        {
            out.push(prev.as_str());
        }
        out
    }
}

const ENDPOINT_COLUMNS: &str = "id, url, description, event_types, enabled, trusted, secret, \
     previous_secret, previous_secret_expires_at, failing_since, consecutive_failures, \
     disabled_reason, created_at, updated_at";

pub async fn endpoints(db: &Db) -> Result<Vec<EndpointRow>> {
    let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY id");
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, EndpointRow>(sqlx::AssertSqlSafe(sql.as_str()))
            .fetch_all(pool)
            .await?
    });
    Ok(rows)
}

pub async fn endpoint(db: &Db, id: i64) -> Result<EndpointRow> {
    let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1");
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, EndpointRow>(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(id)
            .fetch_optional(pool)
            .await?
    });
    row.ok_or(Error::NotFound("webhook endpoint"))
}

/// What an owner sets on an endpoint.
#[derive(Debug, Clone)]
pub struct EndpointFields {
    pub url: String,
    pub description: String,
    pub event_types: String,
    pub enabled: bool,
    pub trusted: bool,
}

pub async fn insert_endpoint(tx: &mut Tx, f: &EndpointFields, secret: &str) -> Result<i64> {
    let at = now();
    let id = tx_run!(tx, |conn| {
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO webhook_endpoints (url, description, event_types, enabled, trusted, secret, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
        )
        .bind(&f.url)
        .bind(&f.description)
        .bind(&f.event_types)
        .bind(f.enabled)
        .bind(f.trusted)
        .bind(secret)
        .bind(at)
        .fetch_one(&mut *conn)
        .await?
    });
    Ok(id)
}

/// Saves an owner's changes. Turning an endpoint on clears its failure
/// streak and the reason it was turned off.
pub async fn update_endpoint(tx: &mut Tx, id: i64, f: &EndpointFields) -> Result<()> {
    let n = tx_run!(tx, |conn| {
        sqlx::query(
            "UPDATE webhook_endpoints SET url = $2, description = $3, event_types = $4, \
             trusted = $6, updated_at = $7, \
             failing_since = CASE WHEN $5 AND NOT enabled THEN NULL ELSE failing_since END, \
             consecutive_failures = CASE WHEN $5 AND NOT enabled THEN 0 ELSE consecutive_failures END, \
             disabled_reason = CASE WHEN $5 THEN NULL ELSE disabled_reason END, \
             enabled = $5 WHERE id = $1",
        )
        .bind(id)
        .bind(&f.url)
        .bind(&f.description)
        .bind(&f.event_types)
        .bind(f.enabled)
        .bind(f.trusted)
        .bind(now())
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    if n == 0 {
        return Err(Error::NotFound("webhook endpoint"));
    }
    Ok(())
}

pub async fn delete_endpoint(tx: &mut Tx, id: i64) -> Result<()> {
    let n = tx_run!(tx, |conn| {
        sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
        sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected()
    });
    if n == 0 {
        return Err(Error::NotFound("webhook endpoint"));
    }
    Ok(())
}

/// A new secret signs from now; the one it replaces keeps signing beside
/// it until `previous_until`.
pub async fn rotate_secret(
    tx: &mut Tx,
    id: i64,
    secret: &str,
    previous_until: DateTime<Utc>,
) -> Result<()> {
    let n = tx_run!(tx, |conn| {
        sqlx::query(
            "UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_expires_at = $3, \
             secret = $2, updated_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(secret)
        .bind(previous_until)
        .bind(now())
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    if n == 0 {
        return Err(Error::NotFound("webhook endpoint"));
    }
    Ok(())
}

/// One try of one delivery.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub endpoint_id: i64,
    pub event_id: i64,
    pub ok: bool,
    pub status_code: Option<i32>,
    pub latency_ms: i64,
    pub response_body: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: i64,
    pub endpoint_id: i64,
    pub event_id: i64,
    /// The event's `webhook-id` and type.
    pub webhook_id: String,
    pub event_type: String,
    /// 1 for the first try of this event to this endpoint.
    pub attempt: i32,
    pub ok: bool,
    /// The HTTP status answered, if any answer came.
    pub status_code: Option<i32>,
    pub latency_ms: Option<i64>,
    /// The start of the answer's body (at most 1 KiB).
    pub response_body: Option<String>,
    /// Why it failed without an answer (timeout, refused address, …).
    pub error: Option<String>,
    pub attempted_at: DateTime<Utc>,
}

/// Records a try, and the endpoint's failure streak: a success ends it, a
/// failure starts or lengthens it. Returns the endpoint's row after.
pub async fn record_delivery(tx: &mut Tx, d: &NewDelivery) -> Result<DeliveryRow> {
    let at = now();
    let id = tx_run!(tx, |conn| {
        let attempt: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM webhook_deliveries WHERE endpoint_id = $1 AND event_id = $2",
        )
        .bind(d.endpoint_id)
        .bind(d.event_id)
        .fetch_one(&mut *conn)
        .await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO webhook_deliveries (endpoint_id, event_id, attempt, ok, status_code, latency_ms, \
             response_body, error, attempted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(d.endpoint_id)
        .bind(d.event_id)
        .bind(attempt as i32 + 1)
        .bind(d.ok)
        .bind(d.status_code)
        .bind(d.latency_ms)
        .bind(&d.response_body)
        .bind(&d.error)
        .bind(at)
        .fetch_one(&mut *conn)
        .await?;
        if d.ok {
            sqlx::query(
                "UPDATE webhook_endpoints SET failing_since = NULL, consecutive_failures = 0 WHERE id = $1",
            )
            .bind(d.endpoint_id)
            .execute(&mut *conn)
            .await?;
        } else {
            sqlx::query(
                "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $2), \
                 consecutive_failures = consecutive_failures + 1 WHERE id = $1",
            )
            .bind(d.endpoint_id)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
        id
    });
    delivery(tx, id).await
}

const DELIVERY_SELECT: &str = "SELECT d.id, d.endpoint_id, d.event_id, e.webhook_id, e.type AS event_type, \
     d.attempt, d.ok, d.status_code, d.latency_ms, d.response_body, d.error, d.attempted_at \
     FROM webhook_deliveries d JOIN events e ON e.id = d.event_id ";

async fn delivery(tx: &mut Tx, id: i64) -> Result<DeliveryRow> {
    let sql = format!("{DELIVERY_SELECT} WHERE d.id = $1");
    let row = tx_run!(tx, |conn| {
        sqlx::query_as::<_, DeliveryRow>(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(id)
            .fetch_one(&mut *conn)
            .await?
    });
    Ok(row)
}

/// An endpoint's delivery log, newest first, before id `before`.
pub async fn deliveries(
    db: &Db,
    endpoint_id: i64,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<DeliveryRow>> {
    let sql = format!(
        "{DELIVERY_SELECT} WHERE d.endpoint_id = $1 AND ($2 IS NULL OR d.id < $2) ORDER BY d.id DESC LIMIT $3"
    );
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, DeliveryRow>(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(endpoint_id)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await?
    });
    Ok(rows)
}

/// Turns an endpoint off for a reason, if it is on and has failed since
/// before `failing_before` at least `min_failures` times in a row.
/// Returns whether this call turned it off.
pub async fn disable_if_failing(
    tx: &mut Tx,
    id: i64,
    failing_before: DateTime<Utc>,
    min_failures: i32,
    reason: &str,
) -> Result<bool> {
    let n = tx_run!(tx, |conn| {
        sqlx::query(
            "UPDATE webhook_endpoints SET enabled = $5, disabled_reason = $4, updated_at = $6 \
             WHERE id = $1 AND enabled = $7 AND failing_since IS NOT NULL AND failing_since <= $2 \
             AND consecutive_failures >= $3",
        )
        .bind(id)
        .bind(failing_before)
        .bind(min_failures)
        .bind(reason)
        .bind(false)
        .bind(now())
        .bind(true)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    Ok(n > 0)
}

/// Records that the monthly goal `goal_minor` was reached, once per amount
/// and currency. Returns whether this call recorded it.
pub async fn record_milestone(tx: &mut Tx, goal_minor: i64, currency: &str) -> Result<bool> {
    let n = tx_run!(tx, |conn| {
        sqlx::query(
            "INSERT INTO goal_milestones (goal_minor, currency, reached_at) VALUES ($1, $2, $3) \
             ON CONFLICT (goal_minor, currency) DO NOTHING",
        )
        .bind(goal_minor)
        .bind(currency)
        .bind(now())
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    Ok(n > 0)
}

pub async fn set_milestone_event(
    tx: &mut Tx,
    goal_minor: i64,
    currency: &str,
    event_id: i64,
) -> Result<()> {
    tx_run!(tx, |conn| {
        sqlx::query(
            "UPDATE goal_milestones SET event_id = $3 WHERE goal_minor = $1 AND currency = $2",
        )
        .bind(goal_minor)
        .bind(currency)
        .bind(event_id)
        .execute(&mut *conn)
        .await?;
    });
    Ok(())
}

/// What a pledge's events compare: its status and terms.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PledgeTerms {
    pub status: String,
    pub amount_minor: i64,
    pub tier_id: Option<i64>,
    pub interval: String,
    pub cancel_at_period_end: bool,
}

/// A Stripe pledge's status and terms, read in the caller's transaction.
pub async fn subscription_terms(tx: &mut Tx, subscription_id: &str) -> Result<Option<PledgeTerms>> {
    let row = tx_run!(tx, |conn| {
        sqlx::query_as::<_, PledgeTerms>(
            "SELECT status, amount_minor, tier_id, interval, cancel_at_period_end FROM pledges \
             WHERE source = 'stripe' AND external_ref = $1",
        )
        .bind(subscription_id)
        .fetch_optional(&mut *conn)
        .await?
    });
    Ok(row)
}

/// The events a pledge's change from `before` to `after` tells, in order:
/// none when nothing changed (a replayed or stale Stripe event).
pub fn pledge_events(before: Option<&PledgeTerms>, after: &PledgeTerms) -> Vec<EventType> {
    let Some(before) = before else {
        let mut out = vec![EventType::PledgeStarted];
        if after.status == "past_due" {
            out.push(EventType::PledgePastDue);
        }
        if after.status == "canceled" {
            out.push(EventType::PledgeCancelled);
        }
        return out;
    };
    let mut out = Vec::new();
    if before.status != after.status {
        match after.status.as_str() {
            "past_due" => out.push(EventType::PledgePastDue),
            "canceled" => out.push(EventType::PledgeCancelled),
            // Back to active after a missed payment.
            _ => out.push(EventType::PledgeChanged),
        }
    }
    let terms_changed = before.amount_minor != after.amount_minor
        || before.tier_id != after.tier_id
        || before.interval != after.interval
        || before.cancel_at_period_end != after.cancel_at_period_end;
    if terms_changed && after.status != "canceled" && !out.contains(&EventType::PledgeChanged) {
        out.push(EventType::PledgeChanged);
    }
    out
}

/// Serialises the transactions that change one subscription's pledge, so
/// each compares the state the previous one left and a change is told once.
/// PostgreSQL: a transaction-scoped advisory lock on the subscription id
/// (two first syncs would otherwise both see no pledge yet). SQLite has one
/// writer at a time already.
pub async fn lock_subscription(tx: &mut Tx, subscription_id: &str) -> Result<()> {
    if let TxConn::Postgres(t) = &mut tx.conn {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("pledge:{subscription_id}"))
            .execute(&mut **t)
            .await?;
    }
    Ok(())
}

/// Deletes delivery log rows older than `before`, then the events older
/// than it that no log row or milestone still points at. Returns how many
/// of each.
pub async fn prune(db: &Db, before: DateTime<Utc>) -> Result<(u64, u64)> {
    let counts = db_run!(db, |pool| {
        let deliveries = sqlx::query("DELETE FROM webhook_deliveries WHERE attempted_at < $1")
            .bind(before)
            .execute(pool)
            .await?
            .rows_affected();
        let events = sqlx::query(
            "DELETE FROM events WHERE occurred_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = events.id) \
             AND NOT EXISTS (SELECT 1 FROM goal_milestones m WHERE m.event_id = events.id)",
        )
        .bind(before)
        .execute(pool)
        .await?
        .rows_affected();
        (deliveries, events)
    });
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(status: &str, amount_minor: i64) -> PledgeTerms {
        PledgeTerms {
            status: status.into(),
            amount_minor,
            tier_id: Some(1),
            interval: "month".into(),
            cancel_at_period_end: false,
        }
    }

    #[test]
    fn a_pledge_tells_each_real_change_once() {
        use EventType::*;
        let active = terms("active", 500);
        assert_eq!(pledge_events(None, &active), [PledgeStarted]);
        assert!(
            pledge_events(Some(&active), &active).is_empty(),
            "a replayed event changes nothing"
        );
        let late = terms("past_due", 500);
        assert_eq!(pledge_events(Some(&active), &late), [PledgePastDue]);
        assert_eq!(pledge_events(Some(&late), &active), [PledgeChanged]);
        assert_eq!(
            pledge_events(Some(&active), &terms("active", 900)),
            [PledgeChanged]
        );
        let ending = PledgeTerms {
            cancel_at_period_end: true,
            ..active.clone()
        };
        assert_eq!(pledge_events(Some(&active), &ending), [PledgeChanged]);
        assert_eq!(
            pledge_events(Some(&ending), &terms("canceled", 500)),
            [PledgeCancelled]
        );
    }
}
