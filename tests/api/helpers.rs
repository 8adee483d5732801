//! Starts the real application on loopback, on a fresh database of either
//! backend, and talks to it over HTTP.

use std::sync::OnceLock;

use patronage::{app::Application, config::Settings, store::Db};
use reqwest::{Response, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};
use tokio_util::sync::CancellationToken;

pub const TEST_SECRET: &str = "test-secret-test-secret-test-secret-0123";
pub const OWNER_EMAIL: &str = "owner@example.org";
pub const PASSWORD: &str = "correct horse battery staple";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn(TestApp)` once per backend. With `@adjust (f)`
/// first, `f(&mut Settings)` adjusts the settings. The PostgreSQL variant
/// needs PATRONAGE_TEST_DATABASE_URL (or DATABASE_URL); without it the
/// variant says so and returns, and CI always sets it.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $crate::on_both_backends!(@adjust (|_| {}) $($name),*);
    };
    (@adjust ($adjust:expr) $($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let app = $crate::helpers::TestApp::spawn_with($crate::helpers::Backend::Sqlite, $adjust).await.unwrap();
                    super::$name(app).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    match $crate::helpers::TestApp::spawn_with($crate::helpers::Backend::Postgres, $adjust).await {
                        Some(app) => super::$name(app).await,
                        None => eprintln!("skipped: set PATRONAGE_TEST_DATABASE_URL to run on PostgreSQL"),
                    }
                }
            }
        )*
    };
}

/// Like `on_both_backends!`, for `async fn(TestApp, FakeStripe)`. With
/// `@adjust (f)` first, `f(&mut Settings)` adjusts the settings.
#[macro_export]
macro_rules! with_stripe_on_both_backends {
    ($($name:ident),* $(,)?) => {
        $crate::with_stripe_on_both_backends!(@adjust (|_| {}) $($name),*);
    };
    (@adjust ($adjust:expr) $($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let (app, fake) = $crate::helpers::TestApp::spawn_with_stripe_and($crate::helpers::Backend::Sqlite, $adjust).await.unwrap();
                    super::$name(app, fake).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    match $crate::helpers::TestApp::spawn_with_stripe_and($crate::helpers::Backend::Postgres, $adjust).await {
                        Some((app, fake)) => super::$name(app, fake).await,
                        None => eprintln!("skipped: set PATRONAGE_TEST_DATABASE_URL to run on PostgreSQL"),
                    }
                }
            }
        )*
    };
}

pub fn postgres_url() -> Option<String> {
    std::env::var("PATRONAGE_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .ok()
        .filter(|u| u.starts_with("postgres"))
}

pub struct TestApp {
    pub base: String,
    /// The running service's context (its mailer, for instance).
    pub ctx: patronage::http::AppState,
    pub client: reqwest::Client,
    pub setup_token: Option<String>,
    pub db: Db,
    shutdown: CancellationToken,
    settings: Settings,
    pg_database: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

/// A fresh database on the test server: `(admin url, new db url, name)`.
pub async fn create_pg_database(admin_url: &str) -> (String, String) {
    let name = format!("patronage_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(admin_url)
        .await
        .expect("PATRONAGE_TEST_DATABASE_URL is set but the server cannot be reached");
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .expect("create test database");
    let mut url = url::Url::parse(admin_url).expect("valid postgres url");
    url.set_path(&name);
    (url.to_string(), name)
}

pub fn test_settings(dir: &std::path::Path, database_url: &str) -> Settings {
    let mut s = Settings::defaults();
    s.server.bind = "127.0.0.1:0".parse().unwrap();
    s.server.data_dir = dir.to_path_buf();
    s.database.url = database_url.to_owned();
    s.database.max_connections = 5;
    s.auth.jwt_secret = SecretString::from(TEST_SECRET);
    s.log.level = "warn".into();
    // Most scenarios check exact totals with one or two patrons; the privacy
    // tests (public_pages.rs) run with the default threshold of 3.
    s.pages.privacy_threshold = 1;
    s
}

impl TestApp {
    pub async fn spawn_with(
        backend: Backend,
        adjust: impl FnOnce(&mut Settings),
    ) -> Option<TestApp> {
        static TRACING: OnceLock<()> = OnceLock::new();
        TRACING.get_or_init(|| {
            patronage::telemetry::init_tracing(&test_settings(std::path::Path::new("."), "").log)
        });
        let dir = tempfile::tempdir().unwrap();
        let (database_url, pg_database) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("patronage.db").display()),
                None,
            ),
            Backend::Postgres => {
                let admin = postgres_url()?;
                let (url, name) = create_pg_database(&admin).await;
                (url, Some((admin, name)))
            }
        };
        let mut settings = test_settings(dir.path(), &database_url);
        adjust(&mut settings);
        let app = Application::build(settings.clone())
            .await
            .expect("application builds");
        let base = format!("http://{}", app.local_addr());
        let setup_token = app.setup_token.clone();
        let ctx = app.context();
        let shutdown = app.shutdown_token();
        tokio::spawn(app.run_until_stopped());
        let db = Db::connect(&database_url, 2, std::time::Duration::from_secs(5))
            .await
            .unwrap();
        Some(TestApp {
            base,
            ctx,
            client: reqwest::Client::new(),
            setup_token,
            db,
            shutdown,
            settings,
            pg_database,
            _dir: dir,
        })
    }

    /// The app wired to a fresh fake Stripe, which sends its webhooks here.
    pub async fn spawn_with_stripe(
        backend: Backend,
    ) -> Option<(TestApp, crate::fake_stripe::FakeStripe)> {
        Self::spawn_with_stripe_and(backend, |_| {}).await
    }

    /// The app wired to a fresh fake Stripe, with settings adjusted after.
    pub async fn spawn_with_stripe_and(
        backend: Backend,
        adjust: impl FnOnce(&mut Settings),
    ) -> Option<(TestApp, crate::fake_stripe::FakeStripe)> {
        let fake = crate::fake_stripe::FakeStripe::start().await;
        let base = fake.base.clone();
        let app = Self::spawn_with(backend, move |s| {
            s.stripe.secret_key = SecretString::from("sk_test_patronage");
            s.stripe.webhook_secret = SecretString::from(format!(
                "whsec_rotated_out,{}",
                crate::fake_stripe::WEBHOOK_SECRET
            ));
            s.stripe.api_base = base;
            s.stripe.success_url = "https://fund.example.social/thanks".into();
            s.stripe.cancel_url = "https://fund.example.social/support".into();
            s.queue.retry_base_secs = 1;
            s.mail.transport = patronage::config::MailTransport::Memory;
            adjust(s);
        })
        .await?;
        fake.send_webhooks_to(app.url("/webhooks/stripe"));
        fake.settle_through(app.ctx.core.clone());
        Some((app, fake))
    }

    /// A second `patronage serve` on the same database (its own data dir),
    /// as another replica would run. Stops with this app.
    pub async fn replica(&self) -> Replica {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = self.settings.clone();
        settings.server.data_dir = dir.path().to_path_buf();
        let app = Application::build(settings).await.expect("replica builds");
        let base = format!("http://{}", app.local_addr());
        let ctx = app.context();
        let stop = self.shutdown.clone();
        let run = app.shutdown_token();
        tokio::spawn(async move {
            stop.cancelled().await;
            run.cancel();
        });
        tokio::spawn(app.run_until_stopped());
        Replica {
            base,
            ctx,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Which database this app runs on.
    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(..) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// The queue's tasks in `status`, newest first, as an admin sees them.
    pub async fn tasks(&self, owner: &str, status: &str) -> Vec<Value> {
        self.get_json(&format!("/api/v1/admin/tasks?status={status}"), Some(owner))
            .await["items"]
            .as_array()
            .unwrap()
            .clone()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> Response {
        let mut req = self.client.request(method, self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.send(reqwest::Method::POST, path, Some(token), body)
            .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Response {
        self.send(reqwest::Method::PATCH, path, Some(token), body)
            .await
    }

    /// POSTs and asserts the status, returning the JSON body.
    pub async fn post_ok(
        &self,
        path: &str,
        token: &str,
        body: Value,
        expected: StatusCode,
    ) -> Value {
        let res = self.post(path, token, body).await;
        expect_json(res, expected).await
    }

    pub async fn get_json(&self, path: &str, token: Option<&str>) -> Value {
        expect_json(self.get(path, token).await, StatusCode::OK).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.send(
            reqwest::Method::POST,
            "/api/v1/admin/login",
            None,
            json!({"email": email, "password": password}),
        )
        .await
    }

    /// Creates the first owner through the setup endpoint and signs in.
    pub async fn owner_token(&self) -> String {
        let token = self
            .setup_token
            .clone()
            .expect("fresh app has a setup token");
        let res = self
            .send(
                reqwest::Method::POST,
                "/api/v1/admin/setup",
                None,
                json!({"setup_token": token, "email": OWNER_EMAIL, "password": PASSWORD}),
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::CREATED,
            "{}",
            res.text().await.unwrap()
        );
        self.token_for(OWNER_EMAIL).await
    }

    pub async fn token_for(&self, email: &str) -> String {
        let body = expect_json(self.login(email, PASSWORD).await, StatusCode::OK).await;
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Creates a viewer directly in the store, as `admin create` does.
    pub async fn viewer_token(&self, email: &str) -> String {
        let email_v = patronage::domain::supporter::Email::parse("email", email).unwrap();
        let hash = patronage::auth::password::hash(PASSWORD).unwrap();
        patronage::store::admins::create(
            &self.db,
            &patronage::store::audit::Actor::cli(),
            &email_v,
            &hash,
            patronage::auth::Role::Viewer,
            patronage::store::admins::Grant::Direct,
        )
        .await
        .unwrap();
        self.token_for(email).await
    }

    pub async fn create_tier(&self, token: &str, body: Value) -> Value {
        self.post_ok("/api/v1/admin/tiers", token, body, StatusCode::CREATED)
            .await
    }

    pub async fn create_patron(&self, token: &str, email: &str, name: &str) -> i64 {
        let body = json!({"email": email, "display_name": name, "visibility": "public"});
        self.post_ok("/api/v1/admin/patrons", token, body, StatusCode::CREATED)
            .await["id"]
            .as_i64()
            .unwrap()
    }

    pub async fn create_pledge(
        &self,
        token: &str,
        supporter: i64,
        tier: i64,
        started_on: Option<&str>,
    ) -> Value {
        let mut body = json!({"supporter_id": supporter, "tier_id": tier});
        if let Some(d) = started_on {
            body["started_on"] = json!(d);
        }
        self.post_ok("/api/v1/admin/pledges", token, body, StatusCode::CREATED)
            .await
    }

    /// A public view once changes from webhooks have reached the snapshot
    /// (they are applied in the background, within about 100 ms).
    /// Messages the outbox sent (memory transport) that `wanted` picks,
    /// decoded as a mail client shows them; waits until there are `count`.
    pub async fn mails(&self, wanted: impl Fn(&Mail) -> bool, count: usize) -> Vec<Mail> {
        for _ in 0..150 {
            let found: Vec<Mail> = self
                .ctx
                .mailer
                .sent()
                .await
                .iter()
                .map(|raw| Mail::parse(raw))
                .filter(|m| wanted(m))
                .collect();
            if found.len() >= count {
                return found;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("fewer than {count} of the expected messages were sent");
    }

    pub async fn public_json(&self, path: &str) -> Value {
        self.ctx.public.refresh().await.unwrap();
        self.get_json(path, None).await
    }

    pub async fn funding(&self) -> Value {
        self.public_json("/api/v1/funding").await
    }
}

pub struct Replica {
    pub base: String,
    pub ctx: patronage::http::AppState,
    _dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some((admin, name)) = self.pg_database.take() {
            drop_pg_database(admin, name);
        }
    }
}

/// Drops a test database, from sync code (a `Drop`).
pub fn drop_pg_database(admin: String, name: String) {
    // Dropping needs async I/O; do it on a small runtime of its own.
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            if let Ok(mut conn) = PgConnection::connect(&admin).await {
                let _ = conn
                    .execute(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .await;
            }
        });
    })
    .join();
}

/// The page at `url` as `client` sees it (its cookies, its session).
pub async fn page_text(client: &reqwest::Client, url: String) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

pub async fn expect_json(res: Response, expected: StatusCode) -> Value {
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(status, expected, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// Asserts an RFC 9457 problem with the given status and `type` slug.
pub async fn expect_problem(res: Response, status: StatusCode, code: &str) -> Value {
    let got = res.status();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = res.text().await.unwrap();
    assert_eq!(got, status, "body: {text}");
    assert_eq!(content_type, "application/problem+json", "body: {text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body["type"],
        format!("https://patronage.dev/problems/{code}"),
        "body: {text}"
    );
    assert_eq!(body["status"], status.as_u16());
    body
}

/// Money in a response: its minor amount.
pub fn minor(v: &Value) -> i64 {
    v["amount_minor"]
        .as_i64()
        .unwrap_or_else(|| panic!("not money: {v}"))
}

/// A received email, decoded (MIME, encodings) as a mail client shows it.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub from: String,
    pub from_name: String,
    pub subject: String,
    pub message_id: String,
    pub text: String,
    pub html: String,
    pub raw: String,
}

impl Mail {
    pub fn parse(raw: &str) -> Mail {
        let m = mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .expect("an RFC 5322 message");
        let first = |a: Option<&mail_parser::Address>| {
            a.and_then(|a| a.first())
                .map(|a| {
                    (
                        a.name.as_deref().unwrap_or_default().to_owned(),
                        a.address.as_deref().unwrap_or_default().to_owned(),
                    )
                })
                .unwrap_or_default()
        };
        let (_, to) = first(m.to());
        let (from_name, from) = first(m.from());
        Mail {
            to,
            from,
            from_name,
            subject: m.subject().unwrap_or_default().to_owned(),
            message_id: m.message_id().unwrap_or_default().to_owned(),
            text: m.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
            html: m.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
            raw: raw.to_owned(),
        }
    }

    /// The first link in the text part that contains `needle`.
    pub fn link(&self, needle: &str) -> Option<String> {
        self.text
            .split_whitespace()
            .find(|w| w.contains(needle))
            .map(str::to_owned)
    }
}
