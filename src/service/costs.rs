//! Costs: recording and voiding expenses, recurring costs, the opening
//! balance and goal mode, public vendors and categories; and the costs
//! report (income, expenses, expected recurring costs and the balance per
//! month, with the runway and coverage now), as JSON or CSV. The rules are
//! in `domain::costs`.

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    context::{Context, Effects},
    domain::{
        self,
        costs::{
            self as rules, LabelKind, NewExpense, NewRecurringCost, Opening, Recurrence,
            averaged_months, expected_in, month_of,
        },
        ledger::KindSums,
        money::{Currency, Money, MoneyView, add, sub},
        month::Month,
        pledge::monthly_recurring,
    },
    error::{Error, Result},
    store::{
        self, Db,
        audit::Actor,
        costs::{CostSettingsRow, ExpenseRow, RecurringCostRow},
    },
};

/// Records an expense; returns it as stored.
pub async fn record_expense(ctx: &Context, actor: &Actor, e: &NewExpense) -> Result<ExpenseRow> {
    let mut tx = ctx.db.begin_write().await?;
    if store::campaign::currency(&mut tx).await? != e.currency {
        return Err(Error::conflict(
            "currency",
            "the campaign currency changed; enter the amount again",
        ));
    }
    let id = store::costs::insert_expense(&mut tx, actor, e).await?;
    tx.commit().await?;
    ctx.after_commit_now(Effects::PUBLIC).await;
    store::costs::get_expense(&ctx.db, id).await
}

/// Voids an expense with a reason: it stays in the list, struck through,
/// and counts nowhere.
pub async fn void_expense(
    ctx: &Context,
    actor: &Actor,
    id: i64,
    reason: &str,
) -> Result<ExpenseRow> {
    let reason =
        domain::text("reason", reason, 1, 1000, true).map_err(|e| Error::Validation(vec![e]))?;
    let expense = store::costs::get_expense(&ctx.db, id).await?;
    if expense.voided() {
        return Err(Error::conflict("expense", "this expense is already voided"));
    }
    let mut tx = ctx.db.begin_write().await?;
    store::costs::void_expense(&mut tx, actor, id, &reason).await?;
    tx.commit().await?;
    ctx.after_commit_now(Effects::PUBLIC).await;
    store::costs::get_expense(&ctx.db, id).await
}

/// Creates a recurring cost.
pub async fn create_recurring(
    ctx: &Context,
    actor: &Actor,
    c: &NewRecurringCost,
) -> Result<RecurringCostRow> {
    let mut tx = ctx.db.begin_write().await?;
    if store::campaign::currency(&mut tx).await? != c.currency {
        return Err(Error::conflict(
            "currency",
            "the campaign currency changed; enter the amount again",
        ));
    }
    let id = store::costs::insert_recurring(&mut tx, actor, c).await?;
    tx.commit().await?;
    ctx.after_commit_now(Effects::PUBLIC).await;
    store::costs::get_recurring(&ctx.db, id).await
}

/// Ends a recurring cost: `ends_on` is the last day it runs. An ended cost
/// may be ended earlier, never later.
pub async fn end_recurring(
    ctx: &Context,
    actor: &Actor,
    id: i64,
    ends_on: NaiveDate,
) -> Result<RecurringCostRow> {
    let cost = store::costs::get_recurring(&ctx.db, id).await?;
    rules::check_end(cost.starts_on, ends_on).map_err(|e| Error::Validation(vec![e]))?;
    if cost.ends_on.is_some_and(|e| e <= ends_on) {
        return Err(Error::conflict(
            "ends_on",
            "this recurring cost already ends on or before that day",
        ));
    }
    let mut tx = ctx.db.begin_write().await?;
    store::costs::end_recurring(&mut tx, actor, &cost, ends_on).await?;
    tx.commit().await?;
    ctx.after_commit_now(Effects::PUBLIC).await;
    store::costs::get_recurring(&ctx.db, id).await
}

