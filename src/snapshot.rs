//! The public snapshot: every public response pre-rendered as bytes with its
//! ETag, swapped atomically. Requests never touch the database.
//!
//! Staleness bound: an admin's write on this replica refreshes the snapshot
//! before its response is sent; a webhook's within about 100 ms after. Other replicas notice the database's
//! `data_version` within `public.snapshot_poll_secs`, and every replica
//! rebuilds at least once a minute, so month and expiry boundaries pass too.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use axum::body::Bytes;
use chrono::Utc;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use utoipa::ToSchema;

use crate::{
    domain::{
        funding::Funding,
        money::{Money, MoneyView},
        tier::{Interval, TierKind},
    },
    error::Result,
    store::{self, Db},
};

const MAX_AGE: Duration = Duration::from_secs(60);

/// One pre-rendered JSON body.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub body: Bytes,
    /// A strong ETag, quoted.
    pub etag: String,
}

impl Rendered {
    fn json<T: Serialize>(value: &T) -> Self {
        let body = serde_json::to_vec(value).expect("serialisable");
        let digest = Sha256::digest(&body);
        Rendered {
            etag: format!("\"{}\"", hex::encode(&digest[..12])),
            body: Bytes::from(body),
        }
    }
}

#[derive(Debug)]
pub struct Snapshot {
    pub funding: Rendered,
    pub tiers: Rendered,
    pub sponsors: Rendered,
    version: i64,
    built: Instant,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicTier {
    pub id: i64,
    pub kind: TierKind,
    pub name: String,
    pub description: String,
    pub amount: MoneyView,
    pub interval: Interval,
    /// Pay what you want, from this amount; null for a fixed price.
    pub pay_what_you_want_min: Option<MoneyView>,
    pub slots: Option<i64>,
    pub sold_out: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicTierList {
    pub tiers: Vec<PublicTier>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicSponsor {
    pub name: String,
    pub url: String,
    pub tier: PublicSponsorTier,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicSponsorTier {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicSponsorList {
    pub sponsors: Vec<PublicSponsor>,
}

async fn build(db: &Db) -> Result<Snapshot> {
    // Read the version first: a write landing mid-build bumps it again, so
    // the next poll rebuilds rather than keeping a half-old snapshot.
    let version = db.data_version().await?;
    let today = Utc::now().date_naive();
    let facts = store::funding::facts(db, today).await?;
    let tiers = store::tiers::list(db, false).await?;
    let sponsors = store::supporters::public_sponsors(db, today).await?;

    let taken = |id: i64| {
        facts
            .tiers
            .iter()
            .find(|t| t.id == id)
            .map_or(0, |t| t.supporters)
    };
    let public_tiers = PublicTierList {
        tiers: tiers
            .iter()
            .map(|t| PublicTier {
                id: t.id,
                kind: t.kind,
                name: t.name.clone(),
                description: t.description.clone(),
                amount: Money::new(t.amount_minor, t.currency).view(),
                interval: t.interval,
                pay_what_you_want_min: t.pwyw_min_minor.map(|m| Money::new(m, t.currency).view()),
                slots: t.slots,
                sold_out: t.slots.is_some_and(|s| taken(t.id) >= s),
            })
            .collect(),
    };
    let public_sponsors = PublicSponsorList {
        sponsors: sponsors
            .into_iter()
            .map(|s| PublicSponsor {
                name: s.display_name,
                url: s.website_url,
                tier: PublicSponsorTier {
                    id: s.tier_id,
                    name: s.tier_name,
                },
            })
            .collect(),
    };
    Ok(Snapshot {
        funding: Rendered::json(&Funding::from_facts(&facts)),
        tiers: Rendered::json(&public_tiers),
        sponsors: Rendered::json(&public_sponsors),
        version,
        built: Instant::now(),
    })
}

pub struct PublicCache {
    db: Db,
    current: ArcSwap<Snapshot>,
    rebuilding: Mutex<()>,
    /// Signalled by writers that need not wait for the rebuild (webhooks).
    dirty: tokio::sync::Notify,
}

/// How long the poller gathers signals before rebuilding once for all.
const DEBOUNCE: Duration = Duration::from_millis(100);

impl PublicCache {
    pub async fn new(db: Db) -> Result<Self> {
        let first = build(&db).await?;
        Ok(PublicCache {
            db,
            current: ArcSwap::from_pointee(first),
            rebuilding: Mutex::new(()),
            dirty: tokio::sync::Notify::new(),
        })
    }

    pub fn current(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Rebuilds now. Concurrent callers wait for one rebuild that started
    /// after their write, rather than each building their own.
    pub async fn refresh(&self) -> Result<()> {
        let requested = Instant::now();
        let _guard = self.rebuilding.lock().await;
        if self.current.load().built > requested {
            return Ok(());
        }
        let next = build(&self.db).await?;
        self.current.store(Arc::new(next));
        metrics::counter!("patronage_snapshot_rebuilds_total").increment(1);
        Ok(())
    }

    /// Asks for a rebuild soon, without waiting for it: many changes in a
    /// burst cost one rebuild.
    pub fn mark_dirty(&self) {
        self.dirty.notify_one();
    }

    /// Rebuilds if another replica changed the data, or the snapshot is old.
    pub async fn refresh_if_stale(&self) -> Result<()> {
        let snapshot = self.current.load();
        let stale = snapshot.built.elapsed() >= MAX_AGE
            || self.db.data_version().await? != snapshot.version;
        if stale {
            self.refresh().await?;
        }
        Ok(())
    }

    /// Polls for changes until the token is cancelled.
    pub fn spawn_poller(
        self: Arc<Self>,
        every: Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => {
                        if let Err(e) = self.refresh_if_stale().await {
                            tracing::warn!(error = %e, "public snapshot refresh failed; serving the previous one");
                        }
                    }
                    _ = self.dirty.notified() => {
                        tokio::time::sleep(DEBOUNCE).await;
                        if let Err(e) = self.refresh().await {
                            tracing::warn!(error = %e, "public snapshot refresh failed; serving the previous one");
                        }
                    }
                }
            }
        });
    }
}
