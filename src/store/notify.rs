//! Replicas hear each other through PostgreSQL's LISTEN/NOTIFY. After a
//! commit, `Context::after_commit` hands what changed to the `Announcer`,
//! whose one task sends it as a single notice: the sender's name and the
//! effects' words ("web-1 public tasks"). Every listening replica but the
//! sender acts on it.
//!
//! Notices are sent after the commit, never inside the writing
//! transaction: a transaction that notifies holds a database-wide lock
//! from its NOTIFY until its commit is flushed, so every notifying writer
//! waits for every other's fsync (measured here: 5,500 single-insert
//! transactions per second without, 1,400 with). Announced after the
//! commit, a notice still arrives only once its change is readable, and
//! a burst of commits costs one notice per 10 ms, not one each.
//!
//! Notices can be lost (the sender dies between commit and notice, or the
//! connection is down): callers keep polling as the fallback, and after
//! every reconnection a listener delivers `public` once, since something
//! may have changed meanwhile.
//!
//! SQLite runs a single replica: there is nobody to hear, and nothing runs.

use std::sync::{
    Arc,
    atomic::{AtomicU8, Ordering},
};
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Db;
use crate::domain::work::Effects;

/// The one channel; see the module's comment for the payload.
pub const CHANNEL: &str = "patronage";

/// Collects what this replica committed until its task sends it. Cheap to
/// call after every commit: it only sets bits and wakes the task.
#[derive(Debug, Default, Clone)]
pub struct Announcer {
    pending: Arc<AtomicU8>,
    wake: Arc<Notify>,
}

const PUBLIC: u8 = 1;
const MAIL: u8 = 2;
const TASKS: u8 = 4;

impl Announcer {
    pub fn announce(&self, effects: Effects) {
        let bits = (effects.public as u8 * PUBLIC)
            | (effects.mail as u8 * MAIL)
            | (effects.tasks as u8 * TASKS);
        if bits != 0 {
            self.pending.fetch_or(bits, Ordering::AcqRel);
            self.wake.notify_one();
        }
    }

    fn take(&self) -> Effects {
        let bits = self.pending.swap(0, Ordering::AcqRel);
        Effects {
            public: bits & PUBLIC != 0,
            mail: bits & MAIL != 0,
            tasks: bits & TASKS != 0,
        }
    }
}

/// Sends what `announcer` collects, as `sender`, until `shutdown`. A
/// no-op on SQLite (the bits pile up unread, which costs nothing).
pub fn spawn_announcer(db: &Db, announcer: Announcer, sender: String, shutdown: CancellationToken) {
    let Db::Postgres(pool) = db else {
        return;
    };
    let pool = pool.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = announcer.wake.notified() => {}
            }
            // What arrives while this one is sent goes in the next.
            let effects = announcer.take();
            if effects.is_none() {
                continue;
            }
            if let Err(e) = send(&pool, &sender, effects).await {
                // The others find the change at their next poll.
                tracing::warn!(error = %e, "cannot notify the other replicas");
            }
            // A notice is a transaction of its own (its commit is flushed
            // like any other): under a burst of writes, one per PACE
            // carries them all, instead of one per commit.
            tokio::time::sleep(PACE).await;
        }
    });
}

/// The least time between two notices from one replica. A change after a
/// quiet spell is announced at once; during a burst, the others hear of
/// it at most this much later.
const PACE: Duration = Duration::from_millis(10);

/// One notice, from `sender`. Also for writers outside a replica (`seed`).
pub async fn send(pool: &PgPool, sender: &str, effects: Effects) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(format!("{sender} {}", effects.words()))
        .execute(pool)
        .await?;
    Ok(())
}

const FIRST_RETRY: Duration = Duration::from_millis(250);
const MAX_RETRY: Duration = Duration::from_secs(30);

/// Listens until `shutdown`, calling `on` with what every other replica
/// announces, reconnecting with backoff when the connection drops. A no-op
/// on SQLite. `me` is this replica's name: its own notices are skipped.
pub fn spawn_listener(
    db: &Db,
    me: String,
    on: impl Fn(Effects) + Send + Sync + 'static,
    shutdown: CancellationToken,
) {
    let Db::Postgres(pool) = db else {
        return;
    };
    // A connection of its own, so the listener never holds one the
    // application's pool would hand to a request.
    let own = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_lazy_with((*pool.connect_options()).clone());
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = listen(own.clone(), &me, &on) => {}
        }
        own.close().await;
    });
}

async fn listen(pool: PgPool, me: &str, on: &impl Fn(Effects)) {
    let mut retry = FIRST_RETRY;
    let mut missed = false;
    loop {
        let ended = match subscribe(&pool).await {
            Ok(mut listener) => {
                retry = FIRST_RETRY;
                // Changes while we were deaf; the queues' workers poll anyway.
                if missed {
                    on(Effects::PUBLIC);
                }
                deliver(&mut listener, me, on).await
            }
            Err(e) => Err(e),
        };
        match ended {
            Ok(()) => tracing::warn!("notification connection lost; reconnecting"),
            Err(e) => tracing::warn!(
                error = %e,
                retry_in_ms = retry.as_millis() as u64,
                "cannot listen for notifications; polling only until it can"
            ),
        }
        missed = true;
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(MAX_RETRY);
    }
}

async fn subscribe(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // A lost connection returns from `deliver`; `listen` reconnects.
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Calls `on` for each other replica's notice until the connection is
/// lost (`Ok`) or fails.
async fn deliver(
    listener: &mut PgListener,
    me: &str,
    on: &impl Fn(Effects),
) -> Result<(), sqlx::Error> {
    while let Some(n) = listener.try_recv().await? {
        let (sender, words) = n.payload().split_once(' ').unwrap_or((n.payload(), ""));
        if sender != me {
            on(Effects::from_words(words));
        }
    }
    Ok(())
}
