//! Signing admins in and creating the first owner: the same rules for the
//! JSON API and the console.

use std::net::IpAddr;

use crate::{
    auth::{Role, password, ratelimit::LoginLimiter, second_factor},
    context::Context,
    domain::{Checks, supporter::Email},
    error::{Error, Result},
    fediverse::oauth,
    store::{
        self,
        admins::{AdminRow, Grant},
        audit::Actor,
    },
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
        // An admin made from a Mastodon account has no password (empty):
        // it is checked against the dummy, as an unknown email is.
        .filter(|a| !a.disabled && !a.password_hash.is_empty())
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

/// argon2 is deliberately slow and large: off the async workers, a few at
/// a time.
async fn hash_password(ctx: &Context, password: String) -> Result<String> {
    ctx.heavy
        .passwords
        .run(move || password::hash(&password))
        .await?
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
    let hash = hash_password(ctx, password).await?;
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
        Grant::SetupToken(&token_hash),
    )
    .await?;
    tracing::info!(admin = admin.id, "first owner created with the setup token");
    Ok(admin)
}

/// How long an invite link works.
pub const INVITE_TTL_HOURS: i64 = 72;

/// Invites `email` as a `role`: returns the single-use link that lets them
/// set their password (the owner sends it; only its hash is kept).
pub async fn invite(
    ctx: &Context,
    actor: &Actor,
    email: &str,
    role: Role,
    base_url: &str,
) -> Result<String> {
    let email = Email::parse("email", email).map_err(|e| Error::Validation(vec![e]))?;
    if store::admins::find_by_email(&ctx.db, &email.normalized)
        .await?
        .is_some()
    {
        return Err(Error::conflict(
            "email",
            "an admin with this email already exists",
        ));
    }
    let token = crate::auth::session::mint();
    let ttl = chrono::Duration::hours(INVITE_TTL_HOURS);
    store::admins::invite(
        &ctx.db,
        actor,
        &crate::auth::hash_token(&token),
        &email,
        role,
        ttl,
    )
    .await?;
    Ok(format!("{base_url}/admin/invite?token={token}"))
}

/// The invitee sets their password: the invite is spent and they become
/// an admin with the role they were invited as.
pub async fn accept_invite(
    ctx: &Context,
    limiter: &LoginLimiter,
    ip: IpAddr,
    token: &str,
    password: String,
) -> Result<AdminRow> {
    limiter.check_client(ip)?;
    let token_hash = crate::auth::hash_token(token.trim());
    let invite = store::admins::live_invite(&ctx.db, &token_hash)
        .await?
        .ok_or(Error::Unauthorized)?;
    password::check_strength(&password).map_err(|e| Error::Validation(vec![e]))?;
    let email = Email::parse("email", &invite.email).map_err(|e| Error::Validation(vec![e]))?;
    let hash = hash_password(ctx, password).await?;
    let actor = Actor {
        id: None,
        label: format!("invite ({})", email.address),
    };
    store::admins::create(
        &ctx.db,
        &actor,
        &email,
        &hash,
        invite.role,
        Grant::Invite(&token_hash),
    )
    .await
}

/// Changes an admin's role; the last owner stays an owner.
pub async fn set_role(ctx: &Context, actor: &Actor, id: i64, role: Role) -> Result<AdminRow> {
    store::admins::set_role(&ctx.db, actor, id, role).await
}

/// Ends every console session of an admin (a lost laptop), audited.
pub async fn revoke_sessions(ctx: &Context, actor: &Actor, id: i64) -> Result<u64> {
    let n = store::sessions::revoke_all(&ctx.db, id, store::now()).await?;
    store::audit::record(
        &ctx.db,
        actor,
        "admin.sessions_revoked",
        "admin",
        id,
        serde_json::json!({"sessions": n}),
    )
    .await?;
    Ok(n)
}

fn unix_now() -> u64 {
    store::now().timestamp().max(0) as u64
}

