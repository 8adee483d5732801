//! The ledger. Rows are only ever inserted (the database refuses UPDATE and
//! DELETE), each with a `(source, external_ref)` that is unique, so the same
//! external payment can never be recorded twice. Every insert also adds to
//! `ledger_monthly` in the same transaction (at its commit, one statement
//! for all its entries), which keeps totals and reports off the ledger
//! itself.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Constraint, Db, Tx, audit::Actor, now, on_constraint};
use crate::{
    db_run,
    domain::{
        ledger::{EntryKind, ManualContribution},
        money::Currency,
        month::Month,
        pledge::Source,
    },
    error::{Error, Result},
    tx_run,
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EntryRow {
    pub id: i64,
    pub kind: EntryKind,
    pub amount_minor: i64,
    pub currency: Currency,
    pub pledge_id: Option<i64>,
    pub supporter_id: Option<i64>,
    pub tier_id: Option<i64>,
    pub source: Source,
    pub external_ref: String,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub note: String,
    pub reverses_entry_id: Option<i64>,
    pub created_by: Option<String>,
    /// The entry that reverses this one, if any.
    pub reversed_by: Option<i64>,
}

macro_rules! select {
    () => {
        "SELECT e.id, e.kind, e.amount_minor, e.currency, e.pledge_id, e.supporter_id, e.tier_id, e.source, \
         e.external_ref, e.occurred_at, e.recorded_at, e.note, e.reverses_entry_id, e.created_by, \
         r.id AS reversed_by FROM ledger_entries e LEFT JOIN ledger_entries r ON r.reverses_entry_id = e.id "
    };
}

/// A row about to be appended.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub kind: EntryKind,
    pub amount_minor: i64,
    pub currency: Currency,
    pub pledge_id: Option<i64>,
    pub supporter_id: Option<i64>,
    pub tier_id: Option<i64>,
    pub source: Source,
    pub external_ref: String,
    pub occurred_at: DateTime<Utc>,
    pub note: String,
    pub reverses_entry_id: Option<i64>,
    pub created_by: Option<String>,
}

/// Inserts entries, a few hundred to a statement, and adds them to their
/// months' aggregates, in the caller's transaction; the id of each. With
/// `once`, an entry whose `(source, external_ref)` is booked already (or
/// comes twice in `entries`) is skipped (`None`): how Stripe's money is
/// booked, so a repeat never aborts the transaction it is part of. Without
/// it, such an entry fails with the database's unique violation.
pub(crate) async fn insert(
    tx: &mut Tx,
    entries: &[NewEntry],
    once: bool,
) -> Result<Vec<Option<i64>>> {
    let recorded = now();
    let mut booked: HashMap<(String, String), i64> = HashMap::new();
    for chunk in entries.chunks(super::ROWS_PER_STATEMENT) {
        let rows: Vec<(i64, String, String)> = tx_run!(tx, |conn| {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO ledger_entries (kind, amount_minor, currency, pledge_id, supporter_id, tier_id, source, \
                 external_ref, occurred_at, recorded_at, note, reverses_entry_id, created_by) ",
            );
            q.push_values(chunk, |mut row, e| {
                row.push_bind(e.kind.as_str())
                    .push_bind(e.amount_minor)
                    .push_bind(e.currency.code())
                    .push_bind(e.pledge_id)
                    .push_bind(e.supporter_id)
                    .push_bind(e.tier_id)
                    .push_bind(e.source.as_str())
                    .push_bind(&e.external_ref)
                    .push_bind(e.occurred_at)
                    .push_bind(recorded)
                    .push_bind(&e.note)
                    .push_bind(e.reverses_entry_id)
                    .push_bind(&e.created_by);
            });
            if once {
                q.push(" ON CONFLICT (source, external_ref) DO NOTHING");
            }
            q.push(" RETURNING id, source, external_ref");
            q.build_query_as().fetch_all(&mut *conn).await?
        });
        booked.extend(
            rows.into_iter()
                .map(|(id, source, reference)| ((source, reference), id)),
        );
    }
    let mut ids = Vec::with_capacity(entries.len());
    for e in entries {
        let id = booked.remove(&(e.source.as_str().to_owned(), e.external_ref.clone()));
        if id.is_some() {
            tx.add_to_month(
                MonthKey {
                    month: Month::of(e.occurred_at).to_string(),
                    currency: e.currency.code(),
                    kind: e.kind.as_str(),
                    tier_key: e.tier_id.unwrap_or(0),
                },
                e.amount_minor,
            );
        }
        ids.push(id);
    }
    Ok(ids)
}

