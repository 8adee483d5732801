//! Sponsors: the moderation queue (link, blocklist match, both logo
//! variants on light and dark), approving and rejecting with a reason,
//! logos (upload, approve, an upload link for the sponsor), the paid term,
//! the wall as the public sees it, and terms that end soon.

use axum::{
    extract::{Multipart, State},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use super::{OwnerForm, Signed, after, page};
use crate::{
    auth::session,
    domain::{
        logo::LogoVariant,
        month::Day,
        supporter::{SponsorStatus, SupporterKind, blocked_domain},
    },
    error::{Error, Result},
    http::{
        AppState,
        extract::{Path, Query},
        origin,
    },
    service,
    store::{self, Page, supporters::Filter},
};

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
}

#[derive(Serialize)]
struct LogoView {
    variant: &'static str,
    url: String,
    approved: bool,
    alt: String,
}

#[derive(Serialize)]
struct SponsorView {
    id: i64,
    name: String,
    email: String,
    website: String,
    host: String,
    blocked: Option<String>,
    tier: Option<String>,
    status: &'static str,
    reason: Option<String>,
    paid_through: Option<String>,
    logos: Vec<LogoView>,
    unapproved_logo: bool,
    amount_in_posts: bool,
}

#[derive(Serialize)]
struct SponsorsPage {
    status: String,
    statuses: [&'static str; 4],
    sponsors: Vec<SponsorView>,
    ending: Vec<Ending>,
    upload_link: Option<String>,
    /// The public views' version: the wall's images are fetched again once
    /// it moves (the wall is cached by browsers for a while).
    wall_version: i64,
}

#[derive(Serialize)]
struct Ending {
    id: i64,
    name: String,
    tier: Option<String>,
    paid_through: String,
}

pub async fn list(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<ListQuery>,
) -> Result<Response> {
    let status = match q.status.as_str() {
        "" => Some(SponsorStatus::Pending),
        "all" => None,
        s => Some(
            SponsorStatus::parse(s)
                .ok_or_else(|| Error::field("status", "is not one of the choices"))?,
        ),
    };
    let filter = Filter {
        q: None,
        sponsor_status: status,
    };
    let rows = store::supporters::list(
        &state.db,
        SupporterKind::Sponsor,
        &filter,
        Page {
            after: 0,
            limit: 200,
        },
    )
    .await?;
    let tiers = store::tiers::list(&state.db, true).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let logos = store::logos::of_sponsors(&state.db, &ids).await?;
    let blocklist = &state.settings.sponsors.domain_blocklist;
    let sponsors = rows
        .into_iter()
        .map(|s| {
            let website = s.website_url.clone().unwrap_or_default();
            let host = url::Url::parse(&website)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_default();
            let mine: Vec<_> = logos.iter().filter(|l| l.supporter_id == s.id).collect();
            SponsorView {
                id: s.id,
                blocked: blocked_domain(&host, blocklist).map(str::to_owned),
                name: s.display_name,
                email: s.email,
                website,
                host,
                tier: tiers
                    .iter()
                    .find(|t| Some(t.id) == s.tier_id)
                    .map(|t| t.name.clone()),
                status: s.sponsor_status.map_or("", |st| st.as_str()),
                reason: s.status_reason,
                paid_through: s.paid_through.map(|d| d.to_string()),
                unapproved_logo: mine.iter().any(|l| !l.approved),
                amount_in_posts: s.amount_in_posts,
                logos: mine
                    .iter()
                    .map(|l| LogoView {
                        variant: l.variant.as_str(),
                        url: format!(
                            "/admin/sponsors/{}/logo/{}.png?v={}",
                            s.id,
                            l.variant.as_str(),
                            &l.sha256[..12]
                        ),
                        approved: l.approved,
                        alt: l.alt_text.clone(),
                    })
                    .collect(),
            }
        })
        .collect();
    let today = store::now().date_naive();
    let ending = store::supporters::sponsor_terms_ending(
        &state.db,
        today,
        today + chrono::Duration::days(30),
    )
    .await?
    .into_iter()
    .map(|t| Ending {
        id: t.id,
        name: t.name,
        tier: t.tier_name,
        paid_through: t.paid_through.to_string(),
    })
    .collect();
    page(
        &signed,
        "sponsors.html",
        "sponsors",
        SponsorsPage {
            status: if q.status.is_empty() {
                "pending".into()
            } else {
                q.status
            },
            statuses: ["pending", "approved", "rejected", "all"],
            sponsors,
            ending,
            upload_link: None,
            wall_version: state.public.current().version,
        },
    )
}

/// A logo as stored, for the moderation queue: signed-in admins only.
pub async fn logo(
    State(state): State<AppState>,
    _: Signed,
    Path((id, file)): Path<(i64, String)>,
) -> Result<Response> {
    let variant = file
        .strip_suffix(".png")
        .and_then(LogoVariant::parse)
        .ok_or(Error::NotFound("logo"))?;
    let png = store::logos::png(&state.db, id, variant)
        .await?
        .ok_or(Error::NotFound("logo"))?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        png,
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct DecisionForm {
    decision: String,
    #[serde(default)]
    reason: String,
}

pub async fn decide(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    OwnerForm { signed, form }: OwnerForm<DecisionForm>,
) -> Result<Response> {
    let status = match form.decision.as_str() {
        "approve" => SponsorStatus::Approved,
        "reject" => SponsorStatus::Rejected,
        _ => return Err(Error::field("decision", "must be approve or reject")),
    };
    let outcome =
        service::sponsors::decide(&state, &signed.admin.actor(), id, status, &form.reason)
            .await
            .map(|row| match status {
                SponsorStatus::Approved => {
                    format!("{} is approved: shown while paid.", row.display_name)
                }
                _ => format!("{} is rejected; they were told why.", row.display_name),
            });
    after(signed.cookies, "/admin/sponsors", outcome)
}

#[derive(Deserialize)]
pub struct Confirm {}

pub async fn approve_logo(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    OwnerForm { signed, .. }: OwnerForm<Confirm>,
) -> Result<Response> {
    let outcome = service::sponsors::approve_logo(&state, &signed.admin.actor(), id)
        .await
        .map(|()| "Logo approved.".to_owned());
    after(signed.cookies, "/admin/sponsors?status=all", outcome)
}

#[derive(Deserialize)]
pub struct PaidThroughForm {
    #[serde(default)]
    paid_through: String,
}

pub async fn paid_through(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    OwnerForm { signed, form }: OwnerForm<PaidThroughForm>,
) -> Result<Response> {
    let outcome = async {
        let day = match form.paid_through.trim() {
            "" => None,
            d => Some(
                Day::parse("paid_through", d)
                    .map_err(|e| Error::Validation(vec![e]))?
                    .date(),
            ),
        };
        let row =
            service::sponsors::set_paid_through(&state, &signed.admin.actor(), id, day).await?;
        Ok(match row.paid_through {
            Some(d) => format!("{} is paid through {d}.", row.display_name),
            None => format!("{} has no paid term now.", row.display_name),
        })
    }
    .await;
    after(signed.cookies, "/admin/sponsors?status=all", outcome)
}

#[derive(Deserialize)]
pub struct AmountInPostsForm {
    #[serde(default)]
    allowed: String,
}

/// Records whether the sponsor allowed its amount in the bot's thank-you
/// post (off unless the sponsor said yes).
pub async fn amount_in_posts(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    OwnerForm { signed, form }: OwnerForm<AmountInPostsForm>,
) -> Result<Response> {
    let allowed = form.allowed == "yes";
    let outcome = service::posts::set_amount_in_posts(&state, &signed.admin.actor(), id, allowed)
        .await
        .map(|()| {
            if allowed {
                "Its amount may appear in its thank-you post.".to_owned()
            } else {
                "Its amount stays out of posts.".to_owned()
            }
        });
    after(signed.cookies, "/admin/sponsors?status=all", outcome)
}

/// Issues a signed upload link the sponsor can use once, and shows it.
pub async fn upload_link(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    OwnerForm { signed, .. }: OwnerForm<Confirm>,
) -> Result<Response> {
    let outcome = async {
        let sponsor = store::supporters::get(&state.db, id).await?;
        if sponsor.kind != SupporterKind::Sponsor {
            return Err(Error::NotFound("sponsor"));
        }
        let (url, expires) = crate::links::logo_upload_url(&state, id).await?;
        Ok(format!(
            "Send this link to {}; it works once, until {}: {url}",
            sponsor.display_name,
            expires.format("%Y-%m-%d %H:%M UTC")
        ))
    }
    .await;
    after(signed.cookies, "/admin/sponsors?status=all", outcome)
}

/// An owner's logo upload (multipart: csrf, variant, alt_text, file),
/// approved at once like the API's.
pub async fn upload_logo(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Path(id): Path<i64>,
    mut multipart: Multipart,
) -> Result<Response> {
    origin::same_site_form(&headers, &state.settings.pages.site_url)?;
    let (mut csrf, mut variant, mut alt, mut file) =
        (String::new(), String::new(), String::new(), None);
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| Error::BadRequest(e.body_text()))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let read = |e: axum::extract::multipart::MultipartError| Error::BadRequest(e.body_text());
        match name.as_str() {
            "csrf" => csrf = field.text().await.map_err(read)?,
            "variant" => variant = field.text().await.map_err(read)?,
            "alt_text" => alt = field.text().await.map_err(read)?,
            "file" => file = Some(field.bytes().await.map_err(read)?),
            _ => {}
        }
    }
    if !session::csrf_matches(&signed.csrf, &csrf) {
        return Err(Error::CrossSite);
    }
    signed.owner()?;
    let outcome = async {
        let variant = LogoVariant::parse(&variant).unwrap_or(LogoVariant::Light);
        let file = file
            .filter(|f| !f.is_empty())
            .ok_or_else(|| Error::field("file", "choose a PNG, JPEG or SVG file"))?;
        let logo =
            service::sponsors::upload_logo(&state, &signed.admin.actor(), id, variant, file, alt)
                .await?;
        Ok(format!(
            "Logo saved ({}×{}, {} variant).",
            logo.width,
            logo.height,
            variant.as_str()
        ))
    }
    .await;
    after(signed.cookies, "/admin/sponsors?status=all", outcome)
}
