//! Work that repeats in the background of every replica, until shutdown.

use std::{future::Future, sync::Arc, time::Duration};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Runs `work` every `period` (a slow run delays the next, never stacks)
/// until `shutdown` is cancelled. Shutdown does not interrupt a run.
pub fn every<F, Fut>(period: Duration, shutdown: CancellationToken, mut work: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => work().await,
            }
        }
    });
}

/// A queue worker: when woken, and every `poll` in case a wake was missed,
/// runs `batch` until it claims fewer than `full` items (the queue is
/// drained) or fails (logged as `name`; the next wake or poll tries again).
pub fn drain_on_wake<F, Fut>(
    name: &'static str,
    poll: Duration,
    wake: Arc<Notify>,
    full: usize,
    shutdown: CancellationToken,
    mut batch: F,
) where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = crate::error::Result<usize>> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
                _ = wake.notified() => {}
            }
            loop {
                match batch().await {
                    Ok(n) if n == full && !shutdown.is_cancelled() => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(worker = name, error = %e, "cannot claim work");
                        break;
                    }
                }
            }
        }
    });
}
