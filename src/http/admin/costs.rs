//! Costs: expenses (recorded, listed, voided), recurring costs (created,
//! listed, ended), the opening balance and goal mode, which vendors and
//! categories are public, and the costs report as JSON or CSV. Owners
//! change; viewers read.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Paged, range::ReportRange};
use crate::{
    domain::{
        costs::{ExpenseInput, LabelKind, NewExpense, NewRecurringCost, Opening},
        money::{Money, MoneyView},
        month::{Day, Month},
        tier::Interval,
    },
    error::Result,
    http::{
        AppState, download,
        extract::{Admin, Json, Owner, Path, Query},
    },
    service::{self, costs::CostsReport, tiers::campaign_currency},
    store::{
        self,
        costs::{CostSettingsRow, ExpenseFilter, ExpenseRow, LabelRow, RecurringCostRow},
    },
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_expenses, record_expense))
        .routes(routes!(void_expense))
        .routes(routes!(list_recurring, create_recurring))
        .routes(routes!(end_recurring))
        .routes(routes!(get_settings, update_settings))
        .routes(routes!(list_labels, set_label))
        .routes(routes!(costs_report))
}

#[derive(Serialize, ToSchema)]
pub struct ExpenseView {
    id: i64,
    /// The day it was paid.
    date: NaiveDate,
    vendor: String,
    category: String,
    /// In the campaign currency: what every figure counts.
    amount: MoneyView,
    /// What was paid, when paid in another currency.
    original_amount: Option<MoneyView>,
    note: String,
    external_reference: Option<String>,
    /// The recurring cost this pays, and the month (YYYY-MM) it pays.
    recurring_cost_id: Option<i64>,
    recurring_month: Option<String>,
    recorded_at: DateTime<Utc>,
    created_by: Option<String>,
    /// Set once voided: the expense then counts nowhere.
    void: Option<VoidView>,
}

#[derive(Serialize, ToSchema)]
struct VoidView {
    at: DateTime<Utc>,
    reason: String,
    by: Option<String>,
}