/// One row of `ledger_monthly`, less its shard.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct MonthKey {
    pub month: String,
    pub currency: &'static str,
    pub kind: &'static str,
    /// The tier, or 0 for none.
    pub tier_key: i64,
}

/// Adds `(amount, entries)` to each month's aggregate, in one of its
/// shards (a random one, so concurrent commits seldom wait for each
/// other's row), a few hundred rows to a statement.
pub(crate) async fn add_to_months(
    tx: &mut Tx,
    months: &std::collections::BTreeMap<MonthKey, (i64, i64)>,
) -> Result<()> {
    let shard = super::shard();
    let rows: Vec<_> = months.iter().collect();
    for chunk in rows.chunks(super::ROWS_PER_STATEMENT) {
        tx_run!(tx, |conn| {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO ledger_monthly (month, currency, kind, tier_key, shard, amount_minor, entries) ",
            );
            q.push_values(chunk, |mut row, (key, (amount, entries))| {
                row.push_bind(&key.month)
                    .push_bind(key.currency)
                    .push_bind(key.kind)
                    .push_bind(key.tier_key)
                    .push_bind(shard)
                    .push_bind(*amount)
                    .push_bind(*entries);
            });
            q.push(
                " ON CONFLICT (month, currency, kind, tier_key, shard) DO UPDATE SET \
                 amount_minor = ledger_monthly.amount_minor + excluded.amount_minor, \
                 entries = ledger_monthly.entries + excluded.entries",
            );
            q.build().execute(&mut *conn).await?;
        });
    }
    Ok(())
}

fn duplicate_reference(e: Error) -> Error {
    let Error::Database(db) = &e else {
        return e;
    };
    match on_constraint(db) {
        Some(Constraint::LedgerRef) => Error::conflict(
            "external_reference",
            "an entry with this external reference is already recorded",
        ),
        Some(Constraint::Reversal) => Error::conflict("entry", "this entry is already voided"),
        _ => e,
    }
}

/// Records a contribution that arrived outside Stripe. With a pledge, the
/// entry counts toward that pledge's tier in reports.
pub async fn record_manual(
    tx: &mut Tx,
    actor: &Actor,
    c: &ManualContribution,
    pledge_id: Option<i64>,
) -> Result<i64> {
    let mut supporter_id = c.supporter_id;
    let mut tier_id = None;
    if let Some(pid) = pledge_id {
        let pledge = tx_run!(tx, |conn| {
            sqlx::query_as::<_, (i64, Option<i64>)>(
                "SELECT supporter_id, tier_id FROM pledges WHERE id = $1",
            )
            .bind(pid)
            .fetch_optional(&mut *conn)
            .await?
        });
        let Some((owner, tier)) = pledge else {
            return Err(Error::field("pledge_id", "no such pledge"));
        };
        if supporter_id.is_some_and(|s| s != owner) {
            return Err(Error::field("pledge_id", "belongs to another supporter"));
        }
        supporter_id = Some(owner);
        tier_id = tier;
    } else if let Some(sid) = supporter_id {
        let exists = tx_run!(tx, |conn| {
            sqlx::query_scalar::<_, i64>("SELECT id FROM supporters WHERE id = $1")
                .bind(sid)
                .fetch_optional(&mut *conn)
                .await?
        });
        if exists.is_none() {
            return Err(Error::field("supporter_id", "no such supporter"));
        }
    }
    let entry = NewEntry {
        kind: EntryKind::Manual,
        amount_minor: c.amount_minor,
        currency: c.currency,
        pledge_id,
        supporter_id,
        tier_id,
        source: Source::Manual,
        external_ref: c.external_ref.clone(),
        occurred_at: c.occurred_at,
        note: c.note.clone(),
        reverses_entry_id: None,
        created_by: Some(actor.label.clone()),
    };
    let id = tx.append(&entry).await.map_err(duplicate_reference)?;
    tx.audit(
        actor,
        "contribution.record",
        "ledger_entry",
        id,
        json!({
            "amount_minor": c.amount_minor, "currency": c.currency.code(),
            "occurred_at": c.occurred_at, "external_reference": c.external_ref
        }),
    )
    .await?;
    tx.bump_version();
    Ok(id)
}

