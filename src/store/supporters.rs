//! Patrons and sponsors.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

use super::{
    Constraint, Db, Page, Tx,
    audit::Actor,
    contains_pattern, now, on_constraint,
    webhooks::{OutboundEvent, Subject},
};
use crate::{
    db_run,
    domain::{
        supporter::{
            PatronDraft, SponsorDraft, SponsorStatus, SupporterKind, Visibility,
            publication_reason, sponsor_is_public, visible_paid_through,
        },
        tier::Interval,
        webhooks::EventType,
    },
    error::{Error, Result},
    tx_run,
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SupporterRow {
    pub id: i64,
    pub kind: SupporterKind,
    pub email: String,
    pub display_name: String,
    pub visibility: Visibility,
    pub website_url: Option<String>,
    pub tier_id: Option<i64>,
    pub sponsor_status: Option<SponsorStatus>,
    pub status_reason: Option<String>,
    pub paid_through: Option<NaiveDate>,
    pub logo_ref: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Active or past-due pledges held.
    pub active_pledges: i64,
    /// A patron's linked fediverse account (user@host) and its profile.
    pub fediverse_acct: Option<String>,
    pub fediverse_url: Option<String>,
    /// A sponsor allowed its amount in the bot's thank-you post.
    pub amount_in_posts: bool,
}

macro_rules! select {
    () => {
        "SELECT s.id, s.kind, s.email, s.display_name, s.visibility, s.website_url, s.tier_id, \
         s.sponsor_status, s.status_reason, s.paid_through, s.logo_ref, s.created_at, s.updated_at, \
         (SELECT COUNT(*) FROM pledges p WHERE p.supporter_id = s.id AND p.status IN ('active', 'past_due')) AS active_pledges, \
         s.fediverse_acct, s.fediverse_url, s.amount_in_posts \
         FROM supporters s "
    };
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Matches email or name, case-insensitively.
    pub q: Option<String>,
    pub sponsor_status: Option<SponsorStatus>,
}

pub async fn list(
    db: &Db,
    kind: SupporterKind,
    filter: &Filter,
    page: Page,
) -> Result<Vec<SupporterRow>> {
    let pattern = filter.q.as_deref().map(contains_pattern);
    let status = filter.sponsor_status.map(|s| s.as_str());
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, SupporterRow>(concat!(
            select!(),
            "WHERE s.kind = $1 AND s.id > $2 \
             AND ($3 IS NULL OR s.email_normalized LIKE $3 ESCAPE '\\' OR lower(s.display_name) LIKE $3 ESCAPE '\\') \
             AND ($4 IS NULL OR s.sponsor_status = $4) \
             ORDER BY s.id LIMIT $5"
        ))
        .bind(kind.as_str())
        .bind(page.after)
        .bind(pattern)
        .bind(status)
        .bind(page.limit)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

pub async fn get(db: &Db, id: i64) -> Result<SupporterRow> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, SupporterRow>(concat!(select!(), "WHERE s.id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?
    });
    row.ok_or(Error::NotFound("supporter"))
}

/// Inserts a patron, audited. A patron's email is unique.
pub async fn insert_patron(tx: &mut Tx, actor: &Actor, p: &PatronDraft) -> Result<i64> {
    let at = now();
    let id = tx_run!(tx, |conn| {
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO supporters (kind, email, email_normalized, display_name, visibility, created_at, updated_at) \
             VALUES ('patron', $1, $2, $3, $4, $5, $5) RETURNING id",
        )
        .bind(&p.email.address)
        .bind(&p.email.normalized)
        .bind(&p.display_name)
        .bind(p.visibility.as_str())
        .bind(at)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| {
            if on_constraint(&e).is_some_and(|c| matches!(c, Constraint::AdminEmail | Constraint::PatronEmail)) {
                Error::conflict("email", "a patron with this email already exists")
            } else {
                e.into()
            }
        })?
    });
    tx.audit(
        actor,
        "patron.create",
        "supporter",
        id,
        json!({"display_name": p.display_name, "visibility": p.visibility}),
    )
    .await?;
    tx.emit(&OutboundEvent::new(
        EventType::SupporterCreated,
        Subject::Supporter(id),
    ))
    .await?;
    tx.bump_version();
    Ok(id)
}

