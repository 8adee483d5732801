//! Links that patronage sends people: the public base they hang from, and
//! the single-use management link that opens a patron's Billing Portal,
//! and the signed link a sponsor sends its logo through.

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{config::Settings, context::Context, error::Result, store};

/// The public base for links in emails: the same site URL the public pages
/// use (`pages.site_url`, else the campaign's, else our own address).
pub async fn public_base(db: &store::Db, settings: &Settings) -> Result<String> {
    let campaign = store::campaign::get(db).await?;
    Ok(crate::render::site_url(
        settings,
        campaign.public_base_url.as_deref(),
    ))
}

/// Links are stored by hash: a database leak does not open portals.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Makes single-use management links, one for each `(supporter, ttl)`,
/// stored in one commit (the outbox sends a batch of receipts at a time).
pub async fn mint_manage_links(
    db: &store::Db,
    base: &str,
    wanted: &[(i64, chrono::Duration)],
) -> Result<Vec<String>> {
    let mut urls = Vec::with_capacity(wanted.len());
    let mut rows = Vec::with_capacity(wanted.len());
    for &(supporter_id, ttl) in wanted {
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let token = hex::encode(raw);
        rows.push((token_hash(&token), supporter_id, ttl));
        urls.push(format!("{base}/api/v1/patron/portal?token={token}"));
    }
    store::stripe::create_magic_links(db, &rows).await?;
    Ok(urls)
}

/// The signed logo-upload link for a sponsor, and when it expires. It works
/// `sponsors.upload_link_ttl_hours`, for one upload: an upload through any
/// link spends it and every link issued before it, and a rejection revokes
/// them all. A rejected sponsor gets none (409).
pub async fn logo_upload_url(
    ctx: &Context,
    sponsor_id: i64,
) -> Result<(String, chrono::DateTime<chrono::Utc>)> {
    let version = store::logos::link_version(&ctx.db, sponsor_id).await?;
    let ttl = ctx.settings.sponsors.upload_link_ttl_hours.max(1) * 3600;
    let (token, exp) = ctx.tokens.issue_logo_upload(sponsor_id, version, ttl)?;
    let site = ctx.public.current().data.site_url.clone();
    let expires = chrono::DateTime::from_timestamp(exp, 0).unwrap_or_default();
    Ok((format!("{site}/sponsor/logo?token={token}"), expires))
}
