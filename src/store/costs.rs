//! Costs: expenses (append-only; a void is a row of its own), recurring
//! costs, the vendors and categories shown by name, and the opening
//! balance. The sums behind the costs report are read in one pass each:
//! expenses grouped by month, and income from `ledger_monthly`.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

use super::{Db, Tx, audit::Actor, now};
use crate::{
    db_run,
    domain::{
        costs::{LabelKind, NewExpense, NewRecurringCost, Opening, Recurrence},
        ledger::EntryKind,
        money::Currency,
        month::Month,
        tier::Interval,
    },
    error::{Error, Result},
    tx_run,
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExpenseRow {
    pub id: i64,
    pub spent_on: NaiveDate,
    /// YYYY-MM of `spent_on`.
    pub month: String,
    pub vendor: String,
    pub category: String,
    /// In the campaign currency (`currency`): what every figure counts.
    pub amount_minor: i64,
    pub currency: Currency,
    /// What was paid, when paid in another currency.
    pub original_amount_minor: Option<i64>,
    pub original_currency: Option<Currency>,
    pub note: String,
    pub external_ref: Option<String>,
    pub recurring_cost_id: Option<i64>,
    /// The month of the recurring cost this pays (YYYY-MM).
    pub recurring_month: Option<String>,
    pub recorded_at: DateTime<Utc>,
    pub created_by: Option<String>,
    pub voided_at: Option<DateTime<Utc>>,
    pub void_reason: Option<String>,
    pub voided_by: Option<String>,
}

impl ExpenseRow {
    pub fn voided(&self) -> bool {
        self.voided_at.is_some()
    }
}

macro_rules! select_expense {
    () => {
        "SELECT e.id, e.spent_on, e.month, e.vendor, e.category, e.amount_minor, e.currency, \
         e.original_amount_minor, e.original_currency, e.note, e.external_ref, e.recurring_cost_id, \
         e.recurring_month, e.recorded_at, e.created_by, v.voided_at, v.reason AS void_reason, v.voided_by \
         FROM expenses e LEFT JOIN expense_voids v ON v.expense_id = e.id "
    };
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RecurringCostRow {
    pub id: i64,
    pub vendor: String,
    pub category: String,
    pub amount_minor: i64,
    pub currency: Currency,
    pub interval: Interval,
    pub starts_on: NaiveDate,
    pub ends_on: Option<NaiveDate>,
    pub note: String,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl RecurringCostRow {
    pub fn recurrence(&self) -> Recurrence {
        Recurrence {
            amount_minor: self.amount_minor,
            interval: self.interval,
            starts_on: self.starts_on,
            ends_on: self.ends_on,
        }
    }
}

macro_rules! select_recurring {
    () => {
        "SELECT id, vendor, category, amount_minor, currency, interval, starts_on, ends_on, \
         note, created_at, created_by, updated_at FROM recurring_costs "
    };
}

/// Records an expense, audited. A recurring cost it pays must exist, be in
/// the same currency and fall due in the month paid.
pub async fn insert_expense(tx: &mut Tx, actor: &Actor, e: &NewExpense) -> Result<i64> {
    if let Some((rid, month)) = e.recurring {
        let cost = recurring_in_tx(tx, rid)
            .await?
            .ok_or_else(|| Error::field("recurring_cost_id", "no such recurring cost"))?;
        if cost.currency != e.currency {
            return Err(Error::field(
                "recurring_cost_id",
                "is in another currency than the campaign",
            ));
        }
        if !cost.recurrence().runs_in(month) {
            return Err(Error::field(
                "recurring_month",
                "the recurring cost does not run in this month",
            ));
        }
        if !cost.recurrence().due_in(month) {
            return Err(Error::field(
                "recurring_month",
                format!(
                    "a yearly cost is due in its renewal month ({}); give the month it pays",
                    cost.starts_on.format("%B")
                ),
            ));
        }
    }
    let id = tx_run!(tx, |conn| {
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO expenses (spent_on, month, vendor, category, amount_minor, currency, \
             original_amount_minor, original_currency, note, external_ref, recurring_cost_id, \
             recurring_month, recorded_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
        )
        .bind(e.spent_on)
        .bind(crate::domain::costs::month_of(e.spent_on).to_string())
        .bind(&e.vendor)
        .bind(&e.category)
        .bind(e.amount_minor)
        .bind(e.currency.code())
        .bind(e.original.map(|(a, _)| a))
        .bind(e.original.map(|(_, c)| c.code()))
        .bind(&e.note)
        .bind(&e.external_ref)
        .bind(e.recurring.map(|(id, _)| id))
        .bind(e.recurring.map(|(_, m)| m.to_string()))
        .bind(now())
        .bind(&actor.label)
        .fetch_one(&mut *conn)
        .await?
    });
    tx.audit(
        actor,
        "expense.record",
        "expense",
        id,
        json!({
            "spent_on": e.spent_on, "vendor": e.vendor, "category": e.category,
            "amount_minor": e.amount_minor, "currency": e.currency.code(),
            "original_amount_minor": e.original.map(|(a, _)| a),
            "original_currency": e.original.map(|(_, c)| c.code()),
            "external_reference": e.external_ref,
            "recurring_cost_id": e.recurring.map(|(id, _)| id),
            "recurring_month": e.recurring.map(|(_, m)| m.to_string()),
        }),
    )
    .await?;
    tx.bump_version();
    Ok(id)
}

/// Voids an expense, audited: it stays, and counts nowhere from now on.
pub async fn void_expense(tx: &mut Tx, actor: &Actor, id: i64, reason: &str) -> Result<()> {
    let inserted = tx_run!(tx, |conn| {
        sqlx::query(
            "INSERT INTO expense_voids (expense_id, reason, voided_at, voided_by) \
             SELECT id, $2, $3, $4 FROM expenses WHERE id = $1 \
             ON CONFLICT (expense_id) DO NOTHING",
        )
        .bind(id)
        .bind(reason)
        .bind(now())
        .bind(&actor.label)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    if inserted == 0 {
        return Err(Error::conflict("expense", "this expense is already voided"));
    }
    tx.audit(
        actor,
        "expense.void",
        "expense",
        id,
        json!({ "reason": reason }),
    )
    .await?;
    tx.bump_version();
    Ok(())
}

pub async fn get_expense(db: &Db, id: i64) -> Result<ExpenseRow> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, ExpenseRow>(concat!(select_expense!(), "WHERE e.id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?
    });
    row.ok_or(Error::NotFound("expense"))
}

/// Which expenses a list shows; each field absent means any.
#[derive(Debug, Clone, Default)]
pub struct ExpenseFilter {
    pub from: Option<Month>,
    pub to: Option<Month>,
    pub category: Option<String>,
    pub vendor: Option<String>,
    pub recurring_cost_id: Option<i64>,
}

/// Newest recorded first, `limit` expenses with ids below `before`; voided
/// ones included (and marked).
pub async fn list_expenses(
    db: &Db,
    f: &ExpenseFilter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<ExpenseRow>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, ExpenseRow>(concat!(
            select_expense!(),
            "WHERE e.id < $1 AND ($2 IS NULL OR e.month >= $2) AND ($3 IS NULL OR e.month <= $3) \
             AND ($4 IS NULL OR e.category = $4) AND ($5 IS NULL OR e.vendor = $5) \
             AND ($6 IS NULL OR e.recurring_cost_id = $6) ORDER BY e.id DESC LIMIT $7"
        ))
        .bind(before.unwrap_or(i64::MAX))
        .bind(f.from.map(|m| m.to_string()))
        .bind(f.to.map(|m| m.to_string()))
        .bind(f.category.as_deref())
        .bind(f.vendor.as_deref())
        .bind(f.recurring_cost_id)
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// Creates a recurring cost, audited.
pub async fn insert_recurring(tx: &mut Tx, actor: &Actor, c: &NewRecurringCost) -> Result<i64> {
    let at = now();
    let id = tx_run!(tx, |conn| {
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO recurring_costs (vendor, category, amount_minor, currency, interval, starts_on, \
             ends_on, note, created_at, created_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $9) RETURNING id",
        )
        .bind(&c.vendor)
        .bind(&c.category)
        .bind(c.amount_minor)
        .bind(c.currency.code())
        .bind(c.interval.as_str())
        .bind(c.starts_on)
        .bind(c.ends_on)
        .bind(&c.note)
        .bind(at)
        .bind(&actor.label)
        .fetch_one(&mut *conn)
        .await?
    });
    tx.audit(
        actor,
        "recurring_cost.create",
        "recurring_cost",
        id,
        json!({
            "vendor": c.vendor, "category": c.category, "amount_minor": c.amount_minor,
            "currency": c.currency.code(), "interval": c.interval.as_str(),
            "starts_on": c.starts_on, "ends_on": c.ends_on,
        }),
    )
    .await?;
    tx.bump_version();
    Ok(id)
}

/// Sets the last day a recurring cost runs, audited.
pub async fn end_recurring(
    tx: &mut Tx,
    actor: &Actor,
    cost: &RecurringCostRow,
    ends_on: NaiveDate,
) -> Result<()> {
    tx_run!(tx, |conn| {
        sqlx::query("UPDATE recurring_costs SET ends_on = $2, updated_at = $3 WHERE id = $1")
            .bind(cost.id)
            .bind(ends_on)
            .bind(now())
            .execute(&mut *conn)
            .await?;
    });
    tx.audit(
        actor,
        "recurring_cost.end",
        "recurring_cost",
        cost.id,
        json!({ "ends_on": ends_on, "previous_ends_on": cost.ends_on }),
    )
    .await?;
    tx.bump_version();
    Ok(())
}

async fn recurring_in_tx(tx: &mut Tx, id: i64) -> Result<Option<RecurringCostRow>> {
    let row = tx_run!(tx, |conn| {
        sqlx::query_as::<_, RecurringCostRow>(concat!(select_recurring!(), "WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
    });
    Ok(row)
}

pub async fn get_recurring(db: &Db, id: i64) -> Result<RecurringCostRow> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, RecurringCostRow>(concat!(select_recurring!(), "WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?
    });
    row.ok_or(Error::NotFound("recurring cost"))
}

/// Every recurring cost, ended ones too, the earliest start first.
pub async fn list_recurring(db: &Db) -> Result<Vec<RecurringCostRow>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, RecurringCostRow>(concat!(
            select_recurring!(),
            "ORDER BY starts_on, id"
        ))
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CostSettingsRow {
    pub opening_balance_minor: i64,
    /// YYYY-MM: the balance is as of the start of this month.
    pub opening_month: Option<String>,
    pub goal_follows_costs: bool,
    pub updated_at: DateTime<Utc>,
}

impl CostSettingsRow {
    pub fn opening(&self) -> Opening {
        Opening {
            amount_minor: self.opening_balance_minor,
            month: self
                .opening_month
                .as_deref()
                .and_then(|m| Month::parse("opening_month", m).ok()),
        }
    }
}

pub async fn settings(db: &Db) -> Result<CostSettingsRow> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, CostSettingsRow>(
            "SELECT opening_balance_minor, opening_month, goal_follows_costs, updated_at \
             FROM cost_settings WHERE id = 1",
        )
        .fetch_one(pool)
        .await?
    });
    Ok(row)
}

/// Saves the opening balance and the goal mode, audited.
pub async fn update_settings(
    tx: &mut Tx,
    actor: &Actor,
    opening: Opening,
    goal_follows_costs: bool,
) -> Result<()> {
    let month = opening.month.map(|m| m.to_string());
    tx_run!(tx, |conn| {
        sqlx::query(
            "UPDATE cost_settings SET opening_balance_minor = $1, opening_month = $2, \
             goal_follows_costs = $3, updated_at = $4 WHERE id = 1",
        )
        .bind(opening.amount_minor)
        .bind(&month)
        .bind(goal_follows_costs)
        .bind(now())
        .execute(&mut *conn)
        .await?;
    });
    tx.audit(
        actor,
        "costs.settings",
        "cost_settings",
        1,
        json!({
            "opening_balance_minor": opening.amount_minor, "opening_month": month,
            "goal_follows_costs": goal_follows_costs,
        }),
    )
    .await?;
    tx.bump_version();
    Ok(())
}

/// A vendor or category, whether it is shown by name in public, and how
/// many expenses and recurring costs name it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LabelRow {
    pub kind: LabelKind,
    pub name: String,
    pub public: bool,
    pub uses: i64,
}

/// Every vendor and category named by an expense or a recurring cost, or
/// flagged, by kind and name.
pub async fn labels(db: &Db) -> Result<Vec<LabelRow>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, LabelRow>(
            "SELECT n.kind, n.name, \
               COALESCE((SELECT l.public FROM cost_labels l WHERE l.kind = n.kind AND l.name = n.name), $1) AS public, \
               CAST(SUM(n.uses) AS BIGINT) AS uses \
             FROM ( \
               SELECT 'vendor' AS kind, vendor AS name, 1 AS uses FROM expenses \
               UNION ALL SELECT 'category', category, 1 FROM expenses \
               UNION ALL SELECT 'vendor', vendor, 1 FROM recurring_costs \
               UNION ALL SELECT 'category', category, 1 FROM recurring_costs \
               UNION ALL SELECT kind, name, 0 FROM cost_labels \
             ) n GROUP BY n.kind, n.name ORDER BY n.kind, n.name",
        )
        .bind(false)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// The names of `kind` shown in public.
pub async fn public_names(db: &Db, kind: LabelKind) -> Result<Vec<String>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_scalar::<_, String>(
            "SELECT name FROM cost_labels WHERE kind = $1 AND public = $2 ORDER BY name",
        )
        .bind(kind.as_str())
        .bind(true)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// Shows a vendor or category by name in public, or stops, audited.
pub async fn set_label(
    tx: &mut Tx,
    actor: &Actor,
    kind: LabelKind,
    name: &str,
    public: bool,
) -> Result<()> {
    tx_run!(tx, |conn| {
        sqlx::query(
            "INSERT INTO cost_labels (kind, name, public, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (kind, name) DO UPDATE SET public = excluded.public, updated_at = excluded.updated_at",
        )
        .bind(kind.as_str())
        .bind(name)
        .bind(public)
        .bind(now())
        .execute(&mut *conn)
        .await?;
    });
    tx.audit(
        actor,
        "cost_label.set",
        "cost_label",
        0,
        json!({ "kind": kind.as_str(), "name": name, "public": public }),
    )
    .await?;
    tx.bump_version();
    Ok(())
}

/// Expenses that count (not voided, in `currency`) summed per month and
/// category (or vendor), for the months up to `until`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExpenseSum {
    pub month: String,
    /// The category, or the vendor for `expense_sums_by_vendor`.
    pub name: String,
    pub amount_minor: i64,
    pub expenses: i64,
}

