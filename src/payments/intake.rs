//! Group commit for Stripe's deliveries. Each verified event waits in a
//! line; whoever gets a commit slot takes what waits (up to `MAX_BATCH`)
//! and stores and applies it in one transaction, then answers each
//! delivery. Under load one commit (its flush to disk, the version bump,
//! the pledge read) serves many events; alone, an event commits at once.
//!
//! A batch is all or nothing. If anything in it fails, none of it commits
//! and each of its events goes through `events::receive` alone, where a
//! failure is stored with its retry task as always. An event is answered
//! only once its commit is done, so Stripe's retries cover every failure.

use std::sync::Arc;

use tokio::sync::{Semaphore, oneshot};

use super::{envelope::Event, events};
use crate::{
    context::Context,
    error::{Error, Result},
};

/// Commits that may run at once. Two, so one batch forms (and reads its
/// pledges) while the other commits; four were no faster on PostgreSQL and
/// slower on SQLite (benches/README.md).
const SLOTS: usize = 2;

/// Events in one commit at most: a long line is split between the slots,
/// which commit side by side, instead of one slot holding nearly every
/// waiting delivery while the other commits them one at a time.
const MAX_BATCH: usize = 16;

pub struct Intake {
    waiting: std::sync::Mutex<Vec<Delivery>>,
    slots: Arc<Semaphore>,
}

struct Delivery {
    event: Event,
    payload: String,
    answer: oneshot::Sender<Result<bool>>,
}

impl Default for Intake {
    fn default() -> Self {
        Intake {
            waiting: Default::default(),
            slots: Arc::new(Semaphore::new(SLOTS)),
        }
    }
}

impl Intake {
    /// `events::receive`, sharing its commit with the deliveries that
    /// arrive meanwhile. Returns whether this call stored the event.
    pub async fn receive(&self, ctx: &Arc<Context>, event: Event, payload: String) -> Result<bool> {
        let (answer, mut answered) = oneshot::channel();
        self.lock().push(Delivery {
            event,
            payload,
            answer,
        });
        // Until this event is answered: wait for a slot, then commit what
        // waits (this event among it, or ahead of it).
        loop {
            let slot = tokio::select! {
                biased;
                // Another slot holder took this event and answered.
                stored = &mut answered => return stored.unwrap_or_else(|_| Err(lost())),
                slot = self.slots.clone().acquire_owned() => slot,
            };
            let batch = {
                let mut waiting = self.lock();
                let take = waiting.len().min(MAX_BATCH);
                waiting.drain(..take).collect::<Vec<_>>()
            };
            if batch.is_empty() {
                // Taken by an earlier slot holder, which answers it.
                drop(slot);
                return answered.await.unwrap_or_else(|_| Err(lost()));
            }
            // On a task of its own: this request's client may hang up, which
            // must not cancel the commit the others wait for.
            let ctx = ctx.clone();
            let _ = tokio::spawn(async move {
                commit(&ctx, batch).await;
                drop(slot);
            })
            .await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Delivery>> {
        // A panic while holding it leaves a plain Vec: still usable.
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The answer when the commit that held an event ended without one (it
/// panicked): Stripe delivers the event again.
fn lost() -> Error {
    Error::Unavailable("the event was not stored".into())
}

/// Stores and applies `batch` in one commit and answers each delivery;
/// should that fail, each goes alone.
async fn commit(ctx: &Context, batch: Vec<Delivery>) {
    metrics::histogram!("patronage_stripe_event_batch_size").record(batch.len() as f64);
    let items: Vec<(&Event, &str)> = batch
        .iter()
        .map(|d| (&d.event, d.payload.as_str()))
        .collect();
    let outcome = events::receive_together(&ctx.db, &items).await;
    drop(items);
    match outcome {
        Ok((stored, effects)) => {
            ctx.after_commit(effects);
            for (delivery, stored) in batch.into_iter().zip(stored) {
                match stored {
                    Some(stored) => {
                        let _ = delivery.answer.send(Ok(stored));
                    }
                    // Not in the batch (its payload makes no sense to us):
                    // stored with its failure, alone.
                    None => alone(ctx, delivery).await,
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, events = batch.len(), "a batch of stripe events failed; storing each alone");
            for delivery in batch {
                alone(ctx, delivery).await;
            }
        }
    }
}

async fn alone(ctx: &Context, delivery: Delivery) {
    let stored = events::receive(ctx, delivery.event, &delivery.payload).await;
    let _ = delivery.answer.send(stored);
}
