//! Bounded CPU- and memory-heavy work: password hashing, logo decoding and
//! sponsor-wall PNGs. Each kind has its own `Heavy` pool: at most `running`
//! jobs at once on tokio's blocking threads, at most `waiting` more queued,
//! and every request beyond that is refused at once with 503 and
//! `Retry-After` (`Error::Busy`), so a flood costs neither memory nor the
//! async workers.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{
    config::Settings,
    error::{Error, Result},
};

/// What a refused request is told to wait, in seconds.
const RETRY_AFTER_SECS: u64 = 1;

/// The service's pools, one per kind of heavy work.
#[derive(Debug, Clone)]
pub struct HeavyPools {
    /// argon2 hashes, about 19 MiB each.
    pub passwords: Heavy,
    /// Logo uploads, decoded and re-encoded (at most 16 MiB of pixels each).
    pub logos: Heavy,
    /// Sponsor walls rasterised to PNG.
    pub walls: Heavy,
}

impl HeavyPools {
    pub fn new(settings: &Settings) -> Self {
        let cores = Heavy::cores();
        let hashes = match settings.auth.password_hashes_at_once {
            0 => cores,
            n => n,
        };
        HeavyPools {
            passwords: Heavy::new("passwords", hashes, settings.auth.password_hash_queue),
            logos: Heavy::new("logos", cores.min(2), 4),
            walls: Heavy::new("walls", cores.min(2), 8),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Heavy {
    name: &'static str,
    /// Jobs that may run at once.
    running: Arc<Semaphore>,
    /// Jobs admitted: running plus waiting.
    admitted: Arc<Semaphore>,
}

impl Heavy {
    /// `running` at once (at least 1), `waiting` more in the queue.
    pub fn new(name: &'static str, running: usize, waiting: usize) -> Self {
        let running = running.max(1);
        Heavy {
            name,
            running: Arc::new(Semaphore::new(running)),
            admitted: Arc::new(Semaphore::new(running + waiting)),
        }
    }

    /// The number of cores, for pools sized to the machine.
    pub fn cores() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    /// Runs `job` on a blocking thread once a slot is free; `Error::Busy`
    /// when the queue is full.
    pub async fn run<T, F>(&self, job: F) -> Result<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let slot = self.occupy().await?;
        // The slot moves into the job: a client that hangs up does not free
        // it while its job still runs and holds memory.
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            job()
        })
        .await
        .map_err(Error::internal)
    }

    /// Waits for a running slot, held until the `Slot` is dropped; refused
    /// with `Error::Busy` when the queue is full. Tests use it to fill a
    /// pool without timing.
    pub async fn occupy(&self) -> Result<Slot> {
        let Ok(admitted) = self.admitted.clone().try_acquire_owned() else {
            metrics::counter!("patronage_heavy_refused_total", "pool" => self.name).increment(1);
            return Err(Error::Busy {
                retry_after_secs: RETRY_AFTER_SECS,
            });
        };
        let running = self
            .running
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        Ok(Slot {
            _admitted: admitted,
            _running: running,
        })
    }
}

/// A running slot of a `Heavy` pool.
pub struct Slot {
    _admitted: OwnedSemaphorePermit,
    _running: OwnedSemaphorePermit,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_is_refused_and_frees_up_afterwards() {
        let pool = Heavy::new("test", 1, 1);
        let held = pool.occupy().await.unwrap();
        let queued = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(|| 1).await })
        };
        // The queued job takes the only admission slot once it is polled.
        while pool.admitted.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(pool.run(|| 2).await, Err(Error::Busy { .. })));
        drop(held);
        assert_eq!(queued.await.unwrap().unwrap(), 1);
        assert_eq!(pool.run(|| 3).await.unwrap(), 3);
    }
}
