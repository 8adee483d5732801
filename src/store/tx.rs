//! One write transaction over either database. A service opens it, passes
//! it down to the store functions of each table it changes, and commits
//! once; what every change may need on the way (a ledger entry, an audit
//! row, a message, a task, the public version) is a method here, so no
//! statement hides a `?` in a macro at the call site.

use std::collections::{BTreeMap, HashMap, hash_map::Entry};

use serde_json::Value;

use super::{
    audit::{Actor, audit},
    ledger::{self, MonthKey, NewEntry},
    outbox::{AdminAudience, SupporterMail, insert_supporter_mails, mail_admins},
    tasks::NewTask,
};
use crate::{
    error::{Error, Result},
    queue::Task,
};

pub struct Tx {
    pub(crate) conn: TxConn,
    /// Written just before the commit, one statement for each kind.
    deferred: Deferred,
    /// The enabled outbound webhook endpoints, read at the first event this
    /// transaction emits (`webhooks::emit`), for the others.
    pub(crate) webhook_endpoints: Option<Vec<(i64, String)>>,
}

/// What a transaction writes only when it commits. Nothing in it is read
/// back before then, and a transaction that books many payments (a batch of
/// Stripe's deliveries) writes each kind in one statement instead of one
/// per payment. The public version's row is touched once, and locked only
/// for the commit.
#[derive(Default)]
struct Deferred {
    bump_version: bool,
    /// By `(kind, key)`: a repeat keeps the first payload and the earlier
    /// run time, as the pending row would.
    tasks: Vec<NewTask>,
    task_keys: HashMap<(&'static str, String), usize>,
    mails: Vec<SupporterMail>,
    months: BTreeMap<MonthKey, (i64, i64)>,
}

pub enum TxConn {
    /// With its turn at the writer gate, given back when it ends.
    Sqlite(
        sqlx::Transaction<'static, sqlx::Sqlite>,
        tokio::sync::OwnedSemaphorePermit,
    ),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// Runs `$body` with `$conn` bound to the transaction's connection, once per
/// backend, like `db_run!` does for pools.
#[macro_export]
macro_rules! tx_run {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match &mut $tx.conn {
            $crate::store::TxConn::Sqlite(t, _) => {
                let $conn: &mut sqlx::SqliteConnection = &mut *t;
                $body
            }
            $crate::store::TxConn::Postgres(t) => {
                let $conn: &mut sqlx::PgConnection = &mut *t;
                $body
            }
        }
    };
}

impl Tx {
    pub(crate) fn new(conn: TxConn) -> Tx {
        Tx {
            conn,
            deferred: Deferred::default(),
            webhook_endpoints: None,
        }
    }

