//! Three real `patronage serve` processes on one PostgreSQL, each running
//! the scheduler and the outbox worker, with a real SMTP server: webhooks
//! land on random replicas, repeated; every job fires on all three; one
//! replica is killed with SIGKILL while it holds work. Every payment is
//! booked once, every email sent once, every job slot run once, and the
//! dead replica's leased work is taken over.

use std::{
    collections::{HashMap, HashSet},
    io::Write,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use rand::seq::SliceRandom;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, Row};

use crate::{
    fake_stripe::{FakeStripe, WEBHOOK_SECRET},
    helpers::{Mail, create_pg_database, drop_pg_database, postgres_url},
    lifecycle::{SmtpServer, free_port},
};

const BIN: &str = env!("CARGO_BIN_EXE_patronage");
const OWNER: &str = "owner@example.org";
const VIEWER: &str = "books@example.org";
const PASSWORD: &str = "a long enough password";

struct Replica {
    child: Child,
    base: String,
    alive: Arc<AtomicBool>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct DropDb(Option<(String, String)>);

impl Drop for DropDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.0.take() {
            drop_pg_database(admin, name);
        }
    }
}

fn command(env: &[(String, String)], dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("PATRONAGE") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(dir).envs(env.iter().cloned());
    cmd
}

fn create_admin(env: &[(String, String)], dir: &std::path::Path, email: &str, role: &str) {
    let mut child = command(env, dir)
        .args(["admin", "create", "--email", email, "--role", role])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    assert!(child.wait().unwrap().success(), "admin create");
}

