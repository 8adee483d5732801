//! The admin console at `/admin`: server-rendered pages for owners and
//! viewers. Every action calls the same service as the JSON API. Pages work
//! without JavaScript under a strict CSP (styles and images from here
//! only, no inline anything); every form carries the session's CSRF token.
//!
//! - `session`: who is signed in, and the forms they post;
//! - `auth`: signing in and out, and the first owner's setup page;
//! - one module per page group.

mod analytics;
mod audit;
mod auth;
mod costs;
mod fediverse;
mod imports;
mod ledger;
mod operations;
mod overview;
mod reports;
mod session;
mod settings;
mod sponsors;
mod supporters;
mod tiers;
mod webhooks;

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request},
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::{
    auth::session::Cookies,
    domain::month::Month,
    error::{Error, Result},
    render::console,
};
pub use session::{Flash, Form, OwnerForm, Signed};

/// A page's months from its query (`from`, `to`, as `YYYY-MM`): the last 12
/// months when a bound is left empty. A bad range shows the page for the
/// last 12 months, with the reason.
#[derive(Deserialize, Default)]
pub struct RangeQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

impl RangeQuery {
    fn months(&self, this: Month) -> (Month, Month, Option<String>) {
        let fallback = (this.back(11), this);
        let bound = |field: &str, text: &str, default: Month| match text.trim() {
            "" => Ok(default),
            text => Month::parse(field, text),
        };
        let range = bound("from", &self.from, fallback.0).and_then(|from| {
            let to = bound("to", &self.to, fallback.1)?;
            Month::range(from, to).map(|_| (from, to))
        });
        match range {
            Ok((from, to)) => (from, to, None),
            Err(e) => (fallback.0, fallback.1, Some(Flash::error(&e).text)),
        }
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(overview::show))
        .route("/admin/console.css", get(stylesheet))
        .route("/admin/login", get(auth::login_page).post(auth::login))
        .route("/admin/login/code", get(auth::code_page).post(auth::code))
        .route("/admin/login/mastodon", post(auth::mastodon_start))
        .route(
            "/admin/login/mastodon/callback",
            get(auth::mastodon_callback),
        )
        .route("/admin/logout", post(auth::logout))
        .route("/admin/setup", get(auth::setup_page).post(auth::setup))
        .route("/admin/account", get(auth::account_page))
        .route(
            "/admin/account/second-factor",
            get(auth::second_factor_page),
        )
        .route(
            "/admin/account/second-factor/start",
            post(auth::second_factor_start),
        )
        .route(
            "/admin/account/second-factor/confirm",
            post(auth::second_factor_confirm),
        )
        .route(
            "/admin/account/second-factor/off",
            post(auth::second_factor_off),
        )
        .route(
            "/admin/account/sign-out-everywhere",
            post(auth::sign_out_everywhere),
        )
        .route("/admin/tiers", get(tiers::list).post(tiers::create))
        .route("/admin/tiers/{id}", get(tiers::show).post(tiers::update))
        .route("/admin/tiers/{id}/archive", post(tiers::archive))
        .route("/admin/ledger", get(ledger::list).post(ledger::record))
        .route("/admin/ledger.csv", get(ledger::csv))
        .route("/admin/ledger/{id}/void", post(ledger::void))
        .route("/admin/reports", get(reports::show))
        .route("/admin/costs", get(costs::show))
        .route("/admin/costs/report.csv", get(costs::report_csv))
        .route("/admin/costs/expenses.csv", get(costs::expenses_csv))
        .route("/admin/costs/expenses", post(costs::record_expense))
        .route("/admin/costs/expenses/{id}/void", post(costs::void_expense))
        .route("/admin/costs/recurring", post(costs::create_recurring))
        .route(
            "/admin/costs/recurring/{id}/end",
            post(costs::end_recurring),
        )
        .route("/admin/costs/settings", post(costs::update_settings))
        .route("/admin/costs/labels", post(costs::set_label))
        .route(
            "/admin/webhooks",
            get(webhooks::show).post(webhooks::create),
        )
        .route("/admin/webhooks/{id}", post(webhooks::update))
        .route("/admin/webhooks/{id}/rotate", post(webhooks::rotate))
        .route("/admin/webhooks/{id}/ping", post(webhooks::ping))
        .route("/admin/webhooks/{id}/redeliver", post(webhooks::redeliver))
        .route("/admin/webhooks/{id}/delete", post(webhooks::delete))
        .route(
            "/admin/import",
            get(imports::show)
                .post(imports::upload)
                .layer(DefaultBodyLimit::max(imports::MAX_UPLOAD)),
        )
        .route("/admin/import/{token}/commit", post(imports::commit))
        .route("/admin/analytics", get(analytics::show))
        .route(
            "/admin/analytics/movements/{month}",
            get(analytics::movement),
        )
        .route("/admin/operations", get(operations::show))
        .route("/admin/fediverse", get(fediverse::show))
        .route(
            "/admin/fediverse/role-sync/acknowledge",
            post(fediverse::acknowledge),
        )
        .route("/admin/audit", get(audit::show))
        .route("/admin/settings", get(settings::show))
        .route("/admin/settings/campaign", post(settings::update_campaign))
        .route("/admin/settings/invite", post(settings::invite))
        .route("/admin/settings/admins/{id}/role", post(settings::set_role))
        .route(
            "/admin/settings/admins/{id}/revoke",
            post(settings::revoke_sessions),
        )
        .route(
            "/admin/settings/admins/{id}/mastodon",
            post(settings::link_mastodon),
        )
        .route(
            "/admin/settings/embed-preview",
            get(settings::embed_preview),
        )
        .route(
            "/admin/invite",
            get(auth::invite_page).post(auth::accept_invite),
        )
        .route(
            "/admin/operations/events/{id}/replay",
            post(operations::replay_event),
        )
        .route(
            "/admin/operations/outbox/{id}/retry",
            post(operations::retry_mail),
        )
        .route(
            "/admin/operations/tasks/{id}/retry",
            post(operations::retry_task),
        )
        .route("/admin/supporters", get(supporters::list))
        .route("/admin/supporters.csv", get(supporters::csv))
        .route(
            "/admin/supporters/{id}",
            get(supporters::show).post(supporters::update),
        )
        .route(
            "/admin/supporters/{id}/manage-link",
            post(supporters::manage_link),
        )
        .route(
            "/admin/supporters/{id}/pledges/{pledge}/cancel",
            post(supporters::cancel_pledge),
        )
        .route(
            "/admin/supporters/{id}/payments/{entry}/refund",
            post(supporters::refund),
        )
        .route("/admin/sponsors", get(sponsors::list))
        .route("/admin/sponsors/{id}/logo/{file}", get(sponsors::logo))
        .route(
            "/admin/sponsors/{id}/logo",
            // Logos are larger than forms; `sponsors.logo_max_bytes` is
            // checked when the logo is read.
            post(sponsors::upload_logo).layer(DefaultBodyLimit::max(8 << 20)),
        )
        .route(
            "/admin/sponsors/{id}/logo/approve",
            post(sponsors::approve_logo),
        )
        .route("/admin/sponsors/{id}/decision", post(sponsors::decide))
        .route(
            "/admin/sponsors/{id}/paid-through",
            post(sponsors::paid_through),
        )
        .route(
            "/admin/sponsors/{id}/amount-in-posts",
            post(sponsors::amount_in_posts),
        )
        .route(
            "/admin/sponsors/{id}/upload-link",
            post(sponsors::upload_link),
        )
        .layer(middleware::from_fn(console_responses))
}

