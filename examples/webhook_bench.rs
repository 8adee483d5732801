//! Webhook ingestion throughput: signed `invoice.paid` events per second,
//! each verified, stored and booked in one commit (no Stripe call), against
//! a fake Stripe on loopback. Then, separately, the fee tasks those
//! bookings queued (each asks the fake Stripe for the charge and its
//! balance transaction). Checks every invoice and every fee is booked
//! exactly once. Run by `benches/webhooks.sh`, or:
//!
//!   cargo run --release --example webhook_bench -- sqlite 5000 32
//!   cargo run --release --example webhook_bench -- postgres://postgres@127.0.0.1/postgres 5000 32

#[allow(dead_code)]
#[path = "../tests/api/fake_stripe.rs"]
mod fake_stripe;

use std::time::{Duration, Instant};

use fake_stripe::{Delivery, FakeStripe, WEBHOOK_SECRET};
use patronage::{app::Application, config::Settings, db_run};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};

const PATRONS: usize = 200;

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
const FEE_WORKERS: usize = 4;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let target = args.get(1).cloned().unwrap_or_else(|| "sqlite".into());
    let events: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5000);
    let concurrency: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(32);

    let dir = tempfile::tempdir().unwrap();
    let database_url = if target.starts_with("postgres") {
        let mut conn = PgConnection::connect(&target)
            .await
            .expect("PostgreSQL reachable");
        conn.execute("DROP DATABASE IF EXISTS patronage_bench_webhooks WITH (FORCE)")
            .await
            .unwrap();
        conn.execute("CREATE DATABASE patronage_bench_webhooks")
            .await
            .unwrap();
        let mut url = url::Url::parse(&target).unwrap();
        url.set_path("patronage_bench_webhooks");
        url.to_string()
    } else {
        format!("sqlite://{}", dir.path().join("bench.db").display())
    };

    let fake = FakeStripe::start().await;
    let mut settings = Settings::defaults();
    settings.server.bind = "127.0.0.1:0".parse().unwrap();
    settings.server.data_dir = dir.path().to_path_buf();
    settings.database.url = database_url.clone();
    settings.database.max_connections = 16;
    settings.auth.jwt_secret = SecretString::from("benchmark-secret-benchmark-secret-0000");
    settings.log.level = "error".into();
    settings.stripe.secret_key = SecretString::from("sk_test_bench");
    settings.stripe.webhook_secret = SecretString::from(WEBHOOK_SECRET);
    settings.stripe.api_base = fake.base.clone();
    settings.stripe.success_url = "https://fund.example/thanks".into();
    settings.stripe.cancel_url = "https://fund.example/support".into();
    settings.mail.transport = patronage::config::MailTransport::Memory;
    // The fee tasks run in their own measured phase, driven below.
    settings.queue.enabled = false;
    patronage::telemetry::init_tracing(&settings.log);
    let app = Application::build(settings).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    let setup = app.setup_token.clone().unwrap();
    let ctx = app.context();
    tokio::spawn(app.run_until_stopped());
    fake.send_webhooks_to(format!("{base}/webhooks/stripe"));
    fake.settle_through(ctx.core.clone());
    let http = reqwest::Client::new();

    // An owner, a tier and PATRONS subscriptions, set up through the API.
    let post = |path: &str, token: Option<&str>, body: Value| {
        let mut req = http.post(format!("{base}{path}")).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let password = "benchmark password";
    post(
        "/api/v1/admin/setup",
        None,
        json!({"setup_token": setup, "email": "bench@example.org", "password": password}),
    )
    .await
    .unwrap();
    let login: Value = post(
        "/api/v1/admin/login",
        None,
        json!({"email": "bench@example.org", "password": password}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();
    let tier: Value = post(
        "/api/v1/admin/tiers",
        Some(&token),
        json!({"kind": "patron", "name": "Patron", "amount_minor": 500, "interval": "month"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let mut subscriptions = Vec::new();
    for i in 0..PATRONS {
        let res: Value = post(
            "/api/v1/checkout",
            None,
            json!({"kind": "patron", "tier_id": tier["id"],
            "email": format!("patron{i}@example.org"), "display_name": format!("Patron {i}")}),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        let session = res["checkout_url"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        fake.deliver(&fake.complete_checkout(&session), Delivery::ONCE)
            .await;
        subscriptions.push(fake.subscription_of(&session));
    }

    // The measured load: one invoice.paid per renewal, concurrent. Each is
    // serialised and signed before the clock starts, as pgbench's client
    // has its statements ready: the two cores go to the service and the
    // database, not to building the load.
    let renewals: Vec<(String, String)> = (0..events)
        .map(|i| {
            let event = fake
                .renew(&subscriptions[i % subscriptions.len()])
                .remove(0);
            let payload = event.to_string();
            let signature = FakeStripe::sign(&payload, WEBHOOK_SECRET, now_secs());
            (payload, signature)
        })
        .collect();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(renewals));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let queue = queue.clone();
            let fake = fake.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let Some((payload, signature)) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let t = Instant::now();
                    let status = fake.post_raw(&payload, &signature).await;
                    assert_eq!(status, 200);
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = Vec::new();
    for w in workers {
        latencies.extend(w.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];

    // The fee tasks the renewals queued, run by FEE_WORKERS workers as
    // replicas' queue workers would.
    let fee_started = Instant::now();
    let fee_workers: Vec<_> = (0..FEE_WORKERS)
        .map(|_| {
            let ctx = ctx.core.clone();
            tokio::spawn(async move {
                patronage::queue::run_until_idle(&ctx, Duration::from_secs(600))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut fee_tasks = 0;
    for w in fee_workers {
        fee_tasks += w.await.unwrap();
    }
    let fee_elapsed = fee_started.elapsed();

    // Every invoice booked once, every fee booked once, nothing left over.
    let db = &ctx.db;
    let count = |sql: &'static str| async move {
        db_run!(db, |pool| {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(pool)
                .await
                .unwrap()
        })
    };
    let payments = count("SELECT COUNT(*) FROM ledger_entries WHERE kind = 'payment'").await;
    let fees = count("SELECT COUNT(*) FROM ledger_entries WHERE kind = 'fee'").await;
    let distinct_fees =
        count("SELECT COUNT(DISTINCT external_ref) FROM ledger_entries WHERE kind = 'fee'").await;
    let pending = count("SELECT COUNT(*) FROM stripe_events WHERE status <> 'processed'").await;
    let unfinished = count("SELECT COUNT(*) FROM tasks WHERE status <> 'done'").await;
    assert_eq!(
        payments as usize,
        PATRONS + events,
        "every invoice booked exactly once"
    );
    assert_eq!(fees as usize, PATRONS + events, "every fee booked");
    assert_eq!(fees, distinct_fees, "no fee booked twice");
    assert_eq!(pending, 0, "every event applied");
    assert_eq!(unfinished, 0, "every task done");
    let backend = if target.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    println!(
        "webhooks {backend}: {events} invoice.paid events, concurrency {concurrency}: {:.0} events/s, p50 {:.2} ms, p99 {:.2} ms",
        events as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0,
    );
    println!(
        "fee tasks {backend}: {fee_tasks} tasks, {FEE_WORKERS} workers: {:.0} tasks/s (all {payments} payments and {fees} fees booked once)",
        fee_tasks as f64 / fee_elapsed.as_secs_f64(),
    );
}
