//! Importing another platform's history: the one use case behind
//! `patronage import` and the console's upload page.
//!
//! - A dry run books every row in one transaction that is rolled back, so
//!   it says exactly what a commit would create, update or skip, line by
//!   line, and writes nothing.
//! - A commit reads the file twice, row by row: first to find bad rows
//!   (refused unless the owner chose to skip them), then to book the good
//!   ones in batches, each batch its own transaction.
//! - Every row is keyed by the platform's id (`source`, `external_ref`), so
//!   importing a file again, or again after a crash half-way, books
//!   nothing twice: the ledger's unique key skips what is there, pledges
//!   are found by their key, patrons by their email.
//! - Nothing here talks to Stripe: imported pledges carry their platform
//!   as source, count in totals, and are never charged, renewed or
//!   reconciled (those only ever read `source = 'stripe'`).

use std::{collections::BTreeMap, io::Read};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use crate::{
    context::{Context, Effects},
    domain::{
        imports::{Format, Mapping, Movement, Parsed, PledgePlan, Row, Rows, status_at},
        ledger::EntryKind,
        money::Money,
        pledge::{PledgeStatus, Source},
        supporter::Email,
    },
    error::Result,
    store::{
        self, Db, Tx,
        audit::Actor,
        imports::{PledgeState, patron},
        ledger::NewEntry,
    },
};

/// Rows booked per transaction when committing.
pub const BATCH: usize = 500;
/// Lines kept in a summary for display (all of them go to `on_line`).
pub const KEPT_LINES: usize = 1000;

/// What to import: the format, its columns, and the file's name (for the
/// audit log and the ledger's notes).
#[derive(Debug, Clone)]
pub struct Plan {
    pub format: Format,
    pub mapping: Mapping,
    pub file_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    DryRun,
    /// Books the good rows; with bad rows, only when `skip_bad`.
    Commit {
        skip_bad: bool,
    },
}

/// What a line does (or would do).
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub line: u64,
    /// create, update, skip or bad.
    pub action: &'static str,
    pub detail: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub file_name: String,
    pub format: String,
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    pub bad: u64,
    pub entries_created: u64,
    pub pledges_created: u64,
    pub pledges_updated: u64,
    pub supporters_created: u64,
    /// Money booked (or that would be), per currency, in minor units.
    pub booked: BTreeMap<String, i64>,
    /// True when the rows were written.
    pub committed: bool,
    /// The first `KEPT_LINES` lines.
    pub lines: Vec<Line>,
}

impl Summary {
    fn record(&mut self, line: Line, on_line: &mut (dyn FnMut(&Line) + Send)) {
        self.rows += 1;
        match line.action {
            "create" => self.created += 1,
            "update" => self.updated += 1,
            "bad" => self.bad += 1,
            _ => self.skipped += 1,
        }
        on_line(&line);
        if self.lines.len() < KEPT_LINES {
            self.lines.push(line);
        }
    }

    /// Money booked, as people read it ("€1,234.50").
    pub fn booked_display(&self) -> Vec<String> {
        self.booked
            .iter()
            .filter_map(|(code, minor)| {
                crate::domain::money::Currency::parse(code).map(|c| Money::new(*minor, c).display())
            })
            .collect()
    }
}

/// Runs an import. `open` gives the file from its start, each time it is
/// called (a commit reads it twice); each line's outcome goes to
/// `on_line` as it is known. A file whose header lacks a needed column is
/// refused as a whole (a validation error naming the column).
pub async fn run<O, R>(
    db: &Db,
    actor: &Actor,
    plan: &Plan,
    open: O,
    mode: Mode,
    on_line: &mut (dyn FnMut(&Line) + Send),
) -> Result<Summary>
where
    O: Fn() -> Result<R>,
    R: Read + Send,
{
    let now = store::now();
    let source = plan.format.source();
    let mut summary = Summary {
        file_name: plan.file_name.clone(),
        format: plan.format.as_str().to_owned(),
        ..Summary::default()
    };
    // A commit reads the file once first, parsing only, to find bad rows
    // before writing any.
    let commit = match mode {
        Mode::DryRun => false,
        Mode::Commit { skip_bad } => {
            let rows = Rows::new(open()?, plan.format, plan.mapping.clone(), now)?;
            let bad: Vec<Line> = rows
                .filter_map(|(line, parsed)| {
                    parsed.err().map(|why| Line {
                        line,
                        action: "bad",
                        detail: why,
                    })
                })
                .collect();
            if !bad.is_empty() && !skip_bad {
                for l in bad {
                    summary.record(l, on_line);
                }
                return Ok(summary);
            }
            true
        }
    };
    // A dry run is one transaction, never committed: a row sees what the
    // rows before it would have made. A commit commits every BATCH rows.
    let rows = Rows::new(open()?, plan.format, plan.mapping.clone(), now)?;
    let mut tx = db.begin_write().await?;
    let mut in_batch = 0;
    for (line, parsed) in rows {
        let l = book(
            &mut tx,
            actor,
            plan,
            source,
            line,
            parsed,
            now,
            &mut summary,
        )
        .await?;
        summary.record(l, on_line);
        in_batch += 1;
        if commit && in_batch == BATCH {
            tx.bump_version();
            tx.commit().await?;
            tx = db.begin_write().await?;
            in_batch = 0;
        }
    }
    if !commit {
        drop(tx);
        return Ok(summary);
    }
    tx.bump_version();
    tx.commit().await?;
    summary.committed = true;
    store::audit::record(
        db,
        actor,
        "import.commit",
        "import",
        0,
        json!({
            "file_name": plan.file_name, "format": plan.format.as_str(), "rows": summary.rows,
            "created": summary.created, "updated": summary.updated, "skipped": summary.skipped,
            "bad_skipped": summary.bad, "entries_created": summary.entries_created,
            "pledges_created": summary.pledges_created, "pledges_updated": summary.pledges_updated,
            "supporters_created": summary.supporters_created, "booked": summary.booked,
        }),
    )
    .await?;
    Ok(summary)
}