const CONSOLE_CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
     script-src 'self'; object-src 'none'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// Every console answer: its security headers, never cached, and errors
/// shown as pages (a lapsed session goes to the sign-in page).
async fn console_responses(req: Request, next: Next) -> Response {
    let is_get = req.method() == Method::GET || req.method() == Method::HEAD;
    let back_to = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let mut res = next.run(req).await;
    let problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if problem {
        res = if res.status() == StatusCode::UNAUTHORIZED {
            let next = if is_get { back_to.as_str() } else { "/admin" };
            see_other(&format!("/admin/login?next={}", encode(next)))
        } else {
            error_page(res).await
        };
    }
    let h = res.headers_mut();
    // A route that sets its own policy keeps it (the embed preview, which
    // the settings page frames).
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONSOLE_CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    res
}

/// A problem+json answer shown as a page, with the same status.
async fn error_page(res: Response) -> Response {
    #[derive(Deserialize, Serialize, Default)]
    struct Shown {
        title: String,
        status: u16,
        code: String,
        detail: Option<String>,
        #[serde(default)]
        errors: Vec<crate::error::FieldError>,
    }
    let status = res.status();
    let retry_after = res.headers().get(header::RETRY_AFTER).cloned();
    let body = axum::body::to_bytes(res.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let shown: Shown = serde_json::from_slice(&body).unwrap_or_default();
    let html = console::render("error.html", &shown).unwrap_or_else(|_| shown.title.clone());
    let mut res = (status, html_headers(), html).into_response();
    if let Some(v) = retry_after {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

fn html_headers() -> [(HeaderName, &'static str); 1] {
    [(header::CONTENT_TYPE, "text/html; charset=utf-8")]
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        console::STYLESHEET,
    )
        .into_response()
}

pub fn see_other(to: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

pub(super) fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Only a path on this console may be returned to after signing in.
fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(p) if p.starts_with("/admin") && !p.starts_with("//") && !p.contains('\\') => p,
        _ => "/admin",
    }
}

/// Renders a console page for the signed-in admin: the layout gets who
/// they are, the CSRF token for its forms and any message left for them.
pub fn page(signed: &Signed, name: &str, nav: &str, ctx: impl Serialize) -> Result<Response> {
    #[derive(Serialize)]
    struct Layout<'a, T> {
        me: &'a str,
        owner: bool,
        csrf: &'a str,
        nav: &'a str,
        flash: Option<&'a Flash>,
        #[serde(flatten)]
        page: T,
    }
    let html = console::render(
        name,
        Layout {
            me: &signed.admin.email,
            owner: signed.admin.role.can_write(),
            csrf: &signed.csrf,
            nav,
            flash: signed.flash.as_ref(),
            page: ctx,
        },
    )?;
    let mut res = (html_headers(), html).into_response();
    if signed.flash.is_some() {
        // Shown once.
        let gone = signed.cookies.set(Cookies::FLASH, "", 0);
        if let Ok(v) = HeaderValue::from_str(&gone) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(res)
}

/// After a form: back to `to`, with what happened said there. A refusal a
/// person can fix (bad input, a conflict) is said the same way; anything
/// else (403, a fault) is an error page.
pub fn after(cookies: Cookies, to: &str, outcome: Result<String>) -> Result<Response> {
    let flash = match outcome {
        Ok(message) => Flash::ok(message),
        Err(e @ (Error::Validation(_) | Error::Conflict { .. } | Error::BadRequest(_))) => {
            Flash::error(&e)
        }
        Err(e) => return Err(e),
    };
    let mut res = see_other(to);
    if let Ok(v) = HeaderValue::from_str(&cookies.set(Cookies::FLASH, &flash.encode(), 60)) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(res)
}

/// Deserializes an optional form field that a browser sends as "".
pub fn blank_as_none<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let text = Option::<String>::deserialize(d)?;
    match text.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => t.parse().map(Some).map_err(serde::de::Error::custom),
    }
}
