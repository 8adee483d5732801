//! Patrons and sponsors: list, search, create, and sponsor moderation.

use axum::{extract::State, http::StatusCode};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{PageQuery, Paged, page};
use crate::{
    domain::{
        logo::LogoVariant,
        month::Day,
        supporter::{PatronDraft, SponsorDraft, SponsorStatus, SupporterKind, Visibility},
        text,
    },
    error::{Error, Result},
    http::{
        AppState,
        extract::{Admin, Json, Owner, Path, Query},
    },
    store::{
        self,
        supporters::{Filter, SupporterRow},
    },
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_patrons, create_patron))
        .routes(routes!(get_supporter))
        .routes(routes!(list_sponsors, create_sponsor))
        .routes(routes!(approve_sponsor))
        .routes(routes!(reject_sponsor))
        .routes(routes!(set_paid_through))
        .routes(routes!(approve_logo))
        .routes(routes!(logo_upload_link))
        .merge(
            // Logos are larger than JSON bodies; their own limit is checked
            // by `Logo::parse` (sponsors.logo_max_bytes).
            OpenApiRouter::new()
                .routes(routes!(upload_logo))
                .layer(axum::extract::DefaultBodyLimit::max(LOGO_BODY_LIMIT)),
        )
}

/// Largest logo request body accepted before `sponsors.logo_max_bytes` is
/// checked.
const LOGO_BODY_LIMIT: usize = 8 << 20;

