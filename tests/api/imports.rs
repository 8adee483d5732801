//! Moving over from another platform: an owner imports an export, first as
//! a dry run, then for real; importing again, or again after a crash half
//! way, books nothing twice; imported pledges count in the totals and are
//! never charged.

use std::time::Duration;

use chrono::Utc;
use patronage::{
    domain::{
        imports::{Format, Mapping},
        money::Currency,
    },
    service::imports::{self, Mode, Plan, Summary},
    store::audit::Actor,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fake_stripe::FakeStripe;
use crate::helpers::{TestApp, minor};
use crate::{on_both_backends, with_stripe_on_both_backends};

with_stripe_on_both_backends!(@adjust (|s| s.jobs.reconcile = "* * * * * *".into())
    an_open_collective_export_imported_twice_counts_once_and_is_never_charged,
);

on_both_backends!(
    a_dry_run_says_what_it_would_do_and_writes_nothing,
    bad_rows_are_reported_by_line_and_written_only_once_confirmed,
    a_crash_half_way_then_the_whole_file_books_everything_once,
    a_generic_csv_is_read_through_its_mapping,
    each_platform_preset_reads_its_export,
    the_import_command_dry_runs_then_commits,
    an_owner_imports_a_file_from_the_console,
);

/// The fixture with `@D<n>@` as the time n days ago, and `@DAY<n>@` as
/// that day: the recurring pledges in it are recent whenever this runs.
fn fixture(name: &str) -> String {
    let text = match name {
        "opencollective" => include_str!("../fixtures/imports/opencollective.csv"),
        "generic" => include_str!("../fixtures/imports/generic.csv"),
        "patreon" => include_str!("../fixtures/imports/patreon.csv"),
        "liberapay" => include_str!("../fixtures/imports/liberapay.csv"),
        "kofi" => include_str!("../fixtures/imports/kofi.csv"),
        "github_sponsors" => include_str!("../fixtures/imports/github_sponsors.csv"),
        other => panic!("no fixture {other}"),
    };
    let mut text = text.to_owned();
    for days in [5, 20, 25, 29, 30, 35, 40, 120] {
        let at = Utc::now() - chrono::Duration::days(days);
        text = text
            .replace(
                &format!("@D{days}@"),
                &at.format("%Y-%m-%dT%H:%M:%S").to_string(),
            )
            .replace(&format!("@DAY{days}@"), &at.format("%Y-%m-%d").to_string());
    }
    text
}

async fn import(
    app: &TestApp,
    format: Format,
    map: &[(&str, &str)],
    currency: Option<&str>,
    text: &str,
    mode: Mode,
) -> Summary {
    let pairs: Vec<(String, String)> = map
        .iter()
        .map(|(f, h)| ((*f).to_owned(), (*h).to_owned()))
        .collect();
    let mapping = Mapping::preset(
        format,
        &pairs,
        currency.map(|c| Currency::parse(c).unwrap()),
    )
    .unwrap();
    let plan = Plan {
        format,
        mapping,
        file_name: format!("{format}.csv"),
    };
    let bytes = text.as_bytes().to_vec();
    imports::import(
        &app.ctx,
        &Actor::cli(),
        &plan,
        || Ok(std::io::Cursor::new(bytes.clone())),
        mode,
        &mut |_| {},
    )
    .await
    .unwrap()
}

/// Rows in `table` (and its condition), read directly.
async fn count(app: &TestApp, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    match &app.db {
        patronage::store::Db::Sqlite(pool, _) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(pool)
            .await
            .unwrap(),
        patronage::store::Db::Postgres(pool) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(pool)
            .await
            .unwrap(),
    }
}

const COMMIT: Mode = Mode::Commit { skip_bad: false };

async fn items(app: &TestApp, owner: &str, path: &str) -> Vec<Value> {
    app.get_json(path, Some(owner)).await["items"]
        .as_array()
        .unwrap()
        .clone()
}

async fn ledger(app: &TestApp, owner: &str) -> Vec<Value> {
    items(app, owner, "/api/v1/admin/ledger?limit=200").await
}

async fn pledges(app: &TestApp, owner: &str) -> Vec<Value> {
    items(app, owner, "/api/v1/admin/pledges?limit=200").await
}

/// Net income summed over the admin report's months, from six months ago
/// to this one.
async fn report_net(app: &TestApp, owner: &str) -> i64 {
    let to = Utc::now().date_naive();
    let from = to.checked_sub_months(chrono::Months::new(6)).unwrap();
    let report = app
        .get_json(
            &format!(
                "/api/v1/admin/reports/monthly?from={}&to={}",
                from.format("%Y-%m"),
                to.format("%Y-%m")
            ),
            Some(owner),
        )
        .await;
    report["months"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| minor(&m["net"]))
        .sum()
}

async fn an_open_collective_export_imported_twice_counts_once_and_is_never_charged(
    app: TestApp,
    fake: FakeStripe,
) {
    let owner = app.owner_token().await;
    for (name, amount, interval) in [("Bronze", 500, "month"), ("Gold", 12000, "year")] {
        app.create_tier(
            &owner,
            json!({"kind": "patron", "name": name, "amount_minor": amount, "interval": interval}),
        )
        .await;
    }
    // Ann is a patron here already: her Open Collective email, in other
    // case, finds her.
    let ann = app.create_patron(&owner, "ann@example.org", "Ann").await;
    // The two tiers' products and prices are created at Stripe by queued
    // tasks: done before counting, so only what the import does is counted.
    fake.settle().await;
    let stripe_before = fake.requests();
    let text = fixture("opencollective");

    let first = import(&app, Format::Opencollective, &[], None, &text, COMMIT).await;
    assert!(first.committed);
    assert_eq!(first.bad, 0, "{:?}", first.lines);
    // Ann twice, Bob, Cy, Dee and her refund, Olga; a fee and an expense
    // skipped.
    assert_eq!(first.entries_created, 7, "{:?}", first.lines);
    assert_eq!(first.pledges_created, 3, "Ann's, Cy's and Olga's");
    assert_eq!(first.supporters_created, 4, "Bob, Cy, Dee and Olga");
    let skipped: Vec<u64> = first
        .lines
        .iter()
        .filter(|l| l.action == "skip")
        .map(|l| l.line)
        .collect();
    assert_eq!(skipped, vec![3, 10], "the fee and the expense");

    let check = |when: &'static str| {
        let app = &app;
        let owner = owner.clone();
        async move {
            let f = app.funding().await;
            // 5 + 5 + 20 + 120 + 10 − 10 + 5
            assert_eq!(minor(&f["raised_total"]), 15500, "{when}: {f}");
            // Ann's €5 a month and Cy's €120 a year; Olga's lapsed.
            assert_eq!(minor(&f["monthly_recurring"]), 500 + 1000, "{when}: {f}");
            assert_eq!(f["patrons_count"], 2, "{when}: {f}");
            assert_eq!(report_net(app, &owner).await, 15500, "{when}");
            let entries = ledger(app, &owner).await;
            assert_eq!(entries.len(), 7, "{when}");
            assert!(
                entries.iter().all(|e| e["source"] == "opencollective"),
                "{entries:?}"
            );
            let mut refs: Vec<&str> = entries
                .iter()
                .map(|e| e["external_reference"].as_str().unwrap())
                .collect();
            refs.sort();
            assert_eq!(
                refs,
                ["7000", "8001", "8200", "8300", "8301", "8500", "9001"],
                "each row keeps its Open Collective id"
            );
            let ps = pledges(app, &owner).await;
            assert_eq!(ps.len(), 3, "{when}: {ps:?}");
            let status = |who: i64| {
                ps.iter()
                    .filter(|p| p["supporter_id"] == who)
                    .map(|p| p["status"].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            };
            assert_eq!(status(ann), ["active"], "{ps:?}");
            assert!(ps.iter().all(|p| p["source"] == "opencollective"));
        }
    };
    check("after the first import").await;

    let second = import(&app, Format::Opencollective, &[], None, &text, COMMIT).await;
    assert!(second.committed);
    assert_eq!(
        (second.created, second.updated, second.entries_created),
        (0, 0, 0),
        "{:?}",
        second.lines
    );
    assert!(
        second
            .lines
            .iter()
            .any(|l| l.detail.starts_with("already imported")),
        "{:?}",
        second.lines
    );
    check("after the second import").await;

    // Reconciliation runs against Stripe every second: it must not take
    // the imported pledges for Stripe's, and nothing is ever created or
    // charged at Stripe.
    let mut found = Value::Null;
    for _ in 0..50 {
        found = app
            .get_json("/api/v1/admin/reconciliation", Some(&owner))
            .await;
        if found["run_slot"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(found["run_slot"].is_string(), "{found}");
    assert_eq!(found["mismatches"], json!([]), "{found}");
    let posts: Vec<String> = fake
        .requests()
        .into_iter()
        .skip(stripe_before.len())
        .filter(|r| !r.starts_with("GET "))
        .collect();
    assert_eq!(posts, Vec::<String>::new(), "no Stripe object is created");
    assert_eq!(fake.count("cus_"), 0);
    assert_eq!(fake.count("sub_"), 0);

    // Who imported what, audited.
    let audit = app
        .get_json("/api/v1/admin/audit?action=import.commit", Some(&owner))
        .await;
    let found = audit["items"].as_array().unwrap();
    assert_eq!(found.len(), 2, "{audit}");
    assert_eq!(found[0]["details"]["file_name"], "opencollective.csv");
}

async fn a_dry_run_says_what_it_would_do_and_writes_nothing(app: TestApp) {
    let owner = app.owner_token().await;
    let text = fixture("opencollective");
    let dry = import(&app, Format::Opencollective, &[], None, &text, Mode::DryRun).await;
    assert!(!dry.committed);
    assert_eq!(dry.entries_created, 7);
    assert_eq!(dry.rows, 9);
    let line2 = &dry.lines[0];
    assert_eq!((line2.line, line2.action), (2, "create"));
    assert!(
        line2.detail.contains("recurring payment €5"),
        "{}",
        line2.detail
    );
    // Line 4 is Ann's earlier payment: it finds the pledge line 2 made.
    let line4 = dry.lines.iter().find(|l| l.line == 4).unwrap();
    assert!(line4.detail.contains("started"), "{}", line4.detail);

    assert_eq!(ledger(&app, &owner).await, Vec::<Value>::new());
    assert_eq!(pledges(&app, &owner).await, Vec::<Value>::new());
    assert_eq!(count(&app, "supporters").await, 0);
    assert_eq!(
        count(&app, "audit_log WHERE action = 'import.commit'").await,
        0
    );
    let f = app.funding().await;
    assert!(
        f["raised_total"].is_null() || minor(&f["raised_total"]) == 0,
        "{f}"
    );
}

async fn bad_rows_are_reported_by_line_and_written_only_once_confirmed(app: TestApp) {
    let owner = app.owner_token().await;
    let text = "date,name,email,amount,currency,external_id\n\
        2026-01-05,Ann,ann@example.org,10.00,EUR,r1\n\
        2026-01-06,Bob,bob@example.org,\"1,000\",EUR,r2\n\
        2026-01-07,Cy,cy@example.org,7.50,EUR,r3\n\
        31/01/2026,Dee,dee@example.org,5,EUR,r4\n\
        2026-01-08,Eve,not-an-address,5,EUR,r5\n";
    let refused = import(&app, Format::Csv, &[], None, text, COMMIT).await;
    assert!(!refused.committed);
    let bad: Vec<(u64, &str)> = refused
        .lines
        .iter()
        .map(|l| (l.line, l.detail.as_str()))
        .collect();
    assert_eq!(bad.len(), 3, "{bad:?}");
    assert_eq!(bad[0].0, 3);
    assert!(bad[0].1.contains("ambiguous"), "{bad:?}");
    assert_eq!(bad[1].0, 5);
    assert!(bad[1].1.contains("date"), "{bad:?}");
    assert_eq!(bad[2].0, 6);
    assert!(bad[2].1.contains("email"), "{bad:?}");
    assert_eq!(ledger(&app, &owner).await.len(), 0, "nothing written");

    let done = import(
        &app,
        Format::Csv,
        &[],
        None,
        text,
        Mode::Commit { skip_bad: true },
    )
    .await;
    assert!(done.committed);
    assert_eq!((done.entries_created, done.bad), (2, 3));
    let entries = ledger(&app, &owner).await;
    assert_eq!(entries.len(), 2);
    assert_eq!(
        entries.iter().map(|e| minor(&e["amount"])).sum::<i64>(),
        1750
    );
}

/// `n` one-time gifts of €1.00 to €9.99, each from its own person.
fn gifts(n: usize) -> String {
    let mut text = String::from("date,email,amount,currency,external_id\n");
    for i in 0..n {
        text.push_str(&format!(
            "2026-02-{:02},p{i}@example.org,{}.{:02},EUR,gift-{i}\n",
            1 + i % 28,
            1 + i % 9,
            i % 100
        ));
    }
    text
}

async fn a_crash_half_way_then_the_whole_file_books_everything_once(app: TestApp) {
    let owner = app.owner_token().await;
    let n = imports::BATCH * 2 + 200;
    let whole = gifts(n);
    let expected: i64 = (0..n).map(|i| ((1 + i % 9) * 100 + i % 100) as i64).sum();
    // The first batch and a half were committed before the crash: the
    // file as far as it was read.
    let cut: String = whole
        .lines()
        .take(1 + imports::BATCH + imports::BATCH / 2)
        .map(|l| format!("{l}\n"))
        .collect();
    let part = import(&app, Format::Csv, &[], None, &cut, COMMIT).await;
    assert_eq!(
        part.entries_created as usize,
        imports::BATCH + imports::BATCH / 2
    );

    let rerun = import(&app, Format::Csv, &[], None, &whole, COMMIT).await;
    assert_eq!(
        rerun.entries_created as usize,
        n - imports::BATCH - imports::BATCH / 2
    );
    assert_eq!(rerun.supporters_created, rerun.entries_created);
    assert_eq!(minor(&app.funding().await["raised_total"]), expected);
    let again = import(&app, Format::Csv, &[], None, &whole, COMMIT).await;
    assert_eq!((again.created, again.skipped as usize), (0, n));
    assert_eq!(minor(&app.funding().await["raised_total"]), expected);
    let _ = owner;
}

async fn a_generic_csv_is_read_through_its_mapping(app: TestApp) {
    let owner = app.owner_token().await;
    let bronze = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "Bronze", "amount_minor": 1000, "interval": "month"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let map = [
        ("date", "When"),
        ("name", "Who"),
        ("email", "Mail"),
        ("amount", "Sum"),
        ("currency", "Cur"),
        ("interval", "Every"),
        ("tier", "Level"),
        ("external_id", "Ref"),
    ];
    let s = import(&app, Format::Csv, &map, None, &fixture("generic"), COMMIT).await;
    assert!(s.committed, "{:?}", s.lines);
    assert_eq!(
        (s.entries_created, s.pledges_created, s.supporters_created),
        (3, 1, 2)
    );
    let entries = ledger(&app, &owner).await;
    let zed = entries
        .iter()
        .find(|e| e["external_reference"] == "g-3")
        .unwrap();
    assert_eq!(minor(&zed["amount"]), 123450, "1,234.50 with its grouping");
    assert_eq!(zed["source"], "import");
    let ps = pledges(&app, &owner).await;
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0]["tier_id"], bronze, "the tier is found by its name");
    assert_eq!(minor(&ps[0]["amount"]), 1000);
    // Paid through mid-March 2026: long lapsed by now.
    assert_eq!(ps[0]["status"], "canceled");
    assert_eq!(
        ps[0]["started_at"].as_str().unwrap().get(..10),
        Some("2026-01-15")
    );

    // A mapping naming a column the file lacks refuses the file, by name.
    let mapping = Mapping::preset(Format::Csv, &[("amount".into(), "Total".into())], None).unwrap();
    let plan = Plan {
        format: Format::Csv,
        mapping,
        file_name: "x.csv".into(),
    };
    let bytes = fixture("generic").into_bytes();
    let err = imports::run(
        &app.db,
        &Actor::cli(),
        &plan,
        || Ok(std::io::Cursor::new(bytes.clone())),
        Mode::DryRun,
        &mut |_| {},
    )
    .await
    .unwrap_err();
    assert!(format!("{err:?}").contains("Total"), "{err:?}");
}

async fn each_platform_preset_reads_its_export(app: TestApp) {
    let owner = app.owner_token().await;
    app.create_tier(
        &owner,
        json!({"kind": "patron", "name": "Bronze", "amount_minor": 500, "interval": "month"}),
    )
    .await;

    // Patreon's members list: pledges only, status as Patreon says.
    let s = import(
        &app,
        Format::Patreon,
        &[],
        None,
        &fixture("patreon"),
        COMMIT,
    )
    .await;
    assert!(s.committed, "{:?}", s.lines);
    assert_eq!((s.pledges_created, s.entries_created), (2, 0));
    let ps = pledges(&app, &owner).await;
    let by_source =
        |src: &str| -> Vec<Value> { ps.iter().filter(|p| p["source"] == src).cloned().collect() };
    let patreon = by_source("patreon");
    assert_eq!(
        patreon
            .iter()
            .map(|p| (p["status"].as_str().unwrap(), minor(&p["amount"])))
            .collect::<Vec<_>>(),
        [("active", 500), ("canceled", 1000)]
    );

    // Liberapay: weekly amounts, as monthly ones (1.00 × 52 / 12).
    let s = import(
        &app,
        Format::Liberapay,
        &[],
        None,
        &fixture("liberapay"),
        COMMIT,
    )
    .await;
    assert!(s.committed, "{:?}", s.lines);
    let ps = pledges(&app, &owner).await;
    let lena: Vec<&Value> = ps.iter().filter(|p| p["source"] == "liberapay").collect();
    assert_eq!(lena.len(), 1);
    assert_eq!(
        (minor(&lena[0]["amount"]), lena[0]["interval"].as_str()),
        (433, Some("month"))
    );

    // Ko-fi: a one-time donation and a monthly one.
    let s = import(&app, Format::Kofi, &[], None, &fixture("kofi"), COMMIT).await;
    assert!(s.committed, "{:?}", s.lines);
    assert_eq!(
        (s.entries_created, s.pledges_created, s.supporters_created),
        (2, 1, 1)
    );

    // GitHub Sponsors: USD, what was processed; the pledge at the tier's
    // monthly amount.
    let s = import(
        &app,
        Format::GithubSponsors,
        &[],
        None,
        &fixture("github_sponsors"),
        COMMIT,
    )
    .await;
    assert!(s.committed, "{:?}", s.lines);
    assert_eq!((s.entries_created, s.pledges_created), (3, 1));
    assert_eq!(s.booked.get("USD"), Some(&(452 + 500 + 2500)));
    let entries = ledger(&app, &owner).await;
    let gh: Vec<&Value> = entries
        .iter()
        .filter(|e| e["source"] == "github_sponsors")
        .collect();
    assert_eq!(gh.len(), 3);
    assert!(
        gh.iter().all(|e| e["amount"]["currency"] == "USD"),
        "{gh:?}"
    );
    let ps = pledges(&app, &owner).await;
    let octo: Vec<&Value> = ps
        .iter()
        .filter(|p| p["source"] == "github_sponsors")
        .collect();
    assert_eq!(minor(&octo[0]["amount"]), 500);

    // Each again: nothing new.
    for (format, name) in [
        (Format::Patreon, "patreon"),
        (Format::Liberapay, "liberapay"),
        (Format::Kofi, "kofi"),
        (Format::GithubSponsors, "github_sponsors"),
    ] {
        let again = import(&app, format, &[], None, &fixture(name), COMMIT).await;
        assert_eq!(
            (again.created, again.updated),
            (0, 0),
            "{name}: {:?}",
            again.lines
        );
    }
}

async fn the_import_command_dry_runs_then_commits(app: TestApp) {
    let owner = app.owner_token().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("transactions.csv");
    std::fs::write(&file, fixture("opencollective")).unwrap();
    let run = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_patronage"));
        for (key, _) in std::env::vars() {
            if key.starts_with("PATRONAGE") {
                cmd.env_remove(key);
            }
        }
        cmd.current_dir(dir.path())
            .env("PATRONAGE__DATABASE__URL", &app.ctx.settings.database.url)
            .args(["import", "--format", "opencollective"])
            .arg(&file)
            .args(args)
            .output()
            .unwrap()
    };
    let dry = run(&[]);
    let out = String::from_utf8_lossy(&dry.stdout);
    assert!(
        dry.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(
        out.contains("line 2: create: recurring payment €5"),
        "{out}"
    );
    assert!(
        out.contains("line 3: skip: DEBIT PAYMENT_PROCESSOR_FEE"),
        "{out}"
    );
    assert!(out.contains("nothing was written"), "{out}");
    assert_eq!(ledger(&app, &owner).await.len(), 0);

    let done = run(&["--commit"]);
    let out = String::from_utf8_lossy(&done.stdout);
    assert!(
        done.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(out.contains("imported 9 rows"), "{out}");
    assert_eq!(ledger(&app, &owner).await.len(), 7);

    let again = run(&["--commit", "--quiet"]);
    let out = String::from_utf8_lossy(&again.stdout);
    assert!(out.contains("0 create, 0 update"), "{out}");
    assert_eq!(ledger(&app, &owner).await.len(), 7);

    // A bad row: --commit alone refuses and writes nothing.
    std::fs::write(&file, "date,email,amount,currency,external_id\n2026-01-01,a@example.org,\"1,000\",EUR,x1\n2026-01-02,b@example.org,3,EUR,x2\n").unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_patronage"));
    let refused = cmd
        .env("PATRONAGE__DATABASE__URL", &app.ctx.settings.database.url)
        .args(["import", "--format", "csv", "--commit"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("--skip-bad"), "{err}");
    assert!(String::from_utf8_lossy(&refused.stdout).contains("line 2: bad"));
    assert_eq!(ledger(&app, &owner).await.len(), 7);
}

async fn an_owner_imports_a_file_from_the_console(app: TestApp) {
    use crate::cdp::Browser;
    use crate::console::{shoot, sign_in};
    let owner = app.owner_token().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("transactions.csv");
    // One bad amount on line 5 (Bob's gift), to be skipped on
    // confirmation.
    let text = fixture("opencollective").replacen(",20.00,", ",\"2,000\",", 1);
    std::fs::write(&file, text).unwrap();

    let b = Browser::launch().await;
    sign_in(&b, &app).await;
    b.click("nav a[href='/admin/import']").await;
    b.choose("#i-format", "opencollective").await;
    b.set_file("#i-file", &file).await;
    b.click("form[action='/admin/import'] button[type=submit]")
        .await;
    let heading = b.text("#result").await;
    assert!(
        heading.starts_with("Dry run of transactions.csv"),
        "{heading}"
    );
    let rows = b.texts("table tbody tr").await;
    assert!(rows[0].contains("create"), "{rows:?}");
    let bad: Vec<&String> = rows.iter().filter(|r| r.contains("ambiguous")).collect();
    assert_eq!(bad.len(), 1, "{rows:?}");
    assert!(bad[0].contains("5\tbad"), "line 5: {bad:?}");
    assert_eq!(
        ledger(&app, &owner).await.len(),
        0,
        "a dry run writes nothing"
    );
    shoot(&b, "import-dry-run", false, false).await;

    // Confirming without ticking the box: refused, nothing written.
    b.click("form[action$='/commit'] button[type=submit]").await;
    assert!(b.text(".flash.error").await.contains("1 bad rows"));
    assert_eq!(ledger(&app, &owner).await.len(), 0);

    // Ticked: the others are imported.
    let commit = b
        .eval("document.querySelector(\"form[action$='/commit']\").getAttribute('action')")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    b.eval("document.querySelector('input[name=skip_bad]').checked = true")
        .await;
    b.click("form[action$='/commit'] button[type=submit]").await;
    let heading = b.text("#result").await;
    assert!(
        heading.starts_with("Imported transactions.csv"),
        "{heading}"
    );
    assert_eq!(ledger(&app, &owner).await.len(), 6, "all but Bob's gift");
    assert_eq!(minor(&app.funding().await["raised_total"]), 13500);
    shoot(&b, "import-done", false, true).await;
    assert_eq!(b.csp_violations(), Vec::<String>::new());

    // Confirming again (a second click, the back button): said, and
    // nothing more booked.
    let (again, csrf) = crate::console::form_client(&app, crate::helpers::OWNER_EMAIL).await;
    let res = again
        .post(app.url(&commit))
        .form(&[("csrf", csrf.as_str()), ("skip_bad", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let page = again.get(app.url("/admin/import")).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("is imported already"), "{html}");
    assert_eq!(ledger(&app, &owner).await.len(), 6);

    // A viewer cannot import.
    app.viewer_token("books@example.org").await;
    let (viewer, _) = crate::console::form_client(&app, "books@example.org").await;
    let res = viewer.get(app.url("/admin/import")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}