/// Per month and category.
pub async fn expense_sums(db: &Db, currency: Currency, until: Month) -> Result<Vec<ExpenseSum>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, ExpenseSum>(
            "SELECT e.month, e.category AS name, CAST(SUM(e.amount_minor) AS BIGINT) AS amount_minor, \
               CAST(COUNT(*) AS BIGINT) AS expenses \
             FROM expenses e WHERE e.currency = $1 AND e.month <= $2 \
             AND NOT EXISTS (SELECT 1 FROM expense_voids v WHERE v.expense_id = e.id) \
             GROUP BY e.month, e.category ORDER BY e.month, e.category",
        )
        .bind(currency.code())
        .bind(until.to_string())
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// Per month and vendor, for the months `from..=to`.
pub async fn expense_sums_by_vendor(
    db: &Db,
    currency: Currency,
    from: Month,
    to: Month,
) -> Result<Vec<ExpenseSum>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, ExpenseSum>(
            "SELECT e.month, e.vendor AS name, CAST(SUM(e.amount_minor) AS BIGINT) AS amount_minor, \
               CAST(COUNT(*) AS BIGINT) AS expenses \
             FROM expenses e WHERE e.currency = $1 AND e.month >= $2 AND e.month <= $3 \
             AND NOT EXISTS (SELECT 1 FROM expense_voids v WHERE v.expense_id = e.id) \
             GROUP BY e.month, e.vendor ORDER BY e.month, e.vendor",
        )
        .bind(currency.code())
        .bind(from.to_string())
        .bind(to.to_string())
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// The ledger per month and kind in `currency`, up to `until`, from the
/// monthly aggregates (signed: refunds, disputes and fees are negative).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LedgerFlow {
    pub month: String,
    pub kind: EntryKind,
    pub amount_minor: i64,
}

