//! The kinds of task, and how a claimed row finds its kind.

use serde::{Deserialize, Serialize};

use super::Task;
use crate::{
    context::{Context, Effects},
    error::{Error, Result},
    payments, service,
    store::tasks::ClaimedTask,
};

/// Makes Stripe's catalogue match a tier (product, price, archived prices).
/// Queued by every tier change, so a sync that fails is retried.
#[derive(Debug, Serialize, Deserialize)]
pub struct SyncTier {
    pub tier_id: i64,
}

impl Task for SyncTier {
    const NAME: &'static str = "sync_tier";
    fn key(&self) -> String {
        self.tier_id.to_string()
    }
    async fn run(&self, ctx: &Context) -> Result<Effects> {
        service::tiers::sync_to_stripe(ctx, self.tier_id).await
    }
}

/// Books the fee Stripe kept on a payment, and links the payment to its
/// charge so refunds and disputes find it.
#[derive(Debug, Serialize, Deserialize)]
pub struct SettleFee {
    /// The invoice id, or a gift's payment intent id.
    pub reference: String,
    pub invoice: bool,
}

impl Task for SettleFee {
    const NAME: &'static str = "settle_fee";
    fn key(&self) -> String {
        self.reference.clone()
    }
    async fn run(&self, ctx: &Context) -> Result<Effects> {
        service::payments::settle_fee(ctx, &self.reference, self.invoice).await
    }
}

/// Applies a stored Stripe event that could not be applied when it arrived
/// (it needs Stripe, or another event first), or that an admin replays.
#[derive(Debug, Serialize, Deserialize)]
pub struct ApplyEvent {
    pub event_id: String,
}

impl Task for ApplyEvent {
    const NAME: &'static str = "apply_event";
    /// Stripe itself retries for three days; so do we (hourly at the end).
    const MAX_ATTEMPTS: i32 = 84;
    fn key(&self) -> String {
        self.event_id.clone()
    }
    async fn run(&self, ctx: &Context) -> Result<Effects> {
        payments::events::apply_stored(ctx, &self.event_id).await
    }
}

/// Reads a subscription from Stripe and makes our pledge match it: queued
/// by checkouts and subscription events, so the order they come in does
/// not matter.
#[derive(Debug, Serialize, Deserialize)]
pub struct SyncSubscription {
    pub subscription_id: String,
}

impl Task for SyncSubscription {
    const NAME: &'static str = "sync_subscription";
    fn key(&self) -> String {
        self.subscription_id.clone()
    }
    async fn run(&self, ctx: &Context) -> Result<Effects> {
        let gateway = ctx.gateway.as_ref().ok_or(Error::PaymentsNotConfigured)?;
        payments::events::sync_subscription(&ctx.db, gateway, &self.subscription_id).await?;
        // Webhook deliveries may have been queued with the change.
        Ok(Effects::PUBLIC | Effects::MAIL | Effects::TASKS)
    }
}

/// Sends an outbound webhook event to one endpoint (see
/// `service::webhooks::deliver`). Retried on its own schedule for about
/// three days; every try carries the event's same `webhook-id`.
#[derive(Debug, Serialize, Deserialize)]
pub struct DeliverWebhook {
    pub endpoint_id: i64,
    pub event_id: i64,
}

impl Task for DeliverWebhook {
    const NAME: &'static str = "deliver_webhook";
    const MAX_ATTEMPTS: i32 = crate::domain::webhooks::MAX_ATTEMPTS;
    fn key(&self) -> String {
        format!("{}:{}", self.endpoint_id, self.event_id)
    }
    fn retry_delay(_: &crate::config::QueueSettings, attempts: i32) -> chrono::Duration {
        crate::domain::webhooks::retry_delay(attempts)
    }
    async fn run(&self, ctx: &Context) -> Result<Effects> {
        service::webhooks::deliver(ctx, self.endpoint_id, self.event_id).await
    }
}

/// Posts one status as the bot account (`service::posts`): a thank-you or
/// a milestone. Its key is also Mastodon's `Idempotency-Key`.
#[derive(Debug, Serialize, Deserialize)]
pub struct PostStatus {
    pub post: crate::domain::fediverse::Post,
}

impl Task for PostStatus {
    const NAME: &'static str = "post_status";
    fn key(&self) -> String {
        self.post.key()
    }
    async fn run(&self, ctx: &Context) -> Result<Effects> {
        service::posts::send(ctx, &self.post).await
    }
}

/// How a kind of task is retried.
pub(super) struct Policy {
    pub max_attempts: i32,
    pub retry_delay: fn(&crate::config::QueueSettings, i32) -> chrono::Duration,
}

async fn run<T: Task>(ctx: &Context, row: &ClaimedTask) -> (Result<Effects>, Policy) {
    let outcome = match serde_json::from_str::<T>(&row.payload) {
        Ok(task) => task.run(ctx).await,
        Err(e) => Err(Error::internal(format!("unreadable {} task: {e}", T::NAME))),
    };
    let policy = Policy {
        max_attempts: T::MAX_ATTEMPTS,
        retry_delay: T::retry_delay,
    };
    (outcome, policy)
}

/// Runs a claimed task as its kind; returns the outcome and how its kind
/// is retried.
pub(super) async fn dispatch(ctx: &Context, row: &ClaimedTask) -> (Result<Effects>, Policy) {
    match row.kind.as_str() {
        SyncTier::NAME => run::<SyncTier>(ctx, row).await,
        SettleFee::NAME => run::<SettleFee>(ctx, row).await,
        ApplyEvent::NAME => run::<ApplyEvent>(ctx, row).await,
        SyncSubscription::NAME => run::<SyncSubscription>(ctx, row).await,
        DeliverWebhook::NAME => run::<DeliverWebhook>(ctx, row).await,
        PostStatus::NAME => run::<PostStatus>(ctx, row).await,
        other => (
            Err(Error::internal(format!("unknown task kind {other}"))),
            Policy {
                max_attempts: 1,
                retry_delay: |q, attempts| {
                    super::backoff(q.retry_base_secs, q.max_retry_delay_secs, attempts)
                },
            },
        ),
    }
}
