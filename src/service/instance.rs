//! The instance in context: active users (read from Mastodon's admin
//! measures, kept an hour) set against the supporters and the monthly
//! costs. Never fails because Mastodon is down or not configured: the
//! answer then says it is not available, and why.

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    context::Context,
    domain::{
        costs::month_of,
        instance::{per_head_rounded_up, share_basis_points},
        money::{Money, MoneyView},
    },
    error::Result,
    store,
};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InstanceReport {
    /// False when `mastodon.admin_token` is not set or the instance did
    /// not answer; the figures below that need active users are then null.
    pub available: bool,
    /// Why the figures are not available; null when they are.
    pub reason: Option<String>,
    /// Active users over `period_start` to `period_end` (30 days), as
    /// Mastodon counted them.
    pub active_users: Option<i64>,
    pub period_start: Option<NaiveDate>,
    pub period_end: Option<NaiveDate>,
    /// Patrons with a running pledge plus sponsors on the wall (as the
    /// public funding figures count them).
    pub supporters: i64,
    /// `supporters` as a share of `active_users`: hundredths of a percent,
    /// rounded down.
    pub supporters_share_basis_points: Option<i64>,
    /// The average monthly costs of the 3 complete months before this one
    /// (as on the Costs page).
    pub monthly_costs: MoneyView,
    /// Monthly costs ÷ active users, rounded up: what each active user
    /// would need to give a month to cover the costs.
    pub cost_per_active_user: Option<MoneyView>,
    /// Monthly costs ÷ supporters, rounded up: what each supporter would
    /// need to give a month to cover the costs alone; null without
    /// supporters.
    pub cost_per_supporter: Option<MoneyView>,
}

/// The figures as of `today`.
pub async fn report(ctx: &Context, today: NaiveDate) -> Result<InstanceReport> {
    let month = month_of(today);
    let costs = super::costs::report(
        &ctx.db,
        month,
        month,
        today,
        ctx.settings.costs.runway_target_months,
    )
    .await?;
    let facts = store::funding::facts(&ctx.db, today, ctx.settings.sponsors.grace_days).await?;
    let currency = facts.currency;
    let supporters = facts.patrons_count + facts.sponsors_count;
    let monthly_costs = costs.now.monthly_costs.amount_minor;
    let money = |minor: i64| Money::new(minor, currency).view();
    let users = ctx.measures.active_users(today).await;
    let count = users.as_ref().ok().map(|u| u.count);
    Ok(InstanceReport {
        available: users.is_ok(),
        reason: users.as_ref().err().map(|e| e.reason()),
        active_users: count,
        period_start: users.as_ref().ok().map(|u| u.start_at),
        period_end: users.as_ref().ok().map(|u| u.end_at),
        supporters,
        supporters_share_basis_points: count.and_then(|n| share_basis_points(supporters, n)),
        monthly_costs: money(monthly_costs),
        cost_per_active_user: count
            .and_then(|n| per_head_rounded_up(monthly_costs, n))
            .map(money),
        cost_per_supporter: per_head_rounded_up(monthly_costs, supporters).map(money),
    })
}
