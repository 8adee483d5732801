//! Costs: expenses, recurring costs, the balance, runway and coverage.
//! Pure rules and integer arithmetic; the store keeps the rows.
//!
//! The rules, stated once:
//! - Every figure counts money in the campaign currency. An expense paid in
//!   another currency is entered with what it cost in the campaign currency
//!   (the amount used everywhere); what was paid is kept beside it.
//! - An expense is append-only: a mistake is voided with a reason and then
//!   counts nowhere.
//! - A recurring cost's expected monthly cost is its amount for a monthly
//!   cost and a twelfth of it for a yearly one (sums of yearly amounts are
//!   divided once, rounding down, as `pledge::monthly_recurring` does). A
//!   yearly cost is *due* in its renewal month (the month of its start, each
//!   year), a monthly one every month it runs; an expense matched to it pays
//!   one due month.
//! - The balance at the end of a month is the opening balance (the balance
//!   at the start of its month) plus net income (gross − refunds − disputes
//!   − fees) less expenses, of every month from the opening month on.
//!   Without an opening balance, the books start at zero.
//! - Monthly costs are the average expenses of the last 3 complete months.
//! - Runway is the current balance divided by the monthly costs, in tenths
//!   of a month, rounded down; 0 when the balance is not positive; none
//!   when there were no costs (nothing runs out).
//! - Coverage is monthly recurring income as a share of monthly costs, in
//!   basis points (hundredths of a percent), rounded down.
//! - "Cover our costs" goal: the monthly costs; before any expense is
//!   recorded in the last 3 complete months, the expected recurring costs
//!   of the current month; with neither, the campaign's own goal stays.

use chrono::{Datelike, NaiveDate};

use super::{
    Checks, amount,
    money::{Currency, MAX_AMOUNT_MINOR},
    month::Month,
    text, text_enum,
    tier::Interval,
};
use crate::error::{Error, FieldError, Result};

/// Longest vendor and category names.
pub const VENDOR_MAX: usize = 100;
pub const CATEGORY_MAX: usize = 60;

text_enum!(
    /// What a public flag is about.
    LabelKind { Vendor => "vendor", Category => "category" }
);

/// A vendor's name: 1 to 100 characters, stored as typed (trimmed).
pub fn vendor(field: &str, value: &str) -> Result<String, FieldError> {
    text(field, value, 1, VENDOR_MAX, false)
}

/// A category's name: 1 to 60 characters.
pub fn category(field: &str, value: &str) -> Result<String, FieldError> {
    text(field, value, 1, CATEGORY_MAX, false)
}

/// A label of `kind`, checked as that kind's names are.
pub fn label(kind: LabelKind, value: &str) -> Result<String, FieldError> {
    match kind {
        LabelKind::Vendor => vendor("name", value),
        LabelKind::Category => category("name", value),
    }
}

/// An expense about to be recorded, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewExpense {
    pub spent_on: NaiveDate,
    pub vendor: String,
    pub category: String,
    /// In the campaign currency: what every figure counts.
    pub amount_minor: i64,
    pub currency: Currency,
    /// What was paid, when paid in another currency.
    pub original: Option<(i64, Currency)>,
    pub note: String,
    pub external_ref: Option<String>,
    /// The recurring cost this pays, and the month it pays it for.
    pub recurring: Option<(i64, Month)>,
}

/// An expense as it is entered, before checking.
#[derive(Debug, Clone, Default)]
pub struct ExpenseInput<'a> {
    pub spent_on: Option<NaiveDate>,
    pub vendor: &'a str,
    pub category: &'a str,
    pub amount_minor: i64,
    pub original_amount_minor: Option<i64>,
    pub original_currency: Option<&'a str>,
    pub note: &'a str,
    pub external_ref: Option<&'a str>,
    pub recurring_cost_id: Option<i64>,
    /// YYYY-MM; defaults to the expense's own month.
    pub recurring_month: Option<&'a str>,
}

