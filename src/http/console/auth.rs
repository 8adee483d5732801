//! Signing in and out of the console, and the first owner's setup page.

use axum::{
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use super::{
    Form, Signed, html_headers, local_path, page, see_other,
    session::{checked_form, cookie_header, cookies},
};
use crate::{
    auth::session::{self, Cookies, Lifetimes},
    error::{Error, Result},
    http::{AppState, extract::ClientIp, origin},
    render::console,
    service,
    store::{self, admins::AdminRow},
};

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    signed_out: Option<String>,
}

#[derive(Serialize)]
struct LoginView<'a> {
    csrf: &'a str,
    next: &'a str,
    email: &'a str,
    error: Option<String>,
    notice: Option<&'static str>,
}

/// The sign-in form. Before any session exists its CSRF token rides in a
/// cookie of its own, and the form must post the same value.
pub async fn login_page(
    State(state): State<AppState>,
    Query(q): Query<LoginQuery>,
) -> Result<Response> {
    let notice = q.signed_out.map(|_| "You are signed out.");
    login_form(&state, local_path(q.next.as_deref()), "", None, notice)
}

fn login_form(
    state: &AppState,
    next: &str,
    email: &str,
    error: Option<String>,
    notice: Option<&'static str>,
) -> Result<Response> {
    let cookies = cookies(state);
    let token = session::mint();
    let html = console::render(
        "login.html",
        LoginView {
            csrf: &token,
            next,
            email,
            error,
            notice,
        },
    )?;
    let status = if email.is_empty() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::UNAUTHORIZED
    };
    let mut res = (status, html_headers(), html).into_response();
    set_cookie(&mut res, &cookies.set(cookies.login_name(), &token, 3600));
    Ok(res)
}

fn set_cookie(res: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// A form posted before sign-in (login, setup): from this site, with the
/// token its page put in the login cookie.
fn pre_session_form<T: serde::de::DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T> {
    origin::same_site_form(headers, &state.settings.pages.site_url)?;
    let expected =
        session::cookie(cookie_header(headers), cookies(state).login_name()).unwrap_or("");
    checked_form(body, expected)
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response> {
    let form: LoginForm = pre_session_form(&state, &headers, &body)?;
    let next = local_path(form.next.as_deref());
    let admin = match service::admins::sign_in(
        &state,
        &state.login_limiter,
        ip,
        &form.email,
        form.password,
    )
    .await
    {
        Ok(admin) => admin,
        Err(Error::InvalidCredentials) => {
            let error = Some("That email and password do not match an admin.".to_owned());
            return login_form(&state, next, form.email.trim(), error, None);
        }
        Err(e) => return Err(e),
    };
    start_session(&state, &headers, &admin, next).await
}

/// Signs `admin` in: a new session id every time (whatever cookie the
/// browser had is revoked, so a planted id is worthless), then on to `next`.
async fn start_session(
    state: &AppState,
    headers: &HeaderMap,
    admin: &AdminRow,
    next: &str,
) -> Result<Response> {
    let cookies = cookies(state);
    let jar = cookie_header(headers);
    let now = store::now();
    if let Some(old) = session::cookie(jar, cookies.session_name()) {
        store::sessions::revoke(&state.db, &crate::auth::hash_token(old), now).await?;
    }
    let life = Lifetimes::from_settings(&state.settings.auth);
    let id = session::mint();
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    store::sessions::create(
        &state.db,
        &store::sessions::NewSession {
            id_hash: &crate::auth::hash_token(&id),
            admin_id: admin.id,
            csrf_token: &session::mint(),
            at: now,
            expires_at: now + life.absolute,
            user_agent: &user_agent.chars().take(300).collect::<String>(),
        },
    )
    .await?;
    tracing::info!(admin = admin.id, "console sign-in");
    let mut res = see_other(next);
    set_cookie(
        &mut res,
        &cookies.set(cookies.session_name(), &id, life.absolute.num_seconds()),
    );
    set_cookie(&mut res, &cookies.set(cookies.login_name(), "", 0));
    Ok(res)
}

fn signed_out(cookies: Cookies) -> Response {
    let mut res = see_other("/admin/login?signed_out=1");
    set_cookie(&mut res, &cookies.set(cookies.session_name(), "", 0));
    res
}

#[derive(Deserialize)]
pub struct Nothing {}

pub async fn logout(
    State(state): State<AppState>,
    Form { signed, .. }: Form<Nothing>,
) -> Result<Response> {
    store::sessions::revoke(&state.db, &signed.id_hash, store::now()).await?;
    Ok(signed_out(signed.cookies))
}

/// Ends every session of the signed-in admin, this one included: a stolen
/// cookie stops working at once.
pub async fn sign_out_everywhere(
    State(state): State<AppState>,
    Form { signed, .. }: Form<Nothing>,
) -> Result<Response> {
    let n = store::sessions::revoke_all(&state.db, signed.admin.id, store::now()).await?;
    tracing::info!(
        admin = signed.admin.id,
        sessions = n,
        "signed out everywhere"
    );
    Ok(signed_out(signed.cookies))
}

pub async fn account_page(signed: Signed) -> Result<Response> {
    #[derive(Serialize)]
    struct Account<'a> {
        role: &'a str,
    }
    let role = signed.admin.role.as_str();
    page(&signed, "account.html", "account", Account { role })
}

#[derive(Deserialize)]
pub struct SetupQuery {
    token: Option<String>,
}

#[derive(Serialize)]
struct SetupView<'a> {
    csrf: &'a str,
    token: &'a str,
    email: &'a str,
    error: Option<String>,
    done: bool,
}

