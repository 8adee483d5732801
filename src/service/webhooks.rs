//! Outbound webhooks: owners' endpoints (create, change, rotate the
//! secret, remove, ping), redelivery, and the delivery itself, which the
//! `DeliverWebhook` task runs. Events are written by the changes that cause
//! them (`Tx::emit`); see README, "Outbound webhooks".

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::{
    config::WebhooksSettings,
    context::{Context, Effects},
    domain::webhooks::{self as rules, EventType},
    error::{Error, Result},
    queue::DeliverWebhook,
    store::{
        self, Tx,
        audit::Actor,
        outbox::AdminAudience,
        webhooks::{DeliveryRow, EndpointFields, EndpointRow, NewDelivery, OutboundEvent, Subject},
    },
};

/// What an owner asks for an endpoint.
#[derive(Debug, Clone)]
pub struct EndpointInput {
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub trusted: bool,
}

/// Checks an owner's input: the URL's scheme, and (unless private
/// addresses are allowed) every address its host resolves to now.
async fn fields(settings: &WebhooksSettings, input: &EndpointInput) -> Result<EndpointFields> {
    let url = rules::parse_url(&input.url, settings.allow_http)?;
    let types = rules::parse_event_types(&input.event_types)?;
    let description = crate::domain::text("description", &input.description, 0, 200, false)
        .map_err(|e| Error::Validation(vec![e]))?;
    if !settings.allow_private {
        resolve(&url, false)
            .await
            .map_err(|m| Error::field("url", m))?;
    }
    Ok(EndpointFields {
        url: url.to_string(),
        description,
        event_types: rules::join_event_types(&types),
        enabled: input.enabled,
        trusted: input.trusted,
    })
}

/// Adds an endpoint with a new secret; returns it and the secret, which is
/// shown this once.
pub async fn create(
    ctx: &Context,
    actor: &Actor,
    input: &EndpointInput,
) -> Result<(EndpointRow, String)> {
    let f = fields(&ctx.settings.webhooks, input).await?;
    let secret = rules::new_secret();
    let mut tx = ctx.db.begin_write().await?;
    let id = store::webhooks::insert_endpoint(&mut tx, &f, &secret).await?;
    tx.audit(
        actor,
        "webhook.create",
        "webhook_endpoint",
        id,
        json!({"url": f.url, "event_types": f.event_types, "enabled": f.enabled, "trusted": f.trusted}),
    )
    .await?;
    tx.commit().await?;
    Ok((store::webhooks::endpoint(&ctx.db, id).await?, secret))
}

/// Changes an endpoint. Turning it on again clears its failure streak.
pub async fn update(
    ctx: &Context,
    actor: &Actor,
    id: i64,
    input: &EndpointInput,
) -> Result<EndpointRow> {
    store::webhooks::endpoint(&ctx.db, id).await?;
    let f = fields(&ctx.settings.webhooks, input).await?;
    let mut tx = ctx.db.begin_write().await?;
    store::webhooks::update_endpoint(&mut tx, id, &f).await?;
    tx.audit(
        actor,
        "webhook.update",
        "webhook_endpoint",
        id,
        json!({"url": f.url, "event_types": f.event_types, "enabled": f.enabled, "trusted": f.trusted}),
    )
    .await?;
    tx.commit().await?;
    store::webhooks::endpoint(&ctx.db, id).await
}

pub async fn delete(ctx: &Context, actor: &Actor, id: i64) -> Result<()> {
    let mut tx = ctx.db.begin_write().await?;
    store::webhooks::delete_endpoint(&mut tx, id).await?;
    tx.audit(actor, "webhook.delete", "webhook_endpoint", id, json!({}))
        .await?;
    tx.commit().await
}

