//! Sponsor logos, stored in the database so every replica serves them.

use chrono::NaiveDate;
use serde_json::json;

use super::{Db, Tx, audit::Actor, now};
use crate::{
    db_run,
    domain::{
        logo::{Logo, LogoVariant},
        supporter::visible_paid_through,
    },
    error::{Error, Result},
    tx_run,
};

/// Spends a sponsor's upload links up to `version`: the upload moves the
/// link version on in its commit, so this link and every one issued before
/// it are spent, and of two uploads racing with one link only one gets
/// `true`. `false` also for a rejected sponsor or a stale link.
pub async fn spend_link(tx: &mut Tx, supporter_id: i64, version: i64) -> Result<bool> {
    let spent = tx_run!(tx, |conn| {
        sqlx::query(
            "UPDATE supporters SET logo_link_version = logo_link_version + 1 \
             WHERE id = $1 AND kind = 'sponsor' AND sponsor_status <> 'rejected' AND logo_link_version = $2",
        )
        .bind(supporter_id)
        .bind(version)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    Ok(spent > 0)
}

/// Saves a checked logo for a sponsor, replacing the variant's previous
/// one, audited. Until an unapproved one is approved, the public keeps
/// seeing no logo for the variant, since the row is replaced.
pub async fn put(
    tx: &mut Tx,
    actor: &Actor,
    supporter_id: i64,
    variant: LogoVariant,
    logo: &Logo,
    approved: bool,
) -> Result<()> {
    let at = now();
    let width = i64::from(logo.width);
    let height = i64::from(logo.height);
    tx_run!(tx, |conn| {
        sqlx::query(
            "INSERT INTO sponsor_logos (supporter_id, variant, mime, bytes, width, height, alt_text, approved, sha256, updated_at) \
             VALUES ($1, $2, 'image/png', $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (supporter_id, variant) DO UPDATE SET mime = excluded.mime, bytes = excluded.bytes, \
             width = excluded.width, height = excluded.height, alt_text = excluded.alt_text, \
             approved = excluded.approved, sha256 = excluded.sha256, updated_at = excluded.updated_at",
        )
        .bind(supporter_id)
        .bind(variant.as_str())
        .bind(&logo.png)
        .bind(width)
        .bind(height)
        .bind(&logo.alt_text)
        .bind(approved)
        .bind(&logo.sha256)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    });
    tx.audit(
        actor,
        "sponsor.logo",
        "supporter",
        supporter_id,
        json!({
            "variant": variant, "sha256": logo.sha256, "width": width, "height": height,
            "alt_text": logo.alt_text, "approved": approved
        }),
    )
    .await?;
    tx.bump_version();
    Ok(())
}

/// The version a new upload link for this sponsor carries. A rejected
/// sponsor gets none.
pub async fn link_version(db: &Db, supporter_id: i64) -> Result<i64> {
    let row: Option<(String, Option<String>, i64)> = db_run!(db, |pool| {
        sqlx::query_as(
            "SELECT kind, sponsor_status, logo_link_version FROM supporters WHERE id = $1",
        )
        .bind(supporter_id)
        .fetch_optional(pool)
        .await?
    });
    match row {
        Some((kind, status, version)) if kind == "sponsor" => {
            if status.as_deref() == Some("rejected") {
                Err(Error::conflict(
                    "status",
                    "a rejected sponsor gets no upload link",
                ))
            } else {
                Ok(version)
            }
        }
        _ => Err(Error::NotFound("sponsor")),
    }
}

/// Whether an upload link of `version` still opens the form: neither spent
/// by an upload nor revoked by a rejection. Viewing the form spends nothing.
pub async fn link_is_live(db: &Db, supporter_id: i64, version: i64) -> Result<()> {
    let live: Option<i64> = db_run!(db, |pool| {
        sqlx::query_scalar(
            "SELECT id FROM supporters WHERE id = $1 AND kind = 'sponsor' \
             AND sponsor_status <> 'rejected' AND logo_link_version = $2",
        )
        .bind(supporter_id)
        .bind(version)
        .fetch_optional(pool)
        .await?
    });
    live.map(|_| ()).ok_or(Error::Unauthorized)
}

/// Approves a sponsor's uploaded logos (both variants), audited; a
/// conflict when none is waiting.
pub async fn approve(tx: &mut Tx, actor: &Actor, supporter_id: i64) -> Result<u64> {
    let n = tx_run!(tx, |conn| {
        sqlx::query(
            "UPDATE sponsor_logos SET approved = $2 WHERE supporter_id = $1 AND approved = $3",
        )
        .bind(supporter_id)
        .bind(true)
        .bind(false)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    if n == 0 {
        return Err(Error::conflict(
            "logo",
            "this sponsor has no logo waiting for approval",
        ));
    }
    tx.audit(
        actor,
        "sponsor.logo_approve",
        "supporter",
        supporter_id,
        json!({"logos": n}),
    )
    .await?;
    tx.bump_version();
    Ok(n)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PublicLogoRow {
    pub supporter_id: i64,
    pub variant: LogoVariant,
    pub bytes: Vec<u8>,
    pub width: i64,
    pub height: i64,
    pub alt_text: String,
    pub sha256: String,
}

/// Approved logos of the sponsors the public may see on `today`.
pub async fn public(db: &Db, today: NaiveDate, grace_days: i64) -> Result<Vec<PublicLogoRow>> {
    let cutoff = visible_paid_through(today, grace_days);
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, PublicLogoRow>(
            "SELECT l.supporter_id, l.variant, l.bytes, l.width, l.height, l.alt_text, l.sha256 \
             FROM sponsor_logos l JOIN supporters s ON s.id = l.supporter_id \
             WHERE l.approved = $2 AND s.kind = 'sponsor' AND s.sponsor_status = 'approved' \
             AND s.paid_through >= $1 ORDER BY l.supporter_id, l.variant",
        )
        .bind(cutoff)
        .bind(true)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// A sponsor's logo as moderators see it, approved or not.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LogoMeta {
    pub supporter_id: i64,
    pub variant: LogoVariant,
    pub width: i64,
    pub height: i64,
    pub alt_text: String,
    pub approved: bool,
    pub sha256: String,
}

/// The logos of the sponsors `ids`.
pub async fn of_sponsors(db: &Db, ids: &[i64]) -> Result<Vec<LogoMeta>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // The ids are integers we read ourselves: inlining them is safe and
    // works the same on both databases.
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let sql = format!(
        "SELECT supporter_id, variant, width, height, alt_text, approved, sha256 FROM sponsor_logos \
         WHERE supporter_id IN ({list}) ORDER BY supporter_id, variant DESC"
    );
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, LogoMeta>(sqlx::AssertSqlSafe(sql.as_str()))
            .fetch_all(pool)
            .await?
    });
    Ok(rows)
}

/// One logo's PNG, approved or not (for the moderation queue).
pub async fn png(db: &Db, supporter_id: i64, variant: LogoVariant) -> Result<Option<Vec<u8>>> {
    let bytes = db_run!(db, |pool| {
        sqlx::query_scalar::<_, Vec<u8>>(
            "SELECT bytes FROM sponsor_logos WHERE supporter_id = $1 AND variant = $2",
        )
        .bind(supporter_id)
        .bind(variant.as_str())
        .fetch_optional(pool)
        .await?
    });
    Ok(bytes)
}
