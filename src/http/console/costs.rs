//! The Costs page: balance, runway and coverage; the month table (income,
//! expenses, expected recurring costs, balance); expenses with their void;
//! recurring costs; the opening balance and goal mode; which vendors and
//! categories are public. Owners get the forms; viewers read. The same
//! service functions as the JSON API.

use axum::{extract::State, response::Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{OwnerForm, Signed, after, blank_as_none, page};
use crate::{
    domain::{
        costs::{ExpenseInput, LabelKind, NewExpense, NewRecurringCost, Opening, month_of},
        instance::percent_text,
        money::{Currency, Money, MoneyView},
        month::{Day, Month},
        tier::Interval,
    },
    error::{Error, Result},
    http::{AppState, download, extract::Path},
    service,
    store::{
        self,
        costs::{ExpenseFilter, ExpenseRow},
    },
};

const PAGE: i64 = 50;

/// Months in the table: the 12 before this one, and this one.
const MONTHS_SHOWN: u32 = 12;

#[derive(Serialize)]
struct Card {
    label: &'static str,
    value: String,
    note: String,
    bad: bool,
}

#[derive(Serialize)]
struct MonthRow {
    month: String,
    net: String,
    expenses: String,
    expected: String,
    balance: String,
    negative: bool,
    unmatched: Vec<String>,
}

#[derive(Serialize)]
struct ExpenseView {
    id: i64,
    date: String,
    vendor: String,
    category: String,
    amount: String,
    original: Option<String>,
    note: String,
    reference: String,
    recurring: Option<String>,
    voided: bool,
    void_reason: String,
}

impl From<ExpenseRow> for ExpenseView {
    fn from(e: ExpenseRow) -> Self {
        ExpenseView {
            id: e.id,
            date: e.spent_on.to_string(),
            vendor: e.vendor,
            category: e.category,
            amount: Money::new(e.amount_minor, e.currency).display(),
            original: e
                .original_amount_minor
                .zip(e.original_currency)
                .map(|(a, c)| Money::new(a, c).display()),
            note: e.note,
            reference: e.external_ref.unwrap_or_default(),
            recurring: e
                .recurring_cost_id
                .zip(e.recurring_month)
                .map(|(id, m)| format!("#{id}, {m}")),
            voided: e.voided_at.is_some(),
            void_reason: e.void_reason.unwrap_or_default(),
        }
    }
}

#[derive(Serialize)]
struct RecurringView {
    id: i64,
    vendor: String,
    category: String,
    amount: String,
    interval: &'static str,
    monthly: String,
    starts_on: String,
    ends_on: String,
    running: bool,
}

#[derive(Serialize)]
struct LabelView {
    kind: &'static str,
    name: String,
    public: bool,
    uses: i64,
}

/// "Your instance": only when `mastodon.admin_token` is set.
#[derive(Serialize)]
struct InstanceCard {
    available: bool,
    reason: String,
    active_users: String,
    period: String,
    share: String,
    share_note: String,
    per_user: String,
    per_supporter: String,
    monthly_costs: String,
}

impl InstanceCard {
    fn from_report(r: &service::instance::InstanceReport, currency: Currency) -> Self {
        let shown = |m: &Option<MoneyView>| {
            m.as_ref().map_or_else(
                || "–".into(),
                |m| Money::new(m.amount_minor, currency).display(),
            )
        };
        let users = r.active_users.unwrap_or(0);
        InstanceCard {
            available: r.available,
            reason: r.reason.clone().unwrap_or_default(),
            active_users: crate::render::thousands(users),
            period: match (r.period_start, r.period_end) {
                (Some(s), Some(e)) => format!("{s} to {e}"),
                _ => String::new(),
            },
            share: r
                .supporters_share_basis_points
                .map_or_else(|| "–".into(), percent_text),
            share_note: format!(
                "{} of {} active users support us",
                crate::render::thousands(r.supporters),
                crate::render::thousands(users)
            ),
            per_user: shown(&r.cost_per_active_user),
            per_supporter: shown(&r.cost_per_supporter),
            monthly_costs: Money::new(r.monthly_costs.amount_minor, currency).display(),
        }
    }
}

#[derive(Serialize)]
struct CostsPage {
    cards: Vec<Card>,
    instance: Option<InstanceCard>,
    months: Vec<MonthRow>,
    from: String,
    to: String,
    expenses: Vec<ExpenseView>,
    next: Option<i64>,
    recurring: Vec<RecurringView>,
    labels: Vec<LabelView>,
    currency: &'static str,
    today: String,
    opening_balance: String,
    opening_month: String,
    goal_follows_costs: bool,
}

#[derive(Deserialize, Default)]
pub struct CostsQuery {
    #[serde(default, deserialize_with = "blank_as_none")]
    before: Option<i64>,
}

pub async fn show(
    State(state): State<AppState>,
    signed: Signed,
    axum::extract::Query(q): axum::extract::Query<CostsQuery>,
) -> Result<Response> {
    let today = Utc::now().date_naive();
    let current = month_of(today);
    let from = current.back(MONTHS_SHOWN);
    let report = service::costs::report(
        &state.db,
        from,
        current,
        today,
        state.settings.costs.runway_target_months,
    )
    .await?;
    let currency =
        Currency::parse(&report.currency).ok_or_else(|| Error::internal("bad report currency"))?;
    let shown = |m: &MoneyView| Money::new(m.amount_minor, currency).display();
    let now = &report.now;
    let cards = vec![
        Card {
            label: "Balance",
            value: shown(&now.balance),
            note: match &report.opening_month {
                Some(m) => format!(
                    "from {} at the start of {m}",
                    shown(&report.opening_balance)
                ),
                None => "no opening balance set".into(),
            },
            bad: now.balance.amount_minor < 0,
        },
        Card {
            label: "Runway",
            value: now
                .runway
                .months
                .as_ref()
                .map_or_else(|| "no costs yet".into(), |m| format!("{m} months")),
            note: format!(
                "target {} months: {}",
                now.runway.target_months,
                if now.runway.meets_target {
                    "met"
                } else {
                    "not met"
                }
            ),
            bad: !now.runway.meets_target,
        },
        Card {
            label: "Coverage",
            value: now.coverage.as_ref().map_or_else(
                || "–".into(),
                |c| format!("{}.{:02}%", c.basis_points / 100, c.basis_points % 100),
            ),
            note: format!("{} recurring a month", shown(&now.monthly_recurring)),
            bad: now
                .coverage
                .as_ref()
                .is_some_and(|c| c.basis_points < 10_000),
        },
        Card {
            label: "Monthly costs",
            value: shown(&now.monthly_costs),
            note: format!(
                "average of {} to {}; {} expected",
                now.averaged_from,
                now.averaged_to,
                shown(&now.expected_recurring)
            ),
            bad: false,
        },
    ];
    let months = report
        .months
        .iter()
        .rev()
        .map(|m| MonthRow {
            month: m.month.clone(),
            net: shown(&m.net),
            expenses: shown(&m.expenses),
            expected: shown(&m.expected_recurring),
            negative: m.balance.as_ref().is_some_and(|b| b.amount_minor < 0),
            balance: m.balance.as_ref().map_or_else(|| "–".into(), shown),
            unmatched: m
                .unmatched
                .iter()
                .map(|u| format!("{} ({})", u.vendor, shown(&u.amount)))
                .collect(),
        })
        .collect();
    let rows =
        store::costs::list_expenses(&state.db, &ExpenseFilter::default(), q.before, PAGE).await?;
    let next = (rows.len() as i64 == PAGE)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let recurring = store::costs::list_recurring(&state.db)
        .await?
        .into_iter()
        .map(|c| RecurringView {
            running: c.ends_on.is_none_or(|e| e >= today),
            id: c.id,
            amount: Money::new(c.amount_minor, c.currency).display(),
            monthly: Money::new(
                crate::domain::pledge::monthly_equivalent(c.amount_minor, c.interval),
                c.currency,
            )
            .display(),
            interval: c.interval.as_str(),
            starts_on: c.starts_on.to_string(),
            ends_on: c.ends_on.map(|d| d.to_string()).unwrap_or_default(),
            vendor: c.vendor,
            category: c.category,
        })
        .collect();
    let labels = store::costs::labels(&state.db)
        .await?
        .into_iter()
        .map(|l| LabelView {
            kind: l.kind.as_str(),
            name: l.name,
            public: l.public,
            uses: l.uses,
        })
        .collect();
    let settings = store::costs::settings(&state.db).await?;
    let instance = if state.measures.configured() {
        let r = service::instance::report(&state, today).await?;
        Some(InstanceCard::from_report(&r, currency))
    } else {
        None
    };
    page(
        &signed,
        "costs.html",
        "costs",
        CostsPage {
            cards,
            instance,
            months,
            from: from.to_string(),
            to: current.to_string(),
            expenses: rows.into_iter().map(Into::into).collect(),
            next,
            recurring,
            labels,
            currency: currency.code(),
            today: today.to_string(),
            opening_balance: Money::new(settings.opening_balance_minor, currency).decimal(),
            opening_month: settings.opening_month.clone().unwrap_or_default(),
            goal_follows_costs: settings.goal_follows_costs,
        },
    )
}

/// An amount typed in major units of `currency`, as a field error.
fn amount(field: &str, text: &str, currency: Currency) -> Result<i64> {
    Money::parse_decimal(text, currency)
        .map(|m| m.amount_minor)
        .map_err(|m| Error::field(field, m))
}

fn day(field: &str, text: &str) -> Result<Day> {
    Day::parse(field, text).map_err(|e| Error::Validation(vec![e]))
}

fn optional(text: &str) -> Option<&str> {
    Some(text.trim()).filter(|t| !t.is_empty())
}

#[derive(Deserialize)]
pub struct ExpenseForm {
    #[serde(default)]
    date: String,
    #[serde(default)]
    vendor: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    original_amount: String,
    #[serde(default)]
    original_currency: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    reference: String,
    #[serde(default, deserialize_with = "blank_as_none")]
    recurring_cost_id: Option<i64>,
    /// YYYY-MM; blank: the month of `date`.
    #[serde(default)]
    recurring_month: String,
}

pub async fn record_expense(
    State(state): State<AppState>,
    OwnerForm { signed, form }: OwnerForm<ExpenseForm>,
) -> Result<Response> {
    let outcome = async {
        let currency = service::tiers::campaign_currency(&state, None, "currency").await?;
        let minor = amount("amount", &form.amount, currency)?;
        let original = match (
            optional(&form.original_amount),
            optional(&form.original_currency),
        ) {
            (Some(a), Some(c)) => {
                let c = Currency::parse(c).ok_or_else(|| {
                    Error::field("original_currency", "must be an ISO 4217 currency code")
                })?;
                (Some(amount("original_amount", a, c)?), Some(c.code()))
            }
            (None, None) => (None, None),
            _ => {
                return Err(Error::field(
                    "original_amount",
                    "give both the amount paid and its currency, or neither",
                ));
            }
        };
        let date = day("date", &form.date)?;
        let expense = NewExpense::parse(
            &ExpenseInput {
                spent_on: Some(date.date()),
                vendor: &form.vendor,
                category: &form.category,
                amount_minor: minor,
                original_amount_minor: original.0,
                original_currency: original.1,
                note: &form.note,
                external_ref: optional(&form.reference),
                recurring_cost_id: form.recurring_cost_id,
                recurring_month: optional(&form.recurring_month),
            },
            currency,
            Utc::now().date_naive(),
        )?;
        let row = service::costs::record_expense(&state, &signed.admin.actor(), &expense).await?;
        Ok(format!(
            "Recorded {} to {} on {} as expense #{}.",
            Money::new(row.amount_minor, row.currency).display(),
            row.vendor,
            row.spent_on,
            row.id
        ))
    }
    .await;
    after(signed.cookies, "/admin/costs", outcome)
}

#[derive(Deserialize)]
pub struct VoidForm {
    #[serde(default)]
    reason: String,
}

pub async fn void_expense(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    OwnerForm { signed, form }: OwnerForm<VoidForm>,
) -> Result<Response> {
    let outcome = service::costs::void_expense(&state, &signed.admin.actor(), id, &form.reason)
        .await
        .map(|_| format!("Expense #{id} voided."));
    after(signed.cookies, "/admin/costs", outcome)
}

#[derive(Deserialize)]
pub struct RecurringForm {
    #[serde(default)]
    vendor: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    interval: String,
    #[serde(default)]
    starts_on: String,
    #[serde(default)]
    ends_on: String,
    #[serde(default)]
    note: String,
}

pub async fn create_recurring(
    State(state): State<AppState>,
    OwnerForm { signed, form }: OwnerForm<RecurringForm>,
) -> Result<Response> {
    let outcome = async {
        let currency = service::tiers::campaign_currency(&state, None, "currency").await?;
        let minor = amount("amount", &form.amount, currency)?;
        let interval = Interval::parse(form.interval.trim())
            .ok_or_else(|| Error::field("interval", "must be month or year"))?;
        let starts_on = day("starts_on", &form.starts_on)?;
        let ends_on = optional(&form.ends_on)
            .map(|d| day("ends_on", d))
            .transpose()?;
        let cost = NewRecurringCost::parse(
            &form.vendor,
            &form.category,
            minor,
            currency,
            interval,
            starts_on.date(),
            ends_on.map(Day::date),
            &form.note,
        )?;
        let row = service::costs::create_recurring(&state, &signed.admin.actor(), &cost).await?;
        Ok(format!(
            "Recurring cost #{} for {} created.",
            row.id, row.vendor
        ))
    }
    .await;
    after(signed.cookies, "/admin/costs", outcome)
}

#[derive(Deserialize)]
pub struct EndForm {
    #[serde(default)]
    ends_on: String,
}

pub async fn end_recurring(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    OwnerForm { signed, form }: OwnerForm<EndForm>,
) -> Result<Response> {
    let outcome = async {
        let ends_on = day("ends_on", &form.ends_on)?;
        let row = service::costs::end_recurring(&state, &signed.admin.actor(), id, ends_on.date())
            .await?;
        Ok(format!(
            "Recurring cost #{} ends on {}.",
            row.id,
            ends_on.date()
        ))
    }
    .await;
    after(signed.cookies, "/admin/costs", outcome)
}

#[derive(Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    opening_balance: String,
    /// YYYY-MM: the balance is at the start of this month.
    #[serde(default)]
    as_of: String,
    #[serde(default)]
    goal_follows_costs: Option<String>,
}