impl From<ExpenseRow> for ExpenseView {
    fn from(e: ExpenseRow) -> Self {
        ExpenseView {
            id: e.id,
            date: e.spent_on,
            vendor: e.vendor,
            category: e.category,
            amount: Money::new(e.amount_minor, e.currency).view(),
            original_amount: e
                .original_amount_minor
                .zip(e.original_currency)
                .map(|(a, c)| Money::new(a, c).view()),
            note: e.note,
            external_reference: e.external_ref,
            recurring_cost_id: e.recurring_cost_id,
            recurring_month: e.recurring_month,
            recorded_at: e.recorded_at,
            created_by: e.created_by,
            void: e.voided_at.map(|at| VoidView {
                at,
                reason: e.void_reason.unwrap_or_default(),
                by: e.voided_by,
            }),
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ExpenseQuery {
    /// First month, YYYY-MM.
    #[param(schema_with = crate::http::openapi::field::month)]
    from: Option<String>,
    /// Last month, YYYY-MM.
    #[param(schema_with = crate::http::openapi::field::month)]
    to: Option<String>,
    category: Option<String>,
    vendor: Option<String>,
    recurring_cost_id: Option<i64>,
    /// Newest first: pass the previous page's `next_after` here.
    before: Option<i64>,
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// Expenses, the latest recorded first; voided ones included and marked.
#[utoipa::path(get, path = "/api/v1/admin/expenses", tag = "admin", security(("bearer" = [])), params(ExpenseQuery),
    responses((status = 200, body = Paged<ExpenseView>), (status = 422, body = crate::error::Problem)))]
async fn list_expenses(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<ExpenseQuery>,
) -> Result<axum::Json<Paged<ExpenseView>>> {
    let page = super::page(None, q.limit)?;
    let month = |field: &str, m: Option<&str>| m.map(|m| Month::parse(field, m)).transpose();
    let filter = ExpenseFilter {
        from: month("from", q.from.as_deref())?,
        to: month("to", q.to.as_deref())?,
        category: q.category,
        vendor: q.vendor,
        recurring_cost_id: q.recurring_cost_id,
    };
    let rows = store::costs::list_expenses(&state.db, &filter, q.before, page.limit).await?;
    Ok(axum::Json(Paged::new(
        rows.into_iter().map(Into::into).collect(),
        page.limit,
        |e: &ExpenseView| e.id,
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RecordExpense {
    /// The day it was paid (UTC); not in the future.
    date: Day,
    #[schema(schema_with = crate::http::openapi::field::name)]
    vendor: String,
    #[schema(schema_with = crate::http::openapi::field::cost_category)]
    category: String,
    /// In the campaign currency, what the expense cost.
    #[schema(schema_with = crate::http::openapi::field::amount)]
    amount_minor: i64,
    /// Must be the campaign currency; defaults to it.
    #[schema(schema_with = crate::http::openapi::field::currency_or_null, required = false)]
    currency: Option<String>,
    /// Paid in another currency: what was paid, in its minor units.
    #[schema(schema_with = crate::http::openapi::field::amount_or_null, required = false)]
    original_amount_minor: Option<i64>,
    #[schema(schema_with = crate::http::openapi::field::currency_or_null, required = false)]
    original_currency: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::http::openapi::field::note)]
    note: String,
    /// The invoice number, for instance.
    #[schema(schema_with = crate::http::openapi::field::reference_or_null, required = false)]
    external_reference: Option<String>,
    /// The recurring cost this pays.
    recurring_cost_id: Option<i64>,
    /// The month it pays, YYYY-MM; defaults to the expense's month.
    #[schema(schema_with = crate::http::openapi::field::month_or_null, required = false)]
    recurring_month: Option<String>,
}

/// Records an expense. Expenses are never edited or deleted; a mistake is
/// voided.
#[utoipa::path(post, path = "/api/v1/admin/expenses", tag = "admin", security(("bearer" = [])), request_body = RecordExpense,
    responses((status = 201, body = ExpenseView), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn record_expense(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Json(req): Json<RecordExpense>,
) -> Result<(StatusCode, axum::Json<ExpenseView>)> {
    let currency = campaign_currency(&state, req.currency.as_deref(), "currency").await?;
    let expense = NewExpense::parse(
        &ExpenseInput {
            spent_on: Some(req.date.date()),
            vendor: &req.vendor,
            category: &req.category,
            amount_minor: req.amount_minor,
            original_amount_minor: req.original_amount_minor,
            original_currency: req.original_currency.as_deref(),
            note: &req.note,
            external_ref: req.external_reference.as_deref(),
            recurring_cost_id: req.recurring_cost_id,
            recurring_month: req.recurring_month.as_deref(),
        },
        currency,
        Utc::now().date_naive(),
    )?;
    let row = service::costs::record_expense(&state, &admin.actor(), &expense).await?;
    Ok((StatusCode::CREATED, axum::Json(row.into())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct VoidExpense {
    #[schema(schema_with = crate::http::openapi::field::required_note)]
    reason: String,
}

/// Voids an expense: it stays listed, with the reason, and counts nowhere.
#[utoipa::path(post, path = "/api/v1/admin/expenses/{id}/void", tag = "admin", security(("bearer" = [])), request_body = VoidExpense,
    params(("id" = i64, Path)), responses((status = 200, body = ExpenseView), (status = 404, body = crate::error::Problem),
    (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn void_expense(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Path(id): Path<i64>,
    Json(req): Json<VoidExpense>,
) -> Result<axum::Json<ExpenseView>> {
    let row = service::costs::void_expense(&state, &admin.actor(), id, &req.reason).await?;
    Ok(axum::Json(row.into()))
}

#[derive(Serialize, ToSchema)]
pub struct RecurringCostView {
    id: i64,
    vendor: String,
    category: String,
    amount: MoneyView,
    interval: Interval,
    /// Per month: the amount, or a twelfth of a yearly one (rounded down).
    monthly: MoneyView,
    starts_on: NaiveDate,
    /// The last day it runs; null while it runs on.
    ends_on: Option<NaiveDate>,
    note: String,
    created_at: DateTime<Utc>,
    created_by: Option<String>,
}

impl From<RecurringCostRow> for RecurringCostView {
    fn from(c: RecurringCostRow) -> Self {
        RecurringCostView {
            monthly: Money::new(
                crate::domain::pledge::monthly_equivalent(c.amount_minor, c.interval),
                c.currency,
            )
            .view(),
            id: c.id,
            vendor: c.vendor,
            category: c.category,
            amount: Money::new(c.amount_minor, c.currency).view(),
            interval: c.interval,
            starts_on: c.starts_on,
            ends_on: c.ends_on,
            note: c.note,
            created_at: c.created_at,
            created_by: c.created_by,
        }
    }
}

#[derive(Serialize, ToSchema)]
struct RecurringCostList {
    items: Vec<RecurringCostView>,
}

/// Every recurring cost, ended ones too.
#[utoipa::path(get, path = "/api/v1/admin/recurring-costs", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = RecurringCostList)))]
async fn list_recurring(
    State(state): State<AppState>,
    _: Admin,
) -> Result<axum::Json<RecurringCostList>> {
    let rows = store::costs::list_recurring(&state.db).await?;
    Ok(axum::Json(RecurringCostList {
        items: rows.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateRecurring {
    #[schema(schema_with = crate::http::openapi::field::name)]
    vendor: String,
    #[schema(schema_with = crate::http::openapi::field::cost_category)]
    category: String,
    #[schema(schema_with = crate::http::openapi::field::amount)]
    amount_minor: i64,
    /// Must be the campaign currency; defaults to it.
    #[schema(schema_with = crate::http::openapi::field::currency_or_null, required = false)]
    currency: Option<String>,
    interval: Interval,
    /// The first day it runs; a yearly cost renews in this month each year.
    starts_on: Day,
    /// The last day it runs.
    ends_on: Option<Day>,
    #[serde(default)]
    #[schema(schema_with = crate::http::openapi::field::note)]
    note: String,
}

/// Creates a recurring cost (hosting, a domain, a licence).
#[utoipa::path(post, path = "/api/v1/admin/recurring-costs", tag = "admin", security(("bearer" = [])), request_body = CreateRecurring,
    responses((status = 201, body = RecurringCostView), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn create_recurring(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Json(req): Json<CreateRecurring>,
) -> Result<(StatusCode, axum::Json<RecurringCostView>)> {
    let currency = campaign_currency(&state, req.currency.as_deref(), "currency").await?;
    let cost = NewRecurringCost::parse(
        &req.vendor,
        &req.category,
        req.amount_minor,
        currency,
        req.interval,
        req.starts_on.date(),
        req.ends_on.map(Day::date),
        &req.note,
    )?;
    let row = service::costs::create_recurring(&state, &admin.actor(), &cost).await?;
    Ok((StatusCode::CREATED, axum::Json(row.into())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct EndRecurring {
    /// The last day it runs.
    ends_on: Day,
}

/// Ends a recurring cost (or ends it earlier than set before).
#[utoipa::path(post, path = "/api/v1/admin/recurring-costs/{id}/end", tag = "admin", security(("bearer" = [])), request_body = EndRecurring,
    params(("id" = i64, Path)), responses((status = 200, body = RecurringCostView), (status = 404, body = crate::error::Problem),
    (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn end_recurring(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Path(id): Path<i64>,
    Json(req): Json<EndRecurring>,
) -> Result<axum::Json<RecurringCostView>> {
    let row = service::costs::end_recurring(&state, &admin.actor(), id, req.ends_on.date()).await?;
    Ok(axum::Json(row.into()))
}

#[derive(Serialize, ToSchema)]
struct CostSettingsView {
    /// The balance at the start of `as_of`'s month.
    opening_balance: MoneyView,
    /// The first day of a month; null: the books start at zero.
    as_of: Option<NaiveDate>,
    /// "Cover our costs": the public monthly goal follows the monthly costs.
    goal_follows_costs: bool,
    updated_at: DateTime<Utc>,
}

async fn settings_view(state: &AppState, row: CostSettingsRow) -> Result<CostSettingsView> {
    let currency = campaign_currency(state, None, "currency").await?;
    Ok(CostSettingsView {
        opening_balance: Money::new(row.opening_balance_minor, currency).view(),
        as_of: row.opening().month.map(|m| m.first_day()),
        goal_follows_costs: row.goal_follows_costs,
        updated_at: row.updated_at,
    })
}

/// The opening balance and the goal mode.
#[utoipa::path(get, path = "/api/v1/admin/costs/settings", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = CostSettingsView)))]
async fn get_settings(
    State(state): State<AppState>,
    _: Admin,
) -> Result<axum::Json<CostSettingsView>> {
    let row = store::costs::settings(&state.db).await?;
    Ok(axum::Json(settings_view(&state, row).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateSettings {
    /// In the campaign currency; may be negative (money owed).
    #[schema(schema_with = crate::http::openapi::field::signed_amount)]
    opening_balance_minor: i64,
    /// The first day of the month the balance is at the start of.
    as_of: Day,
    #[serde(default)]
    goal_follows_costs: bool,
}

/// Sets the opening balance (the balance at the start of a month) and
/// whether the public monthly goal follows the monthly costs.
#[utoipa::path(put, path = "/api/v1/admin/costs/settings", tag = "admin", security(("bearer" = [])), request_body = UpdateSettings,
    responses((status = 200, body = CostSettingsView), (status = 422, body = crate::error::Problem)))]
async fn update_settings(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Json(req): Json<UpdateSettings>,
) -> Result<axum::Json<CostSettingsView>> {
    let opening = Opening::parse(req.opening_balance_minor, req.as_of.date())?;
    let row =
        service::costs::update_settings(&state, &admin.actor(), opening, req.goal_follows_costs)
            .await?;
    Ok(axum::Json(settings_view(&state, row).await?))
}

#[derive(Serialize, ToSchema)]
struct LabelView {
    kind: LabelKind,
    name: String,
    /// Named on public pages; otherwise shown as "Other".
    public: bool,
    /// Expenses and recurring costs that name it.
    uses: i64,
}

impl From<LabelRow> for LabelView {
    fn from(l: LabelRow) -> Self {
        LabelView {
            kind: l.kind,
            name: l.name,
            public: l.public,
            uses: l.uses,
        }
    }
}

#[derive(Serialize, ToSchema)]
struct LabelList {
    items: Vec<LabelView>,
}

/// Every vendor and category in use, and whether each is public.
#[utoipa::path(get, path = "/api/v1/admin/costs/labels", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = LabelList)))]
async fn list_labels(State(state): State<AppState>, _: Admin) -> Result<axum::Json<LabelList>> {
    let rows = store::costs::labels(&state.db).await?;
    Ok(axum::Json(LabelList {
        items: rows.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SetLabel {
    kind: LabelKind,
    #[schema(schema_with = crate::http::openapi::field::name)]
    name: String,
    public: bool,
}

/// Names a vendor or category on public pages, or stops naming it.
#[utoipa::path(put, path = "/api/v1/admin/costs/labels", tag = "admin", security(("bearer" = [])), request_body = SetLabel,
    responses((status = 200, body = LabelList), (status = 422, body = crate::error::Problem)))]
async fn set_label(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Json(req): Json<SetLabel>,
) -> Result<axum::Json<LabelList>> {
    service::costs::set_label_public(&state, &admin.actor(), req.kind, &req.name, req.public)
        .await?;
    list_labels(State(state), admin).await
}

/// Income, expenses (by category), expected recurring costs and the
/// balance per month; the runway against its target and the coverage now.
#[utoipa::path(get, path = "/api/v1/admin/reports/costs", tag = "admin", security(("bearer" = [])), params(ReportRange),
    responses((status = 200, description = "The report, or the same as CSV",
               content((CostsReport = "application/json"), (String = "text/csv"))),
              (status = 422, body = crate::error::Problem)))]
async fn costs_report(
    State(state): State<AppState>,
    _: Admin,
    headers: HeaderMap,
    Query(q): Query<ReportRange>,
) -> Result<Response> {
    let (from, to) = q.months()?;
    let wants_csv = q.wants_csv(&headers)?;
    let report = service::costs::report(
        &state.db,
        from,
        to,
        Utc::now().date_naive(),
        state.settings.costs.runway_target_months,
    )
    .await?;
    if !wants_csv {
        return Ok(axum::Json(report).into_response());
    }
    Ok(download::csv(
        &format!("patronage-costs-{from}-to-{to}.csv"),
        report.to_csv()?,
    ))
}
