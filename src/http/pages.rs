//! Public pages and images for an about page: the support page and its
//! forms, the framable progress embed, badges, the sponsor wall, the
//! link-preview card, logos, funding.json, Mastodon's donation campaign and
//! the transparency report.
//! Everything is served from the snapshot (ETag, 304, Cache-Control); the
//! only handlers that touch the database are the form posts.

use axum::{
    Form, Router,
    extract::{Multipart, Path, State},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use serde::Deserialize;

use super::{
    AppState,
    checkout::{self, CheckoutRequest, Kind, PayBy},
    extract::{ClientIp, Query},
    public::conditional_with,
};
use crate::{
    domain::{
        logo::LogoVariant,
        public::{Frequency, campaign_variant, from_hundredths, minor_units, on_origin},
        supporter::Visibility,
        transparency::Period,
    },
    error::{Error, FieldError},
    payments::checkout::{ReturnTo, Started},
    render::{page, svg::WallParams},
    snapshot::{Rendered, Snapshot, TransparencyForms},
    store,
};

pub fn routes(state: &AppState) -> Router<AppState> {
    let upload_limit = state.settings.sponsors.logo_max_bytes + 64 * 1024;
    Router::new()
        .route("/support", get(support))
        .route("/support/card.png", get(card))
        .route("/support/checkout", post(support_checkout))
        .route("/embed/progress", get(embed))
        .route("/badge/{file}", get(badge))
        .route("/sponsors.svg", get(sponsors_wall))
        .route("/funding.json", get(funding_manifest))
        .route("/transparency", get(transparency_page))
        .route("/transparency.json", get(transparency_json))
        .route("/transparency.csv", get(transparency_csv))
        .route("/transparency.md", get(transparency_markdown))
        .route("/mastodon/campaign", get(mastodon_campaign))
        .route("/logos/{file}", get(logo))
        .route(
            "/sponsor/logo",
            get(logo_form)
                .post(logo_upload)
                .layer(axum::extract::DefaultBodyLimit::max(upload_limit)),
        )
}

const NOSNIFF: (HeaderName, HeaderValue) = (
    header::X_CONTENT_TYPE_OPTIONS,
    HeaderValue::from_static("nosniff"),
);

/// Pages of our own: no scripts at all, images only from here, forms only
/// to here (Checkout's redirect leaves over https), never framed.
const PAGE_CSP: (HeaderName, HeaderValue) = (
    header::CONTENT_SECURITY_POLICY,
    HeaderValue::from_static(
        "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; form-action 'self' https:; frame-ancestors 'none'; base-uri 'none'",
    ),
);
/// SVG opened directly: nothing may load or run but inlined images.
const SVG_CSP: (HeaderName, HeaderValue) = (
    header::CONTENT_SECURITY_POLICY,
    HeaderValue::from_static("default-src 'none'; img-src data:; style-src 'unsafe-inline'"),
);
const NOTHING_CSP: (HeaderName, HeaderValue) = (
    header::CONTENT_SECURITY_POLICY,
    HeaderValue::from_static("default-src 'none'"),
);
const CORS: (HeaderName, HeaderValue) = (
    header::ACCESS_CONTROL_ALLOW_ORIGIN,
    HeaderValue::from_static("*"),
);
const NO_REFERRER: (HeaderName, HeaderValue) = (
    header::REFERRER_POLICY,
    HeaderValue::from_static("no-referrer"),
);

// Each view's headers besides ETag, Cache-Control and Content-Type, shared
// with the views answered before the router (`views`).
pub(super) const SUPPORT_PAGE: [(HeaderName, HeaderValue); 3] = [PAGE_CSP, NOSNIFF, NO_REFERRER];
pub(super) const BADGE_SVG: [(HeaderName, HeaderValue); 3] = [SVG_CSP, NOSNIFF, CORS];
pub(super) const BADGE_JSON: [(HeaderName, HeaderValue); 2] = [CORS, NOSNIFF];
pub(super) const WALL: [(HeaderName, HeaderValue); 3] = [SVG_CSP, NOSNIFF, CORS];
pub(super) const MANIFEST: [(HeaderName, HeaderValue); 2] = [CORS, NOSNIFF];

/// The embed's: its CSP names the sites that may frame it.
pub(super) fn embed_headers(snapshot: &Snapshot) -> [(HeaderName, HeaderValue); 2] {
    [
        (header::CONTENT_SECURITY_POLICY, snapshot.embed_csp.clone()),
        NOSNIFF,
    ]
}

/// The wall `/sponsors.svg` draws without parameters.
pub(super) fn default_wall() -> WallParams {
    WallParams::normalised(None, None, None, None, None)
}

/// The parameters Mastodon's apps add to `donation_url`. Anything that does
/// not parse, or is not for us, is ignored: the page still shows.
#[derive(Deserialize, Default)]
struct SupportQuery {
    /// In hundredths of the main unit, whatever the currency.
    amount: Option<String>,
    currency: Option<String>,
    frequency: Option<String>,
    success_callback_url: Option<String>,
    cancel_callback_url: Option<String>,
    // Also sent: `source`, `campaign_id`, and `failure_callback_url`
    // (Stripe Checkout keeps a failed payment on its own page, so there is
    // no failure to return from).
}

impl SupportQuery {
    fn prefill(&self, data: &crate::render::PublicData) -> page::Prefill {
        let currency = data.currency;
        let for_us = self
            .currency
            .as_deref()
            .is_none_or(|c| c.trim().eq_ignore_ascii_case(currency.code()));
        let amount_minor = self
            .amount
            .as_deref()
            .filter(|_| for_us)
            .and_then(|a| a.trim().parse::<i64>().ok())
            .and_then(|h| from_hundredths(h, currency.exponent()))
            .filter(|m| crate::domain::amount("amount", *m).is_ok());
        page::Prefill {
            amount_minor,
            frequency: self.frequency.as_deref().and_then(Frequency::parse),
            success_url: return_url(data, self.success_callback_url.as_deref()),
            cancel_url: return_url(data, self.cancel_callback_url.as_deref()),
        }
    }
}

/// A callback URL, kept only when it is on this site's or the instance's
/// origin.
fn return_url(data: &crate::render::PublicData, url: Option<&str>) -> Option<String> {
    url.map(str::trim)
        .filter(|u| on_origin(u, &[&data.site_url, &data.instance_url]))
        .map(str::to_owned)
}

async fn support(
    State(state): State<AppState>,
    Query(q): Query<SupportQuery>,
    headers: HeaderMap,
) -> Response {
    let snapshot = state.public.current();
    let prefill = q.prefill(&snapshot.data);
    if prefill == page::Prefill::default() {
        return conditional_with(
            &snapshot.support_page,
            &headers,
            snapshot.cache_control.clone(),
            &SUPPORT_PAGE,
        );
    }
    // A visitor's own choice and return URLs: rendered for them alone.
    let mut response = Html(snapshot.support_page_with(&prefill)).into_response();
    let h = response.headers_mut();
    h.insert(PAGE_CSP.0, PAGE_CSP.1);
    h.insert(NOSNIFF.0, NOSNIFF.1);
    h.insert(NO_REFERRER.0, NO_REFERRER.1);
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}

async fn card(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let snapshot = state.public.current();
    let rendered = if snapshot.has_card() {
        snapshot.card()
    } else {
        let s = snapshot.clone();
        match tokio::task::spawn_blocking(move || s.card()).await {
            Ok(r) => r,
            Err(e) => return Error::internal(e).into_response(),
        }
    };
    conditional_with(
        &rendered,
        &headers,
        snapshot.cache_control.clone(),
        &[NOSNIFF, CORS],
    )
}

#[derive(Deserialize)]
struct EmbedQuery {
    theme: Option<String>,
    /// `costs`: how much of the monthly costs pledges cover, instead of
    /// the goal.
    show: Option<String>,
}

async fn embed(
    State(state): State<AppState>,
    Query(q): Query<EmbedQuery>,
    headers: HeaderMap,
) -> Response {
    let snapshot = state.public.current();
    let rendered = match (q.theme.as_deref(), q.show.as_deref()) {
        (Some("dark"), Some("costs")) => &snapshot.embed_costs_dark,
        (_, Some("costs")) => &snapshot.embed_costs_light,
        (Some("dark"), _) => &snapshot.embed_dark,
        _ => &snapshot.embed_light,
    };
    conditional_with(
        rendered,
        &headers,
        snapshot.cache_control.clone(),
        &embed_headers(&snapshot),
    )
}

async fn badge(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let snapshot = state.public.current();
    let (name, json) = match (file.strip_suffix(".svg"), file.strip_suffix(".json")) {
        (Some(n), _) => (n, false),
        (_, Some(n)) => (n, true),
        _ => return Error::NotFound("badge").into_response(),
    };
    let Some(views) = snapshot.badges.get(name) else {
        return Error::NotFound("badge").into_response();
    };
    if json {
        conditional_with(
            &views.json,
            &headers,
            snapshot.cache_control.clone(),
            &BADGE_JSON,
        )
    } else {
        conditional_with(
            &views.svg,
            &headers,
            snapshot.cache_control.clone(),
            &BADGE_SVG,
        )
    }
}

/// Open Collective's parameter names.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WallQuery {
    tier: Option<String>,
    width: Option<u32>,
    limit: Option<usize>,
    avatar_height: Option<u32>,
    margin: Option<u32>,
    format: Option<String>,
    /// Open Collective's "become a sponsor" button; accepted and ignored.
    #[allow(dead_code)]
    button: Option<String>,
}

