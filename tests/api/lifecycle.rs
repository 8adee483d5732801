//! What patronage does by itself: emails through the outbox and a real
//! SMTP server, dunning notices, scheduled jobs claimed once per slot across
//! replicas, stalled runs taken over, and missed webhooks caught up.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    fake_stripe::{Delivery, FakeStripe},
    helpers::{Mail, TestApp, expect_json},
};

crate::with_stripe_on_both_backends!(
    failed_renewals_and_cancellations_email_the_patron_once,
    a_patron_who_asked_for_french_gets_french,
);

crate::with_stripe_on_both_backends!(@adjust (super::every_job_every_second) each_slot_runs_once_across_replicas);
crate::with_stripe_on_both_backends!(@adjust (super::reconcile_every_second)
    missed_webhooks_are_caught_up,
    an_unreadable_event_in_stripes_list_is_kept_as_failed_and_the_rest_applied,
    reconciliation_reports_what_differs,
    a_job_that_keeps_failing_shows_in_readyz_and_metrics,
);

fn every_job_every_second(s: &mut patronage::config::Settings) {
    reconcile_every_second(s);
    let jobs = &mut s.jobs;
    for schedule in [
        &mut jobs.sponsorships,
        &mut jobs.funding_snapshot,
        &mut jobs.monthly_report,
        &mut jobs.cleanup,
    ] {
        *schedule = "* * * * * *".into();
    }
}

fn reconcile_every_second(s: &mut patronage::config::Settings) {
    s.jobs.reconcile = "* * * * * *".into();
}

crate::with_stripe_on_both_backends!(@adjust (super::sponsorships_every_second)
    sponsors_are_reminded_then_unpublished_and_told_once,
);

crate::with_stripe_on_both_backends!(@adjust (super::reports_every_second)
    gifts_sponsors_and_reports_reach_their_readers,
);

fn reports_every_second(s: &mut patronage::config::Settings) {
    s.jobs.monthly_report = "* * * * * *".into();
}

fn sponsorships_every_second(s: &mut patronage::config::Settings) {
    s.jobs.sponsorships = "* * * * * *".into();
    s.jobs.sponsor_reminder_days = 14;
    s.sponsors.grace_days = 14;
}

crate::on_both_backends!(slots_missed_while_every_replica_was_down_are_caught_up);
// No scheduler of its own: the test's tick is the replica taking over, not
// the app's start-up catch-up racing it.
crate::on_both_backends!(@adjust (|s| s.jobs.enabled = false)
    a_stalled_run_is_taken_over_after_its_lease
);

/// Starts a checkout; returns the fake Stripe session's id.
async fn start_checkout(app: &TestApp, body: Value) -> String {
    let res = app
        .send(reqwest::Method::POST, "/api/v1/checkout", None, body)
        .await;
    let body = expect_json(res, StatusCode::OK).await;
    let url = body["checkout_url"].as_str().unwrap();
    url.rsplit('/').next().unwrap().to_owned()
}

/// A €5 monthly tier and a patron's checkout on it.
async fn checkout(app: &TestApp, owner: &str, email: &str) -> String {
    let tier = app
        .create_tier(
            owner,
            json!({"kind": "patron", "name": "Friends", "amount_minor": 500, "interval": "month"}),
        )
        .await;
    start_checkout(
        app,
        json!({"kind": "patron", "tier_id": tier["id"], "email": email, "display_name": "Ann <b>", "visibility": "public"}),
    )
    .await
}

