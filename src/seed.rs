//! `patronage seed`: fills an empty database with a realistic campaign for
//! benchmarks (deterministic, so runs are comparable). Rows go in by batched
//! multi-row INSERTs and bypass the audit log; nothing else writes this way.

use std::collections::HashMap;

use chrono::{Duration, Utc};
use rand::{Rng, SeedableRng, rngs::StdRng};
use sqlx::QueryBuilder;

use crate::{
    db_run,
    domain::month::Month,
    domain::work::Effects,
    error::{Error, Result},
    store::{self, Db, begin_write, now},
};

#[derive(Debug, Clone, Copy)]
pub struct SeedPlan {
    pub patrons: usize,
    pub sponsors: usize,
    pub ledger_entries: usize,
    pub expenses: usize,
}

const BATCH: usize = 1000;

pub async fn seed(db: &Db, plan: SeedPlan) -> Result<()> {
    let existing = db_run!(db, |pool| {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM supporters")
            .fetch_one(pool)
            .await?
    });
    if existing > 0 {
        return Err(Error::Config("seed needs an empty database".into()));
    }
    let mut rng = StdRng::seed_from_u64(42);
    let at = now();
    let currency = "EUR";

    // Tiers: five patron tiers and three sponsor tiers.
    let patron_tiers: [(&str, i64, &str); 5] = [
        ("Supporter", 300, "month"),
        ("Patron", 1000, "month"),
        ("Champion", 5000, "month"),
        ("Annual", 10000, "year"),
        ("Benefactor", 50000, "month"),
    ];
    let sponsor_tiers: [(&str, i64); 3] = [
        ("Platinum", 500_000),
        ("Gold", 200_000),
        ("Silver", 100_000),
    ];
    db_run!(db, |pool| {
        let mut tx = begin_write!(pool);
        for (rank, (name, amount, interval)) in patron_tiers.iter().enumerate() {
            sqlx::query("INSERT INTO tiers (kind, name, description, amount_minor, currency, interval, rank, archived, created_at, updated_at) VALUES ('patron', $1, '', $2, $3, $4, $5, $6, $7, $7)")
                .bind(*name).bind(*amount).bind(currency).bind(*interval).bind(rank as i64).bind(false).bind(at)
                .execute(&mut *tx).await?;
        }
        for (rank, (name, amount)) in sponsor_tiers.iter().enumerate() {
            sqlx::query("INSERT INTO tiers (kind, name, description, amount_minor, currency, interval, rank, archived, created_at, updated_at) VALUES ('sponsor', $1, '', $2, $3, 'year', $4, $5, $6, $6)")
                .bind(*name).bind(*amount).bind(currency).bind(rank as i64).bind(false).bind(at)
                .execute(&mut *tx).await?;
        }
        sqlx::query("UPDATE campaign SET name = 'Benchmark Social', monthly_goal_minor = 2000000, currency = $1")
            .bind(currency).execute(&mut *tx).await?;
        tx.commit().await?;
    });

    // Patrons with one pledge each; about one in ten has ended.
    let mut pledge_amounts: Vec<(i64, i64)> = Vec::with_capacity(plan.patrons); // (tier_id, amount)
    for chunk_start in (0..plan.patrons).step_by(BATCH) {
        let n = BATCH.min(plan.patrons - chunk_start);
        let rows: Vec<(usize, i64, i64, &str, bool, i64)> = (0..n)
            .map(|i| {
                let idx = chunk_start + i;
                let tier = rng.random_range(0..patron_tiers.len());
                let (_, amount, interval) = patron_tiers[tier];
                let ended = rng.random_ratio(1, 10);
                let age_days = rng.random_range(1..730);
                pledge_amounts.push((tier as i64 + 1, amount));
                (idx, tier as i64 + 1, amount, interval, ended, age_days)
            })
            .collect();
        db_run!(db, |pool| {
            let mut tx = begin_write!(pool);
            let mut q = QueryBuilder::new(
                "INSERT INTO supporters (id, kind, email, email_normalized, display_name, visibility, created_at, updated_at) ",
            );
            q.push_values(&rows, |mut b, r| {
                let email = format!("patron{}@example.org", r.0);
                b.push_bind(r.0 as i64 + 1)
                    .push("'patron'")
                    .push_bind(email.clone())
                    .push_bind(email)
                    .push_bind(format!("Patron {}", r.0))
                    .push(if r.0 % 3 == 0 {
                        "'public'"
                    } else {
                        "'private'"
                    })
                    .push_bind(at)
                    .push_bind(at);
            });
            q.build().execute(&mut *tx).await?;
            let mut q = QueryBuilder::new(
                "INSERT INTO pledges (id, supporter_id, tier_id, amount_minor, currency, interval, status, source, started_at, ended_at, created_at, updated_at) ",
            );
            q.push_values(&rows, |mut b, r| {
                let started = at - Duration::days(r.5);
                let ended = r.4.then(|| started + Duration::days(r.5 / 2));
                b.push_bind(r.0 as i64 + 1)
                    .push_bind(r.0 as i64 + 1)
                    .push_bind(r.1)
                    .push_bind(r.2)
                    .push_bind(currency)
                    .push_bind(r.3)
                    .push_bind(if r.4 { "canceled" } else { "active" })
                    .push("'manual'")
                    .push_bind(started)
                    .push_bind(ended)
                    .push_bind(at)
                    .push_bind(at);
            });
            q.build().execute(&mut *tx).await?;
            tx.commit().await?;
        });
    }

    // Sponsors: most approved and paid for the coming year.
    let today = Utc::now().date_naive();
    for chunk_start in (0..plan.sponsors).step_by(BATCH) {
        let n = BATCH.min(plan.sponsors - chunk_start);
        let base = plan.patrons as i64;
        db_run!(db, |pool| {
            let mut q = QueryBuilder::new(
                "INSERT INTO supporters (id, kind, email, email_normalized, display_name, visibility, website_url, tier_id, sponsor_status, paid_through, created_at, updated_at) ",
            );
            q.push_values(chunk_start..chunk_start + n, |mut b, i| {
                let email = format!("sponsor{i}@example.com");
                let tier = patron_tiers.len() as i64 + 1 + (i % sponsor_tiers.len()) as i64;
                b.push_bind(base + i as i64 + 1)
                    .push("'sponsor'")
                    .push_bind(email.clone())
                    .push_bind(email)
                    .push_bind(format!("Sponsor Company {i}"))
                    .push("'public'")
                    .push_bind(format!("https://sponsor{i}.example.com/"))
                    .push_bind(tier)
                    .push(if i % 10 == 0 {
                        "'pending'"
                    } else {
                        "'approved'"
                    })
                    .push_bind(today + Duration::days(365))
                    .push_bind(at)
                    .push_bind(at);
            });
            q.build().execute(pool).await?;
        });
    }

    // Ledger: payments on pledges over the past two years, one fee per
    // four payments, summed into ledger_monthly as the store would.
    let mut monthly: HashMap<(String, &str, i64), (i64, i64)> = HashMap::new();
    let mut id = 0i64;
    while (id as usize) < plan.ledger_entries {
        let n = BATCH.min(plan.ledger_entries - id as usize);
        let mut rows = Vec::with_capacity(n);
        for _ in 0..n {
            id += 1;
            let pledge = rng.random_range(0..pledge_amounts.len().max(1));
            let (tier, amount) = pledge_amounts.get(pledge).copied().unwrap_or((1, 300));
            let is_fee = id % 5 == 0;
            let (kind, value) = if is_fee {
                ("fee", -(amount / 30).max(1))
            } else {
                ("payment", amount)
            };
            let occurred = at - Duration::minutes(rng.random_range(0..60 * 24 * 730));
            let e = monthly
                .entry((Month::of(occurred).to_string(), kind, tier))
                .or_default();
            e.0 += value;
            e.1 += 1;
            rows.push((id, kind, value, pledge as i64 + 1, tier, occurred));
        }
        db_run!(db, |pool| {
            let mut q = QueryBuilder::new(
                "INSERT INTO ledger_entries (id, kind, amount_minor, currency, pledge_id, supporter_id, tier_id, source, external_ref, occurred_at, recorded_at, note) ",
            );
            q.push_values(&rows, |mut b, r| {
                b.push_bind(r.0)
                    .push_bind(r.1)
                    .push_bind(r.2)
                    .push_bind(currency)
                    .push_bind(r.3)
                    .push_bind(r.3)
                    .push_bind(r.4)
                    .push("'manual'")
                    .push_bind(format!("seed-{}", r.0))
                    .push_bind(r.5)
                    .push_bind(at)
                    .push("''");
            });
            q.build().execute(pool).await?;
        });
    }
    let monthly: Vec<_> = monthly.into_iter().collect();
    for chunk in monthly.chunks(BATCH) {
        db_run!(db, |pool| {
            let mut q = QueryBuilder::new(
                "INSERT INTO ledger_monthly (month, currency, kind, tier_key, shard, amount_minor, entries) ",
            );
            q.push_values(chunk, |mut b, ((month, kind, tier), (sum, count))| {
                b.push_bind(month.clone())
                    .push_bind(currency)
                    .push_bind(*kind)
                    .push_bind(*tier)
                    .push("0")
                    .push_bind(*sum)
                    .push_bind(*count);
            });
            q.build().execute(pool).await?;
        });
    }

    // Costs: expenses over the past two years in a dozen categories, and
    // the recurring costs a small instance has.
    let categories = [
        "Hosting",
        "Storage",
        "Email",
        "Domain",
        "Backups",
        "CDN",
        "Moderation",
        "Legal",
        "Accounting",
        "Software",
        "Hardware",
        "Events",
    ];
    let mut id = 0i64;
    while (id as usize) < plan.expenses {
        let n = BATCH.min(plan.expenses - id as usize);
        let mut rows = Vec::with_capacity(n);
        for _ in 0..n {
            id += 1;
            let spent = at - Duration::days(rng.random_range(0..730));
            let category = categories[rng.random_range(0..categories.len())];
            let vendor = format!("{category} vendor {}", rng.random_range(1..4));
            rows.push((
                id,
                spent.date_naive(),
                Month::of(spent).to_string(),
                vendor,
                category,
                rng.random_range(500..50_000i64),
            ));
        }
        db_run!(db, |pool| {
            let mut q = QueryBuilder::new(
                "INSERT INTO expenses (id, spent_on, month, vendor, category, amount_minor, currency, note, recorded_at) ",
            );
            q.push_values(&rows, |mut b, r| {
                b.push_bind(r.0)
                    .push_bind(r.1)
                    .push_bind(r.2.clone())
                    .push_bind(r.3.clone())
                    .push_bind(r.4)
                    .push_bind(r.5)
                    .push_bind(currency)
                    .push("''")
                    .push_bind(at);
            });
            q.build().execute(pool).await?;
        });
    }
    db_run!(db, |pool| {
        for (vendor, category, amount, interval) in [
            ("Hetzner", "Hosting", 25_000i64, "month"),
            ("Wasabi", "Storage", 6_000, "month"),
            ("Mailgun", "Email", 3_500, "month"),
            ("Gandi", "Domain", 2_000, "year"),
        ] {
            sqlx::query("INSERT INTO recurring_costs (vendor, category, amount_minor, currency, interval, starts_on, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)")
                .bind(vendor).bind(category).bind(amount).bind(currency).bind(interval)
                .bind((at - Duration::days(730)).date_naive()).bind(at)
                .execute(pool).await?;
        }
    });

    // Identity sequences must continue after the explicit ids.
    if let Db::Postgres(pool) = db {
        for table in [
            "tiers",
            "supporters",
            "pledges",
            "ledger_entries",
            "expenses",
        ] {
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT COALESCE(MAX(id), 1) FROM {table}))"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await?;
        }
        // Each of the million ledger entries updated its supporter's
        // summary (a new row version, with new entries in every index, the
        // trigram indexes included). Autovacuum would clean up in time, but
        // may be off or behind: left as is, a search read nine dead
        // entries per live one (28 ms against 2.5 ms after this).
        sqlx::query("VACUUM ANALYZE").execute(pool).await?;
    }
    db_run!(db, |pool| {
        sqlx::query("UPDATE data_version_shards SET version = version + 1 WHERE shard = 0")
            .execute(pool)
            .await?;
    });
    // Replicas running on this database show the new data at once.
    if let Db::Postgres(pool) = db {
        store::notify::send(pool, "seed", Effects::PUBLIC).await?;
    }
    Ok(())
}

/// Bytes the database occupies (SQLite file with WAL, or the PostgreSQL
/// database).
pub async fn database_size(db: &Db) -> Result<i64> {
    let size = match db {
        Db::Sqlite(pool, _) => {
            sqlx::query_scalar::<_, i64>(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
            )
            .fetch_one(pool)
            .await?
        }
        Db::Postgres(pool) => {
            sqlx::query_scalar::<_, i64>("SELECT pg_database_size(current_database())")
                .fetch_one(pool)
                .await?
        }
    };
    Ok(size)
}