impl EntryRow {
    /// Only a manual contribution that is not voided (nor a voiding) can be
    /// voided; Stripe's money is refunded instead.
    pub fn check_voidable(&self) -> Result<()> {
        if self.source != Source::Manual || self.kind != EntryKind::Manual {
            return Err(Error::conflict(
                "entry",
                "only manual contributions can be voided; Stripe payments are refunded",
            ));
        }
        if self.reverses_entry_id.is_some() {
            return Err(Error::conflict(
                "entry",
                "a reversing entry cannot be voided",
            ));
        }
        if self.reversed_by.is_some() {
            return Err(Error::conflict("entry", "this entry is already voided"));
        }
        Ok(())
    }
}

/// Voids a manual entry by appending its exact opposite, dated like the
/// original so the month it was booked in nets to zero. The original stays.
/// Returns the reversing entry's id.
pub async fn void_manual(
    tx: &mut Tx,
    actor: &Actor,
    original: &EntryRow,
    reason: &str,
) -> Result<i64> {
    let reversal = NewEntry {
        kind: original.kind,
        amount_minor: -original.amount_minor,
        currency: original.currency,
        pledge_id: original.pledge_id,
        supporter_id: original.supporter_id,
        tier_id: original.tier_id,
        source: Source::Manual,
        external_ref: format!("void:{}", original.id),
        occurred_at: original.occurred_at,
        note: reason.to_owned(),
        reverses_entry_id: Some(original.id),
        created_by: Some(actor.label.clone()),
    };
    let new_id = tx.append(&reversal).await.map_err(duplicate_reference)?;
    tx.audit(
        actor,
        "contribution.void",
        "ledger_entry",
        original.id,
        json!({
            "reversing_entry_id": new_id, "amount_minor": original.amount_minor, "reason": reason
        }),
    )
    .await?;
    tx.bump_version();
    Ok(new_id)
}

pub async fn get_by_reference(db: &Db, source: Source, external_ref: &str) -> Result<EntryRow> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, EntryRow>(concat!(
            select!(),
            "WHERE e.source = $1 AND e.external_ref = $2"
        ))
        .bind(source.as_str())
        .bind(external_ref)
        .fetch_optional(pool)
        .await?
    });
    row.ok_or(Error::NotFound("ledger entry"))
}

pub async fn get(db: &Db, id: i64) -> Result<EntryRow> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, EntryRow>(concat!(select!(), "WHERE e.id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?
    });
    row.ok_or(Error::NotFound("ledger entry"))
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub kind: Option<EntryKind>,
    pub source: Option<Source>,
    pub supporter_id: Option<i64>,
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// Newest first, `limit` rows with ids below `before`.
pub async fn list(db: &Db, f: &Filter, before: Option<i64>, limit: i64) -> Result<Vec<EntryRow>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, EntryRow>(concat!(
            select!(),
            "WHERE e.id < $1 AND ($2 IS NULL OR e.kind = $2) AND ($3 IS NULL OR e.supporter_id = $3) \
             AND ($4 IS NULL OR e.occurred_at >= $4) AND ($5 IS NULL OR e.occurred_at < $5) \
             AND ($7 IS NULL OR e.source = $7) ORDER BY e.id DESC LIMIT $6"
        ))
        .bind(before.unwrap_or(i64::MAX))
        .bind(f.kind.map(|k| k.as_str()))
        .bind(f.supporter_id)
        .bind(f.from)
        .bind(f.until)
        .bind(limit)
        .bind(f.source.map(|s| s.as_str()))
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// Count and signed sum of the entries `f` selects, per kind and currency:
/// the totals row under the ledger, equal to the report for the same range.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KindTotal {
    pub kind: EntryKind,
    pub currency: Currency,
    pub entries: i64,
    pub amount_minor: i64,
}

pub async fn totals(db: &Db, f: &Filter) -> Result<Vec<KindTotal>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, KindTotal>(
            "SELECT e.kind, e.currency, CAST(COUNT(*) AS BIGINT) AS entries, \
               CAST(COALESCE(SUM(e.amount_minor), 0) AS BIGINT) AS amount_minor FROM ledger_entries e \
             WHERE ($1 IS NULL OR e.kind = $1) AND ($2 IS NULL OR e.supporter_id = $2) \
             AND ($3 IS NULL OR e.occurred_at >= $3) AND ($4 IS NULL OR e.occurred_at < $4) \
             AND ($5 IS NULL OR e.source = $5) GROUP BY e.kind, e.currency ORDER BY e.kind",
        )
        .bind(f.kind.map(|k| k.as_str()))
        .bind(f.supporter_id)
        .bind(f.from)
        .bind(f.until)
        .bind(f.source.map(|s| s.as_str()))
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}
