//! Sponsorships: applications, decisions, logos, and publication as terms
//! begin and end.

use axum::body::Bytes;
use chrono::NaiveDate;
use serde_json::json;

use crate::{
    context::{Context, Effects},
    domain::{
        logo::{Logo, LogoRules, LogoVariant},
        supporter::{SponsorDraft, SponsorStatus, SupporterKind, WebsiteUrl, blocked_domain},
        text,
        tier::TierKind,
    },
    error::{Error, Result},
    store::{
        self,
        audit::Actor,
        outbox::AdminAudience,
        supporters::{SponsorTerm, SupporterRow},
    },
};

/// An owner's review of a sponsor: approve (it shows publicly while paid),
/// reject (with a reason; its upload links stop working), or reopen. The
/// sponsor hears of it; an approved invoice application gets its invoice.
pub async fn decide(
    ctx: &Context,
    actor: &Actor,
    id: i64,
    decision: SponsorStatus,
    reason: &str,
) -> Result<SupporterRow> {
    let min = usize::from(decision == SponsorStatus::Rejected);
    let reason = text("reason", reason, min, 1000, true).map_err(|e| Error::Validation(vec![e]))?;
    let today = ctx.now().date_naive();
    if decision == SponsorStatus::Approved {
        // Checked again at approval: the blocklist may have grown since.
        let sponsor = store::supporters::get(&ctx.db, id).await?;
        if let Some(url) = sponsor.website_url.as_deref()
            && let Some(domain) = blocked_domain(
                &WebsiteUrl(url.to_owned()).host(),
                &ctx.settings.sponsors.domain_blocklist,
            )
        {
            return Err(Error::conflict(
                "website_url",
                format!("links to {domain} are on the domain blocklist"),
            ));
        }
    }
    match record_decision(ctx, actor, id, decision, &reason, today).await {
        Ok(()) => {}
        // Approved before, but its invoice could not be made then (Stripe
        // was down): approving again makes it.
        Err(Error::Conflict { .. })
            if decision == SponsorStatus::Approved
                && store::stripe::invoice_application(&ctx.db, id)
                    .await?
                    .is_some() => {}
        Err(e) => return Err(e),
    }
    // Announced before the invoice step, which may fail with Stripe down.
    ctx.after_commit(Effects::PUBLIC | Effects::MAIL);
    if decision == SponsorStatus::Approved
        && let Some(gateway) = &ctx.gateway
    {
        // Invoice terms: the approval is what lets the invoice go out.
        crate::payments::invoicing::invoice_approved(&ctx.db, gateway, &ctx.settings.stripe, id)
            .await?;
    }
    // Its audit entry for appearing or not is immediate.
    sweep_publication(ctx).await;
    ctx.after_commit_now(Effects::PUBLIC | Effects::MAIL).await;
    store::supporters::get(&ctx.db, id).await
}

/// The decision's one transaction: the rules, the status, the audit entry
/// and the sponsor's email.
async fn record_decision(
    ctx: &Context,
    actor: &Actor,
    id: i64,
    decision: SponsorStatus,
    reason: &str,
    today: NaiveDate,
) -> Result<()> {
    let mut tx = ctx.db.begin_write().await?;
    let (status, tier_id) = store::supporters::sponsor_status(&mut tx, id).await?;
    if status == decision {
        return Err(Error::conflict(
            "status",
            format!("the sponsor is already {decision}"),
        ));
    }
    if decision == SponsorStatus::Approved
        && let Some(tier_id) = tier_id
        && let Some(slots) = store::supporters::lock_tier_slots(&mut tx, tier_id).await?
        && store::supporters::approved_sponsors_on(&mut tx, tier_id, id, today).await? >= slots
    {
        return Err(Error::conflict(
            "tier_id",
            "every slot of this tier is taken",
        ));
    }
    // A rejection revokes every logo-upload link given out so far, for
    // good: links issued after a reopen carry the new version.
    let rejected = decision == SponsorStatus::Rejected;
    store::supporters::set_sponsor_status(&mut tx, id, decision, reason, rejected).await?;
    let action = match decision {
        SponsorStatus::Approved => "sponsor.approve",
        SponsorStatus::Rejected => "sponsor.reject",
        SponsorStatus::Pending => "sponsor.reopen",
    };
    tx.audit(
        actor,
        action,
        "supporter",
        id,
        json!({"from": status, "to": decision, "reason": reason}),
    )
    .await?;
    let template = match decision {
        SponsorStatus::Approved => Some("sponsor_approved"),
        SponsorStatus::Rejected => Some("sponsor_rejected"),
        SponsorStatus::Pending => None,
    };
    if let Some(template) = template {
        let brief = store::supporters::sponsor_brief(&mut tx, id).await?;
        let context = json!({
            "sponsor_name": brief.name, "tier_name": brief.tier_name, "reason": reason,
            "paid_through": brief.paid_through.map(|d| d.to_string()),
        });
        // Each decision is its own cause: a sponsor approved again after a
        // reopen hears about it again.
        let cause = format!("{template}:{id}:{}", ctx.now().timestamp_micros());
        tx.mail_supporter(id, &cause, template, context).await?;
    }
    tx.bump_version();
    tx.commit().await
}

