//! Patrons' fediverse accounts: linking one (OAuth 2 with PKCE at the
//! configured instance, or one the patron types), unlinking, and the role
//! sync helper (who became an active supporter or stopped, as `tootctl`
//! lines or a configured command).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    context::{Context, Effects},
    domain::fediverse::{
        host_of, is_full_acct, is_public_ip, local_username, parse_instance_url, profile_url,
        tootctl_line,
    },
    error::{Error, Result},
    fediverse::oauth,
    store::{self, fediverse::Link, oauth::LinkState},
};

/// How long a link may take, from our page back to it.
const LINK_MINUTES: i64 = 10;

/// How a patron shows who they are: the Stripe Checkout session id of the
/// thank-you page, or their emailed management link's token.
#[derive(Debug, Clone)]
pub enum Proof {
    Checkout(String),
    Manage(String),
}

/// The patron a proof is for; Unauthorized if it is not (any more).
pub async fn patron_of(ctx: &Context, proof: &Proof) -> Result<i64> {
    let found = match proof {
        Proof::Checkout(session) if !session.trim().is_empty() => {
            store::fediverse::patron_of_checkout(&ctx.db, session.trim()).await?
        }
        Proof::Manage(token) if !token.trim().is_empty() => {
            store::fediverse::patron_of_manage_link(
                &ctx.db,
                &crate::links::token_hash(token.trim()),
            )
            .await?
        }
        _ => None,
    };
    found.ok_or(Error::Unauthorized)
}

/// What the patron agreed to.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Consent {
    /// Show the account next to their name on the public page.
    pub public: bool,
    /// Mention it in a thank-you post.
    pub mention: bool,
}

/// A link started: where to send the patron, and the value of the cookie
/// that binds the flow to their browser.
pub struct Started {
    pub authorize_url: String,
    pub binding: String,
}

fn callback(site_url: &str) -> String {
    format!("{site_url}/patron/fediverse/callback")
}

/// The instance to link at and an HTTP client for it. The configured
/// instance is trusted as the owner wrote it; one a patron typed must be a
/// public https host, and the client is pinned to the public address it
/// resolved to, so a second lookup cannot point it inside our network.
async fn instance_and_client(ctx: &Context, typed: &str) -> Result<(String, reqwest::Client)> {
    let configured = ctx.settings.mastodon_instance();
    let typed = typed.trim().trim_end_matches('/');
    let same = |c: &String| {
        typed.is_empty()
            || typed.eq_ignore_ascii_case(c)
            || host_of(c).is_some_and(|h| typed.eq_ignore_ascii_case(&h))
    };
    if let Some(c) = configured.as_ref().filter(|c| same(c)) {
        return Ok((c.clone(), oauth::client()?));
    }
    if typed.is_empty() {
        return Err(Error::field(
            "instance",
            "type your instance, e.g. mastodon.social",
        ));
    }
    if !ctx.settings.mastodon.link_any_instance {
        return Err(Error::field(
            "instance",
            "only accounts on this server's own instance can be linked",
        ));
    }
    let url = parse_instance_url(typed).map_err(|e| Error::Validation(vec![e]))?;
    let parsed = url::Url::parse(&url).map_err(Error::internal_from)?;
    let host = parsed.host_str().unwrap_or_default().to_owned();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addrs: Vec<std::net::SocketAddr> =
        tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|_| Error::field("instance", "cannot be found"))?
            .collect();
    let Some(first) = addrs.first().copied() else {
        return Err(Error::field("instance", "cannot be found"));
    };
    if addrs.iter().any(|a| !is_public_ip(a.ip())) {
        return Err(Error::field("instance", "is not a public instance"));
    }
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("patronage/", env!("CARGO_PKG_VERSION")))
        .resolve(&host, first)
        .build()
        .map_err(Error::internal_from)?;
    Ok((url, client))
}

/// Starts "Link your Mastodon account": registers the app at the instance
/// once (kept per instance), keeps the state, PKCE verifier, patron and
/// consent, and returns where to approve.
pub async fn link_start(
    ctx: &Context,
    site_url: &str,
    proof: &Proof,
    instance: &str,
    consent: Consent,
) -> Result<Started> {
    let supporter_id = patron_of(ctx, proof).await?;
    let (instance, http) = instance_and_client(ctx, instance).await?;
    let redirect = callback(site_url);
    let app = match store::oauth::app(&ctx.db, &instance, &redirect).await? {
        Some(app) => app,
        None => {
            // Registered first, stored after: an instance that answers
            // garbage leaves nothing behind.
            let app = oauth::register(&http, &instance, &redirect, site_url).await?;
            if app.client_id.trim().is_empty() {
                return Err(Error::Unavailable(
                    "the Mastodon instance did not answer (registering the app)".into(),
                ));
            }
            store::oauth::put_app(&ctx.db, &instance, &redirect, &app).await?;
            app
        }
    };
    let state = crate::auth::session::mint();
    let binding = crate::auth::session::mint();
    let (verifier, challenge) = oauth::pkce();
    let link = LinkState {
        supporter_id,
        instance_url: instance.clone(),
        verifier,
        binding_hash: crate::auth::hash_token(&binding),
        consent: serde_json::to_string(&consent).map_err(Error::internal_from)?,
        next: String::new(),
    };
    let expires = store::now() + chrono::Duration::minutes(LINK_MINUTES);
    store::oauth::put_link_state(&ctx.db, &crate::auth::hash_token(&state), &link, expires).await?;
    let authorize_url = oauth::authorize_url(&instance, &app, &redirect, &state, &challenge)?;
    Ok(Started {
        authorize_url,
        binding,
    })
}