/// A new secret; the previous one keeps signing beside it for
/// `webhooks.previous_secret_hours`. Returns the new secret (shown once).
pub async fn rotate_secret(ctx: &Context, actor: &Actor, id: i64) -> Result<(EndpointRow, String)> {
    let secret = rules::new_secret();
    let until = ctx.now() + chrono::Duration::hours(ctx.settings.webhooks.previous_secret_hours);
    let mut tx = ctx.db.begin_write().await?;
    store::webhooks::rotate_secret(&mut tx, id, &secret, until).await?;
    tx.audit(
        actor,
        "webhook.rotate_secret",
        "webhook_endpoint",
        id,
        json!({"previous_secret_until": until}),
    )
    .await?;
    tx.commit().await?;
    Ok((store::webhooks::endpoint(&ctx.db, id).await?, secret))
}

/// Sends a `webhook.ping` event to one endpoint now, whether it is on or
/// not, and returns how it went (also in its delivery log).
pub async fn ping(ctx: &Context, actor: &Actor, id: i64) -> Result<DeliveryRow> {
    let endpoint = store::webhooks::endpoint(&ctx.db, id).await?;
    let mut tx = ctx.db.begin_write().await?;
    let (event_id, _) = store::webhooks::insert_event(
        &mut tx,
        EventType::Ping,
        &json!({"message": "A test ping from patronage.", "endpoint_id": id}),
    )
    .await?;
    tx.audit(actor, "webhook.ping", "webhook_endpoint", id, json!({}))
        .await?;
    tx.commit().await?;
    let event = store::webhooks::event(&ctx.db, event_id)
        .await?
        .ok_or(Error::NotFound("event"))?;
    let (row, _) = attempt(ctx, &endpoint, &event).await?;
    Ok(row)
}

/// Queues one event again for an endpoint, with the same `webhook-id`.
/// Returns how many deliveries were queued (1).
pub async fn redeliver_event(
    ctx: &Context,
    actor: &Actor,
    endpoint_id: i64,
    event_id: i64,
) -> Result<usize> {
    store::webhooks::endpoint(&ctx.db, endpoint_id).await?;
    store::webhooks::event(&ctx.db, event_id)
        .await?
        .ok_or(Error::NotFound("event"))?;
    let mut tx = ctx.db.begin_write().await?;
    tx.enqueue(&DeliverWebhook {
        endpoint_id,
        event_id,
    })
    .await?;
    tx.audit(
        actor,
        "webhook.redeliver",
        "webhook_endpoint",
        endpoint_id,
        json!({"event_id": event_id}),
    )
    .await?;
    tx.commit().await?;
    ctx.after_commit(Effects::TASKS);
    Ok(1)
}

/// Queues again every event since `since` that the endpoint subscribes
/// to, each with its own `webhook-id`, so receivers drop what they had.
pub async fn redeliver_since(
    ctx: &Context,
    actor: &Actor,
    endpoint_id: i64,
    since: DateTime<Utc>,
) -> Result<usize> {
    let endpoint = store::webhooks::endpoint(&ctx.db, endpoint_id).await?;
    let mut tx = ctx.db.begin_write().await?;
    let mut queued = 0;
    for (event_id, kind) in store::webhooks::events_since(&mut tx, since).await? {
        if rules::subscribed(&endpoint.event_types, &kind) {
            tx.enqueue(&DeliverWebhook {
                endpoint_id,
                event_id,
            })
            .await?;
            queued += 1;
        }
    }
    tx.audit(
        actor,
        "webhook.redeliver",
        "webhook_endpoint",
        endpoint_id,
        json!({"since": since, "queued": queued}),
    )
    .await?;
    tx.commit().await?;
    ctx.after_commit(Effects::TASKS);
    Ok(queued)
}

