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

    /// The effects every committed change may need: the public views are
    /// refreshed and the mail worker looks for new messages now.
    pub fn after_commit(&self, effects: Effects) {
        if effects.public {
            self.public.mark_dirty();
        }
        if effects.mail {
            self.mailer.wake();
        }
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
}

impl Effects {
    pub const NONE: Effects = Effects {
        public: false,
        mail: false,
    };
    pub const PUBLIC: Effects = Effects {
        public: true,
        mail: false,
    };
    pub const MAIL: Effects = Effects {
        public: false,
        mail: true,
    };
    pub const BOTH: Effects = Effects {
        public: true,
        mail: true,
    };
}

impl std::ops::BitOr for Effects {
    type Output = Effects;
    fn bitor(self, other: Effects) -> Effects {
        Effects {
            public: self.public || other.public,
            mail: self.mail || other.mail,
        }
    }
}

impl std::ops::BitOrAssign for Effects {
    fn bitor_assign(&mut self, other: Effects) {
        *self = *self | other;
    }
}