/// Inserts a sponsor, always `pending` (nothing is public before
/// approval), audited. `locale` is the language of its emails.
pub async fn insert_sponsor(
    tx: &mut Tx,
    actor: &Actor,
    s: &SponsorDraft,
    locale: Option<&str>,
) -> Result<i64> {
    let at = now();
    let id = tx_run!(tx, |conn| {
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO supporters (kind, email, email_normalized, display_name, visibility, website_url, \
             tier_id, sponsor_status, paid_through, logo_ref, locale, created_at, updated_at) \
             VALUES ('sponsor', $1, $2, $3, 'public', $4, $5, 'pending', $6, $7, $8, $9, $9) RETURNING id",
        )
        .bind(&s.contact_email.address)
        .bind(&s.contact_email.normalized)
        .bind(&s.company_name)
        .bind(&s.website_url.0)
        .bind(s.tier_id)
        .bind(s.paid_through)
        .bind(&s.logo_ref)
        .bind(locale)
        .bind(at)
        .fetch_one(&mut *conn)
        .await?
    });
    tx.audit(
        actor,
        "sponsor.create",
        "supporter",
        id,
        json!({
            "company_name": s.company_name, "website_url": s.website_url.0, "tier_id": s.tier_id
        }),
    )
    .await?;
    tx.emit(&OutboundEvent::new(
        EventType::SupporterCreated,
        Subject::Supporter(id),
    ))
    .await?;
    tx.bump_version();
    Ok(id)
}

