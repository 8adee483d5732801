//! "Sign in with Mastodon" against a fake Mastodon instance on loopback
//! that speaks the real endpoints: `POST /api/v1/apps`, `/oauth/authorize`
//! (approving at once as the account signed in there), `/oauth/token`
//! (checking the PKCE verifier) and `verify_credentials`; and, for the
//! bot's posts (`fediverse_links.rs`), `POST /api/v1/statuses` honouring
//! `Idempotency-Key` as Mastodon does.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    Form, Json, Router,
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use serde_json::json;

use crate::helpers::{Backend, TestApp};
use crate::second_factor::Browser;

/// The instance's side: its apps, codes and tokens, and who is signed in
/// there (the account that approves).
#[derive(Default)]
pub struct Instance {
    pub apps: Vec<(String, String, String)>,
    /// code → (client_id, redirect_uri, challenge)
    codes: HashMap<String, (String, String, String)>,
    tokens: Vec<String>,
    /// Codes issued so far (each code's name is never reused).
    issued: usize,
    pub signed_in: String,
    /// Role permissions of that account, as Mastodon sends them: a decimal
    /// string (bit 0x1: Administrator).
    permissions: String,
    /// The account's profile page, when the instance gives one.
    pub profile_url: Option<String>,
    /// Answer garbage instead: "json" (bad JSON), "500", or "html" (a web
    /// page with status 200).
    pub garbage: Option<&'static str>,
    /// Statuses posted: (Idempotency-Key, text, visibility), one per status
    /// made (a repeated key makes none).
    pub statuses: Vec<(String, String, String)>,
    /// Requests to post, repeats included.
    pub status_requests: usize,
    /// The bot's token, checked on every post.
    pub bot_token: String,
}

pub type Shared = Arc<Mutex<Instance>>;

fn garbage(kind: Option<&'static str>) -> Option<Response> {
    match kind? {
        "json" => Some(
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                "{\"client_id\": ",
            )
                .into_response(),
        ),
        "500" => Some((StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response()),
        _ => Some(
            (
                [(axum::http::header::CONTENT_TYPE, "text/html")],
                "<html><body>We'll be back</body></html>",
            )
                .into_response(),
        ),
    }
}

async fn apps(State(i): State<Shared>, Form(f): Form<HashMap<String, String>>) -> Response {
    let mut i = i.lock().unwrap();
    if let Some(r) = garbage(i.garbage) {
        return r;
    }
    let id = format!("client-{}", i.apps.len() + 1);
    i.apps
        .push((id.clone(), "s3cret".into(), f["redirect_uris"].clone()));
    assert_eq!(f["scopes"], "read:accounts");
    Json(json!({"id": "1", "name": f["client_name"], "client_id": id, "client_secret": "s3cret", "redirect_uri": f["redirect_uris"]})).into_response()
}

async fn authorize(State(i): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut i = i.lock().unwrap();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(
        i.apps
            .iter()
            .any(|(id, _, uri)| *id == q["client_id"] && *uri == q["redirect_uri"])
    );
    i.issued += 1;
    let code = format!("code-{}", i.issued);
    i.codes.insert(
        code.clone(),
        (
            q["client_id"].clone(),
            q["redirect_uri"].clone(),
            q["code_challenge"].clone(),
        ),
    );
    Redirect::to(&format!(
        "{}?code={code}&state={}",
        q["redirect_uri"], q["state"]
    ))
    .into_response()
}

async fn token(State(i): State<Shared>, Form(f): Form<HashMap<String, String>>) -> Response {
    let mut i = i.lock().unwrap();
    if let Some(r) = garbage(i.garbage) {
        return r;
    }
    let Some((client, uri, challenge)) = i.codes.remove(&f["code"]) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    };
    let verified = patronage::fediverse::oauth::challenge(&f["code_verifier"]) == challenge;
    if client != f["client_id"]
        || uri != f["redirect_uri"]
        || f["client_secret"] != "s3cret"
        || !verified
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    }
    let token = format!("token-{}", i.tokens.len() + 1);
    i.tokens.push(token.clone());
    Json(json!({"access_token": token, "token_type": "Bearer", "scope": "read:accounts"}))
        .into_response()
}

async fn verify(State(i): State<Shared>, headers: HeaderMap) -> Response {
    let i = i.lock().unwrap();
    if let Some(r) = garbage(i.garbage) {
        return r;
    }
    let bearer = headers["authorization"]
        .to_str()
        .unwrap()
        .trim_start_matches("Bearer ");
    if !i.tokens.iter().any(|t| t == bearer) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    Json(
        json!({"id": "1", "username": i.signed_in, "acct": i.signed_in, "url": i.profile_url,
        "role": {"id": "3", "name": "Owner", "permissions": i.permissions, "color": "", "highlighted": true}}),
    )
    .into_response()
}

