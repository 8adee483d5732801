//! Links that patronage sends people: the public base they hang from, and
//! the single-use management link that opens a patron's Billing Portal.

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{config::Settings, error::Result, store};

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

/// Makes a single-use management link for a supporter, valid for `ttl`.
pub async fn mint_manage_link(
    db: &store::Db,
    base: &str,
    supporter_id: i64,
    ttl: chrono::Duration,
) -> Result<String> {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let token = hex::encode(raw);
    store::stripe::create_magic_link(db, &token_hash(&token), supporter_id, ttl).await?;
    Ok(format!("{base}/api/v1/patron/portal?token={token}"))
}