impl NewExpense {
    /// Checks every field at once; `currency` is the campaign's.
    pub fn parse(input: &ExpenseInput, currency: Currency, today: NaiveDate) -> Result<Self> {
        let mut checks = Checks::new();
        let spent_on = match input.spent_on {
            Some(d) => checks.take(day_in_books("date", d, today)),
            None => {
                checks.fail("date", "is required");
                None
            }
        };
        let vendor = checks.take(vendor("vendor", input.vendor));
        let category = checks.take(category("category", input.category));
        checks.take(amount("amount_minor", input.amount_minor));
        let note = checks.take(text("note", input.note, 0, 1000, true));
        let external_ref = match input.external_ref {
            Some(r) => checks
                .take(text("external_reference", r, 1, 200, false))
                .map(Some),
            None => Some(None),
        };
        let original = match (input.original_amount_minor, input.original_currency) {
            (None, None) => Some(None),
            (Some(a), Some(c)) => {
                let amount = checks.take(super::amount("original_amount_minor", a));
                let code = match Currency::parse(c) {
                    Some(code) if code == currency => {
                        checks.fail(
                            "original_currency",
                            "leave it out when the expense was paid in the campaign currency",
                        );
                        None
                    }
                    Some(code) => Some(code),
                    None => {
                        checks.fail("original_currency", "must be an ISO 4217 currency code");
                        None
                    }
                };
                amount.zip(code).map(Some)
            }
            (Some(_), None) => {
                checks.fail(
                    "original_currency",
                    "is required with original_amount_minor",
                );
                None
            }
            (None, Some(_)) => {
                checks.fail(
                    "original_amount_minor",
                    "is required with original_currency",
                );
                None
            }
        };
        let recurring = match (input.recurring_cost_id, input.recurring_month) {
            (None, None) => Some(None),
            (None, Some(_)) => {
                checks.fail("recurring_cost_id", "is required with recurring_month");
                None
            }
            (Some(id), month) => {
                let month = match month {
                    Some(m) => match Month::parse("recurring_month", m) {
                        Ok(m) => Some(m),
                        Err(Error::Validation(errors)) => {
                            errors
                                .into_iter()
                                .for_each(|e| checks.fail(&e.field, e.message));
                            None
                        }
                        Err(_) => None,
                    },
                    None => spent_on.map(month_of),
                };
                month.map(|m| Some((id, m)))
            }
        };
        checks.finish()?;
        Ok(NewExpense {
            spent_on: spent_on.expect("checked"),
            vendor: vendor.expect("checked"),
            category: category.expect("checked"),
            amount_minor: input.amount_minor,
            currency,
            original: original.expect("checked"),
            note: note.expect("checked"),
            external_ref: external_ref.expect("checked"),
            recurring: recurring.expect("checked"),
        })
    }
}

/// A day an expense or cost may carry: from 2000, not in the future.
fn day_in_books(field: &str, d: NaiveDate, today: NaiveDate) -> Result<NaiveDate, FieldError> {
    if d > today {
        return Err(FieldError::new(field, "must not be in the future"));
    }
    if d.year() < 2000 {
        return Err(FieldError::new(field, "must be in the year 2000 or later"));
    }
    Ok(d)
}

/// The month a day is in.
pub fn month_of(d: NaiveDate) -> Month {
    Month {
        year: d.year(),
        month: d.month(),
    }
}

/// The last day of a month.
pub fn last_day(m: Month) -> NaiveDate {
    m.next().first_day().pred_opt().expect("after 2000")
}

/// A recurring cost about to be created, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecurringCost {
    pub vendor: String,
    pub category: String,
    pub amount_minor: i64,
    pub currency: Currency,
    pub interval: Interval,
    pub starts_on: NaiveDate,
    pub ends_on: Option<NaiveDate>,
    pub note: String,
}

impl NewRecurringCost {
    #[allow(clippy::too_many_arguments)]
    pub fn parse(
        vendor_name: &str,
        category_name: &str,
        amount_minor: i64,
        currency: Currency,
        interval: Interval,
        starts_on: NaiveDate,
        ends_on: Option<NaiveDate>,
        note: &str,
    ) -> Result<Self> {
        let mut checks = Checks::new();
        let vendor = checks.take(vendor("vendor", vendor_name));
        let category = checks.take(category("category", category_name));
        checks.take(amount("amount_minor", amount_minor));
        if starts_on.year() < 2000 {
            checks.fail("starts_on", "must be in the year 2000 or later");
        }
        if let Some(end) = ends_on
            && let Err(e) = check_end(starts_on, end)
        {
            checks.fail(&e.field, e.message);
        }
        let note = checks.take(text("note", note, 0, 1000, true));
        checks.finish()?;
        Ok(NewRecurringCost {
            vendor: vendor.expect("checked"),
            category: category.expect("checked"),
            amount_minor,
            currency,
            interval,
            starts_on,
            ends_on,
            note: note.expect("checked"),
        })
    }
}

/// A recurring cost ends on or after the day it starts.
pub fn check_end(starts_on: NaiveDate, ends_on: NaiveDate) -> Result<NaiveDate, FieldError> {
    if ends_on < starts_on {
        return Err(FieldError::new("ends_on", "must not be before starts_on"));
    }
    Ok(ends_on)
}

