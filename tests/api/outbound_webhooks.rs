//! Signed outbound webhooks, as a receiver sees them: a server on loopback
//! that checks every request's signature with the Standard Webhooks
//! algorithm, written here from the specification (HMAC-SHA256 over
//! `id.timestamp.body` with the base64-decoded `whsec_` key).

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{extract::State, http::HeaderMap, http::StatusCode as AxumStatus, routing::post};
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::fake_stripe::{Delivery, FakeStripe};
use crate::helpers::{TestApp, expect_json, expect_problem};
use crate::{on_both_backends, with_stripe_on_both_backends};

pub(crate) fn open(s: &mut patronage::config::Settings) {
    s.webhooks.allow_http = true;
    s.webhooks.allow_private = true;
    s.mail.transport = patronage::config::MailTransport::Memory;
}

fn quick_to_disable(s: &mut patronage::config::Settings) {
    open(s);
    s.webhooks.disable_after_hours = 0;
    s.webhooks.disable_after_failures = 2;
}

with_stripe_on_both_backends!(@adjust (crate::outbound_webhooks::open)
    a_receiver_is_told_what_happened_once_and_signed,
);
on_both_backends!(@adjust (open)
    a_failing_receiver_gets_the_same_message_again_and_the_log_says_so,
    a_rotated_secret_signs_beside_the_new_one,
    owners_redeliver_one_event_or_everything_since_a_date,
    the_goal_is_reached_once,
    sponsors_are_told_when_they_appear_and_disappear,
    a_recorded_bank_transfer_is_a_payment_and_its_void_takes_it_back,
);
on_both_backends!(@adjust (open)
    owners_manage_endpoints_in_the_console_and_see_the_secret_once,
);
on_both_backends!(@adjust (quick_to_disable)
    an_endpoint_that_keeps_failing_is_turned_off_and_owners_are_emailed,
);
on_both_backends!(private_addresses_and_plain_http_are_refused,);
on_both_backends!(@adjust (|s| s.webhooks.allow_http = true)
    the_guard_holds_with_http_allowed,
);

/// One request as received.
#[derive(Debug, Clone)]
struct Got {
    id: String,
    signatures: Vec<String>,
    /// Which of the receiver's secrets verified it (indexes).
    verified_by: Vec<usize>,
    body: Value,
}

#[derive(Default)]
struct ReceiverState {
    got: Vec<Got>,
    /// Answer 500 to this many requests first.
    fail_next: usize,
    always_fail: bool,
    secrets: Vec<String>,
}

#[derive(Clone, Default)]
pub(crate) struct Receiver {
    state: Arc<Mutex<ReceiverState>>,
    addr: Option<SocketAddr>,
}

