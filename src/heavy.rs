//! Bounded CPU- and memory-heavy work: password hashing, logo decoding and
//! sponsor-wall PNGs. Each kind has its own `Heavy` pool: `running` threads
//! of its own, at most `waiting` more jobs queued, and every request beyond
//! that refused at once with 503 and `Retry-After` (`Error::Busy`), so a
//! flood costs neither memory nor the async workers.
//!
//! Dedicated threads rather than tokio's blocking pool: the allocator keeps
//! freed memory per thread arena, and argon2's 19 MiB on ever new blocking
//! threads added up to 600 MiB of resident memory under a login flood.

use std::{
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex, mpsc},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::{
    config::Settings,
    error::{Error, Result},
};

/// What a refused request is told to wait, in seconds.
const RETRY_AFTER_SECS: u64 = 1;

type Job = Box<dyn FnOnce() + Send>;

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

#[derive(Clone)]
pub struct Heavy {
    name: &'static str,
    /// Jobs admitted: running plus waiting.
    admitted: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Heavy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Heavy").field("name", &self.name).finish()
    }
}

impl Heavy {
    /// `running` threads (at least 1), `waiting` more jobs in the queue.
    pub fn new(name: &'static str, running: usize, waiting: usize) -> Self {
        let running = running.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..running {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("heavy-{name}-{i}"))
                .spawn(move || {
                    loop {
                        let next = queue.lock().map(|q| q.recv());
                        let Ok(Ok(job)) = next else {
                            break;
                        };
                        // A panicking job answers 500; the thread goes on.
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                    }
                })
                .expect("a thread can be started");
        }
        Heavy {
            name,
            admitted: Arc::new(Semaphore::new(running + waiting)),
            jobs,
        }
    }

    /// The number of cores, for pools sized to the machine.
    pub fn cores() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    /// Runs `job` on one of the pool's threads once it is free;
    /// `Error::Busy` when the queue is full.
    pub async fn run<T, F>(&self, job: F) -> Result<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let admitted = self.admit()?;
        let (tx, rx) = oneshot::channel();
        // The admission moves into the job: a client that hangs up does not
        // free its place while its job still runs and holds memory.
        self.submit(Box::new(move || {
            let _admitted = admitted;
            let _ = tx.send(job());
        }))?;
        rx.await
            .map_err(|_| Error::internal(format!("a {} job panicked", self.name)))
    }

    /// Takes one place, as a running job does, until the `Slot` is dropped;
    /// jobs submitted after it wait behind it. Tests use it to fill a pool
    /// without timing.
    pub fn occupy(&self) -> Result<Slot> {
        let admitted = self.admit()?;
        let (release, released) = mpsc::channel::<()>();
        self.submit(Box::new(move || {
            let _admitted = admitted;
            let _ = released.recv();
        }))?;
        Ok(Slot { _release: release })
    }

    fn admit(&self) -> Result<OwnedSemaphorePermit> {
        self.admitted.clone().try_acquire_owned().map_err(|_| {
            metrics::counter!("patronage_heavy_refused_total", "pool" => self.name).increment(1);
            Error::Busy {
                retry_after_secs: RETRY_AFTER_SECS,
            }
        })
    }

    fn submit(&self, job: Job) -> Result<()> {
        self.jobs
            .send(job)
            .map_err(|_| Error::internal(format!("the {} threads stopped", self.name)))
    }
}

/// A place taken in a `Heavy` pool.
pub struct Slot {
    _release: mpsc::Sender<()>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_is_refused_and_frees_up_afterwards() {
        let pool = Heavy::new("test", 1, 1);
        let held = pool.occupy().unwrap();
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
