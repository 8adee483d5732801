//! The durable task queue. A task is a type (`Task`): a name, a key that
//! makes repeats of the same work one task, a payload, and `run`. It is
//! enqueued with `Tx::enqueue` inside the transaction of the change that
//! needs it, so the change and its follow-up commit together. Every
//! replica's worker claims due tasks under a lease, runs them, and retries
//! failures with one backoff policy (`backoff`); a task that keeps failing
//! is dead-lettered, listed for admins (`GET /api/v1/admin/tasks`), and can
//! be retried from there.

mod tasks;

use std::{future::Future, sync::Arc, time::Duration};

use serde::{Serialize, de::DeserializeOwned};
use tokio_util::sync::CancellationToken;

pub use tasks::{ApplyEvent, DeliverWebhook, PostStatus, SettleFee, SyncSubscription, SyncTier};

use crate::{
    context::{Context, Effects},
    error::{Error, Result},
    store::{
        self,
        tasks::{ClaimedTask, Outcome},
    },
};

/// A kind of durable work.
pub trait Task: Serialize + DeserializeOwned + Send + Sync {
    /// Stored with the task; never change it once tasks of it exist.
    const NAME: &'static str;
    /// Tries before the task is dead-lettered (about a day with the
    /// default backoff, three days for `ApplyEvent`).
    const MAX_ATTEMPTS: i32 = 30;

    /// Two tasks with the same key are the same work: one that has not
    /// started yet absorbs the other.
    fn key(&self) -> String;

    /// The wait before try `attempts + 1` after a failure: the queue's
    /// doubling backoff unless the kind has its own schedule.
    fn retry_delay(q: &crate::config::QueueSettings, attempts: i32) -> chrono::Duration {
        backoff(q.retry_base_secs, q.max_retry_delay_secs, attempts)
    }

    fn payload(&self) -> Result<String> {
        serde_json::to_string(self).map_err(Error::internal_from)
    }

    /// Does the work. Must be idempotent: a task may run again after a
    /// crash, or after its lease lapsed.
    fn run(&self, ctx: &Context) -> impl Future<Output = Result<Effects>> + Send;
}

/// The delay before try `attempts + 1` of anything retried: `base` doubled
/// per attempt, at most `cap`.
pub fn backoff(base_secs: u64, cap_secs: u64, attempts: i32) -> chrono::Duration {
    let exp = attempts.clamp(1, 30) as u32 - 1;
    let secs = base_secs
        .max(1)
        .saturating_mul(1u64.checked_shl(exp).unwrap_or(u64::MAX))
        .min(cap_secs.max(1));
    chrono::Duration::seconds(secs as i64)
}

const BATCH: i64 = 20;

/// Runs due tasks on this replica until shutdown: at once when woken, else
/// every `queue.poll_secs`.
pub fn spawn_worker(ctx: Arc<Context>, shutdown: CancellationToken) {
    let poll = Duration::from_secs(ctx.settings.queue.poll_secs.max(1));
    let wake = ctx.tasks.notified();
    crate::background::drain_on_wake("tasks", poll, wake, BATCH as usize, shutdown, move || {
        let ctx = ctx.clone();
        async move { run_due(&ctx).await }
    });
}

/// Runs one batch of due tasks; returns how many were claimed. Tests call
/// this to drive the queue instead of waiting for the worker.
pub async fn run_due(ctx: &Context) -> Result<usize> {
    let q = &ctx.settings.queue;
    let lease = chrono::Duration::seconds(q.lease_secs.max(1) as i64);
    let claimed = store::tasks::claim(&ctx.db, &ctx.instance_id, lease, BATCH).await?;
    let mut effects = Effects::NONE;
    // Webhook deliveries wait on other people's servers: a batch of them
    // goes out at once (the claim never holds two copies of one key).
    // Everything else runs one after the other, as it always has.
    let (deliveries, others): (Vec<&ClaimedTask>, Vec<&ClaimedTask>) =
        claimed.iter().partition(|t| t.kind == DeliverWebhook::NAME);
    let sent = futures::future::join_all(deliveries.into_iter().map(|t| run_one(ctx, t))).await;
    for (done, finished) in sent {
        effects |= done;
        if let Err(e) = finished {
            ctx.after_commit(effects);
            return Err(e);
        }
    }
    for task in others {
        let (done, finished) = run_one(ctx, task).await;
        effects |= done;
        if let Err(e) = finished {
            // What ran committed: announce it before giving up the batch.
            ctx.after_commit(effects);
            return Err(e);
        }
    }
    ctx.after_commit(effects);
    Ok(claimed.len())
}

/// Runs one claimed task and records how it ended: its effects, and
/// whether the ending could be recorded.
async fn run_one(ctx: &Context, task: &ClaimedTask) -> (Effects, Result<()>) {
    let q = &ctx.settings.queue;
    let (outcome, policy) = tasks::dispatch(ctx, task).await;
    let max_attempts = policy.max_attempts;
    let label = match &outcome {
        Ok(_) => "done",
        Err(_) if task.attempts >= max_attempts => "dead",
        Err(_) => "retry",
    };
    metrics::counter!("patronage_tasks_total", "kind" => task.kind.clone(), "outcome" => label)
        .increment(1);
    let mut effects = Effects::NONE;
    let finished = match outcome {
        Ok(done) => {
            effects = done;
            Outcome::Done
        }
        Err(e) if task.attempts >= max_attempts => {
            tracing::error!(task = task.id, kind = %task.kind, attempts = task.attempts, error = %e, "task dead-lettered");
            Outcome::Dead(e.to_string())
        }
        Err(e) => {
            // Waiting for something else to happen first is expected.
            if matches!(e, Error::NotYet { .. }) {
                tracing::info!(task = task.id, kind = %task.kind, attempts = task.attempts, error = %e, "task waits; will retry");
            } else {
                tracing::warn!(task = task.id, kind = %task.kind, attempts = task.attempts, error = %e, "task failed; will retry");
            }
            let delay = (policy.retry_delay)(q, task.attempts);
            Outcome::Retry(ctx.now() + delay, e.to_string())
        }
    };
    let recorded = store::tasks::finish(&ctx.db, task.id, &ctx.instance_id, finished).await;
    (effects, recorded)
}

/// Runs due tasks here until none is due or held by any worker (another
/// replica's, this one's background worker), or `limit` passes. Returns
/// how many ran here. Tests call it to drive the queue deterministically
/// instead of sleeping.
pub async fn run_until_idle(ctx: &Context, limit: Duration) -> Result<usize> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut total = 0;
    loop {
        let n = run_due(ctx).await?;
        total += n;
        if n == 0 {
            if store::tasks::busy(&ctx.db).await? == 0 || tokio::time::Instant::now() > deadline {
                return Ok(total);
            }
            // Held by another worker: it finishes, or its lease lapses.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::backoff;

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap() {
        let secs = |n| backoff(5, 3600, n).num_seconds();
        assert_eq!((secs(1), secs(2), secs(3)), (5, 10, 20));
        assert_eq!(secs(10), 2560);
        assert_eq!(secs(11), 3600);
        assert_eq!(secs(1000), 3600, "no overflow");
        assert_eq!(secs(0), 5, "a first try counts as one");
    }
}
