//! Mastodon OAuth: the app per instance and redirect URI, and flows under
//! way (kept by the hash of their state, each taken once): an admin's
//! "Sign in with Mastodon", or a patron linking their account.

use chrono::{DateTime, Utc};

use super::{Db, now};
use crate::{db_run, error::Result, fediverse::oauth::App};

/// The app registered at `instance_url` for `redirect_uri`, if any.
pub async fn app(db: &Db, instance_url: &str, redirect_uri: &str) -> Result<Option<App>> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, (String, String)>(
            "SELECT client_id, client_secret FROM oauth_apps WHERE instance_url = $1 AND redirect_uri = $2",
        )
        .bind(instance_url)
        .bind(redirect_uri)
        .fetch_optional(pool)
        .await?
    });
    Ok(row.map(|(client_id, client_secret)| App {
        client_id,
        client_secret,
    }))
}

/// Keeps a newly registered app (replacing an earlier one for the same
/// instance and redirect URI).
pub async fn put_app(db: &Db, instance_url: &str, redirect_uri: &str, app: &App) -> Result<()> {
    let _turn = db.turn().await?;
    db_run!(db, |pool| {
        sqlx::query(
            "INSERT INTO oauth_apps (instance_url, redirect_uri, client_id, client_secret, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (instance_url, redirect_uri) DO UPDATE SET \
             client_id = excluded.client_id, \
             client_secret = excluded.client_secret, created_at = excluded.created_at",
        )
        .bind(instance_url)
        .bind(redirect_uri)
        .bind(&app.client_id)
        .bind(&app.client_secret)
        .bind(now())
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// Sign-ins and links abandoned half-way are dropped when the next one starts.
async fn forget_expired(db: &Db) -> Result<()> {
    let _turn = db.turn().await?;
    db_run!(db, |pool| {
        sqlx::query("DELETE FROM oauth_states WHERE expires_at < $1")
            .bind(now())
            .execute(pool)
            .await?;
    });
    Ok(())
}

pub async fn put_state(
    db: &Db,
    state_hash: &str,
    verifier: &str,
    next: &str,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    forget_expired(db).await?;
    let _turn = db.turn().await?;
    db_run!(db, |pool| {
        sqlx::query("INSERT INTO oauth_states (state_hash, verifier, next, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(state_hash)
            .bind(verifier)
            .bind(next)
            .bind(expires_at)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Takes a sign-in under way (once): its PKCE verifier and where to go.
pub async fn take_state(db: &Db, state_hash: &str) -> Result<Option<(String, String)>> {
    let _turn = db.turn().await?;
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, (String, String)>(
            "DELETE FROM oauth_states WHERE state_hash = $1 AND expires_at > $2 AND purpose = 'admin' \
             RETURNING verifier, next",
        )
        .bind(state_hash)
        .bind(now())
        .fetch_optional(pool)
        .await?
    });
    Ok(row)
}

/// A patron's link under way: who, at which instance, with which PKCE
/// verifier, bound to which browser (the hash of a cookie), and what they
/// agreed to.
#[derive(Debug, Clone)]
pub struct LinkState {
    pub supporter_id: i64,
    pub instance_url: String,
    pub verifier: String,
    pub binding_hash: String,
    /// JSON: `{"public": bool, "mention": bool}`.
    pub consent: String,
    /// Where to send the patron afterwards (their page).
    pub next: String,
}

pub async fn put_link_state(
    db: &Db,
    state_hash: &str,
    link: &LinkState,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    forget_expired(db).await?;
    let _turn = db.turn().await?;
    db_run!(db, |pool| {
        sqlx::query(
            "INSERT INTO oauth_states (state_hash, verifier, next, expires_at, purpose, supporter_id, \
             instance_url, binding_hash, consent) VALUES ($1, $2, $3, $4, 'link', $5, $6, $7, $8)",
        )
        .bind(state_hash)
        .bind(&link.verifier)
        .bind(&link.next)
        .bind(expires_at)
        .bind(link.supporter_id)
        .bind(&link.instance_url)
        .bind(&link.binding_hash)
        .bind(&link.consent)
        .execute(pool)
        .await?;
    });
    Ok(())
}

type LinkRow = (String, String, i64, String, String, String);

/// Takes a patron's link under way (once, before it expires).
pub async fn take_link_state(db: &Db, state_hash: &str) -> Result<Option<LinkState>> {
    let _turn = db.turn().await?;
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, LinkRow>(
            "DELETE FROM oauth_states WHERE state_hash = $1 AND expires_at > $2 AND purpose = 'link' \
             RETURNING verifier, next, supporter_id, instance_url, binding_hash, consent",
        )
        .bind(state_hash)
        .bind(now())
        .fetch_optional(pool)
        .await?
    });
    Ok(row.map(
        |(verifier, next, supporter_id, instance_url, binding_hash, consent)| LinkState {
            supporter_id,
            instance_url,
            verifier,
            binding_hash,
            consent,
            next,
        },
    ))
}
