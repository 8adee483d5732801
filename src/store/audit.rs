//! The audit log: who changed what, when. Written in the same transaction as
//! the change it describes, so neither exists without the other.

use chrono::{DateTime, Utc};

use super::Db;
use crate::{db_run, error::Result};

/// Who made a change: an admin, or the command line.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: Option<i64>,
    pub label: String,
}

impl Actor {
    pub fn admin(id: i64, email: &str) -> Self {
        Actor {
            id: Some(id),
            label: email.to_owned(),
        }
    }

    /// patronage itself: scheduled work such as the publication sweep.
    pub fn system() -> Self {
        Actor {
            id: None,
            label: "patronage".to_owned(),
        }
    }

    /// The Administrator role at the Mastodon instance, for the owner who
    /// opted into it (`auth.mastodon.administrators_as`).
    pub fn mastodon_role() -> Self {
        Actor {
            id: None,
            label: "Mastodon Administrator role".to_owned(),
        }
    }

    pub fn cli() -> Self {
        Actor {
            id: None,
            label: "command line".to_owned(),
        }
    }

    /// A patron acting on their own record (through their management link).
    pub fn patron() -> Self {
        Actor {
            id: None,
            label: "patron".to_owned(),
        }
    }
}

/// Inserts an audit row inside the transaction `$tx`.
macro_rules! audit {
    ($tx:expr, $actor:expr, $action:expr, $target_type:expr, $target_id:expr, $details:expr) => {
        sqlx::query(
            "INSERT INTO audit_log (at, actor_id, actor, action, target_type, target_id, details) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind($crate::store::now())
        .bind($actor.id)
        .bind(&$actor.label)
        .bind($action)
        .bind($target_type)
        .bind(Some($target_id))
        .bind(serde_json::Value::to_string(&$details))
        .execute(&mut *$tx)
        .await?
    };
}
pub(crate) use audit;

/// Records an action that has no transaction of its own here (its effect
/// happened at Stripe, say).
pub async fn record(
    db: &Db,
    actor: &Actor,
    action: &str,
    target_type: &str,
    target_id: i64,
    details: serde_json::Value,
) -> Result<()> {
    db_run!(db, |pool| {
        let mut tx = pool.begin().await?;
        audit!(tx, actor, action, target_type, target_id, details);
        tx.commit().await?;
    });
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor_id: Option<i64>,
    pub actor: String,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<i64>,
    pub details: String,
}

/// Newest first, `limit` rows older than `before` (when given).
pub async fn list(
    db: &Db,
    before: Option<i64>,
    action: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditRow>> {
    let before = before.unwrap_or(i64::MAX);
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, AuditRow>(
            "SELECT id, at, actor_id, actor, action, target_type, target_id, details \
             FROM audit_log WHERE id < $1 AND ($2 IS NULL OR action = $2) \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(before)
        .bind(action)
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// The newest entries about one thing (`target_type`, `target_id`).
pub async fn for_target(
    db: &Db,
    target_type: &str,
    target_id: i64,
    limit: i64,
) -> Result<Vec<AuditRow>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, AuditRow>(
            "SELECT id, at, actor_id, actor, action, target_type, target_id, details \
             FROM audit_log WHERE target_type = $1 AND target_id = $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(target_type)
        .bind(target_id)
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// What the audit page filters by; each field absent means any.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor_id: Option<i64>,
    pub action: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// Newest first, `limit` rows older than `before` that `f` selects.
pub async fn search(
    db: &Db,
    f: &AuditFilter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditRow>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, AuditRow>(
            "SELECT id, at, actor_id, actor, action, target_type, target_id, details FROM audit_log \
             WHERE id < $1 AND ($2 IS NULL OR actor_id = $2) AND ($3 IS NULL OR action = $3) \
             AND ($4 IS NULL OR at >= $4) AND ($5 IS NULL OR at < $5) ORDER BY id DESC LIMIT $6",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(f.actor_id)
        .bind(f.action.as_deref())
        .bind(f.from)
        .bind(f.until)
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// Every action recorded so far, for the filter's choices.
pub async fn actions(db: &Db) -> Result<Vec<String>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_scalar::<_, String>("SELECT DISTINCT action FROM audit_log ORDER BY action")
            .fetch_all(pool)
            .await?
    });
    Ok(rows)
}