/// Checks the second factor of an admin who has one: a TOTP code not used
/// before, or an unspent recovery code (which is then spent). An admin
/// without one passes. The caller counts the try against the login limits
/// (the API's login already has, with the password).
pub async fn check_second_factor(ctx: &Context, admin: &AdminRow, code: &str) -> Result<()> {
    let Some((secret, last_step)) = store::admins::second_factor(&ctx.db, admin.id).await? else {
        return Ok(());
    };
    if let Some(step) = second_factor::accept(&secret, code, last_step, unix_now())
        && store::admins::use_totp_step(&ctx.db, admin.id, step).await?
    {
        return Ok(());
    }
    if store::admins::use_recovery_code(&ctx.db, admin.id, &second_factor::recovery_hash(code))
        .await?
    {
        tracing::info!(admin = admin.id, "signed in with a recovery code");
        return Ok(());
    }
    tracing::info!(admin = admin.id, "wrong second factor");
    Err(Error::InvalidCredentials)
}

pub async fn has_second_factor(ctx: &Context, admin_id: i64) -> Result<bool> {
    Ok(store::admins::second_factor(&ctx.db, admin_id)
        .await?
        .is_some())
}

/// What an admin setting up the second factor is shown: the secret (to
/// type in), its `otpauth://` link, and that link as a QR code (SVG).
pub struct Enrolment {
    pub secret: String,
    pub url: String,
    pub qr_svg: String,
}

/// Starts setting up the second factor: a new secret, kept aside until a
/// code from the admin's app proves the app has it.
pub async fn start_second_factor(ctx: &Context, admin_id: i64, email: &str) -> Result<Enrolment> {
    let secret = second_factor::new_secret();
    store::admins::set_pending_totp(&ctx.db, admin_id, Some(&secret)).await?;
    let url = second_factor::otpauth_url(&secret, email)?;
    Ok(Enrolment {
        qr_svg: second_factor::qr_svg(&url)?,
        url,
        secret,
    })
}

/// The enrolment being set up, if any (to show it again after a wrong code).
pub async fn pending_second_factor(
    ctx: &Context,
    admin_id: i64,
    email: &str,
) -> Result<Option<Enrolment>> {
    let Some(secret) = store::admins::pending_totp(&ctx.db, admin_id).await? else {
        return Ok(None);
    };
    let url = second_factor::otpauth_url(&secret, email)?;
    Ok(Some(Enrolment {
        qr_svg: second_factor::qr_svg(&url)?,
        url,
        secret,
    }))
}

/// Turns the second factor on once `code` comes from the pending secret;
/// returns the recovery codes, shown once (only their hashes are kept).
pub async fn confirm_second_factor(
    ctx: &Context,
    actor: &Actor,
    admin_id: i64,
    code: &str,
) -> Result<Vec<String>> {
    let secret = store::admins::pending_totp(&ctx.db, admin_id)
        .await?
        .ok_or_else(|| Error::conflict("code", "start the setup again: no secret is waiting"))?;
    let step = second_factor::accept(&secret, code, None, unix_now()).ok_or_else(|| {
        Error::field(
            "code",
            "does not match: check the time on your phone and try the next code",
        )
    })?;
    let codes = second_factor::recovery_codes();
    let hashes: Vec<String> = codes
        .iter()
        .map(|c| second_factor::recovery_hash(c))
        .collect();
    store::admins::enable_totp(&ctx.db, actor, admin_id, &secret, step, &hashes).await?;
    Ok(codes)
}

/// Turns the second factor off, on a current code (or a recovery code).
pub async fn turn_off_second_factor(
    ctx: &Context,
    limiter: &LoginLimiter,
    ip: IpAddr,
    actor: &Actor,
    admin: &AdminRow,
    code: &str,
) -> Result<()> {
    limiter.check(ip, &admin.email.to_lowercase())?;
    check_second_factor(ctx, admin, code)
        .await
        .map_err(|e| match e {
            Error::InvalidCredentials => Error::field("code", "does not match"),
            other => other,
        })?;
    store::admins::disable_totp(&ctx.db, actor, admin.id).await
}

/// How long a "Sign in with Mastodon" may take, from our page back to it.
const MASTODON_SIGN_IN_MINUTES: i64 = 10;

fn mastodon_callback(site_url: &str) -> String {
    format!("{site_url}/admin/login/mastodon/callback")
}