/// The Standard Webhooks signature, from the specification.
fn reference_signature(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

async fn receive(
    State(r): State<Receiver>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (AxumStatus, String) {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (id, timestamp) = (h("webhook-id"), h("webhook-timestamp"));
    let signatures: Vec<String> = h("webhook-signature")
        .split(' ')
        .map(str::to_owned)
        .collect();
    let ts: i64 = timestamp.parse().unwrap_or(0);
    let fresh = (chrono::Utc::now().timestamp() - ts).abs() < 300;
    let mut s = r.state.lock().unwrap();
    let verified_by = s
        .secrets
        .iter()
        .enumerate()
        .filter(|(_, secret)| {
            let expected = reference_signature(secret, &id, &timestamp, &body);
            fresh && signatures.contains(&expected)
        })
        .map(|(i, _)| i)
        .collect();
    s.got.push(Got {
        id,
        signatures,
        verified_by,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    if s.always_fail || s.fail_next > 0 {
        s.fail_next = s.fail_next.saturating_sub(1);
        return (AxumStatus::INTERNAL_SERVER_ERROR, "receiver down".into());
    }
    (AxumStatus::OK, "thanks".into())
}

impl Receiver {
    pub(crate) async fn start() -> Receiver {
        let mut r = Receiver::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        r.addr = Some(listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/hook", post(receive))
            .with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        r
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/hook", self.addr.unwrap())
    }

    fn trust(&self, secret: &str) {
        self.state.lock().unwrap().secrets.push(secret.to_owned());
    }

    fn got(&self) -> Vec<Got> {
        self.state.lock().unwrap().got.clone()
    }

    /// The event types received, each message once (by `webhook-id`).
    fn types(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.got()
            .into_iter()
            .filter(|g| seen.insert(g.id.clone()))
            .map(|g| g.body["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

pub(crate) async fn add_endpoint(
    app: &TestApp,
    owner: &str,
    url: &str,
    trusted: bool,
) -> (i64, String) {
    let body = json!({
        "url": url,
        "description": "bot",
        "event_types": ["supporter.created", "pledge.started", "pledge.changed", "pledge.past_due",
            "pledge.cancelled", "payment.succeeded", "payment.refunded", "sponsor.published",
            "sponsor.unpublished", "goal.reached"],
        "trusted": trusted,
    });
    let res = app
        .post("/api/v1/admin/webhooks/endpoints", owner, body)
        .await;
    let created = expect_json(res, StatusCode::CREATED).await;
    (
        created["id"].as_i64().unwrap(),
        created["secret"].as_str().unwrap().to_owned(),
    )
}

/// Runs the queue until nothing is due or running.
async fn drain(app: &TestApp) {
    patronage::queue::run_until_idle(&app.ctx, Duration::from_secs(20))
        .await
        .unwrap();
}

/// Makes every waiting delivery due now (its retry time passed).
async fn retry_now(app: &TestApp) {
    patronage::db_run!(&app.db, |pool| {
        sqlx::query(
            "UPDATE tasks SET run_at = $1 WHERE status = 'pending' AND kind = 'deliver_webhook'",
        )
        .bind(patronage::store::now())
        .execute(pool)
        .await
        .unwrap();
    });
}

async fn start_checkout(app: &TestApp, body: Value) -> String {
    let res = app
        .send(reqwest::Method::POST, "/api/v1/checkout", None, body)
        .await;
    let body = expect_json(res, StatusCode::OK).await;
    let url = body["checkout_url"].as_str().unwrap();
    url.rsplit('/').next().unwrap().to_owned()
}

/// The event log's types, oldest first: the order things happened in
/// (deliveries run concurrently, so a receiver may see another order).
async fn logged(app: &TestApp, owner: &str) -> Vec<String> {
    let events = app
        .get_json("/api/v1/admin/webhooks/events?limit=200", Some(owner))
        .await;
    let mut types: Vec<String> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    types.reverse();
    types
}

fn count(types: &[String], kind: &str) -> usize {
    types.iter().filter(|t| *t == kind).count()
}

async fn a_receiver_is_told_what_happened_once_and_signed(app: TestApp, fake: FakeStripe) {
    let owner = app.owner_token().await;
    let trusted = Receiver::start().await;
    let untrusted = Receiver::start().await;
    let (_, secret) = add_endpoint(&app, &owner, &trusted.url(), true).await;
    trusted.trust(&secret);
    let (_, secret) = add_endpoint(&app, &owner, &untrusted.url(), false).await;
    untrusted.trust(&secret);

    let tier = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "Friends", "amount_minor": 500, "interval": "month"}),
        )
        .await;
    // A patron who keeps their name and amounts out of public view.
    let session = start_checkout(
        &app,
        json!({"kind": "patron", "tier_id": tier["id"], "email": "ann@example.org",
               "display_name": "Ann", "visibility": "private"}),
    )
    .await;
    // Stripe's events come repeated, shuffled and concurrent throughout.
    fake.deliver(&fake.complete_checkout(&session), Delivery::HOSTILE)
        .await;
    let sub = fake.subscription_of(&session);
    let renewal = fake.renew(&sub);
    fake.deliver(&renewal, Delivery::HOSTILE).await;
    let (invoice, failed) = fake.fail_renewal(&sub);
    fake.deliver(&failed, Delivery::HOSTILE).await;
    fake.deliver(&fake.recover(&sub, &invoice), Delivery::HOSTILE)
        .await;
    drain(&app).await;
    let charge = fake.latest_charge(&sub);
    fake.deliver(&fake.refund(&charge, 200), Delivery::HOSTILE)
        .await;
    fake.deliver(&fake.give_up(&sub), Delivery::HOSTILE).await;
    drain(&app).await;

    let types = trusted.types();
    let expected = [
        ("supporter.created", 1),
        ("pledge.started", 1),
        ("payment.succeeded", 3),
        ("pledge.past_due", 1),
        ("pledge.changed", 1),
        ("payment.refunded", 1),
        ("pledge.cancelled", 1),
    ];
    for (kind, n) in expected {
        assert_eq!(count(&types, kind), n, "{kind} in {types:?}");
    }
    assert_eq!(types.len(), 9, "{types:?}");
    let mut sorted = types.clone();
    sorted.sort();
    let mut happened = logged(&app, &owner).await;
    let pledge_story: Vec<String> = happened
        .iter()
        .filter(|t| t.starts_with("pledge."))
        .cloned()
        .collect();
    happened.sort();
    assert_eq!(sorted, happened, "every event logged was delivered, once");
    assert_eq!(
        pledge_story,
        [
            "pledge.started",
            "pledge.past_due",
            "pledge.changed",
            "pledge.cancelled"
        ]
    );
    // Every request carried a signature the reference algorithm accepts.
    for g in trusted.got().iter().chain(untrusted.got().iter()) {
        assert_eq!(g.verified_by, [0], "{g:?}");
        assert!(g.id.starts_with("msg_"), "{}", g.id);
        assert!(g.body["timestamp"].is_string() && g.body["data"].is_object());
    }
    let mut other = untrusted.types();
    other.sort();
    assert_eq!(other, sorted, "both get every event");

    // What each is allowed to see.
    let of = |r: &Receiver, kind: &str| {
        r.got()
            .into_iter()
            .find(|g| g.body["type"] == kind)
            .unwrap()
            .body
    };
    let full = of(&trusted, "payment.refunded");
    assert_eq!(full["data"]["supporter"]["email"], "ann@example.org");
    assert_eq!(full["data"]["supporter"]["name"], "Ann");
    assert_eq!(full["data"]["payment"]["amount_minor"], 200);
    let cut = of(&untrusted, "payment.refunded");
    assert!(cut["data"]["supporter"].get("email").is_none(), "{cut}");
    assert!(cut["data"]["supporter"]["name"].is_null(), "{cut}");
    assert!(cut["data"]["payment"]["amount_minor"].is_null(), "{cut}");
    assert_eq!(cut["data"]["payment"]["currency"], "EUR");
    let started = of(&trusted, "pledge.started");
    assert_eq!(started["data"]["pledge"]["amount_minor"], 500);
    assert_eq!(started["data"]["pledge"]["tier"]["name"], "Friends");

    // Stripe sending the renewal again tells nobody anything new.
    let events = app
        .get_json("/api/v1/admin/webhooks/events?limit=200", Some(&owner))
        .await["items"]
        .as_array()
        .unwrap()
        .len();
    fake.deliver(&renewal, Delivery::HOSTILE).await;
    drain(&app).await;
    let again = app
        .get_json("/api/v1/admin/webhooks/events?limit=200", Some(&owner))
        .await["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(again, events);
    assert_eq!(trusted.types().len(), 9);
}

async fn a_failing_receiver_gets_the_same_message_again_and_the_log_says_so(app: TestApp) {
    let owner = app.owner_token().await;
    let r = Receiver::start().await;
    r.state.lock().unwrap().fail_next = 1;
    let (endpoint, secret) = add_endpoint(&app, &owner, &r.url(), false).await;
    r.trust(&secret);
    app.create_patron(&owner, "bo@example.org", "Bo").await;
    drain(&app).await;
    assert_eq!(r.got().len(), 1, "tried once, then waits its backoff");
    retry_now(&app).await;
    drain(&app).await;
    let got = r.got();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].id, got[1].id, "a retry is the same message");
    assert_eq!(got[1].verified_by, [0]);
    assert_eq!(got[1].body["type"], "supporter.created");
    assert_eq!(got[1].body["data"]["supporter"]["name"], "Bo");
    assert!(got[1].body["data"]["supporter"].get("email").is_none());

    let log = app
        .get_json(
            &format!("/api/v1/admin/webhooks/endpoints/{endpoint}/deliveries"),
            Some(&owner),
        )
        .await;
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{log}");
    assert_eq!(items[0]["attempt"], 2);
    assert_eq!(items[0]["ok"], true);
    assert_eq!(items[0]["status_code"], 200);
    assert_eq!(items[0]["response_body"], "thanks");
    assert!(items[0]["latency_ms"].as_i64().unwrap() >= 0);
    assert_eq!(items[1]["attempt"], 1);
    assert_eq!(items[1]["ok"], false);
    assert_eq!(items[1]["status_code"], 500);
    assert_eq!(items[1]["response_body"], "receiver down");
    assert_eq!(items[0]["webhook_id"], items[1]["webhook_id"]);

    // A viewer reads the log but changes nothing.
    let viewer = app.viewer_token("vi@example.org").await;
    let res = app
        .get(
            &format!("/api/v1/admin/webhooks/endpoints/{endpoint}/deliveries"),
            Some(&viewer),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .post(
            &format!("/api/v1/admin/webhooks/endpoints/{endpoint}/ping"),
            &viewer,
            json!({}),
        )
        .await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let listed = app
        .get_json("/api/v1/admin/webhooks/endpoints", Some(&viewer))
        .await;
    assert!(
        listed[0].get("secret").is_none(),
        "the secret is shown only once: {listed}"
    );
}

async fn a_rotated_secret_signs_beside_the_new_one(app: TestApp) {
    let owner = app.owner_token().await;
    let r = Receiver::start().await;
    let (endpoint, old) = add_endpoint(&app, &owner, &r.url(), false).await;
    let rotated = app
        .post_ok(
            &format!("/api/v1/admin/webhooks/endpoints/{endpoint}/rotate-secret"),
            &owner,
            json!({}),
            StatusCode::OK,
        )
        .await;
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(rotated["previous_secret_until"].is_string(), "{rotated}");
    r.trust(&old);
    r.trust(&new);
    let ping = app
        .post_ok(
            &format!("/api/v1/admin/webhooks/endpoints/{endpoint}/ping"),
            &owner,
            json!({}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(ping["ok"], true, "{ping}");
    let got = r.got();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].signatures.len(), 2, "{:?}", got[0].signatures);
    assert_eq!(got[0].verified_by, [0, 1], "old and new both verify");
    assert_eq!(got[0].body["type"], "webhook.ping");
}

async fn owners_redeliver_one_event_or_everything_since_a_date(app: TestApp) {
    let owner = app.owner_token().await;
    let r = Receiver::start().await;
    let (endpoint, secret) = add_endpoint(&app, &owner, &r.url(), true).await;
    r.trust(&secret);
    app.create_patron(&owner, "a@example.org", "A").await;
    app.create_patron(&owner, "b@example.org", "B").await;
    drain(&app).await;
    assert_eq!(r.got().len(), 2);
    let events = app
        .get_json("/api/v1/admin/webhooks/events", Some(&owner))
        .await;
    let first = events["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(first["type"], "supporter.created");
    assert_eq!(
        first["payload"]["data"]["supporter"]["email"],
        "a@example.org"
    );

    let path = format!("/api/v1/admin/webhooks/endpoints/{endpoint}/redeliver");
    let res = app
        .post(&path, &owner, json!({"event_id": first["id"]}))
        .await;
    assert_eq!(expect_json(res, StatusCode::ACCEPTED).await["queued"], 1);
    drain(&app).await;
    let got = r.got();
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].id, first["webhook_id"].as_str().unwrap());
    assert_eq!(
        got.iter().filter(|g| g.id == got[2].id).count(),
        2,
        "the same message id as the first time"
    );
    assert_eq!(got[2].body["data"]["supporter"]["email"], "a@example.org");

    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339();
    let res = app.post(&path, &owner, json!({"since": yesterday})).await;
    assert_eq!(expect_json(res, StatusCode::ACCEPTED).await["queued"], 2);
    drain(&app).await;
    assert_eq!(r.got().len(), 5);
    assert_eq!(
        r.types().len(),
        2,
        "still two messages to a receiver that dedupes"
    );

    let res = app.post(&path, &owner, json!({})).await;
    expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;

    // Past their retention, the log and the events go (the cleanup job).
    let later = patronage::store::now() + chrono::Duration::days(1);
    let pruned = patronage::store::webhooks::prune(&app.db, later)
        .await
        .unwrap();
    assert_eq!(pruned, (5, 2));
    let events = app
        .get_json("/api/v1/admin/webhooks/events", Some(&owner))
        .await;
    assert!(events["items"].as_array().unwrap().is_empty(), "{events}");
}

async fn an_endpoint_that_keeps_failing_is_turned_off_and_owners_are_emailed(app: TestApp) {
    let owner = app.owner_token().await;
    let r = Receiver::start().await;
    r.state.lock().unwrap().always_fail = true;
    let (endpoint, _) = add_endpoint(&app, &owner, &r.url(), false).await;
    app.create_patron(&owner, "a@example.org", "A").await;
    drain(&app).await;
    retry_now(&app).await;
    drain(&app).await;
    let shown = app
        .get_json(
            &format!("/api/v1/admin/webhooks/endpoints/{endpoint}"),
            Some(&owner),
        )
        .await;
    assert_eq!(shown["enabled"], false, "{shown}");
    assert!(shown["disabled_reason"].is_string(), "{shown}");
    let mail = app
        .mails(|m| m.subject.starts_with("Webhook endpoint turned off"), 1)
        .await;
    assert_eq!(mail[0].to, crate::helpers::OWNER_EMAIL);
    assert!(mail[0].text.contains(&r.url()), "{}", mail[0].text);

    // Nothing more is sent while it is off.
    let tries = r.got().len();
    app.create_patron(&owner, "b@example.org", "B").await;
    retry_now(&app).await;
    drain(&app).await;
    assert_eq!(r.got().len(), tries);

    // Turned on again, it gets what comes next.
    r.state.lock().unwrap().always_fail = false;
    let res = app
        .client
        .put(app.url(&format!("/api/v1/admin/webhooks/endpoints/{endpoint}")))
        .bearer_auth(&owner)
        .json(&json!({"url": r.url(), "event_types": ["supporter.created"], "enabled": true}))
        .send()
        .await
        .unwrap();
    let on = expect_json(res, StatusCode::OK).await;
    assert_eq!(on["enabled"], true);
    assert!(on["disabled_reason"].is_null());
    app.create_patron(&owner, "c@example.org", "C").await;
    drain(&app).await;
    assert_eq!(
        r.got().last().unwrap().body["data"]["supporter"]["name"],
        "C"
    );
}

async fn the_goal_is_reached_once(app: TestApp) {
    let owner = app.owner_token().await;
    let r = Receiver::start().await;
    let (_, secret) = add_endpoint(&app, &owner, &r.url(), false).await;
    r.trust(&secret);
    let res = app
        .patch(
            "/api/v1/admin/campaign",
            &owner,
            json!({"monthly_goal_minor": 1000}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let tier = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "Friends", "amount_minor": 500, "interval": "month"}),
        )
        .await;
    let tier = tier["id"].as_i64().unwrap();
    for (i, email) in ["a@example.org", "b@example.org", "c@example.org"]
        .iter()
        .enumerate()
    {
        let who = app.create_patron(&owner, email, &format!("P{i}")).await;
        app.create_pledge(&owner, who, tier, None).await;
    }
    drain(&app).await;
    let types = r.types();
    assert_eq!(count(&types, "pledge.started"), 3, "{types:?}");
    assert_eq!(count(&types, "goal.reached"), 1, "{types:?}");
    let reached = r
        .got()
        .into_iter()
        .find(|g| g.body["type"] == "goal.reached")
        .unwrap();
    assert_eq!(reached.body["data"]["goal"]["amount_minor"], 1000);
    assert_eq!(reached.body["data"]["monthly_recurring_minor"], 1000);
    // Reached after the second pledge, not again after the third.
    let types = logged(&app, &owner).await;
    let position = types.iter().position(|t| t == "goal.reached").unwrap();
    assert_eq!(count(&types[..position], "pledge.started"), 2, "{types:?}");
}

async fn private_addresses_and_plain_http_are_refused(app: TestApp) {
    let owner = app.owner_token().await;
    let try_url = |url: &'static str| {
        let app = &app;
        let owner = owner.clone();
        async move {
            let res = app
                .post(
                    "/api/v1/admin/webhooks/endpoints",
                    &owner,
                    json!({"url": url, "event_types": ["goal.reached"]}),
                )
                .await;
            expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await
        }
    };
    let p = try_url("http://hooks.example.org/x").await;
    assert!(p.to_string().contains("https"), "{p}");
    for (url, kind) in [
        ("https://127.0.0.1/x", "loopback"),
        ("https://localhost:8443/x", "loopback"),
        ("https://[::1]/x", "loopback"),
        ("https://10.0.0.7/x", "private"),
        ("https://192.168.1.1/x", "private"),
        ("https://169.254.169.254/latest", "link-local"),
        ("https://0.0.0.0/x", "unspecified"),
        ("https://224.0.0.1/x", "multicast"),
    ] {
        let p = try_url(url).await;
        let text = p.to_string();
        assert!(text.contains(kind), "{url}: {text}");
        assert!(text.contains("webhooks.allow_private"), "{url}: {text}");
    }
    let p = try_url("ftp://hooks.example.org/x").await;
    assert!(p.to_string().contains("https"), "{p}");
    let res = app
        .post(
            "/api/v1/admin/webhooks/endpoints",
            &owner,
            json!({"url": "https://hooks.example.org/x", "event_types": ["nope"]}),
        )
        .await;
    expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
}

async fn the_guard_holds_with_http_allowed(app: TestApp) {
    let owner = app.owner_token().await;
    let r = Receiver::start().await;
    let res = app
        .post(
            "/api/v1/admin/webhooks/endpoints",
            &owner,
            json!({"url": r.url(), "event_types": ["supporter.created"]}),
        )
        .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
    assert!(p.to_string().contains("loopback"), "{p}");
    assert!(r.got().is_empty());
}

async fn owners_manage_endpoints_in_the_console_and_see_the_secret_once(app: TestApp) {
    let owner = app.owner_token().await;
    app.viewer_token("viewer@example.org").await;
    let r = Receiver::start().await;
    let (as_owner, csrf) = crate::console::form_client(&app, crate::helpers::OWNER_EMAIL).await;
    let (as_viewer, viewer_csrf) = crate::console::form_client(&app, "viewer@example.org").await;

    let url = r.url();
    let res = as_owner
        .post(app.url("/admin/webhooks"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("url", url.as_str()),
            ("description", "bot <b>"),
            ("event_type", "supporter.created"),
            ("event_type", "goal.reached"),
            ("enabled", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    let secret = regex::Regex::new(r#"value="(whsec_[A-Za-z0-9+/=]+)""#)
        .unwrap()
        .captures(&page)
        .expect("the new secret is on the page")[1]
        .to_owned();
    assert!(page.contains("bot &lt;b&gt;"), "escaped");
    r.trust(&secret);
    let listed = app
        .get_json("/api/v1/admin/webhooks/endpoints", Some(&owner))
        .await;
    let id = listed[0]["id"].as_i64().unwrap();
    assert_eq!(
        listed[0]["event_types"],
        json!(["supporter.created", "goal.reached"])
    );
    assert_eq!(listed[0]["trusted"], false);

    // Shown once: the page never shows it again.
    let again = crate::helpers::page_text(
        &as_owner,
        app.url(&format!("/admin/webhooks?endpoint={id}")),
    )
    .await;
    assert!(!again.contains(&secret));
    assert!(again.contains("Nothing delivered yet"));

    // A ping from the console lands, signed, and shows in the log.
    let res = as_owner
        .post(app.url(&format!("/admin/webhooks/{id}/ping")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.got()[0].verified_by, [0]);
    let log = crate::helpers::page_text(
        &as_owner,
        app.url(&format!("/admin/webhooks?endpoint={id}")),
    )
    .await;
    assert!(
        log.contains("webhook.ping") && log.contains("Ping delivered"),
        "{log}"
    );

    // A viewer reads the page without forms, and cannot post them.
    let seen = crate::helpers::page_text(
        &as_viewer,
        app.url(&format!("/admin/webhooks?endpoint={id}")),
    )
    .await;
    assert!(seen.contains(&url) && !seen.contains("Add an endpoint"));
    let res = as_viewer
        .post(app.url(&format!("/admin/webhooks/{id}/rotate")))
        .form(&[("csrf", viewer_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // Turned off from the console.
    let res = as_owner
        .post(app.url(&format!("/admin/webhooks/{id}")))
        .form(&[
            ("csrf", csrf.as_str()),
            ("url", url.as_str()),
            ("event_type", "supporter.created"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let shown = app
        .get_json(
            &format!("/api/v1/admin/webhooks/endpoints/{id}"),
            Some(&owner),
        )
        .await;
    assert_eq!(shown["enabled"], false);
    assert_eq!(shown["event_types"], json!(["supporter.created"]));
}

async fn a_recorded_bank_transfer_is_a_payment_and_its_void_takes_it_back(app: TestApp) {
    let owner = app.owner_token().await;
    let r = Receiver::start().await;
    let (_, secret) = add_endpoint(&app, &owner, &r.url(), false).await;
    r.trust(&secret);
    let today = chrono::Utc::now().date_naive().to_string();
    let entry = app
        .post_ok(
            "/api/v1/admin/contributions",
            &owner,
            json!({"amount_minor": 2500, "date": today, "note": "Transfer from Ana"}),
            StatusCode::CREATED,
        )
        .await;
    drain(&app).await;
    assert_eq!(r.types(), ["payment.succeeded"]);
    let paid = r.got()[0].body["data"]["payment"].clone();
    assert_eq!(paid["kind"], "manual", "{paid}");
    assert_eq!(paid["amount_minor"], 2500, "{paid}");
    assert_eq!(paid["id"], entry["id"], "{paid}");

    app.post_ok(
        &format!("/api/v1/admin/contributions/{}/void", entry["id"]),
        &owner,
        json!({"reason": "Entered twice"}),
        StatusCode::CREATED,
    )
    .await;
    drain(&app).await;
    assert_eq!(r.types(), ["payment.succeeded", "payment.refunded"]);
    let back = r.got().last().unwrap().body["data"]["payment"].clone();
    assert_eq!(back["kind"], "manual", "{back}");
    assert_eq!(back["amount_minor"], 2500, "{back}");
    assert!(r.got().iter().all(|g| g.verified_by == [0]));
}

async fn sponsors_are_told_when_they_appear_and_disappear(app: TestApp) {
    let owner = app.owner_token().await;
    let r = Receiver::start().await;
    let (_, secret) = add_endpoint(&app, &owner, &r.url(), false).await;
    r.trust(&secret);
    let tier = app
        .create_tier(
            &owner,
            json!({"kind": "sponsor", "name": "Gold", "amount_minor": 100000, "interval": "year"}),
        )
        .await;
    let today = chrono::Utc::now().date_naive();
    let acme = app
        .post_ok(
            "/api/v1/admin/sponsors",
            &owner,
            json!({"company_name": "Acme", "website_url": "https://acme.example/",
                   "contact_email": "billing@acme.example", "tier_id": tier["id"],
                   "paid_through": (today + chrono::Duration::days(10)).to_string()}),
            StatusCode::CREATED,
        )
        .await;
    let id = acme["id"].clone();
    app.post_ok(
        &format!("/api/v1/admin/sponsors/{id}/approve"),
        &owner,
        json!({}),
        StatusCode::OK,
    )
    .await;
    // Its paid period and grace end.
    app.post_ok(
        &format!("/api/v1/admin/sponsors/{id}/paid-through"),
        &owner,
        json!({"paid_through": today - chrono::Duration::days(15)}),
        StatusCode::OK,
    )
    .await;
    drain(&app).await;
    assert_eq!(
        logged(&app, &owner).await,
        [
            "supporter.created",
            "sponsor.published",
            "sponsor.unpublished"
        ]
    );
    let published = r
        .got()
        .into_iter()
        .find(|g| g.body["type"] == "sponsor.published")
        .unwrap();
    let sponsor = &published.body["data"]["supporter"];
    assert_eq!(sponsor["name"], "Acme");
    assert_eq!(sponsor["website_url"], "https://acme.example/");
    assert!(sponsor.get("email").is_none(), "not a trusted endpoint");
    assert_eq!(r.types().len(), 3);
}
