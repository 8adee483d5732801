//! The email outbox. Messages are queued inside the transaction of the
//! change that causes them (the macros below), so a change and its email
//! commit together or not at all. `(cause, recipient)` is unique: the same
//! cause never mails the same person twice, however often it is replayed.
//!
//! Any replica's worker claims due rows under a lease (`FOR UPDATE SKIP
//! LOCKED` on PostgreSQL; SQLite has one writer), sends, and marks them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{Db, Tx, begin_write, now};
use crate::{
    db_run,
    domain::work::MailStatus,
    error::{Error, Result},
    tx_run,
};

/// A message to a supporter (`Tx::mail_supporter`).
pub(crate) struct SupporterMail {
    pub supporter_id: i64,
    pub cause: String,
    pub template: String,
    pub context: String,
}

/// Queues messages to supporters, a few hundred to a statement, each
/// addressed as its supporter's row says now; a `(cause, recipient)`
/// queued before is skipped.
pub(crate) async fn insert_supporter_mails(tx: &mut Tx, mails: &[SupporterMail]) -> Result<()> {
    let at = now();
    for chunk in mails.chunks(super::ROWS_PER_STATEMENT) {
        tx_run!(tx, |conn| {
            let mut q =
                sqlx::QueryBuilder::new("WITH m (cause, template, context, supporter_id) AS (");
            q.push_values(chunk, |mut row, m| {
                row.push_bind(&m.cause)
                    .push_bind(&m.template)
                    .push_bind(&m.context)
                    .push_bind(m.supporter_id);
            });
            // `WHERE true`: SQLite reads an ON CONFLICT after a join as
            // part of the join otherwise.
            q.push(
                ") INSERT INTO outbox (cause, recipient, template, locale, context, supporter_id, status, next_attempt_at, created_at) \
                 SELECT m.cause, s.email, m.template, COALESCE(s.locale, ''), m.context, s.id, 'pending', ",
            );
            q.push_bind(at).push(", ").push_bind(at).push(
                " FROM m JOIN supporters s ON s.id = m.supporter_id WHERE true \
                     ON CONFLICT (cause, recipient) DO NOTHING",
            );
            q.build().execute(&mut *conn).await?;
        });
    }
    Ok(())
}

/// Who among the admins receives a message.
#[derive(Debug, Clone, Copy)]
pub enum AdminAudience {
    Owners,
    OwnersAndViewers,
}

impl AdminAudience {
    pub fn roles(self) -> (&'static str, &'static str) {
        match self {
            AdminAudience::Owners => ("owner", "owner"),
            AdminAudience::OwnersAndViewers => ("owner", "viewer"),
        }
    }
}

/// Queues `template` to every enabled admin of the audience, in the
/// caller's transaction; not to admins made from a Mastodon account (their
/// email is their handle, "@user@host").
macro_rules! mail_admins {
    ($tx:expr, $audience:expr, $cause:expr, $template:expr, $context:expr) => {{
        let (first, second) = $crate::store::outbox::AdminAudience::roles($audience);
        sqlx::query(
            "INSERT INTO outbox (cause, recipient, template, locale, context, supporter_id, status, next_attempt_at, created_at) \
             SELECT $1, a.email, $2, '', $3, NULL, 'pending', $4, $4 FROM admins a \
             WHERE NOT a.disabled AND (a.role = $5 OR a.role = $6) AND a.email NOT LIKE '@%' \
             ON CONFLICT (cause, recipient) DO NOTHING",
        )
        .bind(String::from($cause))
        .bind($template)
        .bind(serde_json::Value::to_string(&$context))
        .bind($crate::store::now())
        .bind(first)
        .bind(second)
        .execute(&mut *$tx)
        .await?
    }};
}
pub(crate) use mail_admins;

/// Queues one message to a supporter in a transaction of its own, for
/// causes that change nothing else (a requested management link).
pub async fn queue_to_supporter(
    db: &Db,
    supporter_id: i64,
    cause: &str,
    template: &str,
    context: serde_json::Value,
) -> Result<()> {
    let mut tx = db.begin_write().await?;
    tx.mail_supporter(supporter_id, cause, template, context)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Records the language a supporter's emails are written in.
pub async fn set_locale(db: &Db, supporter_id: i64, locale: &str) -> Result<()> {
    db_run!(db, |pool| {
        sqlx::query("UPDATE supporters SET locale = $2 WHERE id = $1")
            .bind(supporter_id)
            .bind(locale)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// What messages to these supporters say of them, by supporter, in one
/// read (the ids travel as one JSON array).
pub async fn recipients(db: &Db, supporter_ids: &[i64]) -> Result<HashMap<i64, Recipient>> {
    if supporter_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let ids = serde_json::to_string(supporter_ids)
        .map_err(|e| Error::internal(format!("supporter ids: {e}")))?;
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, Recipient>(sqlx::AssertSqlSafe(format!(
            "SELECT id, display_name, locale FROM supporters WHERE id {}",
            super::in_json_ids(db)
        )))
        .bind(ids)
        .fetch_all(pool)
        .await?
    });
    Ok(rows.into_iter().map(|r| (r.id, r)).collect())
}

/// What a message to a supporter says of them when it is sent.
#[derive(Debug, sqlx::FromRow)]
pub struct Recipient {
    pub id: i64,
    pub display_name: String,
    pub locale: Option<String>,
}

/// Queues a message to admins in a commit of its own.
pub async fn queue_to_admins(
    db: &Db,
    audience: AdminAudience,
    cause: &str,
    template: &str,
    context: serde_json::Value,
) -> Result<()> {
    let mut tx = db.begin_write().await?;
    tx.mail_admins(audience, cause, template, context).await?;
    tx.commit().await?;
    Ok(())
}

/// A message this worker holds the lease on.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedMail {
    pub id: i64,
    pub cause: String,
    pub recipient: String,
    pub template: String,
    pub locale: String,
    pub context: String,
    pub supporter_id: Option<i64>,
    pub attempts: i32,
}

/// The claim, with the row lock PostgreSQL needs so that workers skip each
/// other's rows instead of waiting or taking them twice.
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE outbox SET locked_by = $1, locked_until = $2, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $3 \
             AND (locked_until IS NULL OR locked_until < $3) ORDER BY id LIMIT $4 ",
            $lock,
            ") RETURNING id, cause, recipient, template, locale, context, supporter_id, attempts"
        )
    };
}

