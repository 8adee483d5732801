//! Signing in and out of the console, and the first owner's setup page.

use axum::{
    extract::State,
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
    http::{
        AppState,
        extract::{ClientIp, Query},
        origin,
    },
    render::console,
    service,
    store::{self, admins::AdminRow},
};

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    signed_out: Option<String>,
    /// Back after too many wrong second-factor codes.
    retry: Option<String>,
}

#[derive(Serialize)]
struct LoginView<'a> {
    csrf: &'a str,
    next: &'a str,
    email: &'a str,
    error: Option<String>,
    notice: Option<&'static str>,
    /// The instance whose accounts may sign in, when that is on.
    mastodon: Option<String>,
}

/// The sign-in form. Before any session exists its CSRF token rides in a
/// cookie of its own, and the form must post the same value.
pub async fn login_page(
    State(state): State<AppState>,
    Query(q): Query<LoginQuery>,
) -> Result<Response> {
    let notice = match (q.signed_out, q.retry) {
        (_, Some(_)) => Some("Too many wrong codes: sign in again."),
        (Some(_), _) => Some("You are signed out."),
        _ => None,
    };
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
            mastodon: mastodon_host(state),
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

/// The host of `auth.mastodon.instance_url`, when sign-in with it is on.
fn mastodon_host(state: &AppState) -> Option<String> {
    url::Url::parse(&state.settings.auth.mastodon.instance_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
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
    let second_factor_due = service::admins::has_second_factor(state, admin.id).await?;
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
            second_factor_due,
        },
    )
    .await?;
    tracing::info!(admin = admin.id, "console sign-in");
    let mut res = if second_factor_due {
        see_other(&format!("/admin/login/code?next={}", super::encode(next)))
    } else {
        see_other(next)
    };
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

pub async fn account_page(State(state): State<AppState>, signed: Signed) -> Result<Response> {
    #[derive(Serialize)]
    struct Account<'a> {
        role: &'a str,
        second_factor: bool,
        recovery_left: i64,
    }
    let second_factor = service::admins::has_second_factor(&state, signed.admin.id).await?;
    let recovery_left = store::admins::recovery_codes_left(&state.db, signed.admin.id).await?;
    let role = signed.admin.role.as_str();
    page(
        &signed,
        "account.html",
        "account",
        Account {
            role,
            second_factor,
            recovery_left,
        },
    )
}

#[derive(Serialize)]
struct EnrolView {
    secret: String,
    url: String,
    qr: String,
    codes: Vec<String>,
}

/// Starts setting up the second factor, then shows it (`second_factor_page`).
pub async fn second_factor_start(
    State(state): State<AppState>,
    Form { signed, .. }: Form<Nothing>,
) -> Result<Response> {
    service::admins::start_second_factor(&state, signed.admin.id, &signed.admin.email).await?;
    Ok(see_other("/admin/account/second-factor"))
}

/// The secret being set up, as a QR code and as text, and the form that
/// proves the app has it.
pub async fn second_factor_page(State(state): State<AppState>, signed: Signed) -> Result<Response> {
    let Some(e) =
        service::admins::pending_second_factor(&state, signed.admin.id, &signed.admin.email)
            .await?
    else {
        return Ok(see_other("/admin/account"));
    };
    page(
        &signed,
        "second_factor.html",
        "account",
        EnrolView {
            secret: e.secret,
            url: e.url,
            qr: e.qr_svg,
            codes: Vec::new(),
        },
    )
}

#[derive(Deserialize)]
pub struct CodeField {
    code: String,
}

/// Turns the second factor on and shows the recovery codes, this once.
pub async fn second_factor_confirm(
    State(state): State<AppState>,
    Form { signed, form }: Form<CodeField>,
) -> Result<Response> {
    match service::admins::confirm_second_factor(
        &state,
        &signed.admin.actor(),
        signed.admin.id,
        &form.code,
    )
    .await
    {
        Ok(codes) => page(
            &signed,
            "second_factor.html",
            "account",
            EnrolView {
                secret: String::new(),
                url: String::new(),
                qr: String::new(),
                codes,
            },
        ),
        Err(e) => super::after(signed.cookies, "/admin/account/second-factor", Err(e)),
    }
}

pub async fn second_factor_off(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Form { signed, form }: Form<CodeField>,
) -> Result<Response> {
    let outcome = async {
        let admin = store::admins::find(&state.db, signed.admin.id)
            .await?
            .ok_or(Error::Unauthorized)?;
        service::admins::turn_off_second_factor(
            &state,
            &state.login_limiter,
            ip,
            &signed.admin.actor(),
            &admin,
            &form.code,
        )
        .await?;
        Ok("The second factor is off: your password alone signs you in.".to_owned())
    }
    .await;
    super::after(signed.cookies, "/admin/account", outcome)
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

/// Wrong codes allowed per sign-in before the password is asked again.
const SECOND_FACTOR_TRIES: i32 = 5;

#[derive(Serialize)]
struct CodeView<'a> {
    csrf: &'a str,
    next: &'a str,
    error: Option<&'static str>,
}

