//! A patron's fediverse account, from their pages: the thank-you page after
//! Stripe Checkout (`/thanks?session_id=`), and `/patron/fediverse` opened
//! from their management link. Linking is OAuth 2 with PKCE at their
//! instance, bound to this browser by a short-lived cookie.

use axum::{
    Form, Router,
    extract::{State, rejection::FormRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};

use super::{AppState, extract::Query, pages};
use crate::{
    domain::fediverse::host_of,
    error::{Error, FieldError},
    render::page,
    service::fediverse::{self as service, Consent, Proof},
    store::fediverse::Link,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/thanks", get(thanks))
        .route("/patron/fediverse", get(fediverse_page))
        .route("/patron/fediverse/link", post(link))
        .route("/patron/fediverse/callback", get(callback))
        .route("/patron/fediverse/consent", post(consent))
        .route("/patron/fediverse/unlink", post(unlink))
}

/// The cookie binding a link under way to the browser that started it.
const BINDING: &str = "patronage_fedi_link";

/// Who the patron is: the checkout of the thank-you page, or their
/// management link.
#[derive(Deserialize, Default)]
struct ProofForm {
    session_id: Option<String>,
    token: Option<String>,
    instance: Option<String>,
    public: Option<String>,
    mention: Option<String>,
}

impl ProofForm {
    fn proof(&self) -> Option<Proof> {
        let some = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        some(&self.token)
            .map(Proof::Manage)
            .or_else(|| some(&self.session_id).map(Proof::Checkout))
    }

    /// The two consent checkboxes, unchecked when absent.
    fn consent(&self) -> Consent {
        Consent {
            public: checked(&self.public),
            mention: checked(&self.mention),
        }
    }
}

#[derive(Serialize)]
struct LinkView {
    acct: String,
    profile_url: Option<String>,
    public: bool,
    mention: bool,
}

impl From<Link> for LinkView {
    fn from(l: Link) -> Self {
        LinkView {
            acct: l.acct,
            profile_url: l.profile_url,
            public: l.public,
            mention: l.mention,
        }
    }
}

#[derive(Serialize, Default)]
struct View {
    link: Option<LinkView>,
    proof_field: &'static str,
    proof_value: Option<String>,
    instance: String,
    any_instance: bool,
}

fn campaign(state: &AppState) -> String {
    state.public.current().data.name.clone()
}

fn view(state: &AppState, proof: Option<&Proof>, link: Option<Link>) -> View {
    let (proof_field, proof_value) = match proof {
        Some(Proof::Manage(t)) => ("token", Some(t.clone())),
        Some(Proof::Checkout(s)) => ("session_id", Some(s.clone())),
        None => ("token", None),
    };
    View {
        link: link.map(LinkView::from),
        proof_field,
        proof_value,
        instance: state
            .settings
            .mastodon_instance()
            .and_then(|u| host_of(&u))
            .unwrap_or_default(),
        any_instance: state.settings.mastodon.link_any_instance,
    }
}

fn respond(
    state: &AppState,
    status: StatusCode,
    title: &str,
    message: &str,
    errors: &[FieldError],
    view: &View,
) -> Response {
    pages::html_page(
        status,
        page::fediverse(&campaign(state), title, message, errors, view),
    )
}

const TITLE: &str = "Your Mastodon account";
const SPENT: &str = "This link no longer works. Ask for a new management link on the support page.";

/// A message for what went wrong, in words a patron can act on; internal
/// causes stay in the log.
fn explain(e: &Error) -> (StatusCode, String, Vec<FieldError>) {
    match e {
        Error::Validation(fields) => (e.status(), "Please check the following:".into(), fields.clone()),
        Error::Unauthorized => (StatusCode::NOT_FOUND, SPENT.into(), Vec::new()),
        Error::InvalidCredentials => (
            StatusCode::BAD_REQUEST,
            "That link to your Mastodon account expired, was used already, or was started in another browser. Nothing was linked; please try again.".into(),
            Vec::new(),
        ),
        Error::Unavailable(_) => (
            StatusCode::BAD_GATEWAY,
            "Your instance did not give an answer we could use, so nothing was linked. Check the address of your instance, or try again later.".into(),
            Vec::new(),
        ),
        other => {
            tracing::warn!(error = %other, "fediverse link failed");
            (other.status(), "Something went wrong on our side. Please try again later.".into(), Vec::new())
        }
    }
}

fn error_page(state: &AppState, e: &Error, proof: Option<&Proof>) -> Response {
    let (status, message, errors) = explain(e);
    // Keep the form when the patron can fix what they typed.
    let proof = proof.filter(|_| matches!(e, Error::Validation(_) | Error::Unavailable(_)));
    respond(
        state,
        status,
        TITLE,
        &message,
        &errors,
        &view(state, proof, None),
    )
}

#[derive(Deserialize)]
struct ThanksQuery {
    session_id: Option<String>,
}

/// Where Stripe Checkout sends a patron after paying: our thanks, and a
/// way to link their Mastodon account.
async fn thanks(State(state): State<AppState>, Query(q): Query<ThanksQuery>) -> Response {
    let title = "Thank you!";
    let message = "Your support keeps this server running. A receipt is on its way to your inbox.";
    let proof = q
        .session_id
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .map(Proof::Checkout);
    let found = match &proof {
        Some(p) => service::link_of(&state, p).await.map(Some),
        None => Ok(None),
    };
    match found {
        Ok(link) => respond(
            &state,
            StatusCode::OK,
            title,
            message,
            &[],
            &view(&state, proof.as_ref(), link.flatten()),
        ),
        // Not (yet) a checkout we know: the thanks, without the form.
        Err(_) => respond(
            &state,
            StatusCode::OK,
            title,
            message,
            &[],
            &view(&state, None, None),
        ),
    }
}

/// The patron's fediverse page, from their management link.
async fn fediverse_page(State(state): State<AppState>, Query(q): Query<ProofForm>) -> Response {
    let proof = q.proof();
    let Some(p) = proof.as_ref() else {
        return error_page(&state, &Error::Unauthorized, None);
    };
    match service::link_of(&state, p).await {
        Ok(link) => respond(
            &state,
            StatusCode::OK,
            TITLE,
            "",
            &[],
            &view(&state, proof.as_ref(), link),
        ),
        Err(e) => error_page(&state, &e, None),
    }
}

fn checked(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|v| !v.is_empty())
}