async fn sponsors_wall(
    State(state): State<AppState>,
    Query(q): Query<WallQuery>,
    headers: HeaderMap,
) -> Response {
    let png = match q.format.as_deref() {
        None | Some("svg") => false,
        Some("png") => true,
        Some(_) => {
            return Error::field("format", "must be svg or png").into_response();
        }
    };
    let params = WallParams::normalised(
        q.tier.as_deref(),
        q.width,
        q.limit,
        q.avatar_height,
        q.margin,
    );
    let snapshot = state.public.current();
    let rendered = match snapshot.cached_wall(&params, png) {
        Some(r) => r,
        None if png => {
            // A few PNGs at a time; a full queue answers 503 with Retry-After.
            let s = snapshot.clone();
            match state.heavy.walls.run(move || s.wall(&params, true)).await {
                Ok(r) => r,
                Err(e) => return e.into_response(),
            }
        }
        None => snapshot.wall(&params, false),
    };
    conditional_with(&rendered, &headers, snapshot.cache_control.clone(), &WALL)
}

async fn funding_manifest(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let snapshot = state.public.current();
    conditional_with(
        &snapshot.funding_manifest,
        &headers,
        snapshot.cache_control.clone(),
        &MANIFEST,
    )
}

#[derive(Deserialize)]
struct TransparencyQuery {
    period: Option<String>,
}