/// A supporter as admins see it (emails included; never public).
#[derive(Serialize, ToSchema)]
struct SupporterView {
    id: i64,
    kind: SupporterKind,
    email: String,
    /// The patron's name, or the sponsor's company name.
    display_name: String,
    visibility: Visibility,
    website_url: Option<String>,
    tier_id: Option<i64>,
    sponsor_status: Option<SponsorStatus>,
    status_reason: Option<String>,
    paid_through: Option<NaiveDate>,
    logo_ref: Option<String>,
    active_pledges: i64,
    /// The patron's linked fediverse account (user@host), if they linked one.
    fediverse_acct: Option<String>,
    /// Its profile page (https, on the account's host or the instance's).
    fediverse_url: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<SupporterRow> for SupporterView {
    fn from(s: SupporterRow) -> Self {
        SupporterView {
            id: s.id,
            kind: s.kind,
            email: s.email,
            display_name: s.display_name,
            visibility: s.visibility,
            website_url: s.website_url,
            tier_id: s.tier_id,
            sponsor_status: s.sponsor_status,
            status_reason: s.status_reason,
            paid_through: s.paid_through,
            logo_ref: s.logo_ref,
            active_pledges: s.active_pledges,
            fediverse_acct: s.fediverse_acct,
            fediverse_url: s.fediverse_url,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// The search text: its first 100 characters, refused with control
/// characters (which no name or address holds, and NUL cannot even reach
/// PostgreSQL).
fn search(q: Option<String>) -> Result<Option<String>> {
    let Some(q) = q else { return Ok(None) };
    let q: String = q.trim().chars().take(100).collect();
    let q = text("q", &q, 0, 100, false).map_err(|e| Error::Validation(vec![e]))?;
    Ok(Some(q).filter(|s| !s.is_empty()))
}

/// Patrons, oldest first, with search.
#[utoipa::path(get, path = "/api/v1/admin/patrons", tag = "admin", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = Paged<SupporterView>)))]
async fn list_patrons(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<PageQuery>,
) -> Result<axum::Json<Paged<SupporterView>>> {
    let page = page(q.after, q.limit)?;
    let filter = Filter {
        q: search(q.q)?,
        sponsor_status: None,
    };
    let rows = store::supporters::list(&state.db, SupporterKind::Patron, &filter, page).await?;
    Ok(axum::Json(Paged::new(
        rows.into_iter().map(Into::into).collect(),
        page.limit,
        |s: &SupporterView| s.id,
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreatePatron {
    #[schema(schema_with = crate::http::openapi::field::email)]
    email: String,
    #[schema(schema_with = crate::http::openapi::field::name)]
    display_name: String,
    #[serde(default = "default_visibility")]
    visibility: Visibility,
}

fn default_visibility() -> Visibility {
    Visibility::Private
}

/// Adds a patron by hand (someone who pays by bank transfer, say).
#[utoipa::path(post, path = "/api/v1/admin/patrons", tag = "admin", security(("bearer" = [])), request_body = CreatePatron,
    responses((status = 201, body = SupporterView), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn create_patron(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Json(req): Json<CreatePatron>,
) -> Result<(StatusCode, axum::Json<SupporterView>)> {
    let draft = PatronDraft::parse(&req.email, &req.display_name, req.visibility)?;
    let row = crate::service::supporters::create_patron(&state, &admin.actor(), &draft).await?;
    Ok((StatusCode::CREATED, axum::Json(row.into())))
}

/// One patron or sponsor.
#[utoipa::path(get, path = "/api/v1/admin/supporters/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 200, body = SupporterView), (status = 404, body = crate::error::Problem)))]
async fn get_supporter(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<i64>,
) -> Result<axum::Json<SupporterView>> {
    Ok(axum::Json(
        store::supporters::get(&state.db, id).await?.into(),
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct SponsorQuery {
    q: Option<String>,
    status: Option<SponsorStatus>,
    after: Option<i64>,
    /// 1 to 200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// Sponsors, with search and a status filter (e.g. `status=pending`).
#[utoipa::path(get, path = "/api/v1/admin/sponsors", tag = "admin", security(("bearer" = [])), params(SponsorQuery),
    responses((status = 200, body = Paged<SupporterView>)))]
async fn list_sponsors(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<SponsorQuery>,
) -> Result<axum::Json<Paged<SupporterView>>> {
    let page = page(q.after, q.limit)?;
    let filter = Filter {
        q: search(q.q)?,
        sponsor_status: q.status,
    };
    let rows = store::supporters::list(&state.db, SupporterKind::Sponsor, &filter, page).await?;
    Ok(axum::Json(Paged::new(
        rows.into_iter().map(Into::into).collect(),
        page.limit,
        |s: &SupporterView| s.id,
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateSponsor {
    #[schema(schema_with = crate::http::openapi::field::name)]
    company_name: String,
    #[schema(schema_with = crate::http::openapi::field::website_url)]
    website_url: String,
    #[schema(schema_with = crate::http::openapi::field::email)]
    contact_email: String,
    tier_id: i64,
    /// Until when the sponsorship is paid (an invoice settled by bank, say).
    paid_through: Option<Day>,
    #[schema(schema_with = crate::http::openapi::field::logo_ref_or_null)]
    logo_ref: Option<String>,
}

/// Adds a sponsor by hand. It starts `pending` and is public only once
/// approved and paid.
#[utoipa::path(post, path = "/api/v1/admin/sponsors", tag = "admin", security(("bearer" = [])), request_body = CreateSponsor,
    responses((status = 201, body = SupporterView), (status = 422, body = crate::error::Problem)))]
async fn create_sponsor(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Json(req): Json<CreateSponsor>,
) -> Result<(StatusCode, axum::Json<SupporterView>)> {
    let draft = SponsorDraft::parse(
        &req.company_name,
        &req.website_url,
        &req.contact_email,
        req.tier_id,
        req.paid_through.map(Day::date),
        req.logo_ref.as_deref(),
    )?;
    let row = crate::service::sponsors::create(&state, &admin.actor(), &draft).await?;
    Ok((StatusCode::CREATED, axum::Json(row.into())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Decision {
    /// Kept in the audit log.
    #[serde(default)]
    #[schema(schema_with = crate::http::openapi::field::note)]
    reason: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Rejection {
    /// Why, for the audit log.
    #[schema(schema_with = crate::http::openapi::field::required_note)]
    reason: String,
}

/// Approves a sponsor: it shows publicly while paid.
#[utoipa::path(post, path = "/api/v1/admin/sponsors/{id}/approve", tag = "admin", security(("bearer" = [])), request_body = Decision,
    params(("id" = i64, Path)), responses((status = 200, body = SupporterView), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn approve_sponsor(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Path(id): Path<i64>,
    Json(req): Json<Decision>,
) -> Result<axum::Json<SupporterView>> {
    let row = crate::service::sponsors::decide(
        &state,
        &admin.actor(),
        id,
        SponsorStatus::Approved,
        &req.reason,
    )
    .await?;
    Ok(axum::Json(row.into()))
}

/// Rejects a sponsor, with a reason.
#[utoipa::path(post, path = "/api/v1/admin/sponsors/{id}/reject", tag = "admin", security(("bearer" = [])), request_body = Rejection,
    params(("id" = i64, Path)), responses((status = 200, body = SupporterView), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn reject_sponsor(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Path(id): Path<i64>,
    Json(req): Json<Rejection>,
) -> Result<axum::Json<SupporterView>> {
    let row = crate::service::sponsors::decide(
        &state,
        &admin.actor(),
        id,
        SponsorStatus::Rejected,
        &req.reason,
    )
    .await?;
    Ok(axum::Json(row.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PaidThrough {
    paid_through: Option<Day>,
}

/// Records until when a sponsor has paid (for invoices settled outside Stripe).
#[utoipa::path(post, path = "/api/v1/admin/sponsors/{id}/paid-through", tag = "admin", security(("bearer" = [])), request_body = PaidThrough,
    params(("id" = i64, Path)), responses((status = 200, body = SupporterView), (status = 404, body = crate::error::Problem)))]
async fn set_paid_through(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Path(id): Path<i64>,
    Json(req): Json<PaidThrough>,
) -> Result<axum::Json<SupporterView>> {
    let paid_through = req.paid_through.map(Day::date);
    let row = crate::service::sponsors::set_paid_through(&state, &admin.actor(), id, paid_through)
        .await?;
    Ok(axum::Json(row.into()))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct LogoQuery {
    /// `light` (default) or `dark`, the dark-mode variant.
    variant: Option<LogoVariant>,
    /// Required: what the logo says, for people who cannot see it.
    #[param(schema_with = crate::http::openapi::field::alt_text)]
    alt_text: String,
}

#[derive(Serialize, ToSchema)]
struct LogoView {
    variant: LogoVariant,
    /// Where the logo is served once the sponsor is public.
    url: String,
    width: u32,
    height: u32,
    alt_text: String,
}

/// Uploads a sponsor's logo: the request body is the image itself (PNG,
/// JPEG or WebP, checked by content; SVG is refused). It is scaled to fit
/// `sponsors.logo_max_width`×`logo_max_height` and re-encoded as PNG. An
/// admin's upload counts as approved.
#[utoipa::path(post, path = "/api/v1/admin/sponsors/{id}/logo", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path), LogoQuery), request_body(content = Vec<u8>, content_type = "image/png"),
    responses((status = 201, body = LogoView), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn upload_logo(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Path(id): Path<i64>,
    Query(q): Query<LogoQuery>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, axum::Json<LogoView>)> {
    let variant = q.variant.unwrap_or(LogoVariant::Light);
    let logo = crate::service::sponsors::upload_logo(
        &state,
        &admin.actor(),
        id,
        variant,
        body,
        q.alt_text,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(LogoView {
            variant,
            url: format!("/logos/{}.png", logo.sha256),
            width: logo.width,
            height: logo.height,
            alt_text: logo.alt_text,
        }),
    ))
}

/// Approves the logo(s) a sponsor uploaded through its link.
#[utoipa::path(post, path = "/api/v1/admin/sponsors/{id}/logo/approve", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 204), (status = 409, body = crate::error::Problem)))]
async fn approve_logo(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Path(id): Path<i64>,
) -> Result<StatusCode> {
    crate::service::sponsors::approve_logo(&state, &admin.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
struct UploadLink {
    /// A signed link to a form where the sponsor uploads its logo.
    url: String,
    expires_at: DateTime<Utc>,
}

/// A signed, expiring link for the sponsor to upload its own logo (for its
/// confirmation message). Uploads through it wait for an admin's approval.
#[utoipa::path(post, path = "/api/v1/admin/sponsors/{id}/upload-link", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 200, body = UploadLink), (status = 404, body = crate::error::Problem)))]
async fn logo_upload_link(
    State(state): State<AppState>,
    Owner(_admin): Owner,
    Path(id): Path<i64>,
) -> Result<axum::Json<UploadLink>> {
    let sponsor = store::supporters::get(&state.db, id).await?;
    if sponsor.kind != SupporterKind::Sponsor {
        return Err(Error::NotFound("sponsor"));
    }
    let (url, expires_at) = crate::links::logo_upload_url(&state, id).await?;
    Ok(axum::Json(UploadLink { url, expires_at }))
}
