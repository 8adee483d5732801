//! Settings, for owners: the campaign, the admins (invite, role, sessions),
//! and "Put it on your about page": the README's snippets filled in with
//! this instance's URLs, with a live preview of the embed and badges.

use axum::{
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use super::{OwnerForm, Signed, after, page};
use crate::{
    auth::Role,
    domain::{
        campaign::Campaign,
        money::{Currency, Money},
    },
    error::{Error, Result},
    http::{
        AppState,
        extract::{Path, Query},
    },
    service, store,
};

#[derive(Serialize)]
struct AdminView {
    id: i64,
    email: String,
    role: &'static str,
    since: String,
    me: bool,
    mastodon_acct: String,
}

#[derive(Serialize)]
struct SettingsPage {
    name: String,
    description: String,
    currency: &'static str,
    goal: String,
    public_base_url: String,
    admins: Vec<AdminView>,
    /// Whether sign-in with Mastodon is on (`auth.mastodon.instance_url`).
    mastodon: bool,
    site: String,
    instance: String,
    markdown: String,
    nginx: String,
    campaign_url: String,
}

pub async fn show(State(state): State<AppState>, signed: Signed) -> Result<Response> {
    signed.owner()?;
    let c = store::campaign::get(&state.db).await?;
    let accts = store::admins::mastodon_accts(&state.db).await?;
    let admins = store::admins::list(&state.db)
        .await?
        .into_iter()
        .filter(|a| !a.disabled)
        .map(|a| AdminView {
            mastodon_acct: accts
                .iter()
                .find(|(id, _)| *id == a.id)
                .map(|(_, acct)| acct.clone())
                .unwrap_or_default(),
            me: a.id == signed.admin.id,
            id: a.id,
            email: a.email,
            role: a.role.as_str(),
            since: a.created_at.format("%Y-%m-%d").to_string(),
        })
        .collect();
    let site = state.public.current().data.site_url.clone();
    let instance = state
        .settings
        .pages
        .instance_url
        .trim_end_matches('/')
        .to_owned();
    let host = url::Url::parse(&site)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let badge_base = if instance.is_empty() {
        site.clone()
    } else {
        format!("{instance}/funding")
    };
    let markdown = format!(
        "## Support this server\n{name} is paid for by its members.\n[Support us]({site}/support) ·\n\
         [Where the money goes]({site}/funding.json)\n\n\
         <iframe src=\"{site}/embed/progress\" width=\"100%\" height=\"120\"\n  style=\"border:0\" title=\"Funding progress\"></iframe>\n\n\
         ![patrons]({badge_base}/badge/patrons.svg)\n![monthly]({badge_base}/badge/monthly.svg)\n",
        name = c.name,
    );
    let nginx = format!(
        "location /funding/ {{\n    proxy_pass {site}/;\n    proxy_set_header Host {host};\n    proxy_ssl_server_name on;\n    \
         proxy_hide_header Set-Cookie;\n    proxy_cache_valid 200 5m;\n}}\n"
    );
    page(
        &signed,
        "settings.html",
        "settings",
        SettingsPage {
            name: c.name,
            description: c.description,
            currency: c.currency.code(),
            goal: c
                .monthly_goal_minor
                .map(|g| Money::new(g, c.currency).decimal())
                .unwrap_or_default(),
            public_base_url: c.public_base_url.unwrap_or_default(),
            admins,
            mastodon: !state.settings.auth.mastodon.instance_url.is_empty(),
            campaign_url: format!("{site}/mastodon/campaign"),
            site,
            instance,
            markdown,
            nginx,
        },
    )
}

#[derive(Deserialize)]
pub struct CampaignForm {
    name: String,
    #[serde(default)]
    description: String,
    currency: String,
    #[serde(default)]
    goal: String,
    #[serde(default)]
    public_base_url: String,
}

pub async fn update_campaign(
    State(state): State<AppState>,
    OwnerForm { signed, form }: OwnerForm<CampaignForm>,
) -> Result<Response> {
    let outcome = async {
        let currency = Currency::parse(form.currency.trim())
            .ok_or_else(|| Error::field("currency", "must be an ISO 4217 currency code"))?;
        let goal = match form.goal.trim() {
            "" => None,
            g => Some(
                Money::parse_decimal(g, currency)
                    .map_err(|m| Error::field("goal", m))?
                    .amount_minor,
            ),
        };
        let next = Campaign {
            name: form.name,
            description: form.description,
            currency,
            monthly_goal_minor: goal,
            public_base_url: Some(form.public_base_url.trim().to_owned()).filter(|u| !u.is_empty()),
        }
        .validate()?;
        service::campaign::update(&state, &signed.admin.actor(), &next).await?;
        Ok("Campaign saved; the public pages show it within seconds.".to_owned())
    }
    .await;
    after(signed.cookies, "/admin/settings", outcome)
}

#[derive(Deserialize)]
pub struct InviteForm {
    email: String,
    role: String,
}

pub async fn invite(
    State(state): State<AppState>,
    OwnerForm { signed, form }: OwnerForm<InviteForm>,
) -> Result<Response> {
    let outcome = async {
        let role = Role::parse(&form.role)
            .ok_or_else(|| Error::field("role", "must be owner or viewer"))?;
        let site = state.public.current().data.site_url.clone();
        let link = service::admins::invite(&state, &signed.admin.actor(), &form.email, role, &site)
            .await?;
        Ok(format!(
            "Send this link to {}; it works once, for {} hours: {link}",
            form.email.trim(),
            service::admins::INVITE_TTL_HOURS
        ))
    }
    .await;
    after(signed.cookies, "/admin/settings#admins", outcome)
}

#[derive(Deserialize)]
pub struct RoleForm {
    role: String,
}

pub async fn set_role(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    OwnerForm { signed, form }: OwnerForm<RoleForm>,
) -> Result<Response> {
    let outcome = async {
        let role = Role::parse(&form.role)
            .ok_or_else(|| Error::field("role", "must be owner or viewer"))?;
        let row = service::admins::set_role(&state, &signed.admin.actor(), id, role).await?;
        Ok(format!("{} is now {}.", row.email, row.role.as_str()))
    }
    .await;
    after(signed.cookies, "/admin/settings#admins", outcome)
}

#[derive(Deserialize)]
pub struct MastodonForm {
    #[serde(default)]
    acct: String,
}

pub async fn link_mastodon(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    OwnerForm { signed, form }: OwnerForm<MastodonForm>,
) -> Result<Response> {
    let outcome = service::admins::link_mastodon(&state, &signed.admin.actor(), id, &form.acct)
        .await
        .map(|()| {
            if form.acct.trim().is_empty() {
                "Mastodon account unlinked.".to_owned()
            } else {
                format!("{} now signs in with Mastodon.", form.acct.trim())
            }
        });
    after(signed.cookies, "/admin/settings#admins", outcome)
}

#[derive(Deserialize)]
pub struct Confirm {}

pub async fn revoke_sessions(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    OwnerForm { signed, .. }: OwnerForm<Confirm>,
) -> Result<Response> {
    let outcome = service::admins::revoke_sessions(&state, &signed.admin.actor(), id)
        .await
        .map(|n| format!("Ended {n} session(s)."));
    after(signed.cookies, "/admin/settings#admins", outcome)
}

#[derive(Deserialize)]
pub struct ThemeQuery {
    theme: Option<String>,
}

/// The embed, framed by the settings page's preview: the same bytes as
/// `/embed/progress`, but only this site may frame it.
pub async fn embed_preview(
    State(state): State<AppState>,
    _: Signed,
    Query(q): Query<ThemeQuery>,
) -> Response {
    let snapshot = state.public.current();
    let rendered = match q.theme.as_deref() {
        Some("dark") => &snapshot.embed_dark,
        _ => &snapshot.embed_light,
    };
    let mut res = (
        [(header::CONTENT_TYPE, rendered.content_type)],
        rendered.body.clone(),
    )
        .into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; form-action 'none'; base-uri 'none'; frame-ancestors 'self'",
        ),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    res
}