/// What the month arithmetic needs of a recurring cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recurrence {
    pub amount_minor: i64,
    pub interval: Interval,
    pub starts_on: NaiveDate,
    pub ends_on: Option<NaiveDate>,
}

impl Recurrence {
    /// Whether it runs on any day of `m`.
    pub fn runs_in(&self, m: Month) -> bool {
        self.starts_on <= last_day(m) && self.ends_on.is_none_or(|e| e >= m.first_day())
    }

    /// Whether a payment falls due in `m`: every month it runs for a
    /// monthly cost, the renewal month for a yearly one.
    pub fn due_in(&self, m: Month) -> bool {
        self.runs_in(m)
            && match self.interval {
                Interval::Month => true,
                Interval::Year => m.month == self.starts_on.month(),
            }
    }
}

/// The expected monthly cost of the recurring costs running in `m`: monthly
/// amounts, plus a twelfth of the yearly ones' sum (rounded down once).
pub fn expected_in(costs: &[Recurrence], m: Month) -> Result<i64> {
    let (mut monthly, mut yearly) = (0i64, 0i64);
    for c in costs.iter().filter(|c| c.runs_in(m)) {
        match c.interval {
            Interval::Month => monthly = super::money::add(monthly, c.amount_minor)?,
            Interval::Year => yearly = super::money::add(yearly, c.amount_minor)?,
        }
    }
    super::money::add(monthly, yearly / 12)
}

/// Months averaged for the monthly costs.
pub const AVERAGE_MONTHS: u32 = 3;

/// The complete months whose expenses make the monthly costs, oldest first:
/// the 3 before `current`.
pub fn averaged_months(current: Month) -> [Month; AVERAGE_MONTHS as usize] {
    [current.back(3), current.back(2), current.back(1)]
}

/// Average monthly costs from the sum of the averaged months, rounded down.
pub fn monthly_costs(sum_of_averaged: i64) -> i64 {
    sum_of_averaged / i64::from(AVERAGE_MONTHS)
}

/// Runway in tenths of a month, rounded down: `balance` over the average
/// of `sum_of_averaged` (three months' costs). None without costs; 0 when
/// the balance is not positive.
pub fn runway_tenths(balance: i64, sum_of_averaged: i64) -> Option<i64> {
    if sum_of_averaged <= 0 {
        return None;
    }
    if balance <= 0 {
        return Some(0);
    }
    let tenths =
        i128::from(balance) * 10 * i128::from(AVERAGE_MONTHS) / i128::from(sum_of_averaged);
    Some(i64::try_from(tenths).unwrap_or(i64::MAX))
}

/// Tenths of a month as people read them: "7.5".
pub fn tenths_display(tenths: i64) -> String {
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// Whether the runway meets a target of `target_months`: with no costs it
/// does while the balance is not negative.
pub fn meets_target(runway_tenths: Option<i64>, balance: i64, target_months: u32) -> bool {
    match runway_tenths {
        Some(t) => t >= i64::from(target_months) * 10,
        None => balance >= 0,
    }
}

/// Coverage in basis points, rounded down: monthly recurring income over
/// the average of `sum_of_averaged`. None without costs.
pub fn coverage_basis_points(monthly_recurring: i64, sum_of_averaged: i64) -> Option<i64> {
    if sum_of_averaged <= 0 {
        return None;
    }
    let bp = i128::from(monthly_recurring.max(0)) * 10_000 * i128::from(AVERAGE_MONTHS)
        / i128::from(sum_of_averaged);
    Some(i64::try_from(bp).unwrap_or(i64::MAX))
}

/// The monthly goal in "cover our costs" mode (see the module's rules).
pub fn costs_goal(sum_of_averaged: i64, expected_now: i64) -> Option<i64> {
    let goal = if sum_of_averaged > 0 {
        monthly_costs(sum_of_averaged)
    } else {
        expected_now
    };
    (goal > 0).then_some(goal.min(MAX_AMOUNT_MINOR))
}

/// The opening balance: the balance at the start of `month` (none: the
/// books start at zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opening {
    pub amount_minor: i64,
    pub month: Option<Month>,
}