/// The session behind the cookie while it waits for its second factor.
async fn due_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(String, store::sessions::SessionRow)>> {
    let Some(id) = session::cookie(cookie_header(headers), cookies(state).session_name()) else {
        return Ok(None);
    };
    let id_hash = crate::auth::hash_token(id);
    let now = store::now();
    let life = Lifetimes::from_settings(&state.settings.auth);
    let found = store::sessions::find_live(&state.db, &id_hash, now, now - life.idle).await?;
    Ok(found.filter(|s| s.second_factor_due).map(|s| (id_hash, s)))
}

fn code_form(csrf: &str, next: &str, error: Option<&'static str>) -> Result<Response> {
    let html = console::render("code.html", CodeView { csrf, next, error })?;
    let status = if error.is_some() {
        axum::http::StatusCode::UNAUTHORIZED
    } else {
        axum::http::StatusCode::OK
    };
    Ok((status, html_headers(), html).into_response())
}

/// The second step of signing in, for admins with a second factor.
pub async fn code_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Result<Response> {
    match due_session(&state, &headers).await? {
        Some((_, s)) => code_form(&s.csrf_token, local_path(q.next.as_deref()), None),
        None => Ok(see_other("/admin/login")),
    }
}

#[derive(Deserialize)]
struct CodeForm {
    code: String,
    next: Option<String>,
}

pub async fn code(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response> {
    origin::same_site_form(&headers, &state.settings.pages.site_url)?;
    let Some((id_hash, s)) = due_session(&state, &headers).await? else {
        return Ok(see_other("/admin/login"));
    };
    let form: CodeForm = checked_form(&body, &s.csrf_token)?;
    let next = local_path(form.next.as_deref());
    let admin = store::admins::find(&state.db, s.admin_id)
        .await?
        .filter(|a| !a.disabled)
        .ok_or(Error::Unauthorized)?;
    // Per client here; per session below: a few wrong codes and the
    // password is asked again, whose tries count per account.
    state.login_limiter.check_client(ip)?;
    match service::admins::check_second_factor(&state, &admin, &form.code).await {
        Ok(()) => {}
        Err(Error::InvalidCredentials) => {
            if !store::sessions::wrong_second_factor(
                &state.db,
                &id_hash,
                SECOND_FACTOR_TRIES,
                store::now(),
            )
            .await?
            {
                return Ok(see_other("/admin/login?retry=1"));
            }
            return code_form(
                &s.csrf_token,
                next,
                Some("That code does not match. Try the next one, or a recovery code."),
            );
        }
        Err(e) => return Err(e),
    }
    let cookies = cookies(&state);
    let new_id = session::mint();
    let now = store::now();
    if !store::sessions::pass_second_factor(
        &state.db,
        &id_hash,
        &crate::auth::hash_token(&new_id),
        now,
    )
    .await?
    {
        return Ok(see_other("/admin/login"));
    }
    let life = Lifetimes::from_settings(&state.settings.auth);
    let mut res = see_other(next);
    set_cookie(
        &mut res,
        &cookies.set(cookies.session_name(), &new_id, life.absolute.num_seconds()),
    );
    Ok(res)
}

#[derive(Deserialize)]
struct MastodonForm {
    next: Option<String>,
}

/// "Sign in with Mastodon": off to the instance to approve.
pub async fn mastodon_start(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response> {
    let form: MastodonForm = pre_session_form(&state, &headers, &body)?;
    state.login_limiter.check_client(ip)?;
    let site = state.public.current().data.site_url.clone();
    let to =
        service::admins::mastodon_start(&state, &site, local_path(form.next.as_deref())).await?;
    Ok(see_other(&to))
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
}

/// Back from the instance: signed in if the account is linked to an admin.
pub async fn mastodon_callback(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Result<Response> {
    state.login_limiter.check_client(ip)?;
    let (Some(code), Some(oauth_state)) = (q.code, q.state) else {
        // Declined at the instance (`?error=access_denied`).
        let error = Some("The sign-in with Mastodon was cancelled.".to_owned());
        return login_form(&state, "/admin", "", error, None);
    };
    let site = state.public.current().data.site_url.clone();
    match service::admins::mastodon_finish(&state, &site, &oauth_state, &code).await {
        Ok((admin, next)) => start_session(&state, &headers, &admin, &next).await,
        Err(Error::InvalidCredentials) => {
            let error = Some(
                "That sign-in with Mastodon expired or was used already. Try again.".to_owned(),
            );
            login_form(&state, "/admin", "", error, None)
        }
        Err(Error::Forbidden) => {
            let error = Some(
                "That Mastodon account is not linked to an admin here. An owner can link it in Settings."
                    .to_owned(),
            );
            let mut res = login_form(&state, "/admin", "", error, None)?;
            *res.status_mut() = axum::http::StatusCode::FORBIDDEN;
            Ok(res)
        }
        Err(e) => Err(e),
    }
}