/// `run`, for a running service: after a commit, this replica's public
/// views are rebuilt at once and the others are told.
pub async fn import<O, R>(
    ctx: &Context,
    actor: &Actor,
    plan: &Plan,
    open: O,
    mode: Mode,
    on_line: &mut (dyn FnMut(&Line) + Send),
) -> Result<Summary>
where
    O: Fn() -> Result<R>,
    R: Read + Send,
{
    let summary = run(&ctx.db, actor, plan, open, mode, on_line).await?;
    if summary.committed {
        ctx.after_commit_now(Effects::PUBLIC).await;
    }
    Ok(summary)
}

/// Books one line in `tx` and says what it did.
#[allow(clippy::too_many_arguments)]
async fn book(
    tx: &mut Tx,
    actor: &Actor,
    plan: &Plan,
    source: Source,
    line: u64,
    parsed: std::result::Result<Parsed, String>,
    now: DateTime<Utc>,
    summary: &mut Summary,
) -> Result<Line> {
    let row = match parsed {
        Err(why) => {
            return Ok(Line {
                line,
                action: "bad",
                detail: why,
            });
        }
        Ok(Parsed::Skip(why)) => {
            return Ok(Line {
                line,
                action: "skip",
                detail: why,
            });
        }
        Ok(Parsed::Row(row)) => row,
    };
    let mut made = Vec::new();
    let mut changed = Vec::new();

    // The person: by email, else by the platform's handle or id under an
    // address that can never receive mail (RFC 2606 `.invalid`).
    let supporter_id = match identity(source, &row) {
        Some(email) => {
            let (id, created) =
                patron(tx, &email.address, &email.normalized, &row.person.name).await?;
            if created {
                summary.supporters_created += 1;
                made.push(format!("supporter {} (#{id})", email.address));
            }
            Some(id)
        }
        None => None,
    };

    let mut pledge_ref = (None, None);
    if let (Some(p), Some(sid)) = (&row.pledge, supporter_id)
        && row.movement != Movement::Refund
    {
        let (id, tier, what) = pledge(tx, source, p, &row, sid, now).await?;
        pledge_ref = (Some(id), tier);
        match what {
            Change::Created(d) => {
                summary.pledges_created += 1;
                made.push(d);
            }
            Change::Updated(d) => {
                summary.pledges_updated += 1;
                changed.push(d);
            }
            Change::Unchanged => {}
        }
    }

    if row.movement != Movement::Pledge {
        let refund = row.movement == Movement::Refund;
        let amount = if refund {
            -row.money.amount_minor
        } else {
            row.money.amount_minor
        };
        let entry = NewEntry {
            kind: if refund {
                EntryKind::Refund
            } else {
                EntryKind::Payment
            },
            amount_minor: amount,
            currency: row.money.currency,
            pledge_id: pledge_ref.0,
            supporter_id,
            tier_id: pledge_ref.1,
            source,
            external_ref: row.external_id.clone(),
            occurred_at: row.at,
            note: format!("imported from {} (line {line})", plan.file_name)
                .chars()
                .take(1000)
                .collect(),
            reverses_entry_id: None,
            created_by: Some(actor.label.clone()),
        };
        let what = match (refund, row.pledge.is_some()) {
            (true, _) => "refund",
            (false, true) => "recurring payment",
            (false, false) => "one-time gift",
        };
        if tx.append_once(&entry).await?.is_some() {
            summary.entries_created += 1;
            *summary
                .booked
                .entry(row.money.currency.code().to_owned())
                .or_default() += amount;
            made.insert(
                0,
                format!(
                    "{what} {} on {} from {} ({source} {})",
                    Money::new(amount, row.money.currency).display(),
                    row.at.format("%Y-%m-%d"),
                    row.person.name,
                    row.external_id
                ),
            );
        } else if made.is_empty() && changed.is_empty() {
            return Ok(Line {
                line,
                action: "skip",
                detail: format!("already imported ({source} {})", row.external_id),
            });
        }
    }
    let (action, detail) = if !made.is_empty() {
        made.extend(changed);
        ("create", made.join("; "))
    } else if !changed.is_empty() {
        ("update", changed.join("; "))
    } else {
        (
            "skip",
            format!("already imported, unchanged ({source} {})", row.external_id),
        )
    };
    Ok(Line {
        line,
        action,
        detail,
    })
}

