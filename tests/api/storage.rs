//! Storage rules that hold on both databases, checked below the API.

use patronage::{db_run, store::Db};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, minor};
use crate::on_both_backends;

on_both_backends!(
    the_database_refuses_to_edit_or_delete_ledger_entries,
    monthly_aggregates_equal_the_ledger_sums,
);

/// sqlx 0.9.0 leaves Nagle's algorithm on, which held large statements
/// 40 ms on loopback (store/nodelay.rs): every pooled PostgreSQL connection
/// has TCP_NODELAY.
#[tokio::test]
async fn postgres_connections_send_without_delay() {
    let Some(admin) = crate::helpers::postgres_url() else {
        eprintln!("skipped: set PATRONAGE_TEST_DATABASE_URL to run on PostgreSQL");
        return;
    };
    let db = Db::connect(&admin, 4, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    let Db::Postgres(pool) = &db else {
        unreachable!("a postgres: url")
    };
    let server_port = url::Url::parse(&admin).unwrap().port().unwrap_or(5432);
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut conn = pool.acquire().await.unwrap();
        let port: i32 = sqlx::query_scalar("SELECT inet_client_port()")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let port = u16::try_from(port).unwrap();
        assert_eq!(
            patronage::store::nodelay::is_set(port, server_port),
            Some(true),
            "connection from port {port}"
        );
        held.push(conn);
    }
}

#[test]
fn both_migration_folders_hold_the_same_versions() {
    let names = |dir: &str| {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    let sqlite = names("migrations/sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, names("migrations/postgres"));
}

async fn the_database_refuses_to_edit_or_delete_ledger_entries(app: TestApp) {
    let owner = app.owner_token().await;
    let today = chrono::Utc::now().date_naive();
    app.post_ok(
        "/api/v1/admin/contributions",
        &owner,
        json!({"amount_minor": 1000, "date": today}),
        StatusCode::CREATED,
    )
    .await;
    let db: &Db = &app.db;
    let update = db_run!(db, |pool| sqlx::query(
        "UPDATE ledger_entries SET amount_minor = 1"
    )
    .execute(pool)
    .await
    .map(|_| ()));
    assert!(update.is_err(), "an UPDATE on the ledger must fail");
    let delete = db_run!(db, |pool| sqlx::query("DELETE FROM ledger_entries")
        .execute(pool)
        .await
        .map(|_| ()));
    assert!(delete.is_err(), "a DELETE on the ledger must fail");
    let audit_delete = db_run!(db, |pool| sqlx::query("DELETE FROM audit_log")
        .execute(pool)
        .await
        .map(|_| ()));
    assert!(audit_delete.is_err(), "the audit log is append-only too");
    assert_eq!(minor(&app.funding().await["raised_total"]), 1000);
}

async fn monthly_aggregates_equal_the_ledger_sums(app: TestApp) {
    let owner = app.owner_token().await;
    let dates = [
        "2025-11-30",
        "2025-12-01",
        "2025-12-31",
        "2026-01-01",
        "2026-01-15",
    ];
    let mut ids = Vec::new();
    for (i, d) in dates.iter().cycle().take(15).enumerate() {
        let e = app
            .post_ok(
                "/api/v1/admin/contributions",
                &owner,
                json!({"amount_minor": 100 + i as i64, "date": d}),
                StatusCode::CREATED,
            )
            .await;
        ids.push(e["id"].as_i64().unwrap());
    }
    for id in ids.iter().step_by(4) {
        app.post_ok(
            &format!("/api/v1/admin/contributions/{id}/void"),
            &owner,
            json!({"reason": "test"}),
            StatusCode::CREATED,
        )
        .await;
    }
    let db: &Db = &app.db;
    let (ledger, monthly): (i64, i64) = db_run!(db, |pool| {
        let ledger: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM ledger_entries",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        let monthly: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM ledger_monthly",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        (ledger, monthly)
    });
    assert_eq!(ledger, monthly);
    assert_eq!(minor(&app.funding().await["raised_total"]), ledger);
    let report = app
        .get_json(
            "/api/v1/admin/reports/monthly?from=2025-11&to=2026-01",
            Some(&owner),
        )
        .await;
    let summed: i64 = report["months"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| minor(&m["gross"]))
        .sum();
    assert_eq!(summed, ledger);
}
