//! Outbound webhook deliveries: how many per second patronage sends to a
//! receiver on loopback, with what latency, and that none is lost or
//! doubled in effect when a replica is killed mid-run. Run by
//! `benches/webhooks_out.sh`, or:
//!
//!   cargo run --release --example webhooks_out_bench -- sqlite 100000 10
//!   cargo run --release --example webhooks_out_bench -- postgres://postgres@127.0.0.1/postgres 100000 10
//!
//! Phase 1 (throughput): `deliveries / endpoints` events are written (each
//! with a delivery task per endpoint, as `Tx::emit` does), then the
//! workers drain the queue: deliveries per second over the drain, and the
//! p50/p99 of each delivery's HTTP round trip (from the delivery log). On
//! PostgreSQL a second replica (a child process on the same database)
//! works beside this one and is killed with SIGKILL a third of the way in;
//! the tasks it held are taken over when their lease lapses.
//!
//! Phase 2 (latency): for 5 s, events at half the rate phase 1 sustained;
//! the time from each commit to its arrival at each endpoint, p50 and p99.
//!
//! Checks: every (endpoint, event) arrived at least once with a valid
//! signature; what arrived twice (a delivery in flight when its replica
//! died) carried the same `webhook-id`, so a receiver that dedupes sees it
//! once; no task is dead or left pending.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    extract::{Path, State},
    http::HeaderMap,
    routing::post,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use patronage::{
    app::Application,
    config::Settings,
    context::Effects,
    db_run,
    domain::webhooks::EventType,
    service::webhooks::EndpointInput,
    store::{
        audit::Actor,
        webhooks::{OutboundEvent, Subject},
    },
};
use secrecy::SecretString;
use sha2::Sha256;
use sqlx::{Connection, Executor, PgConnection};

const DB_NAME: &str = "patronage_bench_webhooks_out";

#[derive(Default)]
struct Arrivals {
    /// (endpoint, webhook-id) → (times received, first arrival).
    seen: HashMap<(usize, String), (u32, Instant)>,
    bad_signatures: usize,
    total: usize,
}

#[derive(Clone)]
struct Receiver {
    arrivals: Arc<Mutex<Arrivals>>,
    /// Each endpoint's secret, by index.
    secrets: Arc<Mutex<Vec<Vec<u8>>>>,
}

async fn receive(
    State(r): State<Receiver>,
    Path(n): Path<usize>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> &'static str {
    let at = Instant::now();
    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (id, ts) = (h("webhook-id").to_owned(), h("webhook-timestamp"));
    let key = r
        .secrets
        .lock()
        .unwrap()
        .get(n)
        .cloned()
        .unwrap_or_default();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    let ok = h("webhook-signature").split(' ').any(|s| s == expected);
    let mut a = r.arrivals.lock().unwrap();
    a.total += 1;
    if !ok {
        a.bad_signatures += 1;
    }
    a.seen.entry((n, id)).or_insert((0, at)).0 += 1;
    "ok"
}

