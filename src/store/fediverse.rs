//! Patrons' linked fediverse accounts, the bot's posts by key, and the
//! role sync's view of who is an active supporter.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{Db, Tx, audit::Actor, now};
use crate::{db_run, error::Result, tx_run};

/// A supporter's link, as the patron's page shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Link {
    pub acct: String,
    pub profile_url: Option<String>,
    pub linked_at: DateTime<Utc>,
    pub public: bool,
    pub mention: bool,
}

/// The supporter's link, if any.
pub async fn link_of(db: &Db, supporter_id: i64) -> Result<Option<Link>> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, Link>(
            "SELECT fediverse_acct AS acct, fediverse_url AS profile_url, fediverse_linked_at AS linked_at, \
             fediverse_public AS public, fediverse_mention AS mention \
             FROM supporters WHERE id = $1 AND fediverse_acct IS NOT NULL AND fediverse_linked_at IS NOT NULL",
        )
        .bind(supporter_id)
        .fetch_optional(pool)
        .await?
    });
    Ok(row)
}

/// Records a patron's link (replacing an earlier one), audited, in the
/// service's transaction.
pub async fn set_link(tx: &mut Tx, supporter_id: i64, link: &Link) -> Result<()> {
    tx_run!(tx, |conn| {
        sqlx::query(
            "UPDATE supporters SET fediverse_acct = $2, fediverse_url = $3, fediverse_linked_at = $4, \
             fediverse_public = $5, fediverse_mention = $6, updated_at = $4 WHERE id = $1",
        )
        .bind(supporter_id)
        .bind(&link.acct)
        .bind(&link.profile_url)
        .bind(link.linked_at)
        .bind(link.public)
        .bind(link.mention)
        .execute(&mut *conn)
        .await?;
    });
    tx.audit(
        &Actor::patron(),
        "supporter.fediverse_link",
        "supporter",
        supporter_id,
        json!({"acct": link.acct, "public": link.public, "mention": link.mention}),
    )
    .await?;
    tx.bump_version();
    Ok(())
}

