//! Signing in, the first owner, roles, and hostile tokens.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    Backend, OWNER_EMAIL, PASSWORD, TEST_SECRET, TestApp, expect_json, expect_problem,
};
use crate::on_both_backends;

on_both_backends!(
    setup_token_creates_the_first_owner_only_once,
    wrong_password_and_unknown_email_get_the_same_answer,
    login_is_rate_limited_per_account,
    viewers_read_but_cannot_change_anything,
    missing_expired_forged_and_unsigned_tokens_are_refused,
);

/// Runs each `async fn(TestApp)` on both backends, behind a reverse proxy on
/// loopback (`server.trusted_proxies = ["127.0.0.1"]`), so a test chooses the
/// client's address with `X-Forwarded-For`.
macro_rules! behind_a_proxy_on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(super::behind_proxy(super::Backend::Sqlite).await.unwrap()).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    match super::behind_proxy(super::Backend::Postgres).await {
                        Some(app) => super::$name(app).await,
                        None => eprintln!("skipped: set PATRONAGE_TEST_DATABASE_URL to run on PostgreSQL"),
                    }
                }
            }
        )*
    };
}

behind_a_proxy_on_both_backends!(
    forged_forwarded_for_entries_do_not_escape_the_limit,
    a_guesser_locks_out_its_own_address_not_the_owner,
    a_stranger_cannot_block_the_first_setup,
    a_login_flood_is_answered_503_never_500,
);

async fn behind_proxy(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |s| {
        s.server.trusted_proxies =
            patronage::config::TrustedProxies::parse(&["127.0.0.1", "::1"]).unwrap();
        s.auth.password_hashes_at_once = 1;
        s.auth.password_hash_queue = 2;
    })
    .await
}

/// Sends `body` to `path` as if from `client`, through the proxy: the client
/// may have written anything left of the address the proxy appends.
async fn post_from(
    app: &TestApp,
    client: &str,
    forged: &str,
    path: &str,
    body: serde_json::Value,
) -> reqwest::Response {
    let forwarded = if forged.is_empty() {
        client.to_owned()
    } else {
        format!("{forged}, {client}")
    };
    app.client
        .post(app.url(path))
        .header("x-forwarded-for", forwarded)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn forged_forwarded_for_entries_do_not_escape_the_limit(app: TestApp) {
    // 25 logins from one address, each with a new forged first entry and a
    // new account: the per-address limit (10 a minute) still applies.
    let started = std::time::Instant::now();
    let mut statuses = Vec::new();
    for i in 0..25 {
        let body = json!({"email": format!("guess{i}@example.org"), "password": "wrong password!"});
        let forged = format!("10.{i}.0.1");
        let res = post_from(&app, "198.51.100.7", &forged, "/api/v1/admin/login", body).await;
        statuses.push(res.status());
    }
    // The limit refills one try every 6 s: on a loaded machine (each wrong
    // password costs an argon2 hash) a try or two may come back.
    let refilled = (started.elapsed().as_secs() / 6) as usize;
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(
        refused <= 15 && refused + refilled >= 15,
        "{refused} refused after {refilled} refills: {statuses:?}"
    );
    assert!(
        statuses[..10]
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED)
    );
    // Another client is not affected.
    let body = json!({"email": "someone@example.org", "password": "wrong password!"});
    let res = post_from(&app, "198.51.100.8", "", "/api/v1/admin/login", body).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

async fn a_guesser_locks_out_its_own_address_not_the_owner(app: TestApp) {
    app.owner_token().await;
    let attacker = "203.0.113.66";
    let wrong = json!({"email": OWNER_EMAIL, "password": "guessing wrong password"});
    let mut limited = None;
    for _ in 0..20 {
        let res = post_from(&app, attacker, "", "/api/v1/admin/login", wrong.clone()).await;
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(res);
        }
    }
    let res = limited.expect("the guesser is refused");
    assert!(res.headers().get("retry-after").is_some());
    expect_problem(res, StatusCode::TOO_MANY_REQUESTS, "rate-limited").await;
    // Even the right password waits, from the guesser's address.
    let right = json!({"email": OWNER_EMAIL, "password": PASSWORD});
    let res = post_from(&app, attacker, "", "/api/v1/admin/login", right.clone()).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // The owner, from their own address, signs in at once.
    let res = post_from(&app, "198.51.100.20", "", "/api/v1/admin/login", right).await;
    let body = expect_json(res, StatusCode::OK).await;
    assert_eq!(body["token_type"], "Bearer");
}