fn settings(dir: &std::path::Path, database_url: &str) -> Settings {
    let mut s = Settings::defaults();
    s.server.bind = "127.0.0.1:0".parse().unwrap();
    s.server.data_dir = dir.to_path_buf();
    s.database.url = database_url.to_owned();
    s.database.max_connections = 16;
    s.auth.jwt_secret = SecretString::from("benchmark-secret-benchmark-secret-0000");
    s.log.level = "error".into();
    s.mail.transport = patronage::config::MailTransport::Memory;
    s.webhooks.allow_http = true;
    s.webhooks.allow_private = true;
    // A killed replica's tasks are taken over this soon.
    s.queue.lease_secs = 5;
    s.queue.poll_secs = 1;
    s
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("worker") {
        // The second replica: works the queue until it is killed.
        let dir = tempfile::tempdir().unwrap();
        let app = Application::build(settings(dir.path(), &args[2]))
            .await
            .unwrap();
        println!("ready");
        app.run_until_stopped().await.unwrap();
        return;
    }
    let target = args.get(1).cloned().unwrap_or_else(|| "sqlite".into());
    let deliveries: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let endpoints: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(10);
    let events = deliveries / endpoints;

    let dir = tempfile::tempdir().unwrap();
    let postgres = target.starts_with("postgres");
    let database_url = if postgres {
        let mut conn = PgConnection::connect(&target)
            .await
            .expect("PostgreSQL reachable");
        conn.execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)"
        )))
        .await
        .unwrap();
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {DB_NAME}")))
            .await
            .unwrap();
        let mut url = url::Url::parse(&target).unwrap();
        url.set_path(DB_NAME);
        url.to_string()
    } else {
        format!("sqlite://{}", dir.path().join("bench.db").display())
    };

    // The receiver: one path per endpoint.
    let receiver = Receiver {
        arrivals: Arc::default(),
        secrets: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let router = axum::Router::new()
        .route("/hook/{n}", post(receive))
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    // This replica, its queue held back until the events are written.
    let mut s = settings(dir.path(), &database_url);
    patronage::telemetry::init_tracing(&s.log);
    s.queue.enabled = false;
    let app = Application::build(s.clone()).await.unwrap();
    let ctx = app.context();
    tokio::spawn(app.run_until_stopped());
    for n in 0..endpoints {
        let (_, secret) = patronage::service::webhooks::create(
            &ctx,
            &Actor::system(),
            &EndpointInput {
                url: format!("http://{addr}/hook/{n}"),
                description: format!("bench {n}"),
                event_types: vec!["supporter.created".into()],
                enabled: true,
                trusted: false,
            },
        )
        .await
        .unwrap();
        let key = STANDARD
            .decode(secret.strip_prefix("whsec_").unwrap())
            .unwrap();
        receiver.secrets.lock().unwrap().push(key);
    }

    // Phase 1: the backlog.
    let started = Instant::now();
    let mut written = 0;
    while written < events {
        let mut tx = ctx.db.begin_write().await.unwrap();
        for _ in 0..100.min(events - written) {
            tx.emit(&OutboundEvent::new(
                EventType::SupporterCreated,
                Subject::Supporter(0),
            ))
            .await
            .unwrap();
            written += 1;
        }
        tx.commit().await.unwrap();
    }
    println!(
        "wrote {events} events ({deliveries} delivery tasks, {endpoints} endpoints) in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The workers: this replica's (a fresh Application with its queue on)
    // and, on PostgreSQL, a second process.
    let mut child = if postgres {
        let mut c = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("worker")
            .arg(&database_url)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = c.stdout.take().unwrap();
        // Its queue runs once it says so.
        tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).unwrap();
        })
        .await
        .unwrap();
        Some(c)
    } else {
        None
    };
    s.queue.enabled = true;
    let worker_dir = tempfile::tempdir().unwrap();
    s.server.data_dir = worker_dir.path().to_path_buf();
    let worker = Application::build(s).await.unwrap();
    let worker_ctx = worker.context();
    tokio::spawn(worker.run_until_stopped());
    let drain_start = Instant::now();
    let mut killed_at = None;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let distinct = receiver.arrivals.lock().unwrap().seen.len();
        if killed_at.is_none() && distinct >= deliveries / 3 {
            if let Some(c) = child.as_mut() {
                // SIGKILL: no shutdown, its leases simply lapse.
                c.kill().unwrap();
                c.wait().unwrap();
                killed_at = Some(distinct);
                println!(
                    "killed the second replica (SIGKILL) after {distinct} deliveries, {:.1} s in",
                    drain_start.elapsed().as_secs_f64()
                );
            }
        }
        let busy = patronage::store::tasks::busy(&ctx.db).await.unwrap();
        if distinct >= deliveries && busy == 0 {
            break;
        }
        if drain_start.elapsed() > Duration::from_secs(3600) {
            println!("gave up after an hour");
            break;
        }
    }
    let drain = drain_start.elapsed().as_secs_f64();
    let latencies: Vec<i64> = db_run!(&ctx.db, |pool| {
        sqlx::query_scalar::<_, i64>(
            "SELECT latency_ms FROM webhook_deliveries WHERE ok = $1 ORDER BY latency_ms",
        )
        .bind(true)
        .fetch_all(pool)
        .await
        .unwrap()
    });
    let lat: Vec<f64> = latencies.iter().map(|l| *l as f64).collect();
    println!(
        "phase 1: {deliveries} deliveries in {drain:.1} s: {:.0} deliveries/s; HTTP round trip p50 {:.0} ms, p99 {:.0} ms",
        deliveries as f64 / drain,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );

    // Phase 2: latency on an idle queue, at half the throughput measured.
    let mut committed: HashMap<String, Instant> = HashMap::new();
    let rate = (deliveries as f64 / drain / 2.0 / endpoints as f64).max(1.0);
    let pause = Duration::from_secs_f64((1.0 / rate).max(0.01));
    let phase2_events = ((5.0 / pause.as_secs_f64()) as usize).max(20);
    for _ in 0..phase2_events {
        let mut tx = worker_ctx.db.begin_write().await.unwrap();
        let id = tx
            .emit(&OutboundEvent::new(
                EventType::SupporterCreated,
                Subject::Supporter(0),
            ))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let at = Instant::now();
        worker_ctx.after_commit(Effects::TASKS);
        let event = patronage::store::webhooks::event(&worker_ctx.db, id)
            .await
            .unwrap()
            .unwrap();
        committed.insert(event.webhook_id, at);
        tokio::time::sleep(pause).await;
    }
    let want = deliveries + phase2_events * endpoints;
    for _ in 0..600 {
        if receiver.arrivals.lock().unwrap().seen.len() >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut e2e: Vec<f64> = {
        let a = receiver.arrivals.lock().unwrap();
        a.seen
            .iter()
            .filter_map(|((_, id), (_, first))| {
                committed
                    .get(id)
                    .map(|c| first.duration_since(*c).as_secs_f64() * 1000.0)
            })
            .collect()
    };
    e2e.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "phase 2: {} deliveries, one event each {} ms to {endpoints} endpoints: commit to arrival p50 {:.1} ms, p99 {:.1} ms",
        e2e.len(),
        pause.as_millis(),
        percentile(&e2e, 0.5),
        percentile(&e2e, 0.99)
    );

    // Checks.
    let (total, distinct, bad_signatures, doubled) = {
        let a = receiver.arrivals.lock().unwrap();
        let doubled = a.seen.values().filter(|(n, _)| *n > 1).count();
        (a.total, a.seen.len(), a.bad_signatures, doubled)
    };
    let counts: Vec<(String, i64)> = db_run!(&ctx.db, |pool| {
        sqlx::query_as::<_, (String, i64)>(
            "SELECT status, CAST(COUNT(*) AS BIGINT) FROM tasks WHERE kind = 'deliver_webhook' GROUP BY status",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    });
    println!(
        "received {} requests, {} distinct (endpoint, webhook-id) of {want} expected; {} bad signatures; \
         {doubled} received twice with the same webhook-id{}; tasks by status: {counts:?}",
        total,
        distinct,
        bad_signatures,
        killed_at.map_or(String::new(), |_| {
            " (in flight when the replica was killed)".into()
        }),
    );
    let lost = want.saturating_sub(distinct);
    let not_done: i64 = counts
        .iter()
        .filter(|(s, _)| s != "done")
        .map(|(_, n)| n)
        .sum();
    if lost > 0 || bad_signatures > 0 || not_done > 0 {
        println!("FAILED: {lost} lost, {bad_signatures} bad signatures, {not_done} tasks not done");
        std::process::exit(1);
    }
    println!("ok: none lost; every repeat carried its webhook-id");
    if postgres {
        ctx.db.close().await;
        worker_ctx.db.close().await;
        let mut conn = PgConnection::connect(&target).await.unwrap();
        let _ = conn
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)"
            )))
            .await;
    }
}
