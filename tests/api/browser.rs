//! A real browser: headless Chromium (Debian's `chromium`; `.ci/run`
//! installs it) loads the support page, and a host page that frames
//! `/embed/progress` under a Mastodon-like Content-Security-Policy (frames
//! from https: and http:, images from 'self' only, no scripts). Screenshots
//! are kept under `target/screenshots/`; the checks are what a visitor
//! sees: the progress text, the progress bar, the sponsor's logo, the
//! links' rel, and the badge served under the host's own domain.

use std::{path::PathBuf, process::Command};

use axum::{
    Router,
    extract::{Path, State},
    http::header,
    response::{Html, IntoResponse},
    routing::get,
};
use chrono::Duration;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, TestApp};
use crate::public_pages::{approve, create_sponsor, png, sponsor_tier, today, upload_logo};

const CHROMIUM: &str = "chromium";
/// The embed's progress colour (light theme) and the logo's.
const ACCENT: [u8; 3] = [0x56, 0x3a, 0xcc];
const LOGO: [u8; 3] = [255, 0, 255];
/// The embed's progress colour in the dark theme.
const DARK_ACCENT: [u8; 3] = [0xa3, 0xa4, 0xff];
/// shields.io blue, the badge's message background.
const BADGE_BLUE: [u8; 3] = [0x00, 0x7e, 0xc6];

/// What Mastodon's about page allows, in the parts that matter here.
const MASTODON_CSP: &str = "base-uri 'none'; default-src 'none'; frame-ancestors 'none'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; script-src 'none'; frame-src 'self' https: http:; form-action 'self'";