async fn a_login_flood_is_answered_503_never_500(app: TestApp) {
    app.owner_token().await;
    // The one hash slot is taken, as by a login in progress; two more logins
    // may wait for it (password_hash_queue = 2).
    let held = app.ctx.heavy.passwords.occupy().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..12 {
        let (client, url, tx) = (
            app.client.clone(),
            app.url("/api/v1/admin/login"),
            tx.clone(),
        );
        tokio::spawn(async move {
            let res = client
                .post(url)
                .header("x-forwarded-for", format!("198.51.100.{i}"))
                .json(&json!({"email": OWNER_EMAIL, "password": "a wrong password"}))
                .send()
                .await
                .unwrap();
            tx.send(res).unwrap();
        });
    }
    for _ in 0..10 {
        let res = rx.recv().await.unwrap();
        assert_eq!(res.headers()["retry-after"], "1");
        expect_problem(res, StatusCode::SERVICE_UNAVAILABLE, "server-busy").await;
    }
    drop(held);
    for _ in 0..2 {
        let res = rx.recv().await.unwrap();
        expect_problem(res, StatusCode::UNAUTHORIZED, "invalid-credentials").await;
    }
    let res = app.login(OWNER_EMAIL, PASSWORD).await;
    expect_json(res, StatusCode::OK).await;
}

async fn a_stranger_cannot_block_the_first_setup(app: TestApp) {
    let token = app.setup_token.clone().unwrap();
    for _ in 0..20 {
        let body =
            json!({"setup_token": "guess", "email": "intruder@example.org", "password": PASSWORD});
        post_from(&app, "203.0.113.66", "", "/api/v1/admin/setup", body).await;
    }
    let body =
        json!({"setup_token": "guess", "email": "intruder@example.org", "password": PASSWORD});
    let res = post_from(&app, "203.0.113.66", "", "/api/v1/admin/setup", body).await;
    expect_problem(res, StatusCode::TOO_MANY_REQUESTS, "rate-limited").await;
    // The admin with the printed token, from elsewhere, is not held up.
    let body = json!({"setup_token": token, "email": OWNER_EMAIL, "password": PASSWORD});
    let res = post_from(&app, "198.51.100.20", "", "/api/v1/admin/setup", body).await;
    let owner = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(owner["role"], "owner");
}

