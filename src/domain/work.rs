//! The states of queued work: tasks, messages, webhook events and scheduled
//! runs. Stored as text; these enums are the only place the words live.

use super::text_enum;

text_enum!(
    /// A task: waiting (or waiting again after a failure), held by a
    /// worker under a lease, finished, or given up on for an admin to see.
    TaskStatus { Pending => "pending", Running => "running", Done => "done", Dead => "dead" }
);

text_enum!(
    /// A queued email: to send (again), sent, or refused for good.
    MailStatus { Pending => "pending", Sent => "sent", Failed => "failed" }
);

text_enum!(
    /// A stored Stripe event: not applied yet (or waiting for another),
    /// applied, or failing (retried by a task; admins see it).
    EventStatus { Pending => "pending", Processed => "processed", Failed => "failed" }
);

text_enum!(
    /// One scheduled run of a job.
    RunStatus { Running => "running", Succeeded => "succeeded", Failed => "failed" }
);

/// What a committed change asks of the replica, run by
/// `Context::after_commit` once the transaction is durable, and what other
/// replicas hear of it.
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

impl Effects {
    /// The words other replicas receive (`store::notify`), e.g. "public tasks".
    pub fn words(self) -> String {
        let mut words = Vec::new();
        for (on, word) in [
            (self.public, "public"),
            (self.mail, "mail"),
            (self.tasks, "tasks"),
        ] {
            if on {
                words.push(word);
            }
        }
        words.join(" ")
    }

    /// The effects named by `words`; unknown words are ignored, so a newer
    /// replica may announce more than an older one understands.
    pub fn from_words(words: &str) -> Effects {
        let mut effects = Effects::NONE;
        for word in words.split_whitespace() {
            match word {
                "public" => effects.public = true,
                "mail" => effects.mail = true,
                "tasks" => effects.tasks = true,
                _ => {}
            }
        }
        effects
    }

    pub fn is_none(self) -> bool {
        self == Effects::NONE
    }
}

#[cfg(test)]
mod tests {
    use super::Effects;

    #[test]
    fn effects_travel_as_words_and_come_back_the_same() {
        for public in [false, true] {
            for mail in [false, true] {
                for tasks in [false, true] {
                    let e = Effects {
                        public,
                        mail,
                        tasks,
                    };
                    assert_eq!(Effects::from_words(&e.words()), e);
                }
            }
        }
        assert_eq!(
            Effects::from_words("tasks later-words public"),
            Effects::PUBLIC | Effects::TASKS
        );
    }
}