async fn failed_renewals_and_cancellations_email_the_patron_once(app: TestApp, fake: FakeStripe) {
    let owner = app.owner_token().await;
    let session = checkout(&app, &owner, "ann@example.org").await;
    fake.deliver(&fake.complete_checkout(&session), Delivery::HOSTILE)
        .await;
    let sub = fake.subscription_of(&session);
    let welcome = app
        .mails(|m| m.subject.starts_with("Thank you for your"), 1)
        .await;
    assert_eq!(
        welcome[0].subject,
        "Thank you for your €5 per month pledge to Our community"
    );
    // The display name is data, not markup, in the HTML part.
    assert!(
        welcome[0].html.contains("Ann &lt;b&gt;"),
        "{}",
        welcome[0].html
    );
    assert!(welcome[0].text.contains("Ann <b>"));

    let (invoice, events) = fake.fail_renewal(&sub);
    fake.deliver(&events, Delivery::HOSTILE).await;
    let failed = app
        .mails(|m| m.subject.contains("did not go through"), 1)
        .await;
    assert!(
        failed[0]
            .link(&format!("https://invoice.stripe.test/i/{invoice}"))
            .is_some(),
        "the notice links to the page where the payer fixes it: {}",
        failed[0].text
    );

    // The next renewal needs the bank's confirmation (3-D Secure).
    fake.deliver(&fake.recover(&sub, &invoice), Delivery::HOSTILE)
        .await;
    let (confirm, events) = fake.require_action(&sub);
    fake.deliver(&events, Delivery::HOSTILE).await;
    let action = app.mails(|m| m.subject.contains("confirm"), 1).await;
    assert!(
        action[0]
            .link(&format!("https://invoice.stripe.test/i/{confirm}"))
            .is_some(),
        "{}",
        action[0].text
    );

    fake.deliver(&fake.give_up(&sub), Delivery::HOSTILE).await;
    let goodbye = app
        .mails(|m| m.subject.contains("ended after failed payments"), 1)
        .await;
    assert!(
        goodbye[0].text.contains("could not collect"),
        "{}",
        goodbye[0].text
    );
    assert!(goodbye[0].link("/support").is_some(), "with a way back");

    // Duplicated, reordered deliveries sent each message once.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let all = app.mails(|m| m.to == "ann@example.org", 6).await;
    let subjects: Vec<&str> = all.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(
        subjects.len(),
        6,
        "welcome, receipt, failure, receipt of the recovery, confirmation, goodbye: {subjects:?}"
    );
    let ids: HashSet<&str> = all.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids.len(), 6, "{subjects:?}");
}

async fn a_stalled_run_is_taken_over_after_its_lease(app: TestApp) {
    // A replica died holding this slot: its lease lapsed a while ago.
    let slot = patronage::store::now() - chrono::Duration::seconds(5);
    patronage::db_run!(&app.db, |pool| {
        sqlx::query(
            "INSERT INTO job_runs (job, slot, owner, status, attempts, started_at, lease_until) \
             VALUES ('funding_snapshot', $1, 'dead-replica', 'running', 1, $1, $2)",
        )
        .bind(slot)
        .bind(slot + chrono::Duration::seconds(1))
        .execute(pool)
        .await
        .unwrap();
    });
    patronage::jobs::tick(&app.ctx, patronage::jobs::JobKind::FundingSnapshot).await;
    let owner = app.owner_token().await;
    let jobs = app
        .get_json("/api/v1/admin/jobs?job=funding_snapshot", Some(&owner))
        .await;
    let run = &jobs["runs"][0];
    assert_eq!(run["status"], "succeeded", "{jobs}");
    assert_eq!(run["attempts"], 2);
    assert_ne!(run["owner"], "dead-replica");
    let history = app
        .get_json("/api/v1/admin/funding/history", Some(&owner))
        .await;
    assert_eq!(history["days"].as_array().unwrap().len(), 1, "{history}");
}