/// Finishes a link: the state must be one we issued (once, recently) to
/// this browser (`binding`, its cookie), the code is traded with our
/// verifier, and the account becomes the patron's. A patron who agreed to
/// be mentioned and already supports us gets their thank-you post.
pub async fn link_finish(
    ctx: &Context,
    site_url: &str,
    state: &str,
    code: &str,
    binding: Option<&str>,
) -> Result<Link> {
    let pending = store::oauth::take_link_state(&ctx.db, &crate::auth::hash_token(state))
        .await?
        .ok_or(Error::InvalidCredentials)?;
    let bound = binding.is_some_and(|b| crate::auth::hash_token(b) == pending.binding_hash);
    if !bound {
        tracing::info!(
            supporter = pending.supporter_id,
            "link callback from another browser"
        );
        return Err(Error::InvalidCredentials);
    }
    let consent: Consent = serde_json::from_str(&pending.consent).unwrap_or_default();
    let redirect = callback(site_url);
    let (instance, http) = instance_and_client(ctx, &pending.instance_url).await?;
    let app = store::oauth::app(&ctx.db, &instance, &redirect)
        .await?
        .ok_or(Error::InvalidCredentials)?;
    let account =
        oauth::account(&http, &instance, &app, &redirect, code, &pending.verifier).await?;
    let acct = account.full_acct(&instance);
    if !is_full_acct(&acct) {
        tracing::warn!(%acct, "instance sent an account name we cannot use");
        return Err(Error::Unavailable(
            "the Mastodon instance did not answer (reading the account)".into(),
        ));
    }
    let link = Link {
        profile_url: account
            .url
            .as_deref()
            .and_then(|u| profile_url(u, &acct, &instance)),
        acct,
        linked_at: ctx.now(),
        public: consent.public,
        mention: consent.mention,
    };
    let mut tx = ctx.db.begin_write().await?;
    store::fediverse::set_link(&mut tx, pending.supporter_id, &link).await?;
    if consent.mention && store::fediverse::has_active_pledge(&mut tx, pending.supporter_id).await?
    {
        crate::service::posts::patron_started(&mut tx, pending.supporter_id).await?;
    }
    tx.commit().await?;
    ctx.after_commit_now(Effects::PUBLIC | Effects::TASKS).await;
    Ok(link)
}

/// Unlinks the patron's account; false if none was linked.
pub async fn unlink(ctx: &Context, proof: &Proof) -> Result<bool> {
    let supporter_id = patron_of(ctx, proof).await?;
    let done = store::fediverse::unlink(&ctx.db, supporter_id).await?;
    ctx.after_commit_now(Effects::PUBLIC).await;
    Ok(done)
}

/// Changes what the patron agreed to, without linking again; false if no
/// account is linked. Agreeing to be mentioned while supporting us queues
/// the thank-you they would have had at linking (once per patron, ever).
pub async fn set_consent(ctx: &Context, proof: &Proof, consent: Consent) -> Result<bool> {
    let supporter_id = patron_of(ctx, proof).await?;
    let mut tx = ctx.db.begin_write().await?;
    if !store::fediverse::set_consent(&mut tx, supporter_id, consent.public, consent.mention)
        .await?
    {
        return Ok(false);
    }
    if consent.mention && store::fediverse::has_active_pledge(&mut tx, supporter_id).await? {
        crate::service::posts::patron_started(&mut tx, supporter_id).await?;
    }
    tx.commit().await?;
    ctx.after_commit_now(Effects::PUBLIC | Effects::TASKS).await;
    Ok(true)
}

/// The patron's current link, for their page.
pub async fn link_of(ctx: &Context, proof: &Proof) -> Result<Option<Link>> {
    let supporter_id = patron_of(ctx, proof).await?;
    store::fediverse::link_of(&ctx.db, supporter_id).await
}

/// One change for the role sync: an account that became an active
/// supporter (give the role) or stopped (remove it).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RoleSyncChange {
    pub id: i64,
    pub acct: String,
    /// "grant" or "revoke".
    pub change: &'static str,
    /// On the configured instance: only such accounts can hold its roles.
    pub local: bool,
    /// The user name at the instance, when local and safe to write in a
    /// command line (letters, digits, underscores).
    pub username: Option<String>,
    /// The `tootctl` line to run, when there is one.
    pub line: Option<String>,
    /// Why there is no line.
    pub note: Option<String>,
    pub detected_at: chrono::DateTime<chrono::Utc>,
}