/// `POST /api/v1/statuses`: a repeated `Idempotency-Key` gets the status
/// made the first time, as Mastodon answers within an hour.
async fn statuses(
    State(i): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let mut i = i.lock().unwrap();
    i.status_requests += 1;
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if bearer != format!("Bearer {}", i.bot_token) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let found = i
        .statuses
        .iter()
        .position(|(k, _, _)| !key.is_empty() && *k == key);
    let n = match found {
        Some(n) => n,
        None => {
            i.statuses.push((
                key,
                f.get("status").cloned().unwrap_or_default(),
                f.get("visibility").cloned().unwrap_or_default(),
            ));
            i.statuses.len() - 1
        }
    };
    Json(json!({"id": (n + 1).to_string(), "url": format!("https://127.0.0.1/@bot/{}", n + 1)}))
        .into_response()
}

/// The instance approves `to_instance` (its authorize URL) and sends the
/// browser back: the path of that callback on patronage, which starts with
/// `callback` (the test app's public URL is not its loopback address).
pub async fn approve(to_instance: &str, callback: &str) -> String {
    assert!(
        to_instance.contains("/oauth/authorize?") && to_instance.contains("code_challenge="),
        "{to_instance}"
    );
    let back = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(to_instance)
        .send()
        .await
        .unwrap();
    let location = back.headers()["location"].to_str().unwrap().to_owned();
    location[location.find(callback).expect("back to patronage")..].to_owned()
}

pub async fn fake_mastodon() -> (String, Shared) {
    let shared = Shared::default();
    let router = Router::new()
        .route("/api/v1/apps", post(apps))
        .route("/api/v1/statuses", post(statuses))
        .route("/oauth/authorize", get(authorize))
        .route("/oauth/token", post(token))
        .route("/api/v1/accounts/verify_credentials", get(verify))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, shared)
}

/// Each test once per backend; with `@administrators_as ("viewer")` first,
/// the owner has opted the instance's administrators in as that role.
macro_rules! with_a_mastodon_instance {
    ($($name:ident),* $(,)?) => {
        with_a_mastodon_instance!(@administrators_as ("") $($name),*);
    };
    (@administrators_as ($role:expr) $($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::run(crate::helpers::Backend::Sqlite, $role, super::$name).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::run(crate::helpers::Backend::Postgres, $role, super::$name).await;
                }
            }
        )*
    };
}

with_a_mastodon_instance!(
    an_admin_linked_to_a_mastodon_account_signs_in_with_it,
    an_account_not_linked_to_an_admin_gets_nothing_even_an_instance_administrator,
);

with_a_mastodon_instance!(@administrators_as ("viewer")
    an_instance_administrator_signs_in_as_a_viewer_once_the_owner_opted_in,
    without_the_administrator_bit_an_account_gets_nothing_even_opted_in,
);

async fn run<F, Fut>(backend: Backend, administrators_as: &'static str, test: F)
where
    F: FnOnce(TestApp, Shared) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let (url, instance) = fake_mastodon().await;
    let app = TestApp::spawn_with(backend, move |s| {
        s.auth.mastodon.instance_url = url;
        s.auth.mastodon.administrators_as = administrators_as.into();
    })
    .await;
    match app {
        Some(app) => test(app, instance).await,
        None => eprintln!("skipped: set PATRONAGE_TEST_DATABASE_URL to run on PostgreSQL"),
    }
}