/// A supporter's kind, read in the caller's transaction; `None` if there
/// is no such supporter.
pub async fn kind(tx: &mut Tx, id: i64) -> Result<Option<SupporterKind>> {
    let kind = tx_run!(tx, |conn| {
        sqlx::query_scalar::<_, SupporterKind>("SELECT kind FROM supporters WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
    });
    Ok(kind)
}

/// A sponsor's review status and tier, read in a decision's transaction.
/// `NotFound` for an id that is not a sponsor.
pub async fn sponsor_status(tx: &mut Tx, id: i64) -> Result<(SponsorStatus, Option<i64>)> {
    let row = tx_run!(tx, |conn| {
        sqlx::query_as::<_, (String, Option<SponsorStatus>, Option<i64>)>(
            "SELECT kind, sponsor_status, tier_id FROM supporters WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
    });
    match row {
        Some((kind, Some(status), tier)) if kind == "sponsor" => Ok((status, tier)),
        _ => Err(Error::NotFound("sponsor")),
    }
}

/// A tier's slots, with its row locked until the transaction ends, so two
/// approvals cannot both take the last slot.
pub async fn lock_tier_slots(tx: &mut Tx, tier_id: i64) -> Result<Option<i64>> {
    let slots = tx_run!(tx, |conn| {
        sqlx::query_scalar::<_, Option<i64>>(
            "UPDATE tiers SET updated_at = updated_at WHERE id = $1 RETURNING slots",
        )
        .bind(tier_id)
        .fetch_one(&mut *conn)
        .await?
    });
    Ok(slots)
}

/// Sponsors approved on a tier and still paid on `today`, but `except`.
pub async fn approved_sponsors_on(
    tx: &mut Tx,
    tier_id: i64,
    except: i64,
    today: NaiveDate,
) -> Result<i64> {
    let n = tx_run!(tx, |conn| {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM supporters WHERE kind = 'sponsor' AND tier_id = $1 \
             AND sponsor_status = 'approved' AND id <> $2 AND (paid_through IS NULL OR paid_through >= $3)",
        )
        .bind(tier_id)
        .bind(except)
        .bind(today)
        .fetch_one(&mut *conn)
        .await?
    });
    Ok(n)
}

/// Records a review decision. `revoke_links` spends every logo-upload link
/// given out so far; approving approves the sponsor's logos too (the admin
/// saw them with it).
pub async fn set_sponsor_status(
    tx: &mut Tx,
    id: i64,
    status: SponsorStatus,
    reason: &str,
    revoke_links: bool,
) -> Result<()> {
    tx_run!(tx, |conn| {
        sqlx::query(
            "UPDATE supporters SET sponsor_status = $2, status_reason = $3, updated_at = $4, \
             logo_link_version = logo_link_version + $5 WHERE id = $1",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(reason)
        .bind(now())
        .bind(i64::from(revoke_links))
        .execute(&mut *conn)
        .await?;
        if status == SponsorStatus::Approved {
            sqlx::query("UPDATE sponsor_logos SET approved = $2 WHERE supporter_id = $1")
                .bind(id)
                .bind(true)
                .execute(&mut *conn)
                .await?;
        }
    });
    Ok(())
}

/// What a sponsor's emails say of it.
#[derive(Debug, sqlx::FromRow)]
pub struct SponsorBrief {
    pub name: String,
    pub website_url: Option<String>,
    pub tier_name: Option<String>,
    pub paid_through: Option<NaiveDate>,
}

pub async fn sponsor_brief(tx: &mut Tx, id: i64) -> Result<SponsorBrief> {
    let brief = tx_run!(tx, |conn| {
        sqlx::query_as::<_, SponsorBrief>(
            "SELECT s.display_name AS name, s.website_url, t.name AS tier_name, s.paid_through \
             FROM supporters s LEFT JOIN tiers t ON t.id = s.tier_id WHERE s.id = $1",
        )
        .bind(id)
        .fetch_one(&mut *conn)
        .await?
    });
    Ok(brief)
}

/// Sets how long a sponsor is paid for (an invoice settled outside Stripe).
pub async fn set_paid_through(
    tx: &mut Tx,
    actor: &Actor,
    id: i64,
    paid_through: Option<NaiveDate>,
) -> Result<()> {
    let at = now();
    let changed = tx_run!(tx, |conn| {
        sqlx::query("UPDATE supporters SET paid_through = $2, updated_at = $3 WHERE id = $1 AND kind = 'sponsor'")
            .bind(id)
            .bind(paid_through)
            .bind(at)
            .execute(&mut *conn)
            .await?
            .rows_affected()
    });
    if changed == 0 {
        return Err(Error::NotFound("sponsor"));
    }
    tx.audit(
        actor,
        "sponsor.paid_through",
        "supporter",
        id,
        json!({"paid_through": paid_through}),
    )
    .await?;
    tx.bump_version();
    Ok(())
}

/// Sponsors the public may see: approved, and paid through `today` less the
/// grace period or later.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PublicSponsorRow {
    pub id: i64,
    pub display_name: String,
    pub website_url: String,
    pub tier_id: i64,
    pub tier_name: String,
    pub tier_rank: i64,
    pub tier_amount_minor: i64,
    pub tier_interval: Interval,
}

pub async fn public_sponsors(
    db: &Db,
    today: NaiveDate,
    grace_days: i64,
) -> Result<Vec<PublicSponsorRow>> {
    let cutoff = visible_paid_through(today, grace_days);
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, PublicSponsorRow>(
            "SELECT s.id, s.display_name, s.website_url, t.id AS tier_id, t.name AS tier_name, t.rank AS tier_rank, \
             t.amount_minor AS tier_amount_minor, t.interval AS tier_interval \
             FROM supporters s JOIN tiers t ON t.id = s.tier_id \
             WHERE s.kind = 'sponsor' AND s.sponsor_status = 'approved' AND s.paid_through >= $1 \
             ORDER BY t.rank, t.amount_minor DESC, s.id",
        )
        .bind(cutoff)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// Display names of patrons who chose to be named and hold a running pledge,
/// oldest supporters first. Private and secret patrons are never read here.
pub async fn public_patron_names(
    db: &Db,
    limit: i64,
) -> Result<Vec<super::fediverse::PublicPatron>> {
    let rows = db_run!(db, |pool| {
        // A linked account shows only when its patron agreed to it.
        sqlx::query_as::<_, super::fediverse::PublicPatron>(
            "SELECT s.display_name AS name, \
             CASE WHEN s.fediverse_public = $2 THEN s.fediverse_acct END AS acct, \
             CASE WHEN s.fediverse_public = $2 THEN s.fediverse_url END AS profile_url \
             FROM supporters s \
             WHERE s.kind = 'patron' AND s.visibility = 'public' \
             AND EXISTS (SELECT 1 FROM pledges p WHERE p.supporter_id = s.id AND p.status IN ('active', 'past_due')) \
             ORDER BY s.id LIMIT $1",
        )
        .bind(limit)
        .bind(true)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// A sponsor that appeared on, or disappeared from, the public views.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicationChange {
    pub supporter_id: i64,
    pub name: String,
    /// True when the sponsor became public, false when it was taken down.
    pub published: bool,
    /// Why, as written to the audit log ("approved and paid", "paid period
    /// and grace ended", "rejected", …).
    pub reason: &'static str,
    pub paid_through: Option<NaiveDate>,
}

#[derive(sqlx::FromRow)]
struct PublicationRow {
    id: i64,
    display_name: String,
    sponsor_status: SponsorStatus,
    paid_through: Option<NaiveDate>,
    published: bool,
}

/// Records which sponsors are public on `today`: each sponsor whose
/// visibility changed since the last sweep is flipped, with an audit entry
/// (`sponsor.publish` or `sponsor.unpublish`) giving the reason, all in one
/// transaction. Safe to run on several replicas at once: a flip is audited
/// only by the replica whose update changed the row.
pub async fn sweep_publication(
    db: &Db,
    today: NaiveDate,
    grace_days: i64,
) -> Result<Vec<PublicationChange>> {
    sweep_publication_thanking(db, today, grace_days, false).await
}

/// `sweep_publication`; with `thank`, each sponsor published also gets its
/// thank-you post queued (`PostStatus`), in the same transaction, so it is
/// queued exactly once whichever replica flips it.
pub async fn sweep_publication_thanking(
    db: &Db,
    today: NaiveDate,
    grace_days: i64,
    thank: bool,
) -> Result<Vec<PublicationChange>> {
    let actor = Actor::system();
    let mut tx = db.begin_write().await?;
    let rows: Vec<PublicationRow> = tx_run!(&mut tx, |conn| {
        sqlx::query_as(
            "SELECT id, display_name, sponsor_status, paid_through, published FROM supporters \
             WHERE kind = 'sponsor' AND (published = $1 OR sponsor_status = 'approved') ORDER BY id",
        )
        .bind(true)
        .fetch_all(&mut *conn)
        .await?
    });
    let mut changes = Vec::new();
    for row in rows {
        let public = sponsor_is_public(row.sponsor_status, row.paid_through, today, grace_days);
        if public == row.published {
            continue;
        }
        let flipped = tx_run!(&mut tx, |conn| {
            sqlx::query("UPDATE supporters SET published = $2 WHERE id = $1 AND published = $3")
                .bind(row.id)
                .bind(public)
                .bind(row.published)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        if flipped == 0 {
            continue;
        }
        let reason = publication_reason(row.sponsor_status, row.paid_through, public);
        let action = if public {
            "sponsor.publish"
        } else {
            "sponsor.unpublish"
        };
        tx.audit(
            &actor,
            action,
            "supporter",
            row.id,
            json!({
                "reason": reason, "paid_through": row.paid_through,
                "grace_days": grace_days, "on": today
            }),
        )
        .await?;
        let kind = if public {
            EventType::SponsorPublished
        } else {
            EventType::SponsorUnpublished
        };
        tx.emit(&OutboundEvent::new(kind, Subject::Supporter(row.id)))
            .await?;
        if public && thank {
            let post = crate::domain::fediverse::Post::Sponsor {
                sponsor_id: row.id,
                on: today,
            };
            tx.enqueue(&crate::queue::PostStatus { post }).await?;
        }
        changes.push(PublicationChange {
            supporter_id: row.id,
            name: row.display_name,
            published: public,
            reason,
            paid_through: row.paid_through,
        });
    }
    if !changes.is_empty() {
        tx.bump_version();
    }
    tx.commit().await?;
    Ok(changes)
}

/// An approved sponsor and the end of its paid term.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct SponsorTerm {
    pub id: i64,
    pub name: String,
    pub tier_name: Option<String>,
    pub paid_through: NaiveDate,
}

/// Approved sponsors whose paid term ends between `from` and `to`.
pub async fn sponsor_terms_ending(
    db: &Db,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<SponsorTerm>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, SponsorTerm>(
            "SELECT s.id, s.display_name AS name, t.name AS tier_name, s.paid_through FROM supporters s \
             LEFT JOIN tiers t ON t.id = s.tier_id WHERE s.kind = 'sponsor' AND s.sponsor_status = 'approved' \
             AND s.paid_through >= $1 AND s.paid_through <= $2 ORDER BY s.paid_through, s.id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// Renames a supporter and sets who may see the name, audited.
pub async fn update_profile(
    tx: &mut Tx,
    actor: &Actor,
    id: i64,
    display_name: &str,
    visibility: Visibility,
) -> Result<()> {
    let changed = tx_run!(tx, |conn| {
        sqlx::query(
            "UPDATE supporters SET display_name = $2, visibility = $3, updated_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(display_name)
        .bind(visibility.as_str())
        .bind(now())
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    if changed == 0 {
        return Err(Error::NotFound("supporter"));
    }
    tx.audit(
        actor,
        "supporter.update",
        "supporter",
        id,
        json!({"display_name": display_name, "visibility": visibility}),
    )
    .await?;
    tx.bump_version();
    Ok(())
}
