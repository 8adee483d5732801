//! Sponsorships: applications, decisions, logos, and publication as terms
//! begin and end.

use crate::{context::Context, store};

/// One publication sweep; also run right after an admin's sponsor decision,
/// so its audit entry is immediate.
pub async fn sweep_publication(ctx: &Context) {
    let today = chrono::Utc::now().date_naive();
    let grace = ctx.settings.sponsors.grace_days;
    match store::supporters::sweep_publication(&ctx.db, today, grace).await {
        Ok(changes) => {
            for c in &changes {
                tracing::info!(
                    sponsor = c.supporter_id,
                    published = c.published,
                    reason = c.reason,
                    "sponsor publication changed"
                );
            }
            if !changes.is_empty() {
                ctx.public.mark_dirty();
            }
        }
        Err(e) => tracing::warn!(error = %e, "publication sweep failed; retrying at the next tick"),
    }
}