async fn start_replica(env: &[(String, String)], dir: &std::path::Path, i: usize) -> Replica {
    let port = free_port();
    let data = dir.join(format!("replica{i}"));
    std::fs::create_dir_all(&data).unwrap();
    let log = std::fs::File::create(dir.join(format!("replica{i}.log"))).unwrap();
    let mut child = command(env, dir)
        .arg("serve")
        .env("PATRONAGE__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("PATRONAGE__SERVER__DATA_DIR", &data)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(res) = client.get(format!("{base}/healthz")).send().await
            && res.status() == StatusCode::OK
        {
            return Replica {
                child,
                base,
                alive: Arc::new(AtomicBool::new(true)),
            };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("replica {i} did not start; see its log");
}

/// Delivers like Stripe: three copies of each event, shuffled, at once, to
/// random replicas; a delivery that fails (a dead replica) is retried
/// elsewhere until one answers 200.
async fn deliver(replicas: &[(String, Arc<AtomicBool>)], events: &[Value]) {
    let client = reqwest::Client::new();
    let mut batch: Vec<&Value> = events.iter().flat_map(|e| [e, e, e]).collect();
    batch.shuffle(&mut rand::rng());
    futures::future::join_all(batch.into_iter().map(|event| {
        let client = client.clone();
        async move {
            let payload = event.to_string();
            for _ in 0..200 {
                let live: Vec<&String> = replicas
                    .iter()
                    .filter(|(_, alive)| alive.load(Ordering::SeqCst))
                    .map(|(base, _)| base)
                    .collect();
                let base = live[rand::random_range(0..live.len())];
                let signature =
                    FakeStripe::sign(&payload, WEBHOOK_SECRET, chrono::Utc::now().timestamp());
                let sent = client
                    .post(format!("{base}/webhooks/stripe"))
                    .header("stripe-signature", signature)
                    .header("content-type", "application/json")
                    .body(payload.clone())
                    .send()
                    .await;
                if matches!(sent, Ok(ref r) if r.status() == StatusCode::OK) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("no replica accepted the event");
        }
    }))
    .await;
}

async fn post(client: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> Value {
    let mut request = client.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().json().await.unwrap()
}

async fn json_at(client: &reqwest::Client, url: String, token: &str) -> Value {
    let res = client.get(url).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

/// Waits until no task is due or running: the queued work of what was
/// delivered is done.
async fn tasks_done(client: &reqwest::Client, base: &str, token: &str) {
    for _ in 0..200 {
        let mut busy = 0;
        for status in ["pending", "running"] {
            let url = format!("{base}/api/v1/admin/tasks?status={status}");
            busy += json_at(client, url, token).await["items"]
                .as_array()
                .unwrap()
                .len();
        }
        if busy == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("tasks never finished");
}

/// A new PostgreSQL database for one test, dropped with the guard; `None`
/// when no PostgreSQL is configured.
async fn fresh_database() -> Option<(String, DropDb)> {
    let admin_url = postgres_url()?;
    let (db_url, db_name) = create_pg_database(&admin_url).await;
    Some((db_url, DropDb(Some((admin_url, db_name)))))
}

async fn owner_token(client: &reqwest::Client, base: &str) -> String {
    let login = post(
        client,
        format!("{base}/api/v1/admin/login"),
        None,
        json!({"email": OWNER, "password": PASSWORD}),
    )
    .await;
    login["access_token"].as_str().unwrap().to_owned()
}

/// A monthly patron tier, created through the admin API.
async fn create_tier(client: &reqwest::Client, base: &str, token: &str, name: &str) {
    let tier = post(
        client,
        format!("{base}/api/v1/admin/tiers"),
        Some(token),
        json!({"kind": "patron", "name": name, "amount_minor": 700, "interval": "month"}),
    )
    .await;
    assert!(tier["id"].is_i64(), "{tier}");
}

async fn entries(client: &reqwest::Client, base: &str, token: &str, kind: &str) -> usize {
    let ledger = json_at(
        client,
        format!("{base}/api/v1/admin/ledger?limit=200"),
        token,
    )
    .await;
    ledger["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_do_everything_once_even_when_one_is_killed() {
    let Some((db_url, _db)) = fresh_database().await else {
        eprintln!("skipped: set PATRONAGE_TEST_DATABASE_URL to run on PostgreSQL");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(free_port(), &dir.path().join("maildir"));
    let fake = FakeStripe::start().await;
    // Reconciliation reads events slowly, so a replica can die holding it.
    fake.slow_endpoint("events", Duration::from_millis(1500));

    let every_second = "* * * * * *".to_owned();
    let env: Vec<(String, String)> = [
        ("PATRONAGE__DATABASE__URL", db_url.clone()),
        ("PATRONAGE__AUTH__JWT_SECRET", "s".repeat(40)),
        ("PATRONAGE__LOG__LEVEL", "warn".into()),
        ("PATRONAGE__STRIPE__SECRET_KEY", "sk_test_patronage".into()),
        ("PATRONAGE__STRIPE__WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
        ("PATRONAGE__STRIPE__API_BASE", fake.base.clone()),
        ("PATRONAGE__QUEUE__RETRY_BASE_SECS", "1".into()),
        ("PATRONAGE__QUEUE__POLL_SECS", "1".into()),
        // A task held by the replica killed below is taken over after this.
        ("PATRONAGE__QUEUE__LEASE_SECS", "3".into()),
        (
            "PATRONAGE__STRIPE__SUCCESS_URL",
            "https://fund.example.social/thanks".into(),
        ),
        (
            "PATRONAGE__STRIPE__CANCEL_URL",
            "https://fund.example.social/support".into(),
        ),
        ("PATRONAGE__MAIL__TRANSPORT", "smtp".into()),
        ("PATRONAGE__MAIL__SMTP_HOST", "127.0.0.1".into()),
        ("PATRONAGE__MAIL__SMTP_PORT", smtp.port.to_string()),
        ("PATRONAGE__MAIL__SMTP_SECURITY", "none".into()),
        ("PATRONAGE__MAIL__OUTBOX_POLL_SECS", "1".into()),
        ("PATRONAGE__MAIL__OUTBOX_LEASE_SECS", "10".into()),
        ("PATRONAGE__JOBS__LEASE_SECS", "3".into()),
        ("PATRONAGE__JOBS__RECONCILE", "*/2 * * * * *".into()),
        ("PATRONAGE__JOBS__SPONSORSHIPS", every_second.clone()),
        ("PATRONAGE__JOBS__FUNDING_SNAPSHOT", every_second.clone()),
        ("PATRONAGE__JOBS__MONTHLY_REPORT", every_second.clone()),
        ("PATRONAGE__JOBS__CLEANUP", every_second.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    create_admin(&env, dir.path(), OWNER, "owner");
    create_admin(&env, dir.path(), VIEWER, "viewer");
    let mut replicas = Vec::new();
    for i in 0..3 {
        replicas.push(start_replica(&env, dir.path(), i).await);
    }
    let targets: Vec<(String, Arc<AtomicBool>)> = replicas
        .iter()
        .map(|r| (r.base.clone(), r.alive.clone()))
        .collect();
    let client = reqwest::Client::new();
    let base0 = replicas[0].base.clone();

    let login = post(
        &client,
        format!("{base0}/api/v1/admin/login"),
        None,
        json!({"email": OWNER, "password": PASSWORD}),
    )
    .await;
    let token = login["access_token"].as_str().unwrap().to_owned();
    let tier = post(
        &client,
        format!("{}/api/v1/admin/tiers", replicas[1].base),
        Some(&token),
        json!({"kind": "patron", "name": "Friends", "amount_minor": 500, "interval": "month"}),
    )
    .await;
    let checkout = post(
        &client,
        format!("{}/api/v1/checkout", replicas[2].base),
        None,
        json!({"kind": "patron", "tier_id": tier["id"], "email": "ann@example.org",
            "display_name": "Ann", "visibility": "public"}),
    )
    .await;
    assert!(checkout["checkout_url"].is_string(), "{checkout} {tier}");
    let session = checkout["checkout_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();

    // A sponsor, public on its last day of grace, then paid through one
    // day less: every replica's sweep and job will see it expire.
    let gold = post(
        &client,
        format!("{base0}/api/v1/admin/tiers"),
        Some(&token),
        json!({"kind": "sponsor", "name": "Gold", "amount_minor": 100000, "interval": "year"}),
    )
    .await;
    let today = chrono::Utc::now().date_naive();
    let acme = post(
        &client,
        format!("{base0}/api/v1/admin/sponsors"),
        Some(&token),
        json!({"company_name": "Acme", "website_url": "https://acme.example/",
            "contact_email": "billing@acme.example", "tier_id": gold["id"],
            "paid_through": (today - chrono::Duration::days(14)).to_string()}),
    )
    .await;
    post(
        &client,
        format!(
            "{}/api/v1/admin/sponsors/{}/approve",
            replicas[1].base, acme["id"]
        ),
        Some(&token),
        json!({"reason": "known company"}),
    )
    .await;
    post(
        &client,
        format!(
            "{}/api/v1/admin/sponsors/{}/paid-through",
            replicas[2].base, acme["id"]
        ),
        Some(&token),
        json!({"paid_through": (today - chrono::Duration::days(15)).to_string()}),
    )
    .await;

    // A patron subscribes, renews four times, fails once and recovers.
    deliver(&targets, &fake.complete_checkout(&session)).await;
    let sub = fake.subscription_of(&session);
    for _ in 0..4 {
        deliver(&targets, &fake.renew(&sub)).await;
    }
    let (invoice, failed) = fake.fail_renewal(&sub);
    deliver(&targets, &failed).await;
    // The failure is applied (by a task: it reads the subscription) before
    // Stripe's retry succeeds, as in life, where that retry comes days later.
    tasks_done(&client, &base0, &token).await;
    deliver(&targets, &fake.recover(&sub, &invoice)).await;

    // Kill a replica while it holds a reconciliation run (and takes
    // webhooks): wait until one of them is running it.
    let mut db = PgConnection::connect(&db_url).await.unwrap();
    let pids: Vec<u32> = replicas.iter().map(|r| r.child.id()).collect();
    // Made before the run is seen, so the kill follows the sighting at
    // once: a run that ends first leaves nothing to take over.
    let more: Vec<Value> = (0..3).flat_map(|_| fake.renew(&sub)).collect();
    let (victim, killed_slot) = 'found: {
        for _ in 0..200 {
            let rows = sqlx::query(
                "SELECT owner, slot FROM job_runs WHERE job = 'reconcile' AND status = 'running'",
            )
            .fetch_all(&mut db)
            .await
            .unwrap();
            for row in rows {
                let owner: String = row.get("owner");
                let slot: chrono::DateTime<chrono::Utc> = row.get("slot");
                if let Some(i) = pids
                    .iter()
                    .position(|pid| owner.contains(&format!("-{pid}-")))
                {
                    break 'found (i, slot);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no replica was seen running reconciliation");
    };
    let burst = {
        let targets = targets.clone();
        tokio::spawn(async move { deliver(&targets, &more).await })
    };
    replicas[victim].alive.store(false, Ordering::SeqCst);
    replicas[victim].child.kill().unwrap(); // SIGKILL
    replicas[victim].child.wait().unwrap();
    // The run may have committed its end between being seen and the kill
    // (a loaded machine): then it was done once, by the victim, and there
    // is nothing to take over.
    let finished_first: bool = sqlx::query_scalar(
        "SELECT status = 'succeeded' FROM job_runs WHERE job = 'reconcile' AND slot = $1",
    )
    .bind(killed_slot)
    .fetch_one(&mut db)
    .await
    .unwrap();
    burst.await.unwrap();

    // Every payment booked once: 1 + 4 + recovered 1 + 3 after the kill.
    let live = replicas
        .iter()
        .find(|r| r.alive.load(Ordering::SeqCst))
        .unwrap()
        .base
        .clone();
    let mut booked = 0;
    for _ in 0..200 {
        booked = entries(&client, &live, &token, "payment").await;
        if booked >= 9 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(booked, 9, "every invoice booked, none twice");
    // Each payment's fee follows as a task, also when its replica died.
    let mut fees = 0;
    for _ in 0..200 {
        fees = entries(&client, &live, &token, "fee").await;
        if fees >= 9 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(fees, 9, "every fee booked, none twice");

    // The dead replica's run was taken over after its lease.
    let mut taken = Value::Null;
    for _ in 0..100 {
        let jobs = json_at(
            &client,
            format!("{live}/api/v1/admin/jobs?job=reconcile&limit=200"),
            &token,
        )
        .await;
        taken = jobs["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| {
                r["slot"]
                    .as_str()
                    .and_then(|s| s.parse::<chrono::DateTime<chrono::Utc>>().ok())
                    == Some(killed_slot)
            })
            .cloned()
            .unwrap_or(Value::Null);
        if taken["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(taken["status"], "succeeded", "{taken}");
    let by_victim = taken["owner"]
        .as_str()
        .unwrap()
        .contains(&format!("-{}-", pids[victim]));
    if finished_first {
        assert!(by_victim && taken["attempts"] == 1, "{taken}");
    } else {
        assert!(taken["attempts"].as_i64().unwrap() >= 2, "{taken}");
        assert!(!by_victim, "{taken}");
    }

    // Job slots: each ran once, work spread over the replicas, none failed
    // for good, one funding row for the day.
    let jobs = json_at(
        &client,
        format!("{live}/api/v1/admin/jobs?limit=200"),
        &token,
    )
    .await;
    let runs = jobs["runs"].as_array().unwrap();
    let mut per_slot: HashMap<(String, String), usize> = HashMap::new();
    for r in runs {
        *per_slot
            .entry((
                r["job"].as_str().unwrap().into(),
                r["slot"].as_str().unwrap().into(),
            ))
            .or_default() += 1;
    }
    assert!(per_slot.values().all(|n| *n == 1));
    let owners: HashSet<&str> = runs.iter().map(|r| r["owner"].as_str().unwrap()).collect();
    assert!(
        owners.len() >= 2,
        "jobs ran on several replicas: {owners:?}"
    );
    assert!(
        runs.iter()
            .all(|r| r["status"] != "failed" || r["attempts"].as_i64() < Some(3)),
        "{jobs}"
    );
    let history = json_at(
        &client,
        format!("{live}/api/v1/admin/funding/history"),
        &token,
    )
    .await;
    assert_eq!(history["days"].as_array().unwrap().len(), 1);

    // Emails: one welcome, a receipt per payment, one failure notice, one
    // monthly report per admin; each delivered once.
    // The sponsor left the public views once, audited once.
    let audit = json_at(
        &client,
        format!("{live}/api/v1/admin/audit?action=sponsor.unpublish"),
        &token,
    )
    .await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
    let sponsors = client
        .get(format!("{live}/api/v1/sponsors"))
        .send()
        .await
        .unwrap();
    let sponsors: Value = sponsors.json().await.unwrap();
    assert_eq!(sponsors["sponsors"], json!([]));

    // Plus the sponsor's approval, its ending notice and the owner's copy.
    let expected = 1 + 9 + 1 + 2 + 3;
    for _ in 0..200 {
        if smtp.messages().len() >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let received: Vec<Mail> = smtp.messages().iter().map(|m| Mail::parse(m)).collect();
    // SMTP leaves one gap no sender can close: the replica was killed after
    // the server took a message and before it could record that. That one
    // message comes again from the replica that takes over, with the same
    // Message-ID, so a mail client shows it once. Only the message in flight
    // at the kill can be repeated: at most one.
    let mut by_id: HashMap<&str, Vec<&Mail>> = HashMap::new();
    for m in &received {
        by_id.entry(m.message_id.as_str()).or_default().push(m);
    }
    let repeated: Vec<&Vec<&Mail>> = by_id.values().filter(|copies| copies.len() > 1).collect();
    assert!(
        repeated.len() <= 1,
        "only the message in flight may come twice: {repeated:?}"
    );
    for copies in &repeated {
        assert_eq!(copies.len(), 2);
        assert_eq!(
            (copies[0].to.as_str(), copies[0].subject.as_str()),
            (copies[1].to.as_str(), copies[1].subject.as_str())
        );
    }
    let mut seen = HashSet::new();
    let mails: Vec<&Mail> = received
        .iter()
        .filter(|m| seen.insert(m.message_id.as_str()))
        .collect();
    let count = |prefix: &str| {
        mails
            .iter()
            .filter(|m| m.subject.starts_with(prefix))
            .count()
    };
    let subjects: Vec<&str> = mails.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(count("Thank you for your"), 1, "{subjects:?}");
    assert_eq!(count("Receipt:"), 9, "{subjects:?}");
    assert_eq!(
        mails
            .iter()
            .filter(|m| m.subject.contains("did not go through"))
            .count(),
        1,
        "{subjects:?}"
    );
    let reports: HashSet<&str> = mails
        .iter()
        .filter(|m| m.subject.contains("report"))
        .map(|m| m.to.as_str())
        .collect();
    assert_eq!(reports, HashSet::from([OWNER, VIEWER]), "{subjects:?}");
    let ended: Vec<&str> = mails
        .iter()
        .filter(|m| {
            m.text.contains("Acme")
                && !m.subject.contains("approved")
                && !m.subject.contains("report")
        })
        .map(|m| m.to.as_str())
        .collect();
    assert_eq!(ended.len(), 2, "{subjects:?}");
    assert!(ended.contains(&"billing@acme.example") && ended.contains(&OWNER));
    assert_eq!(mails.len(), expected, "{subjects:?}");
}

/// A tier created on one replica shows on another's public views through
/// PostgreSQL's notification: the poll is set to a minute, and the first
/// rebuild for age comes after a minute too, so only the notice can explain
/// seeing it within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_hears_of_another_replicas_change_before_its_poll() {
    let Some((db_url, _db)) = fresh_database().await else {
        eprintln!("skipped: set PATRONAGE_TEST_DATABASE_URL to run on PostgreSQL");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let env: Vec<(String, String)> = [
        ("PATRONAGE__DATABASE__URL", db_url),
        ("PATRONAGE__AUTH__JWT_SECRET", "s".repeat(40)),
        ("PATRONAGE__LOG__LEVEL", "warn".into()),
        ("PATRONAGE__PUBLIC__SNAPSHOT_POLL_SECS", "60".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    create_admin(&env, dir.path(), OWNER, "owner");
    let a = start_replica(&env, dir.path(), 0).await;
    let b = start_replica(&env, dir.path(), 1).await;
    let client = reqwest::Client::new();
    let tiers_on_b = || async {
        let res = client
            .get(format!("{}/api/v1/tiers", b.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json::<Value>().await.unwrap()["tiers"].clone()
    };
    assert_eq!(tiers_on_b().await, json!([]));

    let token = owner_token(&client, &a.base).await;
    create_tier(&client, &a.base, &token, "Heard").await;

    let mut seen = json!([]);
    for _ in 0..200 {
        seen = tiers_on_b().await;
        if seen.as_array().is_some_and(|t| !t.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen[0]["name"], "Heard", "replica B never heard: {seen}");
}

/// A task queued on a replica that runs no tasks is run by another one at
/// once, through PostgreSQL's notification: the other's queue polls once a
/// minute, so only the notice can explain the tier reaching Stripe within
/// seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_runs_a_task_another_queued_before_its_poll() {
    let Some((db_url, _db)) = fresh_database().await else {
        eprintln!("skipped: set PATRONAGE_TEST_DATABASE_URL to run on PostgreSQL");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeStripe::start().await;
    let env: Vec<(String, String)> = [
        ("PATRONAGE__DATABASE__URL", db_url),
        ("PATRONAGE__AUTH__JWT_SECRET", "s".repeat(40)),
        ("PATRONAGE__LOG__LEVEL", "warn".into()),
        ("PATRONAGE__STRIPE__SECRET_KEY", "sk_test_patronage".into()),
        ("PATRONAGE__STRIPE__WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
        ("PATRONAGE__STRIPE__API_BASE", fake.base.clone()),
        ("PATRONAGE__QUEUE__POLL_SECS", "60".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    create_admin(&env, dir.path(), OWNER, "owner");
    let mut env_a = env.clone();
    env_a.push(("PATRONAGE__QUEUE__ENABLED".into(), "false".into()));
    let a = start_replica(&env_a, dir.path(), 0).await;
    let _b = start_replica(&env, dir.path(), 1).await;
    let client = reqwest::Client::new();
    let token = owner_token(&client, &a.base).await;
    create_tier(&client, &a.base, &token, "Synced elsewhere").await;

    let started = std::time::Instant::now();
    let done_url = format!("{}/api/v1/admin/tasks?status=done", a.base);
    let mut done = Vec::new();
    while started.elapsed() < Duration::from_secs(20) {
        done = json_at(&client, done_url.clone(), &token).await["items"]
            .as_array()
            .unwrap()
            .clone();
        if done.iter().any(|t| t["kind"] == "sync_tier") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        done.iter().any(|t| t["kind"] == "sync_tier"),
        "replica B never ran A's task: {done:?}"
    );
    // Well before B's next poll (a minute after it started).
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(fake.count("price_"), 1, "the tier reached Stripe once");
}