/// Sets the opening balance and whether the public monthly goal follows
/// the monthly costs.
pub async fn update_settings(
    ctx: &Context,
    actor: &Actor,
    opening: Opening,
    goal_follows_costs: bool,
) -> Result<CostSettingsRow> {
    let mut tx = ctx.db.begin_write().await?;
    store::costs::update_settings(&mut tx, actor, opening, goal_follows_costs).await?;
    tx.commit().await?;
    ctx.after_commit_now(Effects::PUBLIC).await;
    store::costs::settings(&ctx.db).await
}

/// Shows a vendor or category by name in public (or stops).
pub async fn set_label_public(
    ctx: &Context,
    actor: &Actor,
    kind: LabelKind,
    name: &str,
    public: bool,
) -> Result<()> {
    let name = rules::label(kind, name).map_err(|e| Error::Validation(vec![e]))?;
    let mut tx = ctx.db.begin_write().await?;
    store::costs::set_label(&mut tx, actor, kind, &name, public).await?;
    tx.commit().await?;
    ctx.after_commit_now(Effects::PUBLIC).await;
    Ok(())
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CostsReport {
    pub currency: String,
    pub from: String,
    pub to: String,
    /// The balance at the start of `opening_month`; with no month, the
    /// books start at zero.
    pub opening_balance: MoneyView,
    pub opening_month: Option<String>,
    pub months: Vec<CostsMonth>,
    pub now: CostsNow,
}

/// One month. Refunds, disputes and fees are positive amounts taken away:
/// net = gross − refunds − disputes − fees, as in the monthly report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CostsMonth {
    pub month: String,
    pub gross: MoneyView,
    pub refunds: MoneyView,
    pub disputes: MoneyView,
    pub fees: MoneyView,
    pub net: MoneyView,
    /// Expenses that count (voided ones do not).
    pub expenses: MoneyView,
    pub expense_count: i64,
    pub categories: Vec<CategoryCost>,
    /// Recurring costs running this month, per month (yearly ones as a
    /// twelfth).
    pub expected_recurring: MoneyView,
    /// At the end of the month: opening + net − expenses of every month
    /// from the opening month. Null before the opening month.
    pub balance: Option<MoneyView>,
    /// Recurring costs due this month that no expense pays yet (only up to
    /// the current month).
    pub unmatched: Vec<DueCost>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CategoryCost {
    pub category: String,
    pub amount: MoneyView,
    pub expenses: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DueCost {
    pub recurring_cost_id: i64,
    pub vendor: String,
    pub category: String,
    /// The amount due: a whole year's for a yearly cost.
    pub amount: MoneyView,
}

/// Figures as of today.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CostsNow {
    /// The month in progress.
    pub month: String,
    /// The balance so far (end of the month in progress).
    pub balance: MoneyView,
    /// The average expenses of `averaged_from` to `averaged_to`, the 3
    /// complete months before this one, rounded down.
    pub monthly_costs: MoneyView,
    pub averaged_from: String,
    pub averaged_to: String,
    /// Recurring costs running this month, per month.
    pub expected_recurring: MoneyView,
    /// Running recurring pledges per month (yearly ones as a twelfth).
    pub monthly_recurring: MoneyView,
    pub runway: Runway,
    /// `monthly_recurring` as a share of `monthly_costs`; null without costs.
    pub coverage: Option<Coverage>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Runway {
    /// Balance ÷ monthly costs in tenths of a month, rounded down (0 when
    /// the balance is not positive); null without costs.
    pub tenths: Option<i64>,
    /// The same as people read it, e.g. "7.5".
    pub months: Option<String>,
    /// `costs.runway_target_months`.
    pub target_months: u32,
    pub meets_target: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Coverage {
    /// Hundredths of a percent, rounded down.
    pub basis_points: i64,
    /// Whole percent, rounded down.
    pub percent: i64,
}

/// The costs report for `from..=to`, with the figures as of `today`. Every
/// sum is read in one pass (expenses grouped by month, income from
/// `ledger_monthly`); the months are folded here.
pub async fn report(
    db: &Db,
    from: Month,
    to: Month,
    today: NaiveDate,
    target_months: u32,
) -> Result<CostsReport> {
    let months = Month::range(from, to)?;
    let currency = store::campaign::get(db).await?.currency;
    let current = month_of(today);
    let until = to.max(current);
    let opening = store::costs::settings(db).await?.opening();
    let recurring: Vec<RecurringCostRow> = store::costs::list_recurring(db)
        .await?
        .into_iter()
        .filter(|c| c.currency == currency)
        .collect();
    let recurrences: Vec<Recurrence> = recurring.iter().map(|c| c.recurrence()).collect();
    let matched: HashSet<(i64, String)> = store::costs::matched(db, from, to.min(current))
        .await?
        .into_iter()
        .collect();

    let mut income: BTreeMap<String, KindSums> = BTreeMap::new();
    for f in store::costs::ledger_flows(db, currency, until).await? {
        income
            .entry(f.month)
            .or_default()
            .add(f.kind, f.amount_minor)?;
    }
    // month → (total, count, category → (amount, count))
    type MonthCosts = (i64, i64, BTreeMap<String, (i64, i64)>);
    let mut costs: BTreeMap<String, MonthCosts> = BTreeMap::new();
    for s in store::costs::expense_sums(db, currency, until).await? {
        let m = costs.entry(s.month).or_default();
        m.0 = add(m.0, s.amount_minor)?;
        m.1 += s.expenses;
        let c = m.2.entry(s.name).or_default();
        c.0 = add(c.0, s.amount_minor)?;
        c.1 += s.expenses;
    }

    // The balance at the end of each month with money moving, from the
    // opening month on: a running sum over the months in order.
    let mut deltas: BTreeMap<&str, i64> = BTreeMap::new();
    for (m, i) in &income {
        *deltas.entry(m.as_str()).or_default() = i.net()?;
    }
    for (m, (total, ..)) in &costs {
        let d = deltas.entry(m.as_str()).or_default();
        *d = sub(*d, *total)?;
    }
    let counts = |m: &str| Month::parse("month", m).is_ok_and(|m| opening.counts(m));
    let balance_at = |end: Month| -> Result<i64> {
        let end = end.to_string();
        let mut b = opening.amount_minor;
        for (_, d) in deltas
            .iter()
            .take_while(|(m, _)| **m <= end.as_str())
            .filter(|(m, _)| counts(m))
        {
            b = add(b, *d)?;
        }
        Ok(b)
    };
    let money = |minor: i64| Money::new(minor, currency).view();

    let mut out = Vec::with_capacity(months.len());
    for month in months {
        let key = month.to_string();
        let i = income.get(&key).copied().unwrap_or_default();
        let (total, count, categories) = costs.get(&key).cloned().unwrap_or_default();
        let unmatched = if month <= current {
            recurring
                .iter()
                .filter(|c| c.recurrence().due_in(month) && !matched.contains(&(c.id, key.clone())))
                .map(|c| DueCost {
                    recurring_cost_id: c.id,
                    vendor: c.vendor.clone(),
                    category: c.category.clone(),
                    amount: money(c.amount_minor),
                })
                .collect()
        } else {
            Vec::new()
        };
        out.push(CostsMonth {
            gross: money(i.gross),
            refunds: money(i.refunds),
            disputes: money(i.disputes),
            fees: money(i.fees),
            net: money(i.net()?),
            expenses: money(total),
            expense_count: count,
            categories: categories
                .into_iter()
                .map(|(category, (amount, expenses))| CategoryCost {
                    category,
                    amount: money(amount),
                    expenses,
                })
                .collect(),
            expected_recurring: money(expected_in(&recurrences, month)?),
            balance: if opening.counts(month) {
                Some(money(balance_at(month)?))
            } else {
                None
            },
            unmatched,
            month: key,
        });
    }

    let averaged = averaged_months(current);
    let mut sum_averaged = 0i64;
    for m in averaged {
        if let Some((total, ..)) = costs.get(&m.to_string()) {
            sum_averaged = add(sum_averaged, *total)?;
        }
    }
    let balance_now = balance_at(current)?;
    let (monthly_sum, yearly_sum) = store::costs::recurring_income(db, currency).await?;
    let recurring_now = monthly_recurring(monthly_sum, yearly_sum)
        .ok_or_else(|| Error::internal("the monthly recurring total overflows"))?;
    let tenths = rules::runway_tenths(balance_now, sum_averaged);
    let now = CostsNow {
        month: current.to_string(),
        balance: money(balance_now),
        monthly_costs: money(rules::monthly_costs(sum_averaged)),
        averaged_from: averaged[0].to_string(),
        averaged_to: averaged[2].to_string(),
        expected_recurring: money(expected_in(&recurrences, current)?),
        monthly_recurring: money(recurring_now),
        runway: Runway {
            tenths,
            months: tenths.map(rules::tenths_display),
            target_months,
            meets_target: rules::meets_target(tenths, balance_now, target_months),
        },
        coverage: rules::coverage_basis_points(recurring_now, sum_averaged).map(|bp| Coverage {
            basis_points: bp,
            percent: bp / 100,
        }),
    };
    Ok(CostsReport {
        currency: currency.code().to_owned(),
        from: from.to_string(),
        to: to.to_string(),
        opening_balance: money(opening.amount_minor),
        opening_month: opening.month.map(|m| m.to_string()),
        months: out,
        now,
    })
}

impl CostsReport {
    /// The report as CSV: per month a `total` row, then a `category` row per
    /// category with its expenses; then `now` rows, one figure each (name in
    /// `category`, amount in `balance` or the figure in `value`). Amounts
    /// are decimals in major units; names that a spreadsheet would run as
    /// a formula are quoted.
    pub fn to_csv(&self) -> Result<String> {
        let currency = Currency::parse(&self.currency)
            .ok_or_else(|| Error::internal("bad report currency"))?;
        let dec = |m: &MoneyView| Money::new(m.amount_minor, currency).decimal();
        let mut w = csv::Writer::from_writer(Vec::new());
        let csv_err = |e: csv::Error| Error::internal_from(e);
        w.write_record([
            "month",
            "scope",
            "category",
            "currency",
            "gross",
            "refunds",
            "disputes",
            "fees",
            "net",
            "expenses",
            "expected_recurring",
            "balance",
            "value",
        ])
        .map_err(csv_err)?;
        let blank = String::new;
        for m in &self.months {
            w.write_record([
                m.month.clone(),
                "total".into(),
                blank(),
                self.currency.clone(),
                dec(&m.gross),
                dec(&m.refunds),
                dec(&m.disputes),
                dec(&m.fees),
                dec(&m.net),
                dec(&m.expenses),
                dec(&m.expected_recurring),
                m.balance.as_ref().map(dec).unwrap_or_default(),
                blank(),
            ])
            .map_err(csv_err)?;
            for c in &m.categories {
                w.write_record([
                    m.month.clone(),
                    "category".into(),
                    crate::domain::spreadsheet_safe(&c.category),
                    self.currency.clone(),
                    blank(),
                    blank(),
                    blank(),
                    blank(),
                    blank(),
                    dec(&c.amount),
                    blank(),
                    blank(),
                    blank(),
                ])
                .map_err(csv_err)?;
            }
        }
        let n = &self.now;
        let figure = |name: &str, amount: Option<&MoneyView>, value: String| {
            [
                n.month.clone(),
                "now".to_owned(),
                name.to_owned(),
                self.currency.clone(),
                blank(),
                blank(),
                blank(),
                blank(),
                blank(),
                blank(),
                blank(),
                amount.map(dec).unwrap_or_default(),
                value,
            ]
        };
        for row in [
            figure("balance", Some(&n.balance), blank()),
            figure("monthly_costs", Some(&n.monthly_costs), blank()),
            figure("monthly_recurring", Some(&n.monthly_recurring), blank()),
            figure("expected_recurring", Some(&n.expected_recurring), blank()),
            figure(
                "runway_months",
                None,
                n.runway.months.clone().unwrap_or_default(),
            ),
            figure(
                "runway_target_months",
                None,
                n.runway.target_months.to_string(),
            ),
            figure(
                "coverage_percent",
                None,
                n.coverage
                    .as_ref()
                    .map(|c| format!("{}.{:02}", c.basis_points / 100, c.basis_points % 100))
                    .unwrap_or_default(),
            ),
        ] {
            w.write_record(row).map_err(csv_err)?;
        }
        let bytes = w.into_inner().map_err(Error::internal_from)?;
        String::from_utf8(bytes).map_err(Error::internal_from)
    }
}
