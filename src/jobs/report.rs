//! The monthly report email: on the 1st, last month's figures to owners and
//! viewers, once per month however many replicas fire.

use crate::context::Effects;
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::{
    context::Context,
    domain::month::Month,
    error::{Error, Result},
    reports,
    store::{self, outbox::AdminAudience},
};

pub async fn run(ctx: &Context, slot: DateTime<Utc>) -> Result<String> {
    let this = Month::of(slot);
    let last = Month::of(this.start() - chrono::Duration::days(1));
    let report = reports::monthly(&ctx.db, last, last).await?;
    let figures = report
        .months
        .first()
        .ok_or_else(|| Error::internal("a one-month report without its month"))?;
    let (failed, recovered) =
        store::stripe::payment_issue_counts(&ctx.db, last.start(), last.end()).await?;
    let today = slot.date_naive();
    let renewals =
        store::supporters::sponsor_terms_ending(&ctx.db, today, today + chrono::Duration::days(30))
            .await?;
    let base = crate::links::public_base(&ctx.db, &ctx.settings).await?;
    let context = json!({
        "month": last.to_string(),
        "currency": report.currency,
        "gross": figures.gross.display,
        "fees": figures.fees.display,
        "refunds": figures.refunds.display,
        "net": figures.net.display,
        "new_supporters": figures.new_patrons,
        "churned_supporters": figures.churned_patrons,
        "failed_payments": failed,
        "recovered_payments": recovered,
        "upcoming_renewals": renewals.iter().map(|r| json!({
            "name": r.name, "tier_name": r.tier_name, "paid_through": r.paid_through.to_string(),
        })).collect::<Vec<_>>(),
        "report_url": format!("{base}/api/v1/admin/reports/monthly?from={last}&to={last}"),
    });
    store::outbox::queue_to_admins(
        &ctx.db,
        AdminAudience::OwnersAndViewers,
        &format!("monthly_report:{last}"),
        "monthly_report",
        context,
    )
    .await?;
    ctx.after_commit(Effects::MAIL);
    Ok(format!("report for {last} queued"))
}