/// Starts "Sign in with Mastodon": registers this console at the instance
/// once, keeps a state and PKCE verifier, and returns where to send the
/// person to approve.
pub async fn mastodon_start(ctx: &Context, site_url: &str, next: &str) -> Result<String> {
    let instance = ctx
        .settings
        .auth
        .mastodon
        .instance_url
        .trim_end_matches('/');
    if instance.is_empty() {
        return Err(Error::NotFound("sign-in with Mastodon"));
    }
    let redirect = mastodon_callback(site_url);
    let app = match store::oauth::app(&ctx.db, instance, &redirect).await? {
        Some(app) => app,
        None => {
            let app = oauth::register(&oauth::client()?, instance, &redirect, site_url).await?;
            store::oauth::put_app(&ctx.db, instance, &redirect, &app).await?;
            app
        }
    };
    let state = crate::auth::session::mint();
    let (verifier, challenge) = oauth::pkce();
    let expires = store::now() + chrono::Duration::minutes(MASTODON_SIGN_IN_MINUTES);
    store::oauth::put_state(
        &ctx.db,
        &crate::auth::hash_token(&state),
        &verifier,
        next,
        expires,
    )
    .await?;
    oauth::authorize_url(instance, &app, &redirect, &state, &challenge)
}

/// Finishes "Sign in with Mastodon": the state must be one we issued (once,
/// recently), the code is traded with our verifier, and the account must be
/// linked to an admin, or, when the owner opted in
/// (`auth.mastodon.administrators_as`), hold the instance's Administrator
/// permission. Returns the admin and where to go next.
pub async fn mastodon_finish(
    ctx: &Context,
    site_url: &str,
    state: &str,
    code: &str,
) -> Result<(AdminRow, String)> {
    let instance = ctx
        .settings
        .auth
        .mastodon
        .instance_url
        .trim_end_matches('/');
    if instance.is_empty() {
        return Err(Error::NotFound("sign-in with Mastodon"));
    }
    let (verifier, next) = store::oauth::take_state(&ctx.db, &crate::auth::hash_token(state))
        .await?
        .ok_or(Error::InvalidCredentials)?;
    let redirect = mastodon_callback(site_url);
    let app = store::oauth::app(&ctx.db, instance, &redirect)
        .await?
        .ok_or(Error::InvalidCredentials)?;
    let account = oauth::account(
        &oauth::client()?,
        instance,
        &app,
        &redirect,
        code,
        &verifier,
    )
    .await?;
    let acct = account.full_acct(instance);
    match store::admins::find_by_mastodon_acct(&ctx.db, &acct).await? {
        Some(admin) if !admin.disabled => {
            tracing::info!(admin = admin.id, "signed in with Mastodon");
            Ok((admin, next))
        }
        Some(_) => {
            tracing::info!(%acct, "Mastodon account linked to a disabled admin");
            Err(Error::Forbidden)
        }
        // Never "first to sign in becomes admin": only an account holding
        // the Administrator permission, and only if the owner opted in.
        None => match ctx.settings.auth.mastodon.administrators_role() {
            Some(role) if account.is_instance_administrator() => {
                let admin = store::admins::create_for_mastodon(
                    &ctx.db,
                    &Actor::mastodon_role(),
                    &acct,
                    role,
                )
                .await?;
                tracing::info!(admin = admin.id, %acct, "admin made from a Mastodon administrator");
                Ok((admin, next))
            }
            _ => {
                tracing::info!(%acct, "Mastodon account not linked to an admin");
                Err(Error::Forbidden)
            }
        },
    }
}

/// Links a Mastodon account to an admin (blank unlinks): with it, that
/// account signs in as this admin.
pub async fn link_mastodon(ctx: &Context, actor: &Actor, id: i64, acct: &str) -> Result<()> {
    let acct = acct.trim();
    if acct.is_empty() {
        return store::admins::set_mastodon_acct(&ctx.db, actor, id, None).await;
    }
    let full = oauth::full_acct(acct, &ctx.settings.auth.mastodon.instance_url);
    let (user, host) = full.split_once('@').unwrap_or(("", ""));
    let fine = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    };
    if !fine(user) || !fine(host) || !host.contains('.') {
        return Err(Error::field(
            "mastodon_acct",
            "must look like user@example.social",
        ));
    }
    store::admins::set_mastodon_acct(&ctx.db, actor, id, Some(&full)).await
}