/// The `DeliverWebhook` task: one try of one event to one endpoint. A
/// removed or turned-off endpoint gets nothing (redeliver once it is on).
/// A failure is an error, so the queue retries on the delivery schedule;
/// an endpoint that has failed long enough is turned off here and its
/// owners emailed.
pub async fn deliver(ctx: &Context, endpoint_id: i64, event_id: i64) -> Result<Effects> {
    let endpoint = match store::webhooks::endpoint(&ctx.db, endpoint_id).await {
        Ok(e) if e.enabled => e,
        Ok(_) | Err(Error::NotFound(_)) => return Ok(Effects::NONE),
        Err(e) => return Err(e),
    };
    let Some(event) = store::webhooks::event(&ctx.db, event_id).await? else {
        return Ok(Effects::NONE);
    };
    let (row, disabled) = attempt(ctx, &endpoint, &event).await?;
    if row.ok {
        return Ok(Effects::NONE);
    }
    if disabled {
        // Turned off: nothing more is sent until an owner turns it on.
        return Ok(Effects::MAIL);
    }
    Err(Error::Unavailable(format!(
        "webhook endpoint {endpoint_id}: {}",
        row.error
            .clone()
            .or(row.status_code.map(|s| format!("answered {s}")))
            .unwrap_or_default()
    )))
}

/// Sends and records one try; returns the log row and whether the endpoint
/// was turned off for failing.
async fn attempt(
    ctx: &Context,
    endpoint: &EndpointRow,
    event: &store::webhooks::EventRow,
) -> Result<(DeliveryRow, bool)> {
    let data: serde_json::Value =
        serde_json::from_str(&event.payload).map_err(Error::internal_from)?;
    let body = rules::body(&event.kind, event.occurred_at, &data, endpoint.trusted);
    let now = ctx.now();
    let timestamp = now.timestamp();
    let signature = rules::signature_header(
        &endpoint.signing_secrets(now),
        &event.webhook_id,
        timestamp,
        &body,
    )?;
    let started = Instant::now();
    let sent = send(
        &ctx.settings.webhooks,
        &endpoint.url,
        &event.webhook_id,
        timestamp,
        &signature,
        body,
    )
    .await;
    let latency_ms = started.elapsed().as_millis() as i64;
    let delivery = match sent {
        Ok((status, text)) => NewDelivery {
            endpoint_id: endpoint.id,
            event_id: event.id,
            ok: (200..300).contains(&status),
            status_code: Some(i32::from(status)),
            latency_ms,
            response_body: Some(rules::truncate(&text, 1024)),
            error: None,
        },
        Err(e) => NewDelivery {
            endpoint_id: endpoint.id,
            event_id: event.id,
            ok: false,
            status_code: None,
            latency_ms,
            response_body: None,
            error: Some(e),
        },
    };
    let outcome = if delivery.ok { "ok" } else { "failed" };
    metrics::counter!("patronage_webhook_deliveries_total", "outcome" => outcome).increment(1);
    metrics::histogram!("patronage_webhook_delivery_seconds").record(latency_ms as f64 / 1000.0);
    let mut tx = ctx.db.begin_write().await?;
    let row = store::webhooks::record_delivery(&mut tx, &delivery).await?;
    let disabled = !delivery.ok && disable_if_failing(ctx, &mut tx, endpoint).await?;
    tx.commit().await?;
    if disabled {
        tracing::warn!(
            endpoint = endpoint.id,
            "webhook endpoint turned off after failing"
        );
        ctx.after_commit(Effects::MAIL);
    }
    Ok((row, disabled))
}

/// Turns the endpoint off once it has failed for `disable_after_hours`
/// and `disable_after_failures` times in a row, and emails the owners, in
/// the transaction that recorded the last failure.
async fn disable_if_failing(ctx: &Context, tx: &mut Tx, endpoint: &EndpointRow) -> Result<bool> {
    let s = &ctx.settings.webhooks;
    let since = ctx.now() - chrono::Duration::hours(s.disable_after_hours);
    let reason = format!(
        "every delivery failed for {} hours ({} or more times in a row)",
        s.disable_after_hours, s.disable_after_failures
    );
    let off = store::webhooks::disable_if_failing(
        tx,
        endpoint.id,
        since,
        s.disable_after_failures,
        &reason,
    )
    .await?;
    if off {
        tx.audit(
            &Actor::system(),
            "webhook.disable",
            "webhook_endpoint",
            endpoint.id,
            json!({"reason": reason}),
        )
        .await?;
        let cause = format!("webhook_disabled:{}:{}", endpoint.id, ctx.now().timestamp());
        tx.mail_admins(
            AdminAudience::Owners,
            &cause,
            "webhook_disabled",
            json!({
                "endpoint_url": endpoint.url,
                "reason": reason,
                "failures": endpoint.consecutive_failures + 1,
            }),
        )
        .await?;
    }
    Ok(off)
}

