//! The fediverse jobs: the daily role sync (linked patrons whose status
//! changed, once each; the configured command run with them), and the
//! bot's monthly summary post.

use chrono::{DateTime, Utc};

use crate::{context::Context, domain::month::Month, error::Result, service};

pub async fn role_sync(ctx: &Context, _slot: DateTime<Utc>) -> Result<String> {
    service::fediverse::daily(ctx).await
}

/// Last month's summary, queued once per month (the post's key).
pub async fn summary(ctx: &Context, slot: DateTime<Utc>) -> Result<String> {
    let last = Month::of(Month::of(slot).start() - chrono::Duration::days(1));
    Ok(if service::posts::monthly_summary(ctx, last).await? {
        format!("summary of {last} queued")
    } else {
        "monthly posts are off".to_owned()
    })
}
