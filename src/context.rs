//! What services and workers share: the database, Stripe, settings, the
//! mailer, the public views and this replica's name. Nothing of HTTP: the
//! web layer adds its own (rate limiters, the metrics handle) on top, in
//! `http::AppState`.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::{
    auth::token::TokenKeys, config::Settings, heavy::HeavyPools, mail::Mailer,
    mail::templates::Templates, payments::Gateway, snapshot::PublicCache, store::Db,
    store::notify::Announcer,
};

pub use crate::domain::work::Effects;

pub struct Context {
    pub settings: Settings,
    pub db: Db,
    /// Stripe, when a secret key is configured.
    pub gateway: Option<Gateway>,
    pub mailer: Mailer,
    pub templates: Templates,
    /// Signs tokens and links (admin sessions, logo-upload links).
    pub tokens: TokenKeys,
    /// The pre-rendered public views, refreshed after a change commits.
    pub public: Arc<PublicCache>,
    /// Bounds on hashing, image decoding and rendering.
    pub heavy: HeavyPools,
    /// Wakes this replica's task worker.
    pub tasks: Waker,
    /// Tells the other replicas what this one committed.
    pub announcer: Announcer,
    /// Stripe's deliveries, waiting to share a commit.
    pub stripe_intake: crate::payments::intake::Intake,
    /// This replica's name in leases (tasks, job runs, messages).
    pub instance_id: String,
    /// When this replica started: jobs never ran here before it.
    pub started_at: DateTime<Utc>,
    /// Monthly reports computed here, until the books change.
    pub reports: crate::reports::ReportCache,
    /// The instance's active users, read from Mastodon at most hourly.
    pub measures: crate::fediverse::measures::Measures,
}

impl Context {
    /// The time, at the precision both databases keep.
    pub fn now(&self) -> DateTime<Utc> {
        crate::store::now()
    }

    /// `after_commit`, but the public views are rebuilt before it returns:
    /// an admin's change shows in this replica's public answers at once.
    /// A failed rebuild is logged, not returned: the change itself
    /// committed, and the poll catches up.
    pub async fn after_commit_now(&self, effects: Effects) {
        // The others first: they need not wait for this replica's rebuild.
        self.announcer.announce(effects);
        if effects.public
            && let Err(e) = self.public.refresh().await
        {
            tracing::warn!(error = %e, "public snapshot refresh failed after a write");
        }
        self.wake(Effects {
            public: false,
            ..effects
        });
    }

    /// The effects every committed change may need: the public views are
    /// refreshed, the mail and task workers look for new work now, and the
    /// other replicas hear of it.
    pub fn after_commit(&self, effects: Effects) {
        self.wake(effects);
        self.announcer.announce(effects);
    }

    /// This replica's side of `effects`, for its own commits and for those
    /// another replica announced.
    pub fn wake(&self, effects: Effects) {
        if effects.public {
            self.public.mark_dirty();
        }
        if effects.mail {
            self.mailer.wake();
        }
        if effects.tasks {
            self.tasks.wake();
        }
    }
}

/// Wakes this replica's task worker (after a commit that queued a task).
#[derive(Debug, Default, Clone)]
pub struct Waker(Arc<tokio::sync::Notify>);

impl Waker {
    pub fn wake(&self) {
        self.0.notify_one();
    }

    /// What the worker waits on.
    pub(crate) fn notified(&self) -> Arc<tokio::sync::Notify> {
        self.0.clone()
    }
}