impl TransparencyQuery {
    fn period(&self) -> Result<Period, Error> {
        Period::parse(self.period.as_deref()).ok_or_else(|| {
            Error::Validation(vec![FieldError::new("period", "must be month or quarter")])
        })
    }
}

/// The transparency report as `form` of the snapshot's views, with its
/// headers.
fn transparency(
    state: &AppState,
    q: &TransparencyQuery,
    headers: &HeaderMap,
    form: impl Fn(&TransparencyForms) -> &Rendered,
    extra: &[(HeaderName, HeaderValue)],
) -> Response {
    let period = match q.period() {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let snapshot = state.public.current();
    conditional_with(
        form(snapshot.transparency.of(period)),
        headers,
        snapshot.cache_control.clone(),
        extra,
    )
}

async fn transparency_page(
    State(state): State<AppState>,
    Query(q): Query<TransparencyQuery>,
    headers: HeaderMap,
) -> Response {
    transparency(&state, &q, &headers, |f| &f.html, &SUPPORT_PAGE)
}

async fn transparency_json(
    State(state): State<AppState>,
    Query(q): Query<TransparencyQuery>,
    headers: HeaderMap,
) -> Response {
    transparency(&state, &q, &headers, |f| &f.json, &MANIFEST)
}

async fn transparency_csv(
    State(state): State<AppState>,
    Query(q): Query<TransparencyQuery>,
    headers: HeaderMap,
) -> Response {
    transparency(&state, &q, &headers, |f| &f.csv, &MANIFEST)
}

async fn transparency_markdown(
    State(state): State<AppState>,
    Query(q): Query<TransparencyQuery>,
    headers: HeaderMap,
) -> Response {
    transparency(&state, &q, &headers, |f| &f.markdown, &MANIFEST)
}

#[derive(Deserialize)]
struct CampaignQuery {
    locale: Option<String>,
    seed: Option<String>,
}

/// Mastodon's `DONATION_CAMPAIGNS_URL`: the campaign for `locale`, the
/// variant picked by `seed`; 204 when no campaign is configured.
async fn mastodon_campaign(
    State(state): State<AppState>,
    Query(q): Query<CampaignQuery>,
    headers: HeaderMap,
) -> Response {
    let snapshot = state.public.current();
    let Some((campaign, rendered)) = &snapshot.campaign else {
        return (
            StatusCode::NO_CONTENT,
            [(header::CACHE_CONTROL, snapshot.cache_control.clone())],
        )
            .into_response();
    };
    let seed: u32 = q
        .seed
        .as_deref()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let Some((locale, variants)) = campaign.resolve(q.locale.as_deref()) else {
        return StatusCode::NO_CONTENT.into_response();
    };
    let index = campaign_variant(seed, variants);
    match rendered.get(&(locale.to_owned(), index)) {
        Some(r) => conditional_with(
            r,
            &headers,
            snapshot.cache_control.clone(),
            &[CORS, NOSNIFF],
        ),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

async fn logo(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let snapshot = state.public.current();
    let Some(image) = file
        .strip_suffix(".png")
        .and_then(|hash| snapshot.logos.get(hash))
    else {
        return Error::NotFound("logo").into_response();
    };
    let rendered = Rendered {
        body: image.png.clone(),
        etag: format!("\"{}\"", &image.sha256[..24]),
        content_type: "image/png",
    };
    // The URL is the content's hash: it never changes, so cache it for a year.
    conditional_with(
        &rendered,
        &headers,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
        &[NOTHING_CSP, NOSNIFF, CORS],
    )
}

/// The support page's forms: the same checkout as `POST /api/v1/checkout`,
/// answered with a redirect to Stripe, or a page listing what to fix.
#[derive(Deserialize)]
struct CheckoutForm {
    kind: String,
    tier_id: Option<i64>,
    amount: Option<String>,
    email: Option<String>,
    display_name: Option<String>,
    visibility: Option<String>,
    company_name: Option<String>,
    website_url: Option<String>,
    pay_by: Option<String>,
    /// Carried from the page's link (Mastodon's callbacks); checked again
    /// here, as anyone can post this form.
    success_callback_url: Option<String>,
    cancel_callback_url: Option<String>,
}

async fn support_checkout(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<CheckoutForm>,
) -> Response {
    // Another site may not post this form for its visitors (a sponsor
    // application in their name, from their address).
    let data = state.public.current().data.clone();
    if let Err(e) = super::origin::same_site_form(&headers, &data.site_url) {
        return e.into_response();
    }
    let exponent = data.currency.exponent();
    let mut errors = Vec::new();
    let kind = match form.kind.as_str() {
        "patron" => Kind::Patron,
        "gift" => Kind::Gift,
        "sponsor" => Kind::Sponsor,
        _ => {
            errors.push(FieldError::new("kind", "must be patron, gift or sponsor"));
            Kind::Gift
        }
    };
    let amount_minor = match form.amount.as_deref().filter(|a| !a.trim().is_empty()) {
        Some(text) => {
            let parsed = minor_units(text, exponent);
            if parsed.is_none() {
                errors.push(FieldError::new("amount", "must be a positive amount"));
            }
            parsed
        }
        None => None,
    };
    let req = CheckoutRequest {
        kind,
        tier_id: form.tier_id,
        amount_minor,
        email: form.email.unwrap_or_default(),
        display_name: form.display_name,
        visibility: form.visibility.as_deref().and_then(Visibility::parse),
        company_name: form.company_name,
        website_url: form.website_url,
        pay_by: match form.pay_by.as_deref() {
            Some("invoice") => Some(PayBy::Invoice),
            _ => None,
        },
        // Emails in the visitor's language, when we have it.
        locale: headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split([',', ';']).next())
            .and_then(|tag| crate::domain::supporter::parse_locale("locale", tag).ok()),
        return_to: ReturnTo {
            success: return_url(&data, form.success_callback_url.as_deref()),
            cancel: return_url(&data, form.cancel_callback_url.as_deref()),
        },
    };
    let result = if errors.is_empty() {
        checkout::run(&state, ip, &headers, &req).await
    } else {
        Err(Error::Validation(errors))
    };
    match result {
        Ok(Started::Pay(url)) => Redirect::to(&url).into_response(),
        Ok(Started::UnderReview) => page_response(
            StatusCode::OK,
            page::message(
                "Thank you",
                "We received your sponsorship application. Once we have reviewed and approved it, \
                 the invoice is emailed to you, with a link to send us your logo.",
                &[],
                "/support",
            ),
        ),
        Err(e @ Error::RateLimited { .. }) => e.into_response(),
        Err(e) => message_page(&e, "We could not start your payment", "/support"),
    }
}

/// One of our pages as a response: strict CSP, never cached, and no
/// referrer (such pages and their forms may carry a token).
pub(crate) fn html_page(status: StatusCode, html: String) -> Response {
    let mut response = page_response(status, html);
    response.headers_mut().insert(NO_REFERRER.0, NO_REFERRER.1);
    response
}

/// One of our pages as a response: strict CSP, never cached.
fn page_response(status: StatusCode, html: String) -> Response {
    let mut response = (status, Html(html)).into_response();
    let h = response.headers_mut();
    h.insert(PAGE_CSP.0, PAGE_CSP.1);
    h.insert(NOSNIFF.0, NOSNIFF.1);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(crate) fn message_page(e: &Error, title: &str, back: &str) -> Response {
    let errors = match e {
        Error::Validation(fields) => fields.clone(),
        Error::Conflict { field, message } => vec![FieldError::new(field, message)],
        _ => Vec::new(),
    };
    let message = match e {
        Error::Validation(_) | Error::Conflict { .. } => "Please check the following:".to_owned(),
        Error::PaymentsNotConfigured => "Payments are not set up on this server yet.".to_owned(),
        Error::Unauthorized => {
            "This link is invalid or has expired. Ask us for a new one.".to_owned()
        }
        other if other.status().is_server_error() => {
            tracing::warn!(error = %other, "page request failed");
            "Something went wrong on our side. Please try again later.".to_owned()
        }
        other => other.to_string(),
    };
    page_response(e.status(), page::message(title, &message, &errors, back))
}

#[derive(Deserialize)]
struct TokenQuery {
    token: String,
}

/// The form a sponsor reaches through its signed upload link.
async fn logo_form(State(state): State<AppState>, Query(q): Query<TokenQuery>) -> Response {
    let sponsor = match state.tokens.verify_logo_upload(&q.token) {
        Ok((id, version)) => match store::logos::link_is_live(&state.db, id, version).await {
            Ok(()) => store::supporters::get(&state.db, id).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match sponsor {
        Ok(s) => {
            let data = state.public.current().data.clone();
            let mut response = Html(page::logo_upload(
                &data.name,
                &s.display_name,
                &q.token,
                state.settings.sponsors.logo_max_bytes,
            ))
            .into_response();
            let h = response.headers_mut();
            h.insert(PAGE_CSP.0, PAGE_CSP.1);
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(NO_REFERRER.0, NO_REFERRER.1);
            response
        }
        Err(e) => message_page(&e, "Logo upload", "/support"),
    }
}

/// A sponsor's own upload (multipart: token, logo, alt_text, variant). It
/// shows only once an admin approves it.
async fn logo_upload(State(state): State<AppState>, multipart: Multipart) -> Response {
    match receive_logo(&state, multipart).await {
        Ok(()) => {
            let mut response = Html(page::message(
                "Thank you",
                "We have your logo. It appears on our sponsor wall once we have approved it.",
                &[],
                "/support",
            ))
            .into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => message_page(&e, "Logo upload", "/support"),
    }
}

async fn receive_logo(state: &AppState, mut multipart: Multipart) -> Result<(), Error> {
    let (mut token, mut bytes, mut alt, mut variant) = (None, None, None, LogoVariant::Light);
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| Error::BadRequest(e.body_text()))?
    {
        let name = field.name().unwrap_or("").to_owned();
        let data = field
            .bytes()
            .await
            .map_err(|e| Error::BadRequest(e.body_text()))?;
        let text = || String::from_utf8_lossy(&data).into_owned();
        match name.as_str() {
            "token" => token = Some(text()),
            "alt_text" => alt = Some(text()),
            "variant" => {
                variant = LogoVariant::parse(&text())
                    .ok_or_else(|| Error::field("variant", "must be light or dark"))?;
            }
            "logo" => bytes = Some(data),
            _ => {}
        }
    }
    let (sponsor_id, version) = state
        .tokens
        .verify_logo_upload(token.as_deref().unwrap_or(""))?;
    crate::service::sponsors::upload_logo_through_link(
        state,
        sponsor_id,
        version,
        variant,
        bytes.unwrap_or_default(),
        alt.unwrap_or_default(),
    )
    .await?;
    Ok(())
}