/// Changes what a linked patron agreed to; false if no account is linked.
pub async fn set_consent(
    tx: &mut Tx,
    supporter_id: i64,
    public: bool,
    mention: bool,
) -> Result<bool> {
    let n = tx_run!(tx, |conn| {
        sqlx::query(
            "UPDATE supporters SET fediverse_public = $2, fediverse_mention = $3, updated_at = $4 \
             WHERE id = $1 AND fediverse_acct IS NOT NULL",
        )
        .bind(supporter_id)
        .bind(public)
        .bind(mention)
        .bind(now())
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    if n == 0 {
        return Ok(false);
    }
    tx.audit(
        &Actor::patron(),
        "supporter.fediverse_consent",
        "supporter",
        supporter_id,
        json!({"public": public, "mention": mention}),
    )
    .await?;
    tx.bump_version();
    Ok(true)
}

/// Forgets a patron's link; false if there was none.
pub async fn unlink(db: &Db, supporter_id: i64) -> Result<bool> {
    let mut tx = db.begin_write().await?;
    let n = tx_run!(&mut tx, |conn| {
        sqlx::query(
            "UPDATE supporters SET fediverse_acct = NULL, fediverse_url = NULL, fediverse_linked_at = NULL, \
             fediverse_public = $2, fediverse_mention = $2, updated_at = $3 \
             WHERE id = $1 AND fediverse_acct IS NOT NULL",
        )
        .bind(supporter_id)
        .bind(false)
        .bind(now())
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    if n > 0 {
        tx.audit(
            &Actor::patron(),
            "supporter.fediverse_unlink",
            "supporter",
            supporter_id,
            json!({}),
        )
        .await?;
        tx.bump_version();
    }
    tx.commit().await?;
    Ok(n > 0)
}

/// The patron a finished checkout was for (a patron's or a gift's), within
/// a day of its creation: the thank-you page after Stripe Checkout.
pub async fn patron_of_checkout(db: &Db, stripe_session_id: &str) -> Result<Option<i64>> {
    let since = now() - chrono::Duration::days(1);
    let id = db_run!(db, |pool| {
        sqlx::query_scalar::<_, i64>(
            "SELECT c.supporter_id FROM checkout_sessions c JOIN supporters s ON s.id = c.supporter_id \
             WHERE c.stripe_session_id = $1 AND c.purpose IN ('patron', 'gift') AND s.kind = 'patron' \
             AND c.created_at > $2",
        )
        .bind(stripe_session_id)
        .bind(since)
        .fetch_optional(pool)
        .await?
    });
    Ok(id)
}

/// The patron of an unused, unexpired management link (without spending it).
pub async fn patron_of_manage_link(db: &Db, token_hash: &str) -> Result<Option<i64>> {
    let id = db_run!(db, |pool| {
        sqlx::query_scalar::<_, i64>(
            "SELECT m.supporter_id FROM magic_links m JOIN supporters s ON s.id = m.supporter_id \
             WHERE m.token_hash = $1 AND m.used_at IS NULL AND m.expires_at > $2 AND s.kind = 'patron'",
        )
        .bind(token_hash)
        .bind(now())
        .fetch_optional(pool)
        .await?
    });
    Ok(id)
}

/// A public patron's name with their account, when they agreed to show it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct PublicPatron {
    pub name: String,
    pub acct: Option<String>,
    pub profile_url: Option<String>,
}

/// Whether the bot already made the post of this key.
pub async fn posted(db: &Db, key: &str) -> Result<bool> {
    let n = db_run!(db, |pool| {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM fediverse_posts WHERE post_key = $1")
            .bind(key)
            .fetch_one(pool)
            .await?
    });
    Ok(n > 0)
}

/// Records the status the post of this key became (once).
pub async fn record_post(db: &Db, key: &str, status_id: &str, url: Option<&str>) -> Result<()> {
    let _turn = db.turn().await?;
    db_run!(db, |pool| {
        sqlx::query(
            "INSERT INTO fediverse_posts (post_key, status_id, status_url, posted_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (post_key) DO NOTHING",
        )
        .bind(key)
        .bind(status_id)
        .bind(url)
        .bind(now())
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// What a thank-you post to a patron needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PatronForPost {
    pub name: String,
    pub acct: Option<String>,
    pub mention: bool,
    pub active_pledges: i64,
}

pub async fn patron_for_post(db: &Db, supporter_id: i64) -> Result<Option<PatronForPost>> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, PatronForPost>(
            "SELECT s.display_name AS name, s.fediverse_acct AS acct, s.fediverse_mention AS mention, \
             (SELECT COUNT(*) FROM pledges p WHERE p.supporter_id = s.id AND p.status IN ('active', 'past_due')) AS active_pledges \
             FROM supporters s WHERE s.id = $1 AND s.kind = 'patron'",
        )
        .bind(supporter_id)
        .fetch_optional(pool)
        .await?
    });
    Ok(row)
}

/// Whether a patron linked an account and agreed to be mentioned, inside a
/// transaction (the pledge that starts commits with the post's task).
pub async fn wants_mention(tx: &mut Tx, supporter_id: i64) -> Result<bool> {
    let n = tx_run!(tx, |conn| {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM supporters WHERE id = $1 AND kind = 'patron' \
             AND fediverse_acct IS NOT NULL AND fediverse_mention = $2",
        )
        .bind(supporter_id)
        .bind(true)
        .fetch_one(&mut *conn)
        .await?
    });
    Ok(n > 0)
}

/// What a thank-you post to a sponsor needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SponsorForPost {
    pub name: String,
    pub website_url: Option<String>,
    pub amount_in_posts: bool,
    pub tier_name: Option<String>,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    pub interval: Option<String>,
}

pub async fn sponsor_for_post(db: &Db, supporter_id: i64) -> Result<Option<SponsorForPost>> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, SponsorForPost>(
            "SELECT s.display_name AS name, s.website_url, s.amount_in_posts, t.name AS tier_name, \
             t.amount_minor, t.currency, t.interval \
             FROM supporters s LEFT JOIN tiers t ON t.id = s.tier_id WHERE s.id = $1 AND s.kind = 'sponsor'",
        )
        .bind(supporter_id)
        .fetch_optional(pool)
        .await?
    });
    Ok(row)
}

