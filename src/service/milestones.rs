//! Milestones: the monthly goal being reached. Detected in one place,
//! `check_goal`, called after every pledge change commits; each goal
//! amount (per currency) is reached once, recorded in `goal_milestones`, so
//! `goal.reached` fires once however many replicas, retries or replayed
//! Stripe events look at it. The Mastodon post is queued in the same
//! transaction.

use crate::{
    domain::{money::Money, month::Month, pledge::monthly_recurring, webhooks::EventType},
    error::Result,
    store::{
        self, Db,
        webhooks::{OutboundEvent, Subject},
    },
};

/// A goal that was reached by this call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reached {
    pub goal_minor: i64,
    pub currency: String,
    pub monthly_recurring_minor: i64,
    pub event_id: i64,
}

/// Compares the monthly recurring total (monthly pledges and a twelfth of
/// yearly ones, as on the public pages) with the monthly goal; the first
/// time it reaches a goal amount, records the milestone and emits
/// `goal.reached` in one transaction. Returns the milestone when this call
/// recorded it.
pub async fn check_goal(db: &Db) -> Result<Option<Reached>> {
    let today = store::now().date_naive();
    // Sponsors' visibility does not count toward the recurring total.
    let facts = store::funding::facts(db, today, 0).await?;
    let Some(goal) = facts.monthly_goal_minor.filter(|g| *g > 0) else {
        return Ok(None);
    };
    let Some(recurring) = monthly_recurring(facts.monthly_pledges_sum, facts.yearly_pledges_sum)
    else {
        return Ok(None);
    };
    if recurring < goal {
        return Ok(None);
    }
    let currency = facts.currency.code().to_owned();
    let mut tx = db.begin_write().await?;
    if !store::webhooks::record_milestone(&mut tx, goal, &currency).await? {
        return Ok(None);
    }
    let event_id = tx
        .emit(&OutboundEvent::new(
            EventType::GoalReached,
            Subject::Goal {
                goal_minor: goal,
                currency: currency.clone(),
                monthly_recurring_minor: recurring,
            },
        ))
        .await?;
    store::webhooks::set_milestone_event(&mut tx, goal, &currency, event_id).await?;
    super::posts::goal_reached(
        &mut tx,
        Month::of(store::now()),
        Money::new(goal, facts.currency),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(goal, currency, recurring, "monthly goal reached");
    Ok(Some(Reached {
        goal_minor: goal,
        currency,
        monthly_recurring_minor: recurring,
        event_id,
    }))
}

/// `check_goal` after a change committed: a failure is logged, not
/// returned, since the change itself stands; the next change looks again.
pub async fn after_pledge_change(db: &Db) {
    if let Err(e) = check_goal(db).await {
        tracing::warn!(error = %e, "goal check failed; the next pledge change looks again");
    }
}