async fn setup_token_creates_the_first_owner_only_once(app: TestApp) {
    let token = app
        .setup_token
        .clone()
        .expect("a fresh instance prints a setup token");
    let body = json!({"setup_token": "not-the-token", "email": OWNER_EMAIL, "password": PASSWORD});
    let res = app
        .send(reqwest::Method::POST, "/api/v1/admin/setup", None, body)
        .await;
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthorized").await;

    let owner = app.owner_token().await;
    let me = app.get_json("/api/v1/admin/me", Some(&owner)).await;
    assert_eq!(me["email"], OWNER_EMAIL);
    assert_eq!(me["role"], "owner");

    // The token is spent: nobody else can become owner with it.
    let again =
        json!({"setup_token": token, "email": "intruder@example.org", "password": PASSWORD});
    let res = app
        .send(reqwest::Method::POST, "/api/v1/admin/setup", None, again)
        .await;
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(
        app.login("intruder@example.org", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let login = expect_json(app.login(OWNER_EMAIL, PASSWORD).await, StatusCode::OK).await;
    assert_eq!(login["token_type"], "Bearer");
    assert_eq!(login["expires_in"], 900);
}

async fn wrong_password_and_unknown_email_get_the_same_answer(app: TestApp) {
    app.owner_token().await;
    let wrong = app.login(OWNER_EMAIL, "not the right password").await;
    let unknown = app
        .login("nobody@example.org", "not the right password")
        .await;
    let wrong = expect_problem(wrong, StatusCode::UNAUTHORIZED, "invalid-credentials").await;
    let unknown = expect_problem(unknown, StatusCode::UNAUTHORIZED, "invalid-credentials").await;
    assert_eq!(wrong, unknown);
}

async fn login_is_rate_limited_per_account(app: TestApp) {
    app.owner_token().await; // one successful login already counted
    let mut limited = None;
    for _ in 0..6 {
        let res = app.login(OWNER_EMAIL, "guessing wrong password").await;
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(res);
            break;
        }
    }
    let res = limited.expect("the sixth attempt within a minute is refused");
    assert!(res.headers().get("retry-after").is_some());
    expect_problem(res, StatusCode::TOO_MANY_REQUESTS, "rate-limited").await;
    // Even the right password waits now.
    assert_eq!(
        app.login(OWNER_EMAIL, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

async fn viewers_read_but_cannot_change_anything(app: TestApp) {
    let owner = app.owner_token().await;
    app.create_tier(
        &owner,
        json!({"kind": "patron", "name": "Supporter", "amount_minor": 300, "interval": "month"}),
    )
    .await;
    let viewer = app.viewer_token("accountant@example.org").await;

    assert_eq!(
        app.get("/api/v1/admin/tiers", Some(&viewer)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get(
            "/api/v1/admin/reports/monthly?from=2026-01&to=2026-02",
            Some(&viewer)
        )
        .await
        .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v1/admin/audit", Some(&viewer)).await.status(),
        StatusCode::OK
    );

    let writes = [
        (
            "/api/v1/admin/tiers",
            json!({"kind": "patron", "name": "X", "amount_minor": 100, "interval": "month"}),
        ),
        (
            "/api/v1/admin/contributions",
            json!({"amount_minor": 100, "date": "2026-01-01"}),
        ),
        (
            "/api/v1/admin/patrons",
            json!({"email": "p@example.org", "display_name": "P"}),
        ),
        ("/api/v1/admin/tiers/1/archive", json!({})),
    ];
    for (path, body) in writes {
        expect_problem(
            app.post(path, &viewer, body).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    }
    let res = app
        .patch(
            "/api/v1/admin/campaign",
            &viewer,
            json!({"name": "Hijacked"}),
        )
        .await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let tiers = app.get_json("/api/v1/admin/tiers", Some(&owner)).await;
    assert_eq!(
        tiers.as_array().unwrap().len(),
        1,
        "nothing was created by the viewer"
    );
}

fn claims(exp_offset: i64, aud: &str) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": "1", "role": "owner", "iss": "patronage", "aud": aud, "iat": now, "exp": now + exp_offset})
}

fn sign(claims: &serde_json::Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn missing_expired_forged_and_unsigned_tokens_are_refused(app: TestApp) {
    let owner = app.owner_token().await;
    // A well-formed token with our own key works, so the refusals below are
    // about what is wrong with each one.
    let good = sign(&claims(300, "patronage-admin"), TEST_SECRET);
    assert_eq!(
        app.get("/api/v1/admin/me", Some(&good)).await.status(),
        StatusCode::OK
    );

    let b64 = |v: serde_json::Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"})),
        b64(claims(300, "patronage-admin"))
    );
    let mut tampered = owner.clone();
    tampered.pop();
    tampered.push(if owner.ends_with('A') { 'B' } else { 'A' });
    let hostile = [
        (
            "expired",
            sign(&claims(-120, "patronage-admin"), TEST_SECRET),
        ),
        (
            "forged",
            sign(
                &claims(300, "patronage-admin"),
                "another-secret-another-secret-another",
            ),
        ),
        (
            "wrong audience",
            sign(&claims(300, "somebody-else"), TEST_SECRET),
        ),
        ("alg none", unsigned),
        ("tampered", tampered),
        ("garbage", "not.a.token".to_owned()),
    ];
    for (what, token) in hostile {
        let res = app.get("/api/v1/admin/me", Some(&token)).await;
        assert_eq!(
            res.status(),
            StatusCode::UNAUTHORIZED,
            "{what} token was accepted"
        );
        expect_problem(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    expect_problem(
        app.get("/api/v1/admin/me", None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
}