pub(crate) fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Debian's Chromium, installed once if this machine lacks it (as root,
/// the way this project's machines run), so `cargo test` works on a fresh
/// machine as the README says. Without root it stays missing and the tests
/// fail saying so.
pub(crate) fn ensure_chromium() {
    static READY: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    READY.get_or_init(|| {
        let present = || {
            Command::new(CHROMIUM)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !present() {
            let quiet = |args: &[&str]| {
                let _ = Command::new("apt-get")
                    .args(args)
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .output();
            };
            quiet(&["update", "-qq"]);
            quiet(&["install", "-y", "-qq", "chromium"]);
        }
    });
}

/// Runs headless Chromium on `url`: a screenshot to `shot` if given, else
/// the DOM after load on stdout.
fn chromium(url: &str, shot: Option<&std::path::Path>, size: (u32, u32)) -> String {
    ensure_chromium();
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(CHROMIUM);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--hide-scrollbars",
        "--no-first-run",
        "--force-device-scale-factor=1",
        "--virtual-time-budget=5000",
        "--timeout=20000",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .arg(format!("--window-size={},{}", size.0, size.1));
    match shot {
        Some(path) => cmd.arg(format!("--screenshot={}", path.display())),
        None => cmd.arg("--dump-dom"),
    };
    let out = cmd.arg(url).output().unwrap_or_else(|e| {
        panic!(
            "cannot run `{CHROMIUM}` ({e}). These tests need headless Chromium: \
             apt-get install -y chromium (.ci/run installs it)"
        )
    });
    if let Some(path) = shot {
        assert!(
            path.exists(),
            "chromium wrote no screenshot for {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Pixels within a small distance of `rgb` (antialiasing aside).
fn count_colour(path: &std::path::Path, rgb: [u8; 3]) -> usize {
    count_near(path, rgb, 6)
}

fn count_near(path: &std::path::Path, rgb: [u8; 3], tolerance: u8) -> usize {
    let img = image::open(path).unwrap().to_rgb8();
    img.pixels()
        .filter(|p| (0..3).all(|i| p.0[i].abs_diff(rgb[i]) <= tolerance))
        .count()
}

async fn screenshot(url: String, name: &str, size: (u32, u32)) -> PathBuf {
    let path = screenshots().join(name);
    let _ = std::fs::remove_file(&path);
    let p = path.clone();
    tokio::task::spawn_blocking(move || chromium(&url, Some(&p), size))
        .await
        .unwrap();
    path
}

async fn dom(url: String) -> String {
    tokio::task::spawn_blocking(move || chromium(&url, None, (1000, 1200)))
        .await
        .unwrap()
}

/// The instance: an about page with the README's recipe pasted in, served
/// with Mastodon's CSP, and `/funding/` proxied to patronage like the
/// README's nginx location.
#[derive(Clone)]
struct Host {
    app_base: String,
}

async fn about(State(host): State<Host>) -> impl IntoResponse {
    let app = &host.app_base;
    let body = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>About example.social</title></head>
<body style="margin:0;font-family:sans-serif">
<h2>Support this server</h2>
<p><a href="{app}/support">Support example.social</a></p>
<iframe src="{app}/embed/progress" width="600" height="120" style="border:0" title="Funding progress"></iframe>
<p><img src="/funding/badge/patrons.svg" alt="patrons"></p>
<p><img src="{app}/badge/monthly.svg" alt="monthly (blocked: another origin)"></p>
</body></html>"#
    );
    (
        [(header::CONTENT_SECURITY_POLICY, MASTODON_CSP)],
        Html(body),
    )
}

async fn proxy(State(host): State<Host>, Path(rest): Path<String>) -> impl IntoResponse {
    let res = reqwest::get(format!("{}/{rest}", host.app_base))
        .await
        .unwrap();
    let content_type = res.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    let body = res.bytes().await.unwrap();
    ([(header::CONTENT_TYPE, content_type)], body)
}

async fn start_host() -> (u16, tokio::sync::oneshot::Sender<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    tokio::spawn(async move {
        let app_base = rx.await.unwrap();
        let router = Router::new()
            .route("/about", get(about))
            .route("/funding/{*rest}", get(proxy))
            .with_state(Host { app_base });
        axum::serve(listener, router).await.unwrap();
    });
    (port, tx)
}

mod about_page {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        run(Backend::Postgres).await;
    }

    async fn run(backend: Backend) {
        let (port, app_base) = start_host().await;
        let origin = format!("http://127.0.0.1:{port}");
        let o = origin.clone();
        let Some(app) = TestApp::spawn_with(backend, move |s| {
            s.pages.instance_url = o.clone();
            s.pages.frame_ancestors = vec![o];
            s.pages.rel_me = "https://example.social/@admin".into();
        })
        .await
        else {
            eprintln!("skipped: set PATRONAGE_TEST_DATABASE_URL to run on PostgreSQL");
            return;
        };
        app_base.send(app.base.clone()).unwrap();
        a_visitor_sees_the_support_page_and_the_framed_embed(app, origin, backend).await;
    }
}

async fn a_visitor_sees_the_support_page_and_the_framed_embed(
    app: TestApp,
    host: String,
    backend: Backend,
) {
    let tag = format!("{backend:?}").to_lowercase();
    let owner = app.owner_token().await;
    app.patch(
        "/api/v1/admin/campaign",
        &owner,
        json!({"name": "Example Social", "monthly_goal_minor": 2000}),
    )
    .await;
    let tier = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "Patron", "amount_minor": 500, "interval": "month"}),
        )
        .await;
    for i in 0..3 {
        let p = app
            .create_patron(&owner, &format!("p{i}@example.org"), &format!("Patron {i}"))
            .await;
        app.create_pledge(&owner, p, tier["id"].as_i64().unwrap(), None)
            .await;
    }
    let gold = sponsor_tier(&app, &owner, "Gold", 120_000).await;
    let id = create_sponsor(
        &app,
        &owner,
        gold,
        "Acme Hosting",
        "https://acme.example/",
        today() + Duration::days(30),
    )
    .await;
    let res = upload_logo(&app, &owner, id, png(300, 100, LOGO), "Acme Hosting").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    approve(&app, &owner, id).await;
    app.ctx.public.refresh().await.unwrap();

    // The support page, as Chromium builds it.
    let page = dom(app.url("/support")).await;
    assert!(page.contains("3 patrons contribute €15 a month"), "{page}");
    assert!(page.contains("75% of the €20 monthly goal"));
    let link = page
        .split("<a ")
        .find(|a| a.contains("https://acme.example/"))
        .expect("the sponsor's link");
    assert!(
        link.contains(r#"rel="sponsored noopener nofollow""#),
        "{link}"
    );
    assert!(page.contains(r#"alt="Acme Hosting""#));
    assert!(page.contains(r#"<link rel="me" href="https://example.social/@admin">"#));
    let shot = screenshot(
        app.url("/support"),
        &format!("support-{tag}.png"),
        (1000, 2400),
    )
    .await;
    assert!(
        count_colour(&shot, LOGO) > 5_000,
        "the sponsor's logo loaded: {}",
        shot.display()
    );
    assert!(
        count_colour(&shot, ACCENT) > 2_000,
        "the progress bar is drawn"
    );

    // The embed alone, light and dark.
    let embed = dom(app.url("/embed/progress")).await;
    assert!(embed.contains("3 patrons contribute €15 a month"));
    let dark = screenshot(
        app.url("/embed/progress?theme=dark"),
        &format!("embed-dark-{tag}.png"),
        (600, 300),
    )
    .await;
    assert!(
        count_colour(&dark, DARK_ACCENT) > 1_500,
        "the dark embed's bar: {}",
        dark.display()
    );

    // The about page: the embed renders inside Mastodon's CSP, the badge
    // loads through the instance's own domain, a foreign image does not.
    let about = screenshot(
        format!("{host}/about"),
        &format!("about-{tag}.png"),
        (800, 500),
    )
    .await;
    assert!(
        count_colour(&about, ACCENT) > 1_500,
        "the framed embed rendered: {}",
        about.display()
    );
    // (the badge's gradient shades its colours a little)
    assert!(
        count_near(&about, BADGE_BLUE, 24) > 100,
        "the proxied badge loaded"
    );

    // Control: the same page from an origin not in frame-ancestors shows no
    // embed (the browser refuses to frame it).
    let port = host.rsplit(':').next().unwrap();
    let elsewhere = screenshot(
        format!("http://localhost:{port}/about"),
        &format!("about-refused-{tag}.png"),
        (800, 500),
    )
    .await;
    assert_eq!(
        count_colour(&elsewhere, ACCENT),
        0,
        "frame-ancestors is enforced"
    );
}