/// The role sync's report: each change not yet acknowledged.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RoleSync {
    pub role: String,
    /// The configured instance's host, or null when none is configured.
    pub instance: Option<String>,
    pub changes: Vec<RoleSyncChange>,
    /// The `tootctl` lines alone, in order.
    pub lines: Vec<String>,
    /// Give this to acknowledge these changes (the last change's id).
    pub up_to: Option<i64>,
}

/// The changes not yet acknowledged, with their `tootctl` lines.
pub async fn role_sync(ctx: &Context) -> Result<RoleSync> {
    role_sync_report(&ctx.db, &ctx.settings).await
}

/// `role_sync` for the command line, which has no running service.
pub async fn role_sync_report(
    db: &store::Db,
    settings: &crate::config::Settings,
) -> Result<RoleSync> {
    let role = settings.mastodon.role_sync_role.trim().to_owned();
    let host = settings.mastodon_instance().and_then(|u| host_of(&u));
    let changes: Vec<RoleSyncChange> = store::fediverse::open_role_changes(db)
        .await?
        .into_iter()
        .map(|c| {
            let local = host.as_deref().is_some_and(|h| {
                c.acct
                    .rsplit_once('@')
                    .is_some_and(|(_, ah)| ah.eq_ignore_ascii_case(h))
            });
            let username = host
                .as_deref()
                .and_then(|h| local_username(&c.acct, h))
                .map(str::to_owned);
            let (line, note) = match (&username, local) {
                (Some(u), _) => (Some(tootctl_line(u, &role, c.active)), None),
                (None, true) => (
                    None,
                    Some("the user name is not one tootctl can be given safely"),
                ),
                (None, false) => (
                    None,
                    Some("a remote account: roles exist only for this instance's own accounts"),
                ),
            };
            RoleSyncChange {
                id: c.id,
                acct: c.acct,
                change: if c.active { "grant" } else { "revoke" },
                local,
                username,
                line,
                note: note.map(str::to_owned),
                detected_at: c.detected_at,
            }
        })
        .collect();
    Ok(RoleSync {
        role,
        instance: host,
        lines: changes.iter().filter_map(|c| c.line.clone()).collect(),
        up_to: changes.last().map(|c| c.id),
        changes,
    })
}

/// Marks the changes up to `up_to` as done (an admin ran the lines).
pub async fn acknowledge(ctx: &Context, up_to: i64, by: &str) -> Result<u64> {
    store::fediverse::mark_reported(&ctx.db, up_to, by).await
}

/// The daily look: records each change of status once, then, with
/// `mastodon.role_sync_command` set, runs it with the open changes as JSON
/// lines on stdin and marks them done when it exits 0.
pub async fn daily(ctx: &Context) -> Result<String> {
    let found = store::fediverse::detect_role_changes(&ctx.db).await?;
    let command = &ctx.settings.mastodon.role_sync_command;
    if command.is_empty() {
        return Ok(format!("{found} role changes found"));
    }
    let report = role_sync(ctx).await?;
    let Some(up_to) = report.up_to else {
        return Ok(format!("{found} role changes found; nothing to run"));
    };
    let mut input = String::new();
    for c in &report.changes {
        let line = serde_json::json!({
            "acct": c.acct, "change": c.change, "local": c.local, "username": c.username,
            "role": report.role, "line": c.line,
        });
        input.push_str(&line.to_string());
        input.push('\n');
    }
    run_command(command, &input).await?;
    acknowledge(ctx, up_to, "role_sync_command").await?;
    Ok(format!(
        "{found} role changes found; {} given to the role sync command",
        report.changes.len()
    ))
}

/// Runs the configured command (no shell) with `input` on stdin, at most a
/// minute.
async fn run_command(argv: &[String], input: &str) -> Result<()> {
    let argv = argv.to_vec();
    let input = input.to_owned();
    let run = tokio::task::spawn_blocking(move || run_command_blocking(&argv, &input));
    tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .map_err(|_| Error::internal("role sync command took over a minute"))?
        .map_err(Error::internal)?
}

fn run_command_blocking(argv: &[String], input: &str) -> Result<()> {
    use std::io::Write;
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| Error::Config("mastodon.role_sync_command is empty".into()))?;
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Error::internal(format!("role sync command {program:?}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| Error::internal(format!("role sync command stdin: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::internal(format!("role sync command: {e}")))?;
    if !out.status.success() {
        let err: String = String::from_utf8_lossy(&out.stderr)
            .chars()
            .take(500)
            .collect();
        return Err(Error::internal(format!(
            "role sync command exited with {}: {err}",
            out.status
        )));
    }
    Ok(())
}