async fn slots_missed_while_every_replica_was_down_are_caught_up(app: TestApp) {
    // The last run anyone made was three hours ago (default schedule: hourly).
    let now = patronage::store::now();
    let last = now - chrono::Duration::hours(3);
    let last = last - chrono::Duration::seconds(last.timestamp() % 3600);
    patronage::db_run!(&app.db, |pool| {
        sqlx::query(
            "INSERT INTO job_runs (job, slot, owner, status, attempts, started_at, lease_until, finished_at) \
             VALUES ('sponsorships', $1, 'gone', 'succeeded', 1, $1, $1, $1)",
        )
        .bind(last)
        .execute(pool)
        .await
        .unwrap();
    });
    patronage::jobs::tick(&app.ctx, patronage::jobs::JobKind::Sponsorships).await;
    let owner = app.owner_token().await;
    let jobs = app
        .get_json("/api/v1/admin/jobs?job=sponsorships", Some(&owner))
        .await;
    let slots: Vec<chrono::DateTime<chrono::Utc>> = jobs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "succeeded" && r["owner"] != "gone")
        .map(|r| r["slot"].as_str().unwrap().parse().unwrap())
        .collect();
    let expected: Vec<_> = (1..=3)
        .rev()
        .map(|h| last + chrono::Duration::hours(h))
        .filter(|slot| *slot <= now)
        .collect();
    assert_eq!(slots, expected, "every missed hour ran once: {jobs}");
    // A second tick finds nothing new to run.
    patronage::jobs::tick(&app.ctx, patronage::jobs::JobKind::Sponsorships).await;
    let again = app
        .get_json("/api/v1/admin/jobs?job=sponsorships", Some(&owner))
        .await;
    assert_eq!(
        again["runs"].as_array().unwrap().len(),
        jobs["runs"].as_array().unwrap().len()
    );
}

/// Jobs fire every second on two replicas for a few seconds: each slot is
/// run once, the day's figures are kept once, the month's report mailed once.
async fn each_slot_runs_once_across_replicas(app: TestApp, _fake: FakeStripe) {
    let owner = app.owner_token().await;
    let replica = app.replica().await;
    tokio::time::sleep(Duration::from_secs(5)).await;

    let jobs = app
        .get_json("/api/v1/admin/jobs?limit=200", Some(&owner))
        .await;
    let runs = jobs["runs"].as_array().unwrap();
    let owners: HashSet<&str> = runs.iter().map(|r| r["owner"].as_str().unwrap()).collect();
    assert!(!runs.is_empty());
    assert!(owners.len() <= 2, "{owners:?}");
    for job in [
        "reconcile",
        "funding_snapshot",
        "monthly_report",
        "cleanup",
        "sponsorships",
    ] {
        let mut slots: Vec<&str> = runs
            .iter()
            .filter(|r| r["job"] == job && r["status"] == "succeeded")
            .map(|r| r["slot"].as_str().unwrap())
            .collect();
        assert!(slots.len() >= 3, "{job} ran every second: {slots:?}");
        let n = slots.len();
        slots.dedup();
        assert_eq!(slots.len(), n, "{job}: a slot ran twice");
    }
    assert!(
        runs.iter().all(|r| r["status"] != "failed"),
        "no run failed: {jobs}"
    );
    assert!(
        jobs["health"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["overdue"] == false)
    );

    let history = app
        .get_json("/api/v1/admin/funding/history", Some(&owner))
        .await;
    assert_eq!(
        history["days"].as_array().unwrap().len(),
        1,
        "one row per day"
    );

    // The report was claimed by whichever replica; it went to the owner once.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let outbox = app.get_json("/api/v1/admin/outbox", Some(&owner)).await;
    let reports: Vec<&Value> = outbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["template"] == "monthly_report")
        .collect();
    assert_eq!(reports.len(), 1, "one report per month and admin: {outbox}");
    let sent = count_sent(&app, "Subject:").await + count_sent_replica(&replica, "Subject:").await;
    assert_eq!(sent, 1, "sent once, by one replica");
}

async fn count_sent(app: &TestApp, needle: &str) -> usize {
    app.ctx
        .mailer
        .sent()
        .await
        .iter()
        .filter(|m| m.contains(needle))
        .count()
}

async fn count_sent_replica(replica: &crate::helpers::Replica, needle: &str) -> usize {
    replica
        .ctx
        .mailer
        .sent()
        .await
        .iter()
        .filter(|m| m.contains(needle))
        .count()
}