pub async fn ledger_flows(db: &Db, currency: Currency, until: Month) -> Result<Vec<LedgerFlow>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, LedgerFlow>(
            "SELECT month, kind, CAST(SUM(amount_minor) AS BIGINT) AS amount_minor FROM ledger_monthly \
             WHERE currency = $1 AND month <= $2 GROUP BY month, kind ORDER BY month",
        )
        .bind(currency.code())
        .bind(until.to_string())
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// Which recurring costs' months are paid by an expense that counts, in
/// `from..=to`: `(recurring_cost_id, month)`.
pub async fn matched(db: &Db, from: Month, to: Month) -> Result<Vec<(i64, String)>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, (i64, String)>(
            "SELECT DISTINCT e.recurring_cost_id, e.recurring_month FROM expenses e \
             WHERE e.recurring_cost_id IS NOT NULL AND e.recurring_month >= $1 AND e.recurring_month <= $2 \
             AND NOT EXISTS (SELECT 1 FROM expense_voids v WHERE v.expense_id = e.id)",
        )
        .bind(from.to_string())
        .bind(to.to_string())
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// Recurring income now, in `currency`: sums of the running pledges'
/// amounts per interval, `(monthly, yearly)`, as the funding totals count.
pub async fn recurring_income(db: &Db, currency: Currency) -> Result<(i64, i64)> {
    let sums: Vec<(Interval, i64)> = db_run!(db, |pool| {
        sqlx::query_as(
            "SELECT interval, CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM pledges \
             WHERE status IN ('active', 'past_due') AND currency = $1 GROUP BY interval",
        )
        .bind(currency.code())
        .fetch_all(pool)
        .await?
    });
    let of = |i: Interval| sums.iter().find(|(k, _)| *k == i).map_or(0, |(_, s)| *s);
    Ok((of(Interval::Month), of(Interval::Year)))
}

