//! The optional second factor: set up from the account page, asked for at
//! every sign-in (console and API), each code accepted once, recovery codes
//! spent once.

use reqwest::{StatusCode, header};
use serde_json::json;

use crate::helpers::{OWNER_EMAIL, PASSWORD, TestApp};
use crate::on_both_backends;

on_both_backends!(
    an_owner_turns_on_a_second_factor_and_signing_in_then_needs_a_code,
    the_api_needs_the_code_too_and_each_code_works_once,
);

/// A browser's cookie jar, by hand: only what these tests need (shared
/// with the Mastodon sign-in tests).
pub(crate) struct Browser {
    client: reqwest::Client,
    pub base: String,
    cookies: Vec<(String, String)>,
}

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.base.clone(),
            cookies: Vec::new(),
        }
    }

    fn jar(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, res: &reqwest::Response) {
        for set in res.headers().get_all(header::SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            if !v.is_empty() {
                self.cookies.push((k.to_owned(), v.to_owned()));
            }
        }
    }

    pub async fn get(&mut self, path: &str) -> (StatusCode, String, String) {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .header(header::COOKIE, self.jar())
            .send()
            .await
            .unwrap();
        self.keep(&res);
        let location = location(&res);
        (res.status(), location, res.text().await.unwrap())
    }

    pub async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, String, String) {
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .header(header::COOKIE, self.jar())
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep(&res);
        let location = location(&res);
        (res.status(), location, res.text().await.unwrap())
    }

    /// The CSRF token in the page's forms.
    pub async fn csrf(&mut self, path: &str) -> String {
        let (status, _, html) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        hidden(&html, "csrf")
    }

    pub async fn sign_in(&mut self, email: &str) -> (StatusCode, String, String) {
        let csrf = self.csrf("/admin/login").await;
        self.post(
            "/admin/login",
            &[
                ("csrf", &csrf),
                ("email", email),
                ("password", PASSWORD),
                ("next", "/admin"),
            ],
        )
        .await
    }

    pub fn session(&self) -> Option<String> {
        self.cookies
            .iter()
            .find(|(k, _)| k == "patronage")
            .map(|(_, v)| v.clone())
    }
}

fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

pub(crate) fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

fn now() -> u64 {
    chrono::Utc::now().timestamp() as u64
}

/// Sets the second factor up through the account page, as the owner would
/// with an authenticator app; returns the secret and the recovery codes.
async fn enrol(b: &mut Browser) -> (String, Vec<String>) {
    let csrf = b.csrf("/admin/account").await;
    let (status, to, _) = b
        .post("/admin/account/second-factor/start", &[("csrf", &csrf)])
        .await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/admin/account/second-factor")
    );
    let (_, _, page) = b.get("/admin/account/second-factor").await;
    assert!(page.contains("<svg class=\"qr\""), "a QR code to scan");
    let secret = page
        .split("<code class=\"secret\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    let wrong = b
        .post(
            "/admin/account/second-factor/confirm",
            &[("csrf", &csrf), ("code", "000000")],
        )
        .await;
    assert_eq!(
        wrong.0,
        StatusCode::SEE_OTHER,
        "a wrong code goes back to the setup"
    );
    let code = patronage::auth::second_factor::code_at(&secret, now()).unwrap();
    let (status, _, page) = b
        .post(
            "/admin/account/second-factor/confirm",
            &[("csrf", &csrf), ("code", &code)],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let codes: Vec<String> = page
        .split("<li><code>")
        .skip(1)
        .map(|s| s.split('<').next().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10, "recovery codes, shown once");
    (secret, codes)
}

async fn an_owner_turns_on_a_second_factor_and_signing_in_then_needs_a_code(app: TestApp) {
    app.owner_token().await;
    let mut b = Browser::new(&app);
    b.sign_in(OWNER_EMAIL).await;
    let (secret, recovery) = enrol(&mut b).await;

    // A new sign-in: the password alone opens nothing.
    let mut b = Browser::new(&app);
    let (status, to, _) = b.sign_in(OWNER_EMAIL).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(to.starts_with("/admin/login/code"), "{to}");
    let halfway = b.session().unwrap();
    let (status, to, _) = b.get("/admin").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(to.starts_with("/admin/login"), "{to}");

    let csrf = b.csrf("/admin/login/code").await;
    let (status, _, page) = b
        .post(
            "/admin/login/code",
            &[("csrf", &csrf), ("code", "123456"), ("next", "/admin")],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("does not match"));

    // The code from the app (the step after enrolment's, which is spent).
    let code = patronage::auth::second_factor::code_at(&secret, now() + 30).unwrap();
    let (status, to, _) = b
        .post(
            "/admin/login/code",
            &[("csrf", &csrf), ("code", &code), ("next", "/admin")],
        )
        .await;
    assert_eq!((status, to.as_str()), (StatusCode::SEE_OTHER, "/admin"));
    assert_ne!(
        b.session().unwrap(),
        halfway,
        "a new session id once signed in"
    );
    assert_eq!(b.get("/admin").await.0, StatusCode::OK);

    // Another device, a lost phone: a recovery code signs in, once.
    for attempt in 0..2 {
        let mut other = Browser::new(&app);
        other.sign_in(OWNER_EMAIL).await;
        let csrf = other.csrf("/admin/login/code").await;
        let (status, _, _) = other
            .post(
                "/admin/login/code",
                &[
                    ("csrf", &csrf),
                    ("code", &recovery[0].to_uppercase()),
                    ("next", "/admin"),
                ],
            )
            .await;
        let expected = if attempt == 0 {
            StatusCode::SEE_OTHER
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(status, expected, "attempt {attempt}");
    }
    let audit = patronage::store::audit::list(&app.db, None, Some("admin.second_factor_on"), 10)
        .await
        .unwrap();
    assert_eq!(audit.len(), 1, "turning it on is audited");
}

async fn the_api_needs_the_code_too_and_each_code_works_once(app: TestApp) {
    app.owner_token().await;
    let mut b = Browser::new(&app);
    b.sign_in(OWNER_EMAIL).await;
    let (secret, _) = enrol(&mut b).await;
    let login = |code: Option<String>| {
        let app = &app;
        async move {
            app.send(
                reqwest::Method::POST,
                "/api/v1/admin/login",
                None,
                json!({"email": OWNER_EMAIL, "password": PASSWORD, "one_time_code": code}),
            )
            .await
            .status()
        }
    };
    assert_eq!(
        login(None).await,
        StatusCode::UNAUTHORIZED,
        "the password alone"
    );
    let code = patronage::auth::second_factor::code_at(&secret, now() + 30).unwrap();
    assert_eq!(login(Some(code.clone())).await, StatusCode::OK);
    assert_eq!(
        login(Some(code)).await,
        StatusCode::UNAUTHORIZED,
        "a code works once"
    );
}