/// The limits an uploaded logo must meet, from the settings.
fn logo_rules(ctx: &Context) -> LogoRules {
    let s = &ctx.settings.sponsors;
    LogoRules {
        max_bytes: s.logo_max_bytes,
        max_width: s.logo_max_width,
        max_height: s.logo_max_height,
        min_side: s.logo_min_side,
    }
}

/// Checks and re-encodes an uploaded logo on the blocking pool, a few at a
/// time: decoding costs up to 16 MiB and tens of milliseconds.
async fn parse_logo(ctx: &Context, bytes: Bytes, alt_text: String) -> Result<Logo> {
    let rules = logo_rules(ctx);
    ctx.heavy
        .logos
        .run(move || Logo::parse(&bytes, &alt_text, &rules))
        .await?
        .map_err(Error::Validation)
}

/// An owner's upload of a sponsor's logo: approved as it is stored.
pub async fn upload_logo(
    ctx: &Context,
    actor: &Actor,
    sponsor_id: i64,
    variant: LogoVariant,
    bytes: Bytes,
    alt_text: String,
) -> Result<Logo> {
    let logo = parse_logo(ctx, bytes, alt_text).await?;
    // An admin's upload is approved at once.
    let mut tx = ctx.db.begin_write().await?;
    if store::supporters::kind(&mut tx, sponsor_id).await? != Some(SupporterKind::Sponsor) {
        return Err(Error::NotFound("sponsor"));
    }
    store::logos::put(&mut tx, actor, sponsor_id, variant, &logo, true).await?;
    tx.commit().await?;
    ctx.after_commit_now(Effects::PUBLIC).await;
    Ok(logo)
}

/// A sponsor's own upload through its signed link (`version`): shown once
/// an owner approves it. The upload spends the link.
pub async fn upload_logo_through_link(
    ctx: &Context,
    sponsor_id: i64,
    version: i64,
    variant: LogoVariant,
    bytes: Bytes,
    alt_text: String,
) -> Result<()> {
    // Refuse a spent or revoked link before the work of decoding; storing
    // the logo spends it, atomically.
    store::logos::link_is_live(&ctx.db, sponsor_id, version).await?;
    let logo = parse_logo(ctx, bytes, alt_text).await?;
    let actor = Actor {
        id: None,
        label: format!("sponsor {sponsor_id} (upload link)"),
    };
    // The sponsor's own waits for an admin, and spends the link.
    let mut tx = ctx.db.begin_write().await?;
    if !store::logos::spend_link(&mut tx, sponsor_id, version).await? {
        return Err(Error::Unauthorized);
    }
    store::logos::put(&mut tx, &actor, sponsor_id, variant, &logo, false).await?;
    tx.commit().await?;
    ctx.after_commit(Effects::PUBLIC);
    Ok(())
}

/// Approves the logos a sponsor uploaded through its link.
pub async fn approve_logo(ctx: &Context, actor: &Actor, sponsor_id: i64) -> Result<()> {
    let mut tx = ctx.db.begin_write().await?;
    store::logos::approve(&mut tx, actor, sponsor_id).await?;
    tx.commit().await?;
    ctx.after_commit_now(Effects::PUBLIC).await;
    Ok(())
}

/// Adds a sponsor by hand; it starts `pending`. Nobody is emailed: an
/// admin entered it.
pub async fn create(ctx: &Context, actor: &Actor, draft: &SponsorDraft) -> Result<SupporterRow> {
    draft.check_blocklist(&ctx.settings.sponsors.domain_blocklist)?;
    let row = record(&ctx.db, actor, draft, None, false).await?;
    ctx.after_commit_now(Effects::PUBLIC).await;
    Ok(row)
}

/// Records a sponsor, `pending`, on a sponsor tier that is not archived,
/// in a commit of its own. A sponsor's own application (from checkout)
/// emails the applicant nothing here: anyone can type any address into the
/// form, so the applicant hears from us only once it is paid (the
/// payment's booking queues it) or approved (invoice terms). The owners
/// are told now only with `notify_owners`, for invoice applications, which
/// wait for their approval; a card application reaches them when it is
/// paid. `locale` is the language of the sponsor's emails. The caller
/// announces the commit (`Effects::PUBLIC`, and `MAIL` with
/// `notify_owners`).
pub async fn record(
    db: &store::Db,
    actor: &Actor,
    draft: &SponsorDraft,
    locale: Option<&str>,
    notify_owners: bool,
) -> Result<SupporterRow> {
    let mut tx = db.begin_write().await?;
    match store::tiers::kind_and_archived(&mut tx, draft.tier_id).await? {
        Some((TierKind::Sponsor, false)) => {}
        Some((_, false)) => return Err(Error::field("tier_id", "must be a sponsor tier")),
        Some((_, true)) => return Err(Error::field("tier_id", "this tier is archived")),
        None => return Err(Error::field("tier_id", "no such tier")),
    }
    let id = store::supporters::insert_sponsor(&mut tx, actor, draft, locale).await?;
    if notify_owners {
        queue_application_mails(&mut tx, id, false).await?;
    }
    tx.commit().await?;
    store::supporters::get(db, id).await
}