/// The "cover our costs" goal for the month of `today`, when the mode is
/// on and there are costs to cover (see `domain::costs::costs_goal`).
pub async fn costs_goal(db: &Db, currency: Currency, today: NaiveDate) -> Result<Option<i64>> {
    let current = crate::domain::costs::month_of(today);
    let Some((sum, recurring)) = goal_inputs(db, currency, current).await? else {
        return Ok(None);
    };
    Ok(crate::domain::costs::costs_goal(
        sum,
        crate::domain::costs::expected_in(&recurring, current)?,
    ))
}

/// What the "cover our costs" goal needs: the expenses of the 3 complete
/// months before `current`, and the recurring costs. None when the mode is
/// off.
async fn goal_inputs(
    db: &Db,
    currency: Currency,
    current: Month,
) -> Result<Option<(i64, Vec<Recurrence>)>> {
    if !settings(db).await?.goal_follows_costs {
        return Ok(None);
    }
    let [first, _, last] = crate::domain::costs::averaged_months(current);
    let sum: i64 = db_run!(db, |pool| {
        sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(e.amount_minor), 0) AS BIGINT) FROM expenses e \
             WHERE e.currency = $1 AND e.month >= $2 AND e.month <= $3 \
             AND NOT EXISTS (SELECT 1 FROM expense_voids v WHERE v.expense_id = e.id)",
        )
        .bind(currency.code())
        .bind(first.to_string())
        .bind(last.to_string())
        .fetch_one(pool)
        .await?
    });
    let recurring = list_recurring(db)
        .await?
        .iter()
        .filter(|c| c.currency == currency)
        .map(RecurringCostRow::recurrence)
        .collect();
    Ok(Some((sum, recurring)))
}