pub async fn update_settings(
    State(state): State<AppState>,
    OwnerForm { signed, form }: OwnerForm<SettingsForm>,
) -> Result<Response> {
    let outcome = async {
        let currency = service::tiers::campaign_currency(&state, None, "currency").await?;
        let text = form.opening_balance.trim();
        let (negative, text) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let minor = amount(
            "opening_balance",
            if text.is_empty() { "0" } else { text },
            currency,
        )?;
        let month = Month::parse("as_of", form.as_of.trim())?;
        let opening = Opening::parse(if negative { -minor } else { minor }, month.first_day())?;
        service::costs::update_settings(
            &state,
            &signed.admin.actor(),
            opening,
            form.goal_follows_costs.is_some(),
        )
        .await?;
        Ok(format!(
            "Opening balance {} at the start of {month} saved.",
            Money::new(opening.amount_minor, currency).display()
        ))
    }
    .await;
    after(signed.cookies, "/admin/costs", outcome)
}

#[derive(Deserialize)]
pub struct LabelForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    public: Option<String>,
}

pub async fn set_label(
    State(state): State<AppState>,
    OwnerForm { signed, form }: OwnerForm<LabelForm>,
) -> Result<Response> {
    let outcome = async {
        let kind = LabelKind::parse(form.kind.trim())
            .ok_or_else(|| Error::field("kind", "must be vendor or category"))?;
        let public = form.public.is_some();
        service::costs::set_label_public(&state, &signed.admin.actor(), kind, &form.name, public)
            .await?;
        Ok(format!(
            "The {kind} {} is {} on public pages.",
            form.name.trim(),
            if public {
                "named"
            } else {
                "shown as “Other”"
            }
        ))
    }
    .await;
    after(signed.cookies, "/admin/costs", outcome)
}

