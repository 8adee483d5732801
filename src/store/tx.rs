//! One write transaction over either database. A service opens it, passes
//! it down to the store functions of each table it changes, and commits
//! once; what every change may need on the way (a ledger entry, an audit
//! row, a message, a task, the public version) is a method here, so no
//! statement hides a `?` in a macro at the call site.

use serde_json::Value;

use super::{
    audit::{Actor, audit},
    ledger::{self, NewEntry},
    outbox::{AdminAudience, mail_admins, mail_supporter},
};
use crate::{
    error::{Error, Result},
    queue::Task,
};

pub struct Tx {
    pub(crate) conn: TxConn,
    /// The public version is bumped once, just before the commit: a
    /// transaction that books many payments touches its row once, and holds
    /// its lock only for the commit.
    bump_version: bool,
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
            bump_version: false,
        }
    }

    pub async fn commit(mut self) -> Result<()> {
        if self.bump_version {
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
        let id = ledger::insert(self, entry, false).await?;
        id.ok_or_else(|| Error::internal("an entry insert returned no id"))
    }

    /// Appends a ledger entry unless its `(source, external_ref)` is booked
    /// already (`None`); never fails on a repeat.
    pub async fn append_once(&mut self, entry: &NewEntry) -> Result<Option<i64>> {
        ledger::insert(self, entry, true).await
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
        self.bump_version = true;
    }

    /// Queues a task, due now. A task of the same kind and key that has not
    /// started yet makes this one a no-op (it will see the same state).
    pub async fn enqueue<T: Task>(&mut self, task: &T) -> Result<()> {
        super::tasks::insert(self, T::NAME, &task.key(), &task.payload()?, super::now()).await
    }

    /// Records an outbound event and queues its delivery to every enabled
    /// endpoint subscribed to its type, in this transaction: the event is
    /// told if and only if the change commits. Returns the event's id.
    pub async fn emit(&mut self, event: &super::webhooks::OutboundEvent) -> Result<i64> {
        super::webhooks::emit(self, event).await
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
        tx_run!(self, |conn| {
            mail_supporter!(conn, supporter_id, cause, template, context);
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