impl Opening {
    /// Checks an opening balance set as of `as_of`, which must be the first
    /// day of a month (the books are kept per month).
    pub fn parse(amount_minor: i64, as_of: NaiveDate) -> Result<Self> {
        let mut checks = Checks::new();
        if amount_minor.abs() > MAX_AMOUNT_MINOR {
            checks.fail(
                "amount_minor",
                format!("must be between -{MAX_AMOUNT_MINOR} and {MAX_AMOUNT_MINOR}"),
            );
        }
        if as_of.day() != 1 {
            checks.fail(
                "as_of",
                "must be the first day of a month: the balance at the start of that month",
            );
        }
        if as_of.year() < 2000 {
            checks.fail("as_of", "must be in the year 2000 or later");
        }
        checks.finish()?;
        Ok(Opening {
            amount_minor,
            month: Some(month_of(as_of)),
        })
    }

    /// Whether the month's flows count toward the balance.
    pub fn counts(&self, m: Month) -> bool {
        self.month.is_none_or(|o| m >= o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn month(s: &str) -> Month {
        Month::parse("m", s).unwrap()
    }

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    #[test]
    fn runway_is_in_tenths_rounded_down() {
        // 1000 over an average of 300 (900 over 3 months): 3.33 → 3.3.
        assert_eq!(runway_tenths(1000, 900), Some(33));
        assert_eq!(tenths_display(33), "3.3");
        assert_eq!(runway_tenths(-5, 900), Some(0));
        assert_eq!(runway_tenths(1000, 0), None);
        assert!(meets_target(Some(60), 1, 6));
        assert!(!meets_target(Some(59), 1, 6));
        assert!(meets_target(None, 0, 6));
        assert!(!meets_target(None, -1, 6));
    }

    #[test]
    fn coverage_is_in_basis_points() {
        // 250 a month against an average of 300: 83.33 %.
        assert_eq!(coverage_basis_points(250, 900), Some(8333));
        assert_eq!(coverage_basis_points(250, 0), None);
    }

    #[test]
    fn yearly_costs_count_a_twelfth_and_fall_due_in_their_renewal_month() {
        let hosting = Recurrence {
            amount_minor: 5000,
            interval: Interval::Month,
            starts_on: day("2026-01-15"),
            ends_on: Some(day("2026-03-01")),
        };
        let domain = Recurrence {
            amount_minor: 1200 + 6,
            interval: Interval::Year,
            starts_on: day("2025-06-10"),
            ends_on: None,
        };
        let both = [hosting, domain];
        assert_eq!(expected_in(&both, month("2025-12")).unwrap(), 100);
        assert_eq!(expected_in(&both, month("2026-03")).unwrap(), 5100);
        assert_eq!(expected_in(&both, month("2026-04")).unwrap(), 100);
        assert!(domain.due_in(month("2026-06")) && !domain.due_in(month("2026-07")));
        assert!(!domain.due_in(month("2025-05")));
        assert!(hosting.due_in(month("2026-03")) && !hosting.due_in(month("2026-04")));
    }

    #[test]
    fn the_goal_follows_costs_then_expected_costs() {
        assert_eq!(costs_goal(900, 5000), Some(300));
        assert_eq!(costs_goal(0, 5000), Some(5000));
        assert_eq!(costs_goal(0, 0), None);
    }

    #[test]
    fn an_expense_is_checked_at_the_edge() {
        let today = day("2026-05-10");
        let ok = ExpenseInput {
            spent_on: Some(day("2026-05-01")),
            vendor: " Hetzner ",
            category: "Hosting",
            amount_minor: 4000,
            original_amount_minor: Some(4500),
            original_currency: Some("usd"),
            recurring_cost_id: Some(3),
            ..Default::default()
        };
        let e = NewExpense::parse(&ok, eur(), today).unwrap();
        assert_eq!(e.vendor, "Hetzner");
        assert_eq!(e.recurring, Some((3, month("2026-05"))));
        assert_eq!(e.original.unwrap().1.code(), "USD");
        let bad = ExpenseInput {
            spent_on: Some(day("2026-05-11")),
            vendor: "",
            amount_minor: 0,
            original_currency: Some("EUR"),
            original_amount_minor: Some(1),
            ..Default::default()
        };
        let Err(Error::Validation(errors)) = NewExpense::parse(&bad, eur(), today) else {
            panic!("refused");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "date",
                "vendor",
                "category",
                "amount_minor",
                "original_currency"
            ]
        );
    }

    #[test]
    fn an_opening_balance_starts_a_month() {
        let o = Opening::parse(-500, day("2026-01-01")).unwrap();
        assert!(o.counts(month("2026-01")) && !o.counts(month("2025-12")));
        assert!(Opening::parse(1, day("2026-01-02")).is_err());
    }
}
