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