/// Lets a sponsor's amount (its tier's price) appear in its thank-you post.
pub async fn set_amount_in_posts(
    db: &Db,
    actor: &Actor,
    supporter_id: i64,
    allowed: bool,
) -> Result<bool> {
    let mut tx = db.begin_write().await?;
    let n = tx_run!(&mut tx, |conn| {
        sqlx::query(
            "UPDATE supporters SET amount_in_posts = $2, updated_at = $3 WHERE id = $1 AND kind = 'sponsor'",
        )
        .bind(supporter_id)
        .bind(allowed)
        .bind(now())
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    if n > 0 {
        tx.audit(
            actor,
            "sponsor.amount_in_posts",
            "supporter",
            supporter_id,
            json!({"allowed": allowed}),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(n > 0)
}

/// A change of a linked account's supporter status, found by the daily
/// role sync.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct RoleChange {
    pub id: i64,
    /// The account, user@host.
    pub acct: String,
    /// True: became an active supporter (give the role); false: stopped
    /// (remove it).
    pub active: bool,
    pub detected_at: DateTime<Utc>,
}

/// Compares every linked account's status now with the last look, and
/// records each difference once (an account that unlinked counts as
/// stopped). Safe to run twice at once: a difference is recorded by the
/// one that flips the stored state. Returns how many changes were found.
pub async fn detect_role_changes(db: &Db) -> Result<usize> {
    let at = now();
    let mut tx = db.begin_write().await?;
    let current: Vec<(String, bool)> = tx_run!(&mut tx, |conn| {
        sqlx::query_as::<_, (String, i64)>(
            "SELECT s.fediverse_acct, CAST(MAX(CASE WHEN EXISTS (SELECT 1 FROM pledges p WHERE p.supporter_id = s.id \
             AND p.status IN ('active', 'past_due')) THEN 1 ELSE 0 END) AS BIGINT) \
             FROM supporters s WHERE s.kind = 'patron' AND s.fediverse_acct IS NOT NULL \
             GROUP BY s.fediverse_acct ORDER BY s.fediverse_acct",
        )
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(acct, active)| (acct, active > 0))
        .collect()
    });
    let known: Vec<(String, bool)> = tx_run!(&mut tx, |conn| {
        sqlx::query_as::<_, (String, bool)>(
            "SELECT acct, active FROM fediverse_role_state ORDER BY acct",
        )
        .fetch_all(&mut *conn)
        .await?
    });
    let mut wanted = current.clone();
    for (acct, _) in &known {
        if !current.iter().any(|(a, _)| a == acct) {
            wanted.push((acct.clone(), false));
        }
    }
    let mut found = 0;
    for (acct, active) in wanted {
        let changed = tx_run!(&mut tx, |conn| {
            let inserted = sqlx::query(
                "INSERT INTO fediverse_role_state (acct, active, checked_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (acct) DO NOTHING",
            )
            .bind(&acct)
            .bind(active)
            .bind(at)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if inserted == 1 {
                // A first look: only a supporter is news.
                active
            } else {
                sqlx::query(
                    "UPDATE fediverse_role_state SET active = $2, checked_at = $3 WHERE acct = $1 AND active <> $2",
                )
                .bind(&acct)
                .bind(active)
                .bind(at)
                .execute(&mut *conn)
                .await?
                .rows_affected()
                    == 1
            }
        });
        if changed {
            tx_run!(&mut tx, |conn| {
                sqlx::query(
                    "INSERT INTO fediverse_role_changes (acct, active, detected_at) VALUES ($1, $2, $3)",
                )
                .bind(&acct)
                .bind(active)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            });
            found += 1;
        }
    }
    tx.commit().await?;
    Ok(found)
}

/// Changes not yet reported, oldest first.
pub async fn open_role_changes(db: &Db) -> Result<Vec<RoleChange>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, RoleChange>(
            "SELECT id, acct, active, detected_at FROM fediverse_role_changes WHERE reported_at IS NULL ORDER BY id",
        )
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// Marks the changes up to `up_to` as reported (run, or shown to an admin
/// who ran them); returns how many.
pub async fn mark_reported(db: &Db, up_to: i64, by: &str) -> Result<u64> {
    let _turn = db.turn().await?;
    let n = db_run!(db, |pool| {
        sqlx::query(
            "UPDATE fediverse_role_changes SET reported_at = $2, reported_by = $3 WHERE id <= $1 AND reported_at IS NULL",
        )
        .bind(up_to)
        .bind(now())
        .bind(by)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(n)
}

/// Whether a supporter holds an active (or past-due) pledge.
pub async fn has_active_pledge(tx: &mut Tx, supporter_id: i64) -> Result<bool> {
    let n = tx_run!(tx, |conn| {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM pledges WHERE supporter_id = $1 AND status IN ('active', 'past_due')",
        )
        .bind(supporter_id)
        .fetch_one(&mut *conn)
        .await?
    });
    Ok(n > 0)
}