/// Presses "Sign in with Mastodon" and follows the redirects through the
/// instance; returns the last answer's status, location and body.
async fn sign_in_with_mastodon(b: &mut Browser) -> (StatusCode, String, String) {
    let (_, _, page) = b.get("/admin/login").await;
    assert!(page.contains("Sign in with Mastodon (127.0.0.1)"), "{page}");
    let csrf = crate::second_factor::hidden(&page, "csrf");
    let (status, to_instance, _) = b
        .post(
            "/admin/login/mastodon",
            &[("csrf", &csrf), ("next", "/admin/ledger")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let path = approve(&to_instance, "/admin/login/mastodon/callback").await;
    b.get(&path).await
}

async fn an_admin_linked_to_a_mastodon_account_signs_in_with_it(app: TestApp, instance: Shared) {
    app.owner_token().await;
    instance.lock().unwrap().signed_in = "admin".into();
    let mut owner = Browser::new(&app);
    owner.sign_in(crate::helpers::OWNER_EMAIL).await;
    let csrf = owner.csrf("/admin/settings").await;
    let (status, _, _) = owner
        .post(
            "/admin/settings/admins/1/mastodon",
            &[("csrf", &csrf), ("acct", "@Admin")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, settings) = owner.get("/admin/settings").await;
    assert!(
        settings.contains("value=\"admin@127.0.0.1\""),
        "a local account gets the instance's host"
    );

    for round in 0..2 {
        let mut b = Browser::new(&app);
        let (status, to, _) = sign_in_with_mastodon(&mut b).await;
        assert_eq!(
            (status, to.as_str()),
            (StatusCode::SEE_OTHER, "/admin/ledger"),
            "round {round}"
        );
        assert_eq!(
            b.get("/admin/ledger").await.0,
            StatusCode::OK,
            "signed in as the owner"
        );
    }
    assert_eq!(
        instance.lock().unwrap().apps.len(),
        1,
        "the app is registered once"
    );

    // The callback link, used again, opens nothing.
    let mut b = Browser::new(&app);
    let (_, _, page) = b.get("/admin/login").await;
    let csrf = crate::second_factor::hidden(&page, "csrf");
    let (_, to_instance, _) = b.post("/admin/login/mastodon", &[("csrf", &csrf)]).await;
    let callback = approve(&to_instance, "/admin/").await;
    assert_eq!(b.get(&callback).await.0, StatusCode::SEE_OTHER);
    let mut thief = Browser::new(&app);
    let (status, _, page) = thief.get(&callback).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("expired or was used"), "{page}");
    assert!(thief.session().is_none());
}

async fn an_account_not_linked_to_an_admin_gets_nothing_even_an_instance_administrator(
    app: TestApp,
    instance: Shared,
) {
    app.owner_token().await;
    {
        let mut i = instance.lock().unwrap();
        i.signed_in = "stranger".into();
        i.permissions = "1".into();
    }
    let mut b = Browser::new(&app);
    let (status, _, page) = sign_in_with_mastodon(&mut b).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("not linked to an admin"), "{page}");
    assert!(b.session().is_none(), "no session");
    assert_eq!(
        b.get("/admin").await.0,
        StatusCode::SEE_OTHER,
        "nothing opens"
    );
    // A forged state is refused too.
    let (_, _, page) = b
        .get("/admin/login/mastodon/callback?code=code-1&state=forged")
        .await;
    assert!(page.contains("expired or was used"), "{page}");
    assert!(b.session().is_none());
    let admins = patronage::store::admins::list(&app.db).await.unwrap();
    assert_eq!(admins.len(), 1, "nobody became an admin by signing in");
}

/// The owner opted in with `administrators_as = "viewer"`: an account that
/// holds the instance's Administrator permission, linked to nobody, becomes
/// a viewer at its first sign-in, audited as the Mastodon role's doing, and
/// is the same admin the next time.
async fn an_instance_administrator_signs_in_as_a_viewer_once_the_owner_opted_in(
    app: TestApp,
    instance: Shared,
) {
    let owner = app.owner_token().await;
    {
        let mut i = instance.lock().unwrap();
        i.signed_in = "Boss".into();
        // Every permission of Mastodon 4.x, Administrator (0x1) among them.
        i.permissions = "1048575".into();
    }
    for round in 0..2 {
        let mut b = Browser::new(&app);
        let (status, to, page) = sign_in_with_mastodon(&mut b).await;
        assert_eq!(
            (status, to.as_str()),
            (StatusCode::SEE_OTHER, "/admin/ledger"),
            "round {round}: {page}"
        );
        assert_eq!(b.get("/admin/ledger").await.0, StatusCode::OK);
        // A viewer: owner pages stay shut.
        assert_eq!(b.get("/admin/settings").await.0, StatusCode::FORBIDDEN);
    }

    let admins = patronage::store::admins::list(&app.db).await.unwrap();
    assert_eq!(admins.len(), 2, "one admin made, and only once");
    let made = &admins[1];
    assert_eq!(made.role, patronage::auth::Role::Viewer);
    assert_eq!(made.email, "@boss@127.0.0.1", "its handle, not an address");
    let linked = patronage::store::admins::find_by_mastodon_acct(&app.db, "boss@127.0.0.1")
        .await
        .unwrap()
        .expect("linked to the account");
    assert_eq!(linked.id, made.id);

    let audit = app
        .get_json("/api/v1/admin/audit?action=admin.create", Some(&owner))
        .await;
    let entry = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["target_id"] == made.id)
        .unwrap_or_else(|| panic!("no admin.create for the new admin in {audit}"))
        .clone();
    assert_eq!(entry["actor"], "Mastodon Administrator role");
    assert!(entry["actor_id"].is_null());
    assert!(
        entry["details"].to_string().contains("boss@127.0.0.1"),
        "{entry}"
    );

    // No password was set: the handle cannot sign in with one.
    let res = app.login("@boss@127.0.0.1", crate::helpers::PASSWORD).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

/// Opted in, but the account's role lacks the Administrator bit, or its
/// permissions are not a plain decimal string: refused as before.
async fn without_the_administrator_bit_an_account_gets_nothing_even_opted_in(
    app: TestApp,
    instance: Shared,
) {
    app.owner_token().await;
    // Every permission but Administrator; then 0x1 written as Mastodon
    // never does.
    for permissions in ["1048574", "0x1", "+1"] {
        {
            let mut i = instance.lock().unwrap();
            i.signed_in = "moderator".into();
            i.permissions = permissions.into();
        }
        let mut b = Browser::new(&app);
        let (status, _, page) = sign_in_with_mastodon(&mut b).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{permissions}");
        assert!(page.contains("not linked to an admin"), "{page}");
        assert!(b.session().is_none(), "no session");
    }
    let admins = patronage::store::admins::list(&app.db).await.unwrap();
    assert_eq!(admins.len(), 1, "nobody became an admin by signing in");
}