/// The address a row's person is found or created under.
fn identity(source: Source, row: &Row) -> Option<Email> {
    if let Some(e) = &row.person.email {
        return Some(e.clone());
    }
    let stand_in = row.person.handle.clone().or_else(|| {
        // A member list's line is one person: its id names them.
        (row.movement == Movement::Pledge).then(|| row.external_id.clone())
    })?;
    let local: String = stand_in
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(60)
        .collect();
    let local = local.trim_matches(['-', '.']).replace("..", ".");
    if local.is_empty() {
        return None;
    }
    let platform = source.as_str().replace('_', "-");
    Email::parse("email", &format!("{platform}-{local}@import.invalid")).ok()
}

enum Change {
    Created(String),
    Updated(String),
    Unchanged,
}

/// Finds or creates the row's pledge, and moves it forward: its start is
/// the earliest payment seen, its paid period and amount the latest's.
/// Applying the same row twice changes nothing the second time.
async fn pledge(
    tx: &mut Tx,
    source: Source,
    p: &PledgePlan,
    row: &Row,
    supporter_id: i64,
    now: DateTime<Utc>,
) -> Result<(i64, Option<i64>, Change)> {
    let mut notes = Vec::new();
    let tier_id = match &p.tier {
        Some(name) => {
            let found = store::imports::tier_by_name(tx, name).await?;
            if found.is_none() {
                notes.push(format!(
                    "no patron tier named {name:?}: the pledge has none"
                ));
            }
            found
        }
        None => None,
    };
    let status_for = |paid_through: Option<DateTime<Utc>>| match p.status {
        Some(s) => s,
        None => paid_through.map_or(PledgeStatus::Active, |t| status_at(t, now)),
    };
    let ended_for = |status: PledgeStatus, paid_through: Option<DateTime<Utc>>| {
        (status == PledgeStatus::Canceled).then(|| paid_through.unwrap_or(now).min(now))
    };
    let amount = Money::new(p.amount_minor, row.money.currency);
    let weekly = p
        .from_weekly
        .map(|w| {
            format!(
                " (weekly {} × 52 / 12)",
                Money::new(w, row.money.currency).display()
            )
        })
        .unwrap_or_default();
    match store::imports::pledge(tx, source, &p.key).await? {
        None => {
            let status = status_for(p.paid_through);
            let state = PledgeState {
                supporter_id,
                tier_id,
                amount_minor: p.amount_minor,
                currency: row.money.currency,
                interval: p.interval,
                status,
                started_at: row.at,
                ended_at: ended_for(status, p.paid_through),
                current_period_end: p.paid_through,
            };
            let id = store::imports::insert_pledge(tx, source, &p.key, &state).await?;
            notes.insert(
                0,
                format!(
                    "{status} {}ly pledge {}{weekly} (#{id}, external, never charged)",
                    p.interval,
                    amount.display()
                ),
            );
            Ok((id, tier_id, Change::Created(notes.join("; "))))
        }
        Some(old) => {
            let newer = match (p.paid_through, old.current_period_end) {
                (Some(a), Some(b)) => a > b,
                (Some(_), None) => true,
                _ => false,
            };
            let period_end = match (p.paid_through, old.current_period_end) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            let amount_minor = if newer || old.current_period_end.is_none() {
                p.amount_minor
            } else {
                old.amount_minor
            };
            let tier = if newer {
                tier_id.or(old.tier_id)
            } else {
                old.tier_id.or(tier_id)
            };
            let status = status_for(period_end);
            let state = PledgeState {
                supporter_id: old.supporter_id,
                tier_id: tier,
                amount_minor,
                currency: row.money.currency,
                interval: p.interval,
                status,
                started_at: old.started_at.min(row.at),
                ended_at: ended_for(status, period_end),
                current_period_end: period_end,
            };
            let same = state.tier_id == old.tier_id
                && state.amount_minor == old.amount_minor
                && state.status == old.status
                && state.started_at == old.started_at
                && state.ended_at == old.ended_at
                && state.current_period_end == old.current_period_end;
            if same {
                return Ok((old.id, old.tier_id, Change::Unchanged));
            }
            store::imports::update_pledge(tx, old.id, &state).await?;
            let mut what = vec![];
            if state.started_at != old.started_at {
                what.push(format!("started {}", state.started_at.format("%Y-%m-%d")));
            }
            if let Some(end) = state.current_period_end
                && state.current_period_end != old.current_period_end
            {
                what.push(format!("paid through {}", end.format("%Y-%m-%d")));
            }
            if state.amount_minor != old.amount_minor {
                what.push(format!(
                    "amount {}",
                    Money::new(amount_minor, row.money.currency).display()
                ));
            }
            if state.status != old.status {
                what.push(format!("now {status}"));
            }
            if state.tier_id != old.tier_id {
                what.push("tier".into());
            }
            Ok((
                old.id,
                tier,
                Change::Updated(format!("pledge #{}: {}", old.id, what.join(", "))),
            ))
        }
    }
}
