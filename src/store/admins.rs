//! Admin accounts and the one-time setup tokens that create the first owner.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::{Constraint, Db, audit::Actor, now, on_constraint};
use crate::{
    auth::Role,
    db_run,
    error::{Error, Result},
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AdminRow {
    pub id: i64,
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

pub async fn find_by_email(db: &Db, normalized: &str) -> Result<Option<AdminRow>> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, AdminRow>(
            "SELECT id, email, password_hash, role, disabled, created_at FROM admins WHERE email_normalized = $1",
        )
        .bind(normalized)
        .fetch_optional(pool)
        .await?
    });
    Ok(row)
}

/// Every admin, oldest first.
pub async fn list(db: &Db) -> Result<Vec<AdminRow>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, AdminRow>(
            "SELECT id, email, password_hash, role, disabled, created_at FROM admins ORDER BY id",
        )
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

pub async fn find(db: &Db, id: i64) -> Result<Option<AdminRow>> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, AdminRow>(
            "SELECT id, email, password_hash, role, disabled, created_at FROM admins WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?
    });
    Ok(row)
}

pub async fn owner_exists(db: &Db) -> Result<bool> {
    let n = db_run!(db, |pool| {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM admins WHERE role = 'owner' AND disabled = $1",
        )
        .bind(false)
        .fetch_one(pool)
        .await?
    });
    Ok(n > 0)
}

/// Creates an admin. With `setup_token_hash`, the token must be unused and
/// unexpired and no owner may exist yet; it is spent in the same transaction.
pub async fn create(
    db: &Db,
    actor: &Actor,
    email: &crate::domain::supporter::Email,
    password_hash: &str,
    role: Role,
    setup_token_hash: Option<&str>,
) -> Result<AdminRow> {
    let at = now();
    let mut tx = db.begin_write().await?;
    let row = crate::tx_run!(&mut tx, |conn| {
        if let Some(hash) = setup_token_hash {
            let spent = sqlx::query(
                "UPDATE setup_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1",
            )
            .bind(at)
            .bind(hash)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            let owners =
                sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM admins WHERE role = 'owner'")
                    .fetch_one(&mut *conn)
                    .await?;
            if spent != 1 || owners > 0 {
                return Err(Error::Unauthorized);
            }
        }
        sqlx::query_as::<_, AdminRow>(
            "INSERT INTO admins (email, email_normalized, password_hash, role, disabled, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             RETURNING id, email, password_hash, role, disabled, created_at",
        )
        .bind(&email.address)
        .bind(&email.normalized)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(false)
        .bind(at)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| {
            if on_constraint(&e).is_some_and(|c| matches!(c, Constraint::AdminEmail | Constraint::PatronEmail)) {
                Error::conflict("email", "an admin with this email already exists")
            } else {
                e.into()
            }
        })?
    });
    tx.audit(
        actor,
        "admin.create",
        "admin",
        row.id,
        json!({"email": row.email, "role": role.as_str()}),
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// Stores a new setup token (by hash), replacing unused earlier ones.
pub async fn replace_setup_token(db: &Db, token_hash: &str, ttl: Duration) -> Result<()> {
    let at = now();
    let mut tx = db.begin_write().await?;
    crate::tx_run!(&mut tx, |conn| {
        sqlx::query("DELETE FROM setup_tokens WHERE used_at IS NULL")
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO setup_tokens (token_hash, created_at, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(token_hash)
        .bind(at)
        .bind(at + ttl)
        .execute(&mut *conn)
        .await?;
    });
    tx.commit().await?;
    Ok(())
}
