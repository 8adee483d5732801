//! Replicas hear each other through PostgreSQL's LISTEN/NOTIFY. Triggers
//! (migration `20261130000010_notify`) notify inside the writing
//! transaction, so a notice arrives only once its change is committed and
//! readable. Notices can be lost while the connection is down: callers keep
//! polling as the fallback, and after every reconnection `Changed` is
//! delivered once, since something may have changed meanwhile.
//!
//! SQLite runs a single replica: there is nobody to hear, and nothing runs.

use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use tokio_util::sync::CancellationToken;

use super::Db;

/// Something the public sees changed (`data_version_shards` was bumped).
pub const CHANGED: &str = "patronage_changed";
/// Work became due; the payload names the queue's table.
pub const WORK: &str = "patronage_work";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Changed,
    /// The queue (table) with work due, e.g. `outbox`.
    Work(String),
}

const FIRST_RETRY: Duration = Duration::from_millis(250);
const MAX_RETRY: Duration = Duration::from_secs(30);

/// Listens until `shutdown`, calling `on` for every notice, reconnecting
/// with backoff when the connection drops. A no-op on SQLite.
pub fn spawn_listener(
    db: &Db,
    on: impl Fn(Notice) + Send + Sync + 'static,
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
            _ = listen(own.clone(), &on) => {}
        }
        own.close().await;
    });
}

async fn listen(pool: PgPool, on: &impl Fn(Notice)) {
    let mut retry = FIRST_RETRY;
    let mut missed = false;
    loop {
        let ended = match subscribe(&pool).await {
            Ok(mut listener) => {
                retry = FIRST_RETRY;
                // Changes while we were deaf; the queues' workers poll anyway.
                if missed {
                    on(Notice::Changed);
                }
                deliver(&mut listener, on).await
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
    listener.listen_all([CHANGED, WORK]).await?;
    Ok(listener)
}

/// Calls `on` for each notice until the connection is lost (`Ok`) or fails.
async fn deliver(listener: &mut PgListener, on: &impl Fn(Notice)) -> Result<(), sqlx::Error> {
    while let Some(n) = listener.try_recv().await? {
        match n.channel() {
            CHANGED => on(Notice::Changed),
            WORK => on(Notice::Work(n.payload().to_owned())),
            _ => {}
        }
    }
    Ok(())
}