/// Every address `url`'s host resolves to, each checked against the SSRF
/// guard unless `allow_private`. The error says why, for the owner.
pub async fn resolve(
    url: &url::Url,
    allow_private: bool,
) -> std::result::Result<Vec<SocketAddr>, String> {
    let port = url
        .port_or_known_default()
        .ok_or_else(|| "has no port".to_owned())?;
    let addrs: Vec<SocketAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Some(url::Host::Domain(d)) => tokio::net::lookup_host((d, port))
            .await
            .map_err(|_| format!("the host {d} does not resolve"))?
            .collect(),
        None => return Err("must name a host".into()),
    };
    if addrs.is_empty() {
        return Err("the host resolves to no address".into());
    }
    if !allow_private {
        for a in &addrs {
            if let Some(kind) = rules::forbidden_address(a.ip()) {
                return Err(format!(
                    "refused: the host resolves to a {kind} address ({}); set webhooks.allow_private to allow it",
                    a.ip()
                ));
            }
        }
    }
    Ok(addrs)
}

/// A client per (host, checked address): it connects only to the address
/// that passed the guard, so a DNS answer that changes between the check
/// and the connection (rebinding) cannot redirect it. Never follows
/// redirects.
fn client_for(host: &str, addr: SocketAddr, timeout: Duration) -> Result<reqwest::Client> {
    /// (host, the checked address, the timeout in ms) → its client.
    type Clients = HashMap<(String, SocketAddr, u64), reqwest::Client>;
    static CLIENTS: OnceLock<Mutex<Clients>> = OnceLock::new();
    let key = (host.to_owned(), addr, timeout.as_millis() as u64);
    let mut clients = CLIENTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(c) = clients.get(&key) {
        return Ok(c.clone());
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would connect on its own, past the checked address.
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("patronage-webhooks/", env!("CARGO_PKG_VERSION")))
        .resolve(host, addr)
        .build()
        .map_err(Error::internal_from)?;
    if clients.len() > 1000 {
        clients.clear();
    }
    clients.insert(key, client.clone());
    Ok(client)
}

/// POSTs the signed body; returns the status and the start of the answer,
/// or why there was no answer.
async fn send(
    settings: &WebhooksSettings,
    raw_url: &str,
    webhook_id: &str,
    timestamp: i64,
    signature: &str,
    body: String,
) -> std::result::Result<(u16, String), String> {
    let url = url::Url::parse(raw_url).map_err(|_| "the URL is not valid".to_owned())?;
    let addrs = resolve(&url, settings.allow_private).await?;
    let host = url.host_str().unwrap_or_default().to_owned();
    let timeout = Duration::from_secs(settings.timeout_secs.max(1));
    let client = client_for(&host, addrs[0], timeout).map_err(|e| e.to_string())?;
    // An address literal has nothing to resolve: connect to it as checked.
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", webhook_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                "timed out".to_owned()
            } else if e.is_connect() {
                "could not connect".to_owned()
            } else {
                "the request failed".to_owned()
            }
        })?;
    let status = response.status().as_u16();
    let mut text = Vec::new();
    let mut response = response;
    while let Ok(Some(chunk)) = response.chunk().await {
        text.extend_from_slice(&chunk);
        if text.len() > 4096 {
            break;
        }
    }
    Ok((status, String::from_utf8_lossy(&text).into_owned()))
}

/// Emits `kind` about `subject` in the caller's transaction: a shorthand
/// for the sites that tell of a change.
pub async fn emit(tx: &mut Tx, kind: EventType, subject: Subject) -> Result<i64> {
    tx.emit(&OutboundEvent::new(kind, subject)).await
}