/// Takes up to `limit` due messages for `owner` until `lease` ends. A
/// message whose owner died comes due again when its lease lapses.
pub async fn claim(
    db: &Db,
    owner: &str,
    lease: chrono::Duration,
    limit: i64,
) -> Result<Vec<ClaimedMail>> {
    let at = now();
    let rows = match db {
        Db::Sqlite(pool, _) => {
            let _turn = db.turn().await?;
            let mut tx = begin_write!(pool);
            let rows = sqlx::query_as::<_, ClaimedMail>(claim_sql!(""))
                .bind(owner)
                .bind(at + lease)
                .bind(at)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            rows
        }
        Db::Postgres(pool) => {
            sqlx::query_as::<_, ClaimedMail>(claim_sql!("FOR UPDATE SKIP LOCKED"))
                .bind(owner)
                .bind(at + lease)
                .bind(at)
                .bind(limit)
                .fetch_all(pool)
                .await?
        }
    };
    Ok(rows)
}

/// Marks messages sent, if `owner` still holds them.
pub async fn sent(db: &Db, ids: &[i64], owner: &str) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let list = serde_json::to_string(ids).map_err(|e| Error::internal(format!("ids: {e}")))?;
    let _turn = db.turn().await?;
    db_run!(db, |pool| {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE outbox SET status = 'sent', sent_at = $3, locked_by = NULL, locked_until = NULL, last_error = NULL \
             WHERE id {} AND locked_by = $2",
            super::in_json_ids(db)
        )))
        .bind(list)
        .bind(owner)
        .bind(now())
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// Releases a message after a failed send: due again at `retry_at`, or
/// failed for good when `retry_at` is `None`.
pub async fn not_sent(
    db: &Db,
    id: i64,
    owner: &str,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
) -> Result<()> {
    let status = if retry_at.is_some() {
        MailStatus::Pending
    } else {
        MailStatus::Failed
    };
    db_run!(db, |pool| {
        sqlx::query(
            "UPDATE outbox SET status = $3, next_attempt_at = COALESCE($4, next_attempt_at), last_error = $5, \
             locked_by = NULL, locked_until = NULL WHERE id = $1 AND locked_by = $2",
        )
        .bind(id)
        .bind(owner)
        .bind(status.as_str())
        .bind(retry_at)
        .bind(error.chars().take(1000).collect::<String>())
        .execute(pool)
        .await?;
    });
    Ok(())
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub cause: String,
    pub recipient: String,
    pub template: String,
    pub status: MailStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// The newest messages first, optionally of one status, before `before`.
pub async fn list(
    db: &Db,
    status: Option<MailStatus>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<OutboxRow>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, OutboxRow>(
            "SELECT id, cause, recipient, template, status, attempts, next_attempt_at, last_error, created_at, sent_at \
             FROM outbox WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(status.map(MailStatus::as_str))
        .bind(before)
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// Sends a failed message again from the start.
pub async fn retry(db: &Db, id: i64) -> Result<()> {
    let changed = db_run!(db, |pool| {
        sqlx::query(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $2 WHERE id = $1 AND status = 'failed'",
        )
        .bind(id)
        .bind(now())
        .execute(pool)
        .await?
        .rows_affected()
    });
    if changed == 0 {
        return Err(Error::NotFound("failed message"));
    }
    Ok(())
}

/// How many messages are in each status.
pub async fn counts(db: &Db) -> Result<Vec<(MailStatus, i64)>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, (MailStatus, i64)>(
            "SELECT status, CAST(COUNT(*) AS BIGINT) FROM outbox GROUP BY status ORDER BY status",
        )
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// Deletes sent messages older than `before`.
pub async fn prune_sent(db: &Db, before: DateTime<Utc>) -> Result<u64> {
    let n = db_run!(db, |pool| {
        sqlx::query("DELETE FROM outbox WHERE status = 'sent' AND sent_at < $1")
            .bind(before)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(n)
}

/// The newest messages to one supporter, sent or waiting.
pub async fn for_supporter(db: &Db, supporter_id: i64, limit: i64) -> Result<Vec<OutboxRow>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, OutboxRow>(
            "SELECT id, cause, recipient, template, status, attempts, next_attempt_at, last_error, created_at, sent_at \
             FROM outbox WHERE supporter_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(supporter_id)
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}