/// What both form posts check first: the form comes from our own site and
/// proves the patron (a checkout session or a management token).
fn proven(
    state: &AppState,
    headers: &HeaderMap,
    form: std::result::Result<Form<ProofForm>, FormRejection>,
) -> std::result::Result<(String, ProofForm, Proof), Box<Response>> {
    let site = state.public.current().data.site_url.clone();
    if let Err(e) = super::origin::same_site_form(headers, &site) {
        return Err(Box::new(e.into_response()));
    }
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let Some(proof) = form.proof() else {
        return Err(Box::new(error_page(state, &Error::Unauthorized, None)));
    };
    Ok((site, form, proof))
}

/// "Link your Mastodon account": off to the instance to approve.
async fn link(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: std::result::Result<Form<ProofForm>, FormRejection>,
) -> Response {
    let (site, form, proof) = match proven(&state, &headers, form) {
        Ok(found) => found,
        Err(res) => return *res,
    };
    let consent = form.consent();
    let instance = form.instance.clone().unwrap_or_default();
    match service::link_start(&state, &site, &proof, &instance, consent).await {
        Ok(started) => {
            let secure = if site.starts_with("https://") {
                "; Secure"
            } else {
                ""
            };
            let cookie = format!(
                "{BINDING}={}; Path=/patron/fediverse; Max-Age=600; HttpOnly; SameSite=Lax{secure}",
                started.binding
            );
            let mut res = (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, started.authorize_url)],
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(e) => error_page(&state, &e, Some(&proof)),
    }
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
}

/// Back from the instance: the account is linked if the flow is ours, for
/// this browser, and the instance vouches for the account.
async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let (Some(code), Some(oauth_state)) = (q.code, q.state) else {
        return respond(
            &state,
            StatusCode::OK,
            TITLE,
            "Linking was cancelled at your instance. Nothing was linked.",
            &[],
            &view(&state, None, None),
        );
    };
    let site = state.public.current().data.site_url.clone();
    let jar = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let binding = crate::auth::session::cookie(jar, BINDING);
    let res = match service::link_finish(&state, &site, &oauth_state, &code, binding).await {
        Ok(link) => respond(
            &state,
            StatusCode::OK,
            TITLE,
            "Your Mastodon account is linked. To unlink it, open your management link again.",
            &[],
            &view(&state, None, Some(link)),
        ),
        Err(e) => error_page(&state, &e, None),
    };
    forget_binding(res)
}

fn forget_binding(mut res: Response) -> Response {
    let gone = format!("{BINDING}=; Path=/patron/fediverse; Max-Age=0; HttpOnly; SameSite=Lax");
    if let Ok(v) = HeaderValue::from_str(&gone) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

/// Changes what the patron agreed to (shown, mentioned), keeping the link.
async fn consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: std::result::Result<Form<ProofForm>, FormRejection>,
) -> Response {
    let (_, form, proof) = match proven(&state, &headers, form) {
        Ok(found) => found,
        Err(res) => return *res,
    };
    let consent = form.consent();
    let changed = match service::set_consent(&state, &proof, consent).await {
        Ok(changed) => changed,
        Err(e) => return error_page(&state, &e, None),
    };
    let link = match service::link_of(&state, &proof).await {
        Ok(link) => link,
        Err(e) => return error_page(&state, &e, None),
    };
    let message = if changed {
        "Saved: your choices apply from now on."
    } else {
        "No Mastodon account is linked."
    };
    respond(
        &state,
        StatusCode::OK,
        TITLE,
        message,
        &[],
        &view(&state, Some(&proof), link),
    )
}

/// Unlinks the patron's account.
async fn unlink(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: std::result::Result<Form<ProofForm>, FormRejection>,
) -> Response {
    let (_, _, proof) = match proven(&state, &headers, form) {
        Ok(found) => found,
        Err(res) => return *res,
    };
    match service::unlink(&state, &proof).await {
        Ok(done) => {
            let message = if done {
                "Your Mastodon account is unlinked: it is no longer shown or mentioned."
            } else {
                "No Mastodon account was linked."
            };
            respond(
                &state,
                StatusCode::OK,
                TITLE,
                message,
                &[],
                &view(&state, Some(&proof), None),
            )
        }
        Err(e) => error_page(&state, &e, None),
    }
}