/// The page the setup token opens: the first owner picks an email and a
/// password, and is signed in.
pub async fn setup_page(
    State(state): State<AppState>,
    Query(q): Query<SetupQuery>,
) -> Result<Response> {
    let done = store::admins::owner_exists(&state.db).await?;
    setup_form(&state, q.token.as_deref().unwrap_or(""), "", None, done)
}

fn setup_form(
    state: &AppState,
    token: &str,
    email: &str,
    error: Option<String>,
    done: bool,
) -> Result<Response> {
    let cookies = cookies(state);
    let csrf = session::mint();
    let html = console::render(
        "setup.html",
        SetupView {
            csrf: &csrf,
            token,
            email,
            error,
            done,
        },
    )?;
    let mut res = (html_headers(), html).into_response();
    set_cookie(&mut res, &cookies.set(cookies.login_name(), &csrf, 3600));
    Ok(res)
}

#[derive(Deserialize)]
struct SetupForm {
    token: String,
    email: String,
    password: String,
}

pub async fn setup(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response> {
    let form: SetupForm = pre_session_form(&state, &headers, &body)?;
    let created = service::admins::create_first_owner(
        &state,
        &state.login_limiter,
        ip,
        &form.token,
        &form.email,
        form.password,
    )
    .await;
    match created {
        Ok(admin) => start_session(&state, &headers, &admin, "/admin").await,
        Err(e @ (Error::Validation(_) | Error::Unauthorized | Error::Conflict { .. })) => {
            let message = match &e {
                Error::Unauthorized => {
                    "This setup link has expired or was used. Restart patronage for a new one."
                        .to_owned()
                }
                other => super::Flash::error(other).text,
            };
            setup_form(&state, &form.token, form.email.trim(), Some(message), false)
        }
        Err(e) => Err(e),
    }
}

#[derive(Serialize)]
struct InviteView<'a> {
    csrf: &'a str,
    token: &'a str,
    email: Option<String>,
    role: Option<&'static str>,
    error: Option<String>,
}

fn invite_form(
    state: &AppState,
    token: &str,
    invite: Option<store::admins::InviteRow>,
    error: Option<String>,
) -> Result<Response> {
    let cookies = cookies(state);
    let csrf = session::mint();
    let html = console::render(
        "invite.html",
        InviteView {
            csrf: &csrf,
            token,
            email: invite.as_ref().map(|i| i.email.clone()),
            role: invite.as_ref().map(|i| i.role.as_str()),
            error,
        },
    )?;
    let mut res = (html_headers(), html).into_response();
    set_cookie(&mut res, &cookies.set(cookies.login_name(), &csrf, 3600));
    Ok(res)
}

/// The page an invite link opens: the invitee sets a password.
pub async fn invite_page(
    State(state): State<AppState>,
    Query(q): Query<SetupQuery>,
) -> Result<Response> {
    let token = q.token.unwrap_or_default();
    let invite =
        store::admins::live_invite(&state.db, &crate::auth::hash_token(token.trim())).await?;
    invite_form(&state, &token, invite, None)
}

#[derive(Deserialize)]
struct InviteForm {
    token: String,
    password: String,
}

pub async fn accept_invite(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response> {
    let form: InviteForm = pre_session_form(&state, &headers, &body)?;
    let accepted = service::admins::accept_invite(
        &state,
        &state.login_limiter,
        ip,
        &form.token,
        form.password,
    )
    .await;
    match accepted {
        Ok(admin) => start_session(&state, &headers, &admin, "/admin").await,
        Err(e @ (Error::Validation(_) | Error::Conflict { .. })) => {
            let invite =
                store::admins::live_invite(&state.db, &crate::auth::hash_token(form.token.trim()))
                    .await?;
            invite_form(
                &state,
                &form.token,
                invite,
                Some(super::Flash::error(&e).text),
            )
        }
        Err(Error::Unauthorized) => invite_form(&state, &form.token, None, None),
        Err(e) => Err(e),
    }
}
