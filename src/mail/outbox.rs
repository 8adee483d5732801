//! The outbox worker, one per replica: claims due messages, renders them
//! with what is true at sending time (names, fresh management links), and
//! sends them. A temporary failure (the SMTP server is down) keeps the
//! message and tries again with doubling delays; nothing is dropped. A
//! permanent one (an address the server refuses) marks it failed, for an
//! admin to see and retry.
//!
//! Delivery is once per (cause, recipient): the row is unique, and only the
//! lease holder sends it. The one gap SMTP leaves is a replica dying after
//! the server accepted a message but before it was marked sent; then its
//! lease lapses and it is sent again, with the same Message-ID.

use std::{sync::Arc, time::Duration};

use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::{Email, SendError};
use crate::{
    context::Context,
    error::{Error, Result},
    links, store,
};

/// Messages whose context gets a fresh management link when sent.
const WITH_MANAGE_LINK: &[&str] = &["welcome", "receipt", "payment_failed", "manage_link"];

const BATCH: i64 = 20;

pub fn spawn_worker(ctx: Arc<Context>, shutdown: CancellationToken) {
    let wake = ctx.mailer.woken();
    let poll = Duration::from_secs(ctx.settings.mail.outbox_poll_secs);
    crate::background::drain_on_wake("outbox", poll, wake, BATCH as usize, shutdown, move || {
        let ctx = ctx.clone();
        async move { deliver_due(&ctx).await }
    });
}

/// Sends one batch of due messages; returns how many were claimed.
pub async fn deliver_due(ctx: &Context) -> Result<usize> {
    let lease = chrono::Duration::seconds(ctx.settings.mail.outbox_lease_secs as i64);
    let claimed = store::outbox::claim(&ctx.db, &ctx.instance_id, lease, BATCH).await?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let campaign = store::campaign::get(&ctx.db).await?;
    let base = crate::render::site_url(&ctx.settings, campaign.public_base_url.as_deref());
    for mail in &claimed {
        let outcome = match render(ctx, &base, &campaign.name, mail).await {
            Ok(email) => ctx.mailer.send(&email).await,
            Err(e) => Err(SendError::Temporary(e.to_string())),
        };
        match outcome {
            Ok(()) => {
                metrics::counter!("patronage_emails_sent_total", "template" => mail.template.clone())
                    .increment(1);
                store::outbox::sent(&ctx.db, mail.id, &ctx.instance_id).await?;
            }
            Err(SendError::Temporary(e)) => {
                let retry_at = store::now() + retry_delay(ctx, mail.attempts);
                tracing::warn!(outbox = mail.id, attempts = mail.attempts, error = %e, "email not sent; will retry");
                metrics::counter!("patronage_emails_failed_total", "kind" => "temporary")
                    .increment(1);
                store::outbox::not_sent(&ctx.db, mail.id, &ctx.instance_id, &e, Some(retry_at))
                    .await?;
            }
            Err(SendError::Permanent(e)) => {
                tracing::error!(outbox = mail.id, error = %e, "email refused for good");
                metrics::counter!("patronage_emails_failed_total", "kind" => "permanent")
                    .increment(1);
                store::outbox::not_sent(&ctx.db, mail.id, &ctx.instance_id, &e, None).await?;
            }
        }
    }
    Ok(claimed.len())
}

/// The queue's backoff, from the poll interval up to the outbox's cap.
fn retry_delay(ctx: &Context, attempts: i32) -> chrono::Duration {
    let mail = &ctx.settings.mail;
    crate::queue::backoff(
        mail.outbox_poll_secs,
        mail.outbox_max_retry_delay_secs,
        attempts,
    )
}

async fn render(
    ctx: &Context,
    base: &str,
    site_name: &str,
    mail: &store::outbox::ClaimedMail,
) -> Result<Email> {
    let mut context: Map<String, Value> = match serde_json::from_str(&mail.context) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let recipient = match mail.supporter_id {
        Some(supporter) => store::outbox::recipient(&ctx.db, supporter).await?,
        None => None,
    };
    // The language recorded when the message was queued, else the
    // supporter's now (set just after some messages are queued), else ours.
    let locale = match (mail.locale.as_str(), &recipient) {
        ("", Some(r)) => r.locale.clone(),
        ("", None) => None,
        (queued, _) => Some(queued.to_owned()),
    }
    .unwrap_or_else(|| ctx.settings.mail.default_locale.clone());
    // What every template may use; the message's own context wins.
    let support_url = format!("{base}/support");
    let mut common = json!({
        "site_name": site_name,
        "base_url": base,
        "support_url": support_url,
        "manage_request_url": support_url,
        "renew_url": support_url,
        "come_back_url": support_url,
        "locale": locale,
        "recipient_name": "",
    });
    if let Some(supporter) = mail.supporter_id {
        if let Some(r) = &recipient {
            common["recipient_name"] = json!(r.display_name);
        }
        if WITH_MANAGE_LINK.contains(&mail.template.as_str()) {
            let ttl = if mail.template == "manage_link" {
                chrono::Duration::minutes(ctx.settings.mail.magic_link_ttl_minutes)
            } else {
                chrono::Duration::hours(ctx.settings.mail.email_link_ttl_hours)
            };
            let url = links::mint_manage_link(&ctx.db, base, supporter, ttl).await?;
            common["fix_url"] = json!(url);
            common["manage_url"] = json!(url);
            common["link_ttl_minutes"] = json!(ttl.num_minutes());
        }
    }
    // A sponsor's confirmation (sent once it paid) and its approval each
    // carry a fresh signed link to send their logo, made now, so a link
    // spent by an upload is followed by a new one. A rejected sponsor's
    // message carries none.
    if let (Some(sponsor), "sponsor_applied" | "sponsor_approved") =
        (mail.supporter_id, mail.template.as_str())
    {
        match links::logo_upload_url(ctx, sponsor).await {
            Ok((url, _expires)) => common["logo_upload_url"] = json!(url),
            Err(Error::Conflict { .. } | Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    if let Value::Object(common) = common {
        for (k, v) in common {
            context.entry(k).or_insert(v);
        }
    }
    if let Some(Value::String(path)) = context.get("review_url")
        && path.starts_with('/')
    {
        let absolute = format!("{base}{path}");
        context.insert("review_url".into(), json!(absolute));
    }
    let rendered = ctx.templates.render(&mail.template, &locale, &context)?;
    Ok(Email {
        to: mail.recipient.clone(),
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
        outbox_id: mail.id,
    })
}
