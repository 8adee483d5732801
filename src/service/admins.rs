//! Signing admins in and creating the first owner: the same rules for the
//! JSON API and the console.

use std::net::IpAddr;

use crate::{
    auth::{Role, password, ratelimit::LoginLimiter},
    context::Context,
    domain::{Checks, supporter::Email},
    error::{Error, Result},
    store::{self, admins::AdminRow, audit::Actor},
};

/// The admin whose email and password these are. Unknown emails, wrong
/// passwords and disabled accounts get the same answer after the same work,
/// and every try counts against the login limits.
pub async fn sign_in(
    ctx: &Context,
    limiter: &LoginLimiter,
    ip: IpAddr,
    email: &str,
    password: String,
) -> Result<AdminRow> {
    let account = email.trim().to_lowercase();
    limiter.check(ip, &account)?;
    let admin = store::admins::find_by_email(&ctx.db, &account).await?;
    let stored = admin
        .as_ref()
        .filter(|a| !a.disabled)
        .map(|a| a.password_hash.clone());
    // argon2 is deliberately slow and large: off the async workers, a few
    // at a time.
    let ok = ctx
        .heavy
        .passwords
        .run(move || password::verify(&password, stored.as_deref()))
        .await?;
    match (ok, admin) {
        (true, Some(a)) => Ok(a),
        _ => {
            tracing::info!(%ip, "failed admin login");
            Err(Error::InvalidCredentials)
        }
    }
}

/// Creates the first owner with the one-time setup token. Refused once an
/// owner exists or the token is spent or expired. Limited per client only:
/// one shared bucket would let anyone block the first setup; the 160-bit
/// token is what protects it.
pub async fn create_first_owner(
    ctx: &Context,
    limiter: &LoginLimiter,
    ip: IpAddr,
    setup_token: &str,
    email: &str,
    password: String,
) -> Result<AdminRow> {
    limiter.check_client(ip)?;
    let mut checks = Checks::new();
    let email = checks.take(Email::parse("email", email));
    checks.take(password::check_strength(&password));
    checks.finish()?;
    let email = email.expect("checked");
    let token_hash = crate::auth::hash_token(setup_token.trim());
    let hash = ctx
        .heavy
        .passwords
        .run(move || password::hash(&password))
        .await??;
    let actor = Actor {
        id: None,
        label: format!("setup token ({})", email.address),
    };
    let admin = store::admins::create(
        &ctx.db,
        &actor,
        &email,
        &hash,
        Role::Owner,
        Some(&token_hash),
    )
    .await?;
    tracing::info!(admin = admin.id, "first owner created with the setup token");
    Ok(admin)
}
