//! Reconciliation with Stripe: apply the events we missed (a webhook lost,
//! an endpoint down for longer than Stripe retries), through the same
//! idempotent path as webhooks; then compare Stripe's subscriptions with
//! our pledges and record what still differs, for admins to look at.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::{
    context::Context,
    error::Result,
    payments::{envelope::Event, events},
    store::{self, reconciliation::Mismatch},
};

/// The created time of the newest event seen, as a Unix timestamp.
const CURSOR: &str = "reconcile.event_cursor";
/// A first run looks this far back.
const FIRST_LOOK_BACK: chrono::Duration = chrono::Duration::days(3);

pub async fn run(ctx: &Context, slot: DateTime<Utc>) -> Result<String> {
    let Some(gateway) = ctx.gateway.as_ref() else {
        return Ok("payments are not configured; nothing to reconcile".into());
    };
    // Events: newest first from Stripe, applied oldest first.
    let from = match store::jobs::state(&ctx.db, CURSOR).await? {
        Some(v) => v.parse::<i64>().unwrap_or(0),
        None => (store::now() - FIRST_LOOK_BACK).timestamp(),
    };
    let mut found = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let (page, more) = gateway.events_page(from, after.as_deref()).await?;
        after = page
            .last()
            .and_then(|e| e.get("id"))
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        found.extend(page);
        if !more || after.is_none() {
            break;
        }
    }
    found.sort_by_key(|e| e.get("created").and_then(|c| c.as_i64()).unwrap_or(0));
    let mut applied = 0;
    let mut newest = from;
    for raw in &found {
        newest = newest.max(raw.get("created").and_then(|c| c.as_i64()).unwrap_or(0));
        let type_ = raw.get("type").and_then(|t| t.as_str()).unwrap_or("");
        if !events::HANDLED.contains(&type_) {
            continue;
        }
        let payload = raw.to_string();
        let event: Event = match serde_json::from_str(&payload) {
            Ok(event) => event,
            // One event this version cannot read must not stop the others
            // or hold the cursor back: it is kept as failed for admins.
            Err(e) => {
                events::record_unreadable(ctx, raw, &format!("unreadable: {e}")).await?;
                continue;
            }
        };
        // Stored and applied like a webhook; one we had is a no-op.
        if events::receive(ctx, event, &payload).await? {
            applied += 1;
        }
    }
    if applied > 0 {
        ctx.public.mark_dirty();
    }
    store::jobs::set_state(&ctx.db, CURSOR, &newest.to_string()).await?;

    // Subscriptions against pledges.
    let pledges: HashMap<String, store::stripe::StripePledge> =
        store::stripe::stripe_pledges(&ctx.db)
            .await?
            .into_iter()
            .map(|p| (p.external_ref.clone(), p))
            .collect();
    let mut seen = std::collections::HashSet::new();
    let mut mismatches = Vec::new();
    let detected_at = store::now();
    let mismatch = |kind: &str,
                    sub: &str,
                    pledge: Option<i64>,
                    ours: Option<String>,
                    theirs: Option<String>| Mismatch {
        run_slot: slot,
        kind: kind.to_owned(),
        subscription_id: sub.to_owned(),
        pledge_id: pledge,
        ours,
        theirs,
        detected_at,
    };
    let mut after: Option<String> = None;
    loop {
        let (page, more) = gateway.subscriptions_page(after.as_deref()).await?;
        after = page.last().map(|s| s.id.to_string());
        for sub in &page {
            let id = sub.id.to_string();
            let ours = pledges.get(&id);
            // Stripe accounts may sell other things: only ours count.
            if ours.is_none() && !sub.metadata.contains_key("patronage_supporter_id") {
                continue;
            }
            seen.insert(id.clone());
            let theirs = events::pledge_status(&sub.status).map(|s| s.as_str().to_owned());
            let amount: i64 = sub
                .items
                .data
                .iter()
                .map(|i| i.price.unit_amount.unwrap_or(0) * i.quantity.unwrap_or(1) as i64)
                .sum();
            match (ours, theirs) {
                (None, Some(theirs)) if theirs != "canceled" => {
                    mismatches.push(mismatch("missing", &id, None, None, Some(theirs)));
                }
                (Some(p), theirs) => {
                    if theirs.as_deref().is_some_and(|t| t != p.status) {
                        mismatches.push(mismatch(
                            "status",
                            &id,
                            Some(p.id),
                            Some(p.status.clone()),
                            theirs,
                        ));
                    }
                    if p.status != "canceled" && amount != p.amount_minor {
                        mismatches.push(mismatch(
                            "amount",
                            &id,
                            Some(p.id),
                            Some(p.amount_minor.to_string()),
                            Some(amount.to_string()),
                        ));
                    }
                }
                _ => {}
            }
        }
        if !more || after.is_none() {
            break;
        }
    }
    for (id, p) in &pledges {
        if !seen.contains(id) && p.status != "canceled" {
            mismatches.push(mismatch(
                "extra",
                id,
                Some(p.id),
                Some(p.status.clone()),
                None,
            ));
        }
    }
    store::reconciliation::record_mismatches(&ctx.db, &mismatches).await?;
    Ok(format!(
        "{} events read, {applied} applied that we had missed; {} subscriptions compared, {} mismatches",
        found.len(),
        seen.len(),
        mismatches.len()
    ))
}