/// The costs report for the months on the page, as CSV.
pub async fn report_csv(State(state): State<AppState>, _: Signed) -> Result<Response> {
    let today = Utc::now().date_naive();
    let current = month_of(today);
    let report = service::costs::report(
        &state.db,
        current.back(MONTHS_SHOWN),
        current,
        today,
        state.settings.costs.runway_target_months,
    )
    .await?;
    Ok(download::csv(
        &format!("costs-{today}.csv"),
        report.to_csv()?,
    ))
}

/// Every expense (voided ones marked), as CSV: ISO dates, decimal amounts,
/// text that a spreadsheet would run as a formula quoted.
pub async fn expenses_csv(State(state): State<AppState>, _: Signed) -> Result<Response> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| Error::internal_from(e);
    w.write_record([
        "date",
        "expense_id",
        "vendor",
        "category",
        "amount",
        "currency",
        "original_amount",
        "original_currency",
        "reference",
        "recurring_cost_id",
        "recurring_month",
        "note",
        "voided",
        "void_reason",
    ])
    .map_err(csv_err)?;
    let mut before = None;
    loop {
        let rows =
            store::costs::list_expenses(&state.db, &ExpenseFilter::default(), before, 1000).await?;
        for e in &rows {
            w.write_record([
                e.spent_on.to_string(),
                e.id.to_string(),
                crate::domain::spreadsheet_safe(&e.vendor),
                crate::domain::spreadsheet_safe(&e.category),
                Money::new(e.amount_minor, e.currency).decimal(),
                e.currency.code().to_owned(),
                e.original_amount_minor
                    .zip(e.original_currency)
                    .map(|(a, c)| Money::new(a, c).decimal())
                    .unwrap_or_default(),
                e.original_currency
                    .map(|c| c.code().to_owned())
                    .unwrap_or_default(),
                crate::domain::spreadsheet_safe(e.external_ref.as_deref().unwrap_or_default()),
                e.recurring_cost_id
                    .map(|i| i.to_string())
                    .unwrap_or_default(),
                e.recurring_month.clone().unwrap_or_default(),
                crate::domain::spreadsheet_safe(&e.note),
                if e.voided() { "yes" } else { "" }.to_owned(),
                crate::domain::spreadsheet_safe(e.void_reason.as_deref().unwrap_or_default()),
            ])
            .map_err(csv_err)?;
        }
        if rows.len() < 1000 {
            break;
        }
        before = rows.last().map(|r| r.id);
    }
    let bytes = w.into_inner().map_err(Error::internal_from)?;
    let body = String::from_utf8(bytes).map_err(Error::internal_from)?;
    Ok(download::csv(
        &format!("expenses-{}.csv", Utc::now().date_naive()),
        body,
    ))
}