    pub async fn commit(mut self) -> Result<()> {
        let deferred = std::mem::take(&mut self.deferred);
        if !deferred.months.is_empty() {
            ledger::add_to_months(&mut self, &deferred.months).await?;
        }
        // In key order, as the months are: concurrent transactions that
        // share rows then never wait for each other in a circle.
        let mut tasks = deferred.tasks;
        if !tasks.is_empty() {
            tasks.sort_by(|a, b| (a.kind, &a.key).cmp(&(b.kind, &b.key)));
            super::tasks::insert(&mut self, &tasks).await?;
        }
        let mut mails = deferred.mails;
        if !mails.is_empty() {
            mails.sort_by(|a, b| (&a.cause, a.supporter_id).cmp(&(&b.cause, b.supporter_id)));
            insert_supporter_mails(&mut self, &mails).await?;
        }
        if deferred.bump_version {
            tx_run!(self, |conn| {
                sqlx::query(
                    "UPDATE data_version_shards SET version = version + 1 WHERE shard = $1",
                )
                .bind(super::shard())
                .execute(&mut *conn)
                .await?;
            });
        }
        match self.conn {
            TxConn::Sqlite(t, _turn) => t.commit().await?,
            TxConn::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    /// Appends a ledger entry (and its monthly aggregate). A repeat of a
    /// `(source, external_ref)` fails with the database's unique violation,
    /// which `store::on_constraint` recognises.
    pub async fn append(&mut self, entry: &NewEntry) -> Result<i64> {
        let id = ledger::insert(self, std::slice::from_ref(entry), false)
            .await?
            .pop()
            .flatten();
        id.ok_or_else(|| Error::internal("an entry insert returned no id"))
    }

    /// Appends a ledger entry unless its `(source, external_ref)` is booked
    /// already (`None`); never fails on a repeat.
    pub async fn append_once(&mut self, entry: &NewEntry) -> Result<Option<i64>> {
        let mut ids = self.append_all_once(std::slice::from_ref(entry)).await?;
        Ok(ids.pop().flatten())
    }

    /// `append_once` for many entries, in one statement: the id of each, or
    /// `None` for one booked already (or twice in `entries`).
    pub async fn append_all_once(&mut self, entries: &[NewEntry]) -> Result<Vec<Option<i64>>> {
        ledger::insert(self, entries, true).await
    }

    pub async fn audit(
        &mut self,
        actor: &Actor,
        action: &str,
        target_type: &str,
        target_id: i64,
        details: Value,
    ) -> Result<()> {
        tx_run!(self, |conn| {
            audit!(conn, actor, action, target_type, target_id, details);
        });
        Ok(())
    }

    /// The public views changed: other replicas and this one rebuild them,
    /// once this transaction commits.
    pub fn bump_version(&mut self) {
        self.deferred.bump_version = true;
    }

    /// Adds an entry's amount to its month's aggregate (`ledger::insert`).
    pub(crate) fn add_to_month(&mut self, key: MonthKey, amount_minor: i64) {
        let sum = self.deferred.months.entry(key).or_default();
        sum.0 += amount_minor;
        sum.1 += 1;
    }

    /// Queues a task, due now. A task of the same kind and key that has not
    /// started yet makes this one a no-op (it will see the same state).
    pub async fn enqueue<T: Task>(&mut self, task: &T) -> Result<()> {
        let task = NewTask {
            kind: T::NAME,
            key: task.key(),
            payload: task.payload()?,
            run_at: super::now(),
        };
        let deferred = &mut self.deferred;
        match deferred.task_keys.entry((task.kind, task.key.clone())) {
            Entry::Occupied(_) => {}
            Entry::Vacant(slot) => {
                slot.insert(deferred.tasks.len());
                deferred.tasks.push(task);
            }
        }
        Ok(())
    }

    /// Records an outbound event and queues its delivery to every enabled
    /// endpoint subscribed to its type, in this transaction: the event is
    /// told if and only if the change commits. Returns the event's id.
    pub async fn emit(&mut self, event: &super::webhooks::OutboundEvent) -> Result<i64> {
        super::webhooks::emit(self, event).await
    }

    /// `emit` for many events; their ids, in order.
    pub async fn emit_all(
        &mut self,
        events: &[super::webhooks::OutboundEvent],
    ) -> Result<Vec<i64>> {
        super::webhooks::emit_all(self, events).await
    }

    /// Queues `template` to a supporter, addressed as its row says now;
    /// once per `(cause, recipient)`.
    pub async fn mail_supporter(
        &mut self,
        supporter_id: i64,
        cause: &str,
        template: &str,
        context: Value,
    ) -> Result<()> {
        self.deferred.mails.push(SupporterMail {
            supporter_id,
            cause: cause.to_owned(),
            template: template.to_owned(),
            context: context.to_string(),
        });
        Ok(())
    }

    /// Queues `template` to every enabled admin of the audience.
    pub async fn mail_admins(
        &mut self,
        audience: AdminAudience,
        cause: &str,
        template: &str,
        context: Value,
    ) -> Result<()> {
        tx_run!(self, |conn| {
            mail_admins!(conn, audience, cause, template, context);
        });
        Ok(())
    }
}