/// A webhook endpoint that was never reached: reconciliation reads the
/// events from Stripe and applies them, once.
async fn missed_webhooks_are_caught_up(app: TestApp, fake: FakeStripe) {
    let owner = app.owner_token().await;
    let session = checkout(&app, &owner, "ann@example.org").await;
    // Stripe made the events; none reached us.
    let sub = {
        let _ = fake.complete_checkout(&session);
        fake.subscription_of(&session)
    };
    let _ = fake.renew(&sub);
    let mut patrons = 0;
    for _ in 0..80 {
        patrons = app.funding().await["patrons_count"].as_i64().unwrap();
        let ledger = app.get_json("/api/v1/admin/ledger", Some(&owner)).await;
        let payments = ledger["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "payment")
            .count();
        if patrons == 1 && payments == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(patrons, 1, "the missed subscription became a pledge");
    // Another pass changes nothing: the events are stored once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ledger = app.get_json("/api/v1/admin/ledger", Some(&owner)).await;
    let payments = ledger["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "payment")
        .count();
    assert_eq!(
        payments, 2,
        "checkout and renewal, each booked once: {ledger}"
    );
    let found = app
        .get_json("/api/v1/admin/reconciliation", Some(&owner))
        .await;
    assert!(found["run_slot"].is_string(), "{found}");
    assert_eq!(
        found["mismatches"],
        json!([]),
        "Stripe and we agree: {found}"
    );
}

/// Stripe's event list holds an event this version cannot read, older than
/// the rest: reconciliation keeps it as failed for admins, applies the
/// events after it, and moves its cursor past it.
async fn an_unreadable_event_in_stripes_list_is_kept_as_failed_and_the_rest_applied(
    app: TestApp,
    fake: FakeStripe,
) {
    let owner = app.owner_token().await;
    let poisoned = fake.unreadable_listed_event(60);
    let session = checkout(&app, &owner, "ann@example.org").await;
    let missed = fake.complete_checkout(&session);
    let newest = missed
        .iter()
        .map(|e| e["created"].as_i64().unwrap())
        .max()
        .unwrap();
    let cursor = || async {
        patronage::store::jobs::state(&app.db, "reconcile.event_cursor")
            .await
            .unwrap()
            .map_or(0, |c| c.parse::<i64>().unwrap())
    };
    let (mut payments, mut moved) = (0, false);
    for _ in 0..300 {
        let ledger = app.get_json("/api/v1/admin/ledger", Some(&owner)).await;
        payments = ledger["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "payment")
            .count();
        moved = cursor().await >= newest;
        if payments == 1 && moved {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        payments, 1,
        "the events after the unreadable one are applied"
    );
    assert!(moved, "the cursor moved past it");
    let failed = app
        .get_json("/api/v1/admin/stripe/events?status=failed", Some(&owner))
        .await;
    assert_eq!(failed[0]["id"], poisoned.as_str(), "{failed}");
    assert!(
        failed[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("unreadable"),
        "{failed}"
    );
    let runs = app
        .get_json(
            "/api/v1/admin/jobs?job=reconcile&status=failed",
            Some(&owner),
        )
        .await;
    assert_eq!(runs["runs"], json!([]), "no run failed: {runs}");
}

/// aiosmtpd on loopback, writing what it receives into a Maildir.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    maildir: PathBuf,
}

impl SmtpServer {
    pub fn start(port: u16, maildir: &Path) -> SmtpServer {
        ensure_aiosmtpd();
        let mut child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd runs (pip install aiosmtpd; .ci/run installs it)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return SmtpServer {
                    child,
                    port,
                    maildir: maildir.to_path_buf(),
                };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("aiosmtpd did not start on port {port}");
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Every message received, raw.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) {
                for e in entries.flatten() {
                    out.push(std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        out
    }

    pub fn wait_for(&self, count: usize) -> Vec<String> {
        for _ in 0..150 {
            let found = self.messages();
            if found.len() >= count {
                return found;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the SMTP server received fewer than {count} messages");
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// aiosmtpd comes from PyPI: installed once if this machine lacks it, so
/// `cargo test` works on a fresh machine as the README says.
fn ensure_aiosmtpd() {
    static READY: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    READY.get_or_init(|| {
        let present = || {
            Command::new("python3")
                .args(["-c", "import aiosmtpd"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !present() {
            let _ = Command::new("python3")
                .args(["-m", "pip", "install", "--quiet", "aiosmtpd"])
                .status();
        }
        assert!(
            present(),
            "aiosmtpd is needed: python3 -m pip install aiosmtpd"
        );
    });
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_reach_a_real_smtp_server_and_wait_while_it_is_down_sqlite() {
    emails_through_smtp(crate::helpers::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_reach_a_real_smtp_server_and_wait_while_it_is_down_postgres() {
    emails_through_smtp(crate::helpers::Backend::Postgres).await;
}

async fn emails_through_smtp(backend: crate::helpers::Backend) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut smtp = SmtpServer::start(port, &dir.path().join("maildir"));
    let Some((app, fake)) = TestApp::spawn_with_stripe_and(backend, move |s| {
        s.mail.transport = patronage::config::MailTransport::Smtp;
        s.mail.smtp_host = "127.0.0.1".into();
        s.mail.smtp_port = port;
        s.mail.smtp_security = patronage::config::SmtpSecurity::None;
        s.mail.smtp_timeout_secs = 2;
        s.mail.outbox_poll_secs = 1;
        s.mail.outbox_max_retry_delay_secs = 1;
        s.mail.from = "Fund Team <fund@example.social>".into();
    })
    .await
    else {
        eprintln!("skipped: set PATRONAGE_TEST_DATABASE_URL to run on PostgreSQL");
        return;
    };
    let owner = app.owner_token().await;
    let session = checkout(&app, &owner, "ann@example.org").await;
    fake.deliver(&fake.complete_checkout(&session), Delivery::HOSTILE)
        .await;
    let received: Vec<Mail> = smtp.wait_for(2).iter().map(|m| Mail::parse(m)).collect();
    let receipt = received
        .iter()
        .find(|m| m.subject.starts_with("Receipt: €5 to Our community"))
        .expect("a receipt");
    assert_eq!(receipt.to, "ann@example.org");
    assert_eq!(
        (receipt.from_name.as_str(), receipt.from.as_str()),
        ("Fund Team", "fund@example.social")
    );
    assert!(
        receipt.message_id.starts_with("outbox-"),
        "{}",
        receipt.message_id
    );
    assert!(receipt.raw.contains("multipart/alternative"));
    assert!(receipt.text.contains("€5") && receipt.html.contains("€5"));
    assert!(
        receipt.html.contains("<th scope=\"row\""),
        "figures in a table"
    );
    // The receipt's management link works against the running service.
    let link = receipt
        .link("/api/v1/patron/portal?token=")
        .expect("a management link");
    let path = &link[link.find("/api/v1/patron/portal").unwrap()..];
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    assert_eq!(
        no_redirect
            .get(app.url(path))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let token = path.split("token=").nth(1).unwrap();
    let res = no_redirect
        .post(app.url("/api/v1/patron/portal"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    // The server goes away; a failed renewal's notice waits for it.
    smtp.stop();
    let sub = fake.subscription_of(&session);
    let (_invoice, events) = fake.fail_renewal(&sub);
    fake.deliver(&events, Delivery::ONCE).await;
    let mut waiting = Value::Null;
    for _ in 0..50 {
        waiting = app
            .get_json("/api/v1/admin/outbox?status=pending", Some(&owner))
            .await;
        if waiting["items"].as_array().unwrap().iter().any(|m| {
            m["template"] == "payment_failed"
                && m["attempts"].as_i64().unwrap() >= 1
                && m["last_error"].is_string()
        }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        waiting["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["template"] == "payment_failed"),
        "the notice waits in the outbox: {waiting}"
    );
    let before = smtp.messages().len();
    let smtp = SmtpServer::start(smtp.port, &smtp.maildir.clone());
    let all = smtp.wait_for(before + 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all_after = smtp.messages();
    assert_eq!(all_after.len(), all.len(), "nothing sent twice");
    let mails: Vec<Mail> = all_after.iter().map(|m| Mail::parse(m)).collect();
    let ids: HashSet<&str> = mails.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids.len(), mails.len(), "every message once");
    assert_eq!(
        mails
            .iter()
            .filter(|m| m.subject.contains("did not go through"))
            .count(),
        1,
        "the failure notice arrived once, after the server came back"
    );
}

/// Stripe and our pledges drift apart without any event (a change made in
/// Stripe's dashboard while webhooks were off): reconciliation shows it.
async fn reconciliation_reports_what_differs(app: TestApp, fake: FakeStripe) {
    let owner = app.owner_token().await;
    let ann = checkout(&app, &owner, "ann@example.org").await;
    fake.deliver(&fake.complete_checkout(&ann), Delivery::ONCE)
        .await;
    let ann_sub = fake.subscription_of(&ann);
    fake.drift(&ann_sub, "/items/data/0/price/unit_amount", json!(900));
    fake.drift(&ann_sub, "/status", json!("past_due"));

    let mut found = Value::Null;
    for _ in 0..60 {
        found = app
            .get_json("/api/v1/admin/reconciliation", Some(&owner))
            .await;
        if found["mismatches"].as_array().is_some_and(|m| m.len() >= 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kinds: HashSet<(&str, &str, &str)> = found["mismatches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["kind"].as_str().unwrap(),
                m["ours"].as_str().unwrap(),
                m["theirs"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        HashSet::from([("amount", "500", "900"), ("status", "active", "past_due")]),
        "{found}"
    );
    assert!(
        found["mismatches"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["subscription_id"] == ann_sub.as_str())
    );
}

async fn sponsors_are_reminded_then_unpublished_and_told_once(app: TestApp, _fake: FakeStripe) {
    let owner = app.owner_token().await;
    let tier = app
        .create_tier(
            &owner,
            json!({"kind": "sponsor", "name": "Gold", "amount_minor": 100000, "interval": "year"}),
        )
        .await;
    let today = chrono::Utc::now().date_naive();
    let sponsor = |name: &str, paid: chrono::NaiveDate| {
        json!({"company_name": name, "website_url": format!("https://{}.example/", name.to_lowercase()),
            "contact_email": format!("billing@{}.example", name.to_lowercase()), "tier_id": tier["id"],
            "paid_through": paid.to_string()})
    };
    // Soon: its term ends in 5 days. Gone: it ended 15 days ago, past the
    // 14 days of grace.
    for (name, paid) in [
        ("Soon", today + chrono::Duration::days(5)),
        ("Gone", today - chrono::Duration::days(15)),
    ] {
        let created = app
            .post_ok(
                "/api/v1/admin/sponsors",
                &owner,
                sponsor(name, paid),
                StatusCode::CREATED,
            )
            .await;
        app.post_ok(
            &format!("/api/v1/admin/sponsors/{}/approve", created["id"]),
            &owner,
            json!({"reason": "ok"}),
            StatusCode::OK,
        )
        .await;
    }
    let reminder = app
        .mails(
            |m| m.to == "billing@soon.example" && m.text.contains("5 days"),
            1,
        )
        .await;
    assert!(reminder[0].link("/support").is_some(), "a way to renew");
    app.mails(
        |m| m.to == "billing@gone.example" && m.subject.contains("removed"),
        1,
    )
    .await;
    app.mails(
        |m| m.to == crate::helpers::OWNER_EMAIL && m.text.contains("Gone"),
        1,
    )
    .await;
    // The job keeps firing every second; nothing is sent twice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sent = app.mails(|_| true, 1).await;
    let per_person: Vec<(&str, &str)> = sent
        .iter()
        .filter(|m| !m.subject.contains("approved"))
        .map(|m| (m.to.as_str(), m.subject.as_str()))
        .collect();
    assert_eq!(
        per_person.len(),
        3,
        "a reminder, an ending notice and the owners' copy: {per_person:?}"
    );
    assert_eq!(
        app.get_json("/api/v1/sponsors", None).await["sponsors"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Published once (Soon); Gone was past its grace when approved, so it
    // was never public, however often the sweep ran.
    let audited = |action: &'static str| {
        let app = &app;
        let owner = owner.clone();
        async move {
            app.get_json(
                &format!("/api/v1/admin/audit?action={action}"),
                Some(&owner),
            )
            .await["items"]
                .as_array()
                .unwrap()
                .len()
        }
    };
    assert_eq!(audited("sponsor.publish").await, 1);
    assert_eq!(audited("sponsor.unpublish").await, 0);
}

async fn a_patron_who_asked_for_french_gets_french(app: TestApp, fake: FakeStripe) {
    let owner = app.owner_token().await;
    let tier = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "Amis", "amount_minor": 500, "interval": "month"}),
        )
        .await;
    let bad = app
        .send(
            reqwest::Method::POST,
            "/api/v1/checkout",
            None,
            json!({"kind": "patron", "tier_id": tier["id"], "email": "zoe@example.org", "display_name": "Zoé", "locale": "../../etc"}),
        )
        .await;
    crate::helpers::expect_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed")
        .await;
    let session = start_checkout(
        &app,
        json!({"kind": "patron", "tier_id": tier["id"], "email": "zoe@example.org", "display_name": "Zoé", "locale": "fr-CA"}),
    )
    .await;
    fake.deliver(&fake.complete_checkout(&session), Delivery::ONCE)
        .await;
    let mails = app.mails(|m| m.to == "zoe@example.org", 2).await;
    for m in &mails {
        assert!(m.text.starts_with("Bonjour Zoé"), "{}", m.text);
        assert!(m.html.contains("lang=\"fr-CA\""), "{}", m.html);
    }
}

/// The dead-man's switch: reconciliation fails every second (Stripe's event
/// list is down) and soon shows as overdue where operators look.
async fn a_job_that_keeps_failing_shows_in_readyz_and_metrics(app: TestApp, fake: FakeStripe) {
    let ready = app.get_json("/readyz", None).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    fake.break_endpoint("events");
    let mut ready = Value::Null;
    for _ in 0..100 {
        ready = app.get_json("/readyz", None).await;
        if ready["status"] == "degraded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready["status"], "degraded", "{ready}");
    let overdue: Vec<&str> = ready["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["overdue"] == true)
        .map(|j| j["job"].as_str().unwrap())
        .collect();
    assert_eq!(overdue, ["reconcile"]);
    // The metrics registry is shared by every app in this test process;
    // each /readyz publishes this app's view again.
    let mut published = false;
    for _ in 0..20 {
        app.get_json("/readyz", None).await;
        let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
        let metrics = metrics.text().await.unwrap();
        if metrics.contains("patronage_job_overdue{job=\"reconcile\"} 1") {
            published = true;
            break;
        }
    }
    assert!(published, "the overdue job is in /metrics");
    let owner = app.owner_token().await;
    let failed = app
        .get_json(
            "/api/v1/admin/jobs?job=reconcile&status=failed",
            Some(&owner),
        )
        .await;
    assert!(
        failed["runs"][0]["error"]
            .as_str()
            .unwrap()
            .contains("payment provider"),
        "{failed}"
    );

    fake.restore();
    for _ in 0..100 {
        ready = app.get_json("/readyz", None).await;
        if ready["status"] == "ready" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        ready["status"], "ready",
        "recovers once a run succeeds: {ready}"
    );
}

async fn gifts_sponsors_and_reports_reach_their_readers(app: TestApp, fake: FakeStripe) {
    let owner = app.owner_token().await;
    let _viewer = app.viewer_token("books@example.org").await;
    // A one-time gift: thanks that double as its receipt.
    let gift = start_checkout(&app, json!({"kind": "gift", "amount_minor": 2500, "email": "gia@example.org", "display_name": "Gia"})).await;
    fake.deliver(&fake.complete_checkout(&gift), Delivery::HOSTILE)
        .await;
    let thanks = app.mails(|m| m.to == "gia@example.org", 1).await;
    assert_eq!(
        thanks[0].subject,
        "Thank you for your €25 gift to Our community"
    );

    // Two companies apply; one is approved, one rejected with a reason.
    let gold = app
        .create_tier(
            &owner,
            json!({"kind": "sponsor", "name": "Gold", "amount_minor": 100000, "interval": "year"}),
        )
        .await;
    for company in ["acme", "shady"] {
        let session = start_checkout(&app, json!({"kind": "sponsor", "tier_id": gold["id"], "email": format!("billing@{company}.example"),
            "company_name": company.to_uppercase(), "website_url": format!("https://{company}.example")}))
        .await;
        // An application is announced once it is paid.
        fake.deliver(&fake.complete_checkout(&session), Delivery::HOSTILE)
            .await;
    }
    let applied = app
        .mails(|m| m.subject.starts_with("New sponsor application"), 2)
        .await;
    assert!(applied.iter().all(|m| m.to == crate::helpers::OWNER_EMAIL));
    let review = applied[0]
        .link("/api/v1/admin/sponsors/")
        .expect("a link to review it");
    assert!(review.starts_with("http"), "absolute: {review}");
    let confirmation = app
        .mails(
            |m| m.to == "billing@acme.example" && m.subject.starts_with("We received"),
            1,
        )
        .await;
    let upload = confirmation[0]
        .link("/sponsor/logo?token=")
        .expect("a signed link to send the logo");
    let upload = &upload[upload.find("/sponsor/logo").unwrap()..];
    let form = app.client.get(app.url(upload)).send().await.unwrap();
    assert_eq!(
        form.status(),
        StatusCode::OK,
        "the link opens the upload form"
    );
    let sponsors = app.get_json("/api/v1/admin/sponsors", Some(&owner)).await;
    for s in sponsors["items"].as_array().unwrap() {
        let (decision, reason) = if s["display_name"] == "ACME" {
            ("approve", "welcome aboard")
        } else {
            ("reject", "not a fit for <our> server")
        };
        app.post_ok(
            &format!("/api/v1/admin/sponsors/{}/{decision}", s["id"]),
            &owner,
            json!({"reason": reason}),
            StatusCode::OK,
        )
        .await;
    }
    app.mails(
        |m| m.to == "billing@acme.example" && m.subject.contains("approved"),
        1,
    )
    .await;
    let rejected = app
        .mails(
            |m| m.to == "billing@shady.example" && m.subject.contains("not accepted"),
            1,
        )
        .await;
    assert!(rejected[0].text.contains("not a fit for <our> server"));
    assert!(
        rejected[0]
            .html
            .contains("not a fit for &lt;our&gt; server")
    );

    // The monthly report fires every second here: still one per admin.
    let last_month = patronage::domain::month::Month::of(
        patronage::domain::month::Month::of(chrono::Utc::now()).start() - chrono::Duration::days(1),
    )
    .to_string();
    let reports = app.mails(|m| m.subject.contains(&last_month), 2).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let reports_after = app.mails(|m| m.subject.contains(&last_month), 2).await;
    assert_eq!(reports.len(), reports_after.len());
    let readers: HashSet<&str> = reports_after.iter().map(|m| m.to.as_str()).collect();
    assert_eq!(
        readers,
        HashSet::from([crate::helpers::OWNER_EMAIL, "books@example.org"])
    );
    assert!(
        reports_after[0].html.contains("<th scope=\"row\""),
        "figures in a table"
    );
}