/// Queues, in the caller's transaction, the news that a sponsor's
/// application is real: the owners learn there is one to review, and with
/// `applicant` the applicant hears back (the message gets its logo-upload
/// link when it is sent). The cause is the sponsor's, so each goes out
/// once.
pub async fn queue_application_mails(tx: &mut store::Tx, id: i64, applicant: bool) -> Result<()> {
    let brief = store::supporters::sponsor_brief(tx, id).await?;
    let context = json!({
        "sponsor_name": brief.name, "tier_name": brief.tier_name, "website_url": brief.website_url,
        "review_url": format!("/api/v1/admin/sponsors/{id}"),
    });
    let cause = format!("sponsor_applied:{id}");
    if applicant {
        tx.mail_supporter(id, &cause, "sponsor_applied", context.clone())
            .await?;
    }
    tx.mail_admins(
        AdminAudience::Owners,
        &cause,
        "sponsor_applied_admin",
        context,
    )
    .await
}

/// Records until when a sponsor has paid (an invoice settled outside
/// Stripe); its publication follows at once.
pub async fn set_paid_through(
    ctx: &Context,
    actor: &Actor,
    id: i64,
    paid_through: Option<NaiveDate>,
) -> Result<SupporterRow> {
    let mut tx = ctx.db.begin_write().await?;
    store::supporters::set_paid_through(&mut tx, actor, id, paid_through).await?;
    tx.commit().await?;
    let row = store::supporters::get(&ctx.db, id).await?;
    sweep_publication(ctx).await;
    ctx.after_commit_now(Effects::PUBLIC).await;
    Ok(row)
}

/// Reminds each sponsor whose term ends soon, once per sponsor and term.
pub async fn remind_renewals(ctx: &Context, today: NaiveDate, terms: &[SponsorTerm]) -> Result<()> {
    let mut tx = ctx.db.begin_write().await?;
    for term in terms {
        let context = json!({
            "sponsor_name": term.name,
            "tier_name": term.tier_name,
            "paid_through": term.paid_through.to_string(),
            "days_left": (term.paid_through - today).num_days(),
        });
        let cause = format!("sponsor_expiring:{}:{}", term.id, term.paid_through);
        tx.mail_supporter(term.id, &cause, "sponsor_expiring", context)
            .await?;
    }
    tx.commit().await?;
    ctx.after_commit(Effects::MAIL);
    Ok(())
}

/// Tells each sponsor whose term ended, and the owners, once per sponsor
/// and term.
pub async fn announce_ended(ctx: &Context, terms: &[SponsorTerm]) -> Result<()> {
    let mut tx = ctx.db.begin_write().await?;
    for term in terms {
        let context = json!({
            "sponsor_name": term.name,
            "tier_name": term.tier_name,
            "paid_through": term.paid_through.to_string(),
        });
        let cause = format!("sponsor_ended:{}:{}", term.id, term.paid_through);
        tx.mail_supporter(term.id, &cause, "sponsor_ended", context.clone())
            .await?;
        tx.mail_admins(
            AdminAudience::Owners,
            &cause,
            "sponsor_ended_admin",
            context,
        )
        .await?;
    }
    tx.commit().await?;
    ctx.after_commit(Effects::MAIL);
    Ok(())
}

/// One publication sweep; also run right after an admin's sponsor decision,
/// so its audit entry is immediate.
pub async fn sweep_publication(ctx: &Context) {
    let today = chrono::Utc::now().date_naive();
    let grace = ctx.settings.sponsors.grace_days;
    let thank = ctx.settings.mastodon.posts("sponsor");
    match store::supporters::sweep_publication_thanking(&ctx.db, today, grace, thank).await {
        Ok(changes) => {
            for c in &changes {
                tracing::info!(
                    sponsor = c.supporter_id,
                    published = c.published,
                    reason = c.reason,
                    "sponsor publication changed"
                );
            }
            if !changes.is_empty() {
                ctx.after_commit(Effects::PUBLIC | Effects::TASKS);
            }
        }
        Err(e) => tracing::warn!(error = %e, "publication sweep failed; retrying at the next tick"),
    }
}
