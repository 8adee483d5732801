//! Every admin report over 24 months, uncached: each is computed from the
//! database the way a request computes it (the service function itself,
//! no report cache, a fresh people count for the transparency report),
//! `RUNS` times, printing min, p50 and max. Run by `benches/reports.sh` on a
//! seeded database, or:
//!
//!   cargo run --release --example reports_bench -- sqlite:///tmp/seeded.db
//!   cargo run --release --example reports_bench -- postgres://postgres@127.0.0.1/seeded

use std::time::{Duration, Instant};

use chrono::Utc;
use patronage::{
    domain::{month::Month, transparency::Period},
    reports,
    service::{self, transparency::PeopleMemo},
    store::Db,
};

const RUNS: usize = 15;

/// Times `f` RUNS times (after one warm-up run) and prints a row.
async fn time<F, Fut, T>(name: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = patronage::error::Result<T>>,
{
    f().await.expect("report");
    let mut took: Vec<Duration> = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        f().await.expect("report");
        took.push(started.elapsed());
    }
    took.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "| {name} | {:.1} | {:.1} | {:.1} |",
        ms(took[0]),
        ms(took[RUNS / 2]),
        ms(took[RUNS - 1])
    );
}

#[tokio::main]
async fn main() {
    let url = std::env::args()
        .nth(1)
        .expect("usage: reports_bench <database url of a seeded database>");
    let db = Db::connect(&url, 4, Duration::from_secs(30))
        .await
        .expect("database");
    let today = Utc::now().date_naive();
    let to = Month::of(Utc::now());
    let from = to.back(23);
    println!("24 months, {from} to {to}; {RUNS} runs each, uncached (ms)\n");
    println!("| report | min | p50 | max |\n|---|---|---|---|");
    time("monthly report", || reports::monthly(&db, from, to)).await;
    time("costs report", || {
        service::costs::report(&db, from, to, today, 6)
    })
    .await;
    time("analytics: movements", || {
        service::analytics::movements(&db, from, to)
    })
    .await;
    time("analytics: cohorts", || {
        service::analytics::cohorts(&db, from, to)
    })
    .await;
    time("analytics: concentration", || {
        service::analytics::concentration(&db, Utc::now(), from, to)
    })
    .await;
    time("analytics: forecast", || {
        service::analytics::forecast(&db, Utc::now())
    })
    .await;
    for period in [Period::Month, Period::Quarter] {
        let name = format!("transparency ({period:?})").to_lowercase();
        time(&name, || async {
            // A fresh memo: every people count is read again.
            let memo = PeopleMemo::default();
            let inputs = service::transparency::Inputs {
                today,
                privacy_threshold: 3,
                runway_target_months: 6,
                monthly_recurring: Some(1),
                memo: &memo,
            };
            service::transparency::report(&db, period, &inputs).await
        })
        .await;
    }
}
