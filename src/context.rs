//! What services and workers share: the database, Stripe, settings, the
//! mailer, the public views and this replica's name. Nothing of HTTP: the
//! web layer adds its own (rate limiters, the metrics handle) on top, in
//! `http::AppState`.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::{
    auth::token::TokenKeys, config::Settings, heavy::HeavyPools, mail::Mailer,
    mail::templates::Templates, payments::Gateway, snapshot::PublicCache, store::Db,
};

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
    /// This replica's name in leases (tasks, job runs, messages).
    pub instance_id: String,
    /// When this replica started: jobs never ran here before it.
    pub started_at: DateTime<Utc>,
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
        if effects.public
            && let Err(e) = self.public.refresh().await
        {
            tracing::warn!(error = %e, "public snapshot refresh failed after a write");
        }
        self.after_commit(Effects {
            public: false,
            ..effects
        });
    }

    /// The effects every committed change may need: the public views are
    /// refreshed, and the mail and task workers look for new work now.
    pub fn after_commit(&self, effects: Effects) {
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

/// What a committed change asks of the replica, run by
/// `Context::after_commit` once the transaction is durable.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[must_use = "a committed change's effects must reach Context::after_commit"]
pub struct Effects {
    /// The public views changed.
    pub public: bool,
    /// A message was queued.
    pub mail: bool,
    /// A task was queued.
    pub tasks: bool,
}

impl Effects {
    pub const NONE: Effects = Effects {
        public: false,
        mail: false,
        tasks: false,
    };
    pub const PUBLIC: Effects = Effects {
        public: true,
        ..Effects::NONE
    };
    pub const MAIL: Effects = Effects {
        mail: true,
        ..Effects::NONE
    };
    pub const TASKS: Effects = Effects {
        tasks: true,
        ..Effects::NONE
    };
}

impl std::ops::BitOr for Effects {
    type Output = Effects;
    fn bitor(self, other: Effects) -> Effects {
        Effects {
            public: self.public || other.public,
            mail: self.mail || other.mail,
            tasks: self.tasks || other.tasks,
        }
    }
}

impl std::ops::BitOrAssign for Effects {
    fn bitor_assign(&mut self, other: Effects) {
        *self = *self | other;
    }
}
