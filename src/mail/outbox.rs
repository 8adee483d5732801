//! The outbox worker, one per replica: claims due messages, renders them
//! with what is true at sending time (names, fresh management links), and
//! sends them. A temporary failure (the SMTP server is down) keeps the
//! message and tries again with doubling delays; nothing is dropped. A
//! permanent one (an address the server refuses) marks it failed, for an
//! admin to see and retry.
//!
//! Delivery is once per (cause, recipient): the row is unique, and only the
//! lease holder sends it. The one gap SMTP leaves is a replica dying after
//! the server accepted a message but before it was marked sent (a batch of
//! up to 20 is marked at once, after it is sent); then its lease lapses and
//! it is sent again, with the same Message-ID.

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

/// Sends one batch of due messages; returns how many were claimed. The
/// batch's recipients are read, and its management links stored, in one
/// statement each, and the messages sent are marked in one.
pub async fn deliver_due(ctx: &Context) -> Result<usize> {
    let lease = chrono::Duration::seconds(ctx.settings.mail.outbox_lease_secs as i64);
    let claimed = store::outbox::claim(&ctx.db, &ctx.instance_id, lease, BATCH).await?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let campaign = store::campaign::get(&ctx.db).await?;
    let base = crate::render::site_url(&ctx.settings, campaign.public_base_url.as_deref());
    let supporters: Vec<i64> = claimed.iter().filter_map(|m| m.supporter_id).collect();
    let recipients = store::outbox::recipients(&ctx.db, &supporters).await?;
    let mut links = manage_links(ctx, &base, &claimed).await?.into_iter();
    let mut sent = Vec::with_capacity(claimed.len());
    let mut trouble = Ok(());
    for mail in &claimed {
        let recipient = mail.supporter_id.and_then(|s| recipients.get(&s));
        let link = match manage_link_ttl(ctx, mail) {
            Some(_) => links.next(),
            None => None,
        };
        let outcome = match render(ctx, &base, &campaign.name, mail, recipient, link).await {
            Ok(email) => ctx.mailer.send(&email).await,
            Err(e) => Err(SendError::Temporary(e.to_string())),
        };
        let failed = match outcome {
            Ok(()) => {
                metrics::counter!("patronage_emails_sent_total", "template" => mail.template.clone())
                    .increment(1);
                sent.push(mail.id);
                continue;
            }
            Err(SendError::Temporary(e)) => {
                let retry_at = store::now() + retry_delay(ctx, mail.attempts);
                tracing::warn!(outbox = mail.id, attempts = mail.attempts, error = %e, "email not sent; will retry");
                metrics::counter!("patronage_emails_failed_total", "kind" => "temporary")
                    .increment(1);
                store::outbox::not_sent(&ctx.db, mail.id, &ctx.instance_id, &e, Some(retry_at))
                    .await
            }
            Err(SendError::Permanent(e)) => {
                tracing::error!(outbox = mail.id, error = %e, "email refused for good");
                metrics::counter!("patronage_emails_failed_total", "kind" => "permanent")
                    .increment(1);
                store::outbox::not_sent(&ctx.db, mail.id, &ctx.instance_id, &e, None).await
            }
        };
        // The rest of the batch is still sent and marked.
        if let Err(e) = failed {
            trouble = Err(e);
        }
    }
    store::outbox::sent(&ctx.db, &sent, &ctx.instance_id).await?;
    trouble.map(|()| claimed.len())
}

/// How long a message's management link works, if it carries one.
fn manage_link_ttl(ctx: &Context, mail: &store::outbox::ClaimedMail) -> Option<chrono::Duration> {
    mail.supporter_id?;
    if !WITH_MANAGE_LINK.contains(&mail.template.as_str()) {
        return None;
    }
    Some(if mail.template == "manage_link" {
        chrono::Duration::minutes(ctx.settings.mail.magic_link_ttl_minutes)
    } else {
        chrono::Duration::hours(ctx.settings.mail.email_link_ttl_hours)
    })
}

/// Fresh management links for the messages that carry one, in their
/// order, made now (a link is single-use) and stored in one commit.
async fn manage_links(
    ctx: &Context,
    base: &str,
    claimed: &[store::outbox::ClaimedMail],
) -> Result<Vec<(String, chrono::Duration)>> {
    let wanted: Vec<(i64, chrono::Duration)> = claimed
        .iter()
        .filter_map(|mail| Some((mail.supporter_id?, manage_link_ttl(ctx, mail)?)))
        .collect();
    let urls = links::mint_manage_links(&ctx.db, base, &wanted).await?;
    Ok(urls
        .into_iter()
        .zip(wanted)
        .map(|(url, (_, ttl))| (url, ttl))
        .collect())
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
    recipient: Option<&store::outbox::Recipient>,
    manage_link: Option<(String, chrono::Duration)>,
) -> Result<Email> {
    let mut context: Map<String, Value> = match serde_json::from_str(&mail.context) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    // The language recorded when the message was queued, else the
    // supporter's now (set just after some messages are queued), else ours.
    let locale = match (mail.locale.as_str(), recipient) {
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
    if let Some(r) = recipient {
        common["recipient_name"] = json!(r.display_name);
    }
    if let Some((url, ttl)) = manage_link {
        common["fix_url"] = json!(url);
        common["manage_url"] = json!(url);
        common["link_ttl_minutes"] = json!(ttl.num_minutes());
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
