//! Work that repeats in the background of every replica, until shutdown.

use std::{future::Future, time::Duration};

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
