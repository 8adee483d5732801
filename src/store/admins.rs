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

/// The columns of an `AdminRow`.
macro_rules! select {
    () => {
        "SELECT id, email, password_hash, role, disabled, created_at FROM admins "
    };
}

pub async fn find_by_email(db: &Db, normalized: &str) -> Result<Option<AdminRow>> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, AdminRow>(concat!(select!(), "WHERE email_normalized = $1"))
            .bind(normalized)
            .fetch_optional(pool)
            .await?
    });
    Ok(row)
}

/// Every admin, oldest first.
pub async fn list(db: &Db) -> Result<Vec<AdminRow>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, AdminRow>(concat!(select!(), "ORDER BY id"))
            .fetch_all(pool)
            .await?
    });
    Ok(rows)
}

pub async fn find(db: &Db, id: i64) -> Result<Option<AdminRow>> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, AdminRow>(concat!(select!(), "WHERE id = $1"))
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

/// What lets an admin be created.
pub enum Grant<'a> {
    /// The command line, or an owner.
    Direct,
    /// The one-time setup token (by hash): unused, unexpired, and no owner
    /// may exist yet; spent in the same transaction.
    SetupToken(&'a str),
    /// An owner's invite (by hash) for this email: unused and unexpired;
    /// spent in the same transaction.
    Invite(&'a str),
}

/// Creates an admin, audited, spending the token that allowed it.
pub async fn create(
    db: &Db,
    actor: &Actor,
    email: &crate::domain::supporter::Email,
    password_hash: &str,
    role: Role,
    grant: Grant<'_>,
) -> Result<AdminRow> {
    let at = now();
    let mut tx = db.begin_write().await?;
    let row = crate::tx_run!(&mut tx, |conn| {
        match grant {
            Grant::Direct => {}
            Grant::SetupToken(hash) => {
                let spent = sqlx::query(
                    "UPDATE setup_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1",
                )
                .bind(at)
                .bind(hash)
                .execute(&mut *conn)
                .await?
                .rows_affected();
                let owners = sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM admins WHERE role = 'owner'",
                )
                .fetch_one(&mut *conn)
                .await?;
                if spent != 1 || owners > 0 {
                    return Err(Error::Unauthorized);
                }
            }
            Grant::Invite(hash) => {
                let spent = sqlx::query(
                    "UPDATE admin_invites SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL \
                     AND expires_at > $1 AND email_normalized = $3 AND role = $4",
                )
                .bind(at)
                .bind(hash)
                .bind(&email.normalized)
                .bind(role.as_str())
                .execute(&mut *conn)
                .await?
                .rows_affected();
                if spent != 1 {
                    return Err(Error::Unauthorized);
                }
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

/// An invite still waiting to be accepted.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InviteRow {
    pub email: String,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
}

/// Stores an invite (by hash), audited.
pub async fn invite(
    db: &Db,
    actor: &Actor,
    token_hash: &str,
    email: &crate::domain::supporter::Email,
    role: Role,
    ttl: Duration,
) -> Result<()> {
    let at = now();
    let mut tx = db.begin_write().await?;
    crate::tx_run!(&mut tx, |conn| {
        sqlx::query(
            "INSERT INTO admin_invites (token_hash, email, email_normalized, role, invited_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(token_hash)
        .bind(&email.address)
        .bind(&email.normalized)
        .bind(role.as_str())
        .bind(actor.id)
        .bind(at)
        .bind(at + ttl)
        .execute(&mut *conn)
        .await?;
    });
    tx.audit(
        actor,
        "admin.invite",
        "admin",
        0,
        json!({"email": email.address, "role": role.as_str()}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The unused, unexpired invite behind `token_hash`.
pub async fn live_invite(db: &Db, token_hash: &str) -> Result<Option<InviteRow>> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, InviteRow>(
            "SELECT email, role, expires_at FROM admin_invites WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now())
        .fetch_optional(pool)
        .await?
    });
    Ok(row)
}

/// Changes an admin's role, audited. The last owner cannot stop being one.
pub async fn set_role(db: &Db, actor: &Actor, id: i64, role: Role) -> Result<AdminRow> {
    let mut tx = db.begin_write().await?;
    let row = crate::tx_run!(&mut tx, |conn| {
        let others = sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM admins WHERE role = 'owner' AND disabled = $2 AND id <> $1",
        )
        .bind(id)
        .bind(false)
        .fetch_one(&mut *conn)
        .await?;
        if role != Role::Owner && others == 0 {
            return Err(Error::conflict(
                "role",
                "the last owner cannot stop being an owner",
            ));
        }
        sqlx::query_as::<_, AdminRow>(
            "UPDATE admins SET role = $2 WHERE id = $1 \
             RETURNING id, email, password_hash, role, disabled, created_at",
        )
        .bind(id)
        .bind(role.as_str())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(Error::NotFound("admin"))?
    });
    tx.audit(
        actor,
        "admin.role",
        "admin",
        id,
        json!({"role": role.as_str()}),
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

/// An admin's second factor, when set up: the TOTP secret and the last
/// time step accepted.
pub async fn second_factor(db: &Db, id: i64) -> Result<Option<(String, Option<i64>)>> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, (Option<String>, Option<i64>)>(
            "SELECT totp_secret, totp_last_step FROM admins WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?
    });
    Ok(row.and_then(|(secret, step)| secret.map(|s| (s, step))))
}

/// Keeps a secret being set up until the admin proves their app has it.
pub async fn set_pending_totp(db: &Db, id: i64, secret: Option<&str>) -> Result<()> {
    let _turn = db.turn().await?;
    db_run!(db, |pool| {
        sqlx::query("UPDATE admins SET totp_pending_secret = $2 WHERE id = $1")
            .bind(id)
            .bind(secret)
            .execute(pool)
            .await?;
    });
    Ok(())
}

pub async fn pending_totp(db: &Db, id: i64) -> Result<Option<String>> {
    let secret = db_run!(db, |pool| {
        sqlx::query_scalar::<_, Option<String>>(
            "SELECT totp_pending_secret FROM admins WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?
    });
    Ok(secret.flatten())
}

/// Turns the second factor on with `secret` and these recovery codes (by
/// hash), replacing any earlier ones; audited.
pub async fn enable_totp(
    db: &Db,
    actor: &Actor,
    id: i64,
    secret: &str,
    step: i64,
    recovery_hashes: &[String],
) -> Result<()> {
    let mut tx = db.begin_write().await?;
    crate::tx_run!(&mut tx, |conn| {
        sqlx::query(
            "UPDATE admins SET totp_secret = $2, totp_pending_secret = NULL, totp_last_step = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(secret)
        .bind(step)
        .execute(&mut *conn)
        .await?;
        sqlx::query("DELETE FROM admin_recovery_codes WHERE admin_id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
        for hash in recovery_hashes {
            sqlx::query("INSERT INTO admin_recovery_codes (admin_id, code_hash) VALUES ($1, $2)")
                .bind(id)
                .bind(hash)
                .execute(&mut *conn)
                .await?;
        }
    });
    tx.audit(actor, "admin.second_factor_on", "admin", id, json!({}))
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Turns the second factor off and forgets its recovery codes; audited.
pub async fn disable_totp(db: &Db, actor: &Actor, id: i64) -> Result<()> {
    let mut tx = db.begin_write().await?;
    crate::tx_run!(&mut tx, |conn| {
        sqlx::query(
            "UPDATE admins SET totp_secret = NULL, totp_pending_secret = NULL, totp_last_step = NULL WHERE id = $1",
        )
        .bind(id)
        .execute(&mut *conn)
        .await?;
        sqlx::query("DELETE FROM admin_recovery_codes WHERE admin_id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
    });
    tx.audit(actor, "admin.second_factor_off", "admin", id, json!({}))
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Records `step` as used; false if it (or a later one) was used already,
/// which also settles two sign-ins racing with one code.
pub async fn use_totp_step(db: &Db, id: i64, step: i64) -> Result<bool> {
    let _turn = db.turn().await?;
    let n = db_run!(db, |pool| {
        sqlx::query(
            "UPDATE admins SET totp_last_step = $2 WHERE id = $1 AND totp_secret IS NOT NULL \
             AND (totp_last_step IS NULL OR totp_last_step < $2)",
        )
        .bind(id)
        .bind(step)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(n == 1)
}

/// Spends a recovery code (by hash); false if unknown or spent.
pub async fn use_recovery_code(db: &Db, id: i64, hash: &str) -> Result<bool> {
    let _turn = db.turn().await?;
    let n = db_run!(db, |pool| {
        sqlx::query(
            "UPDATE admin_recovery_codes SET used_at = $3 WHERE admin_id = $1 AND code_hash = $2 AND used_at IS NULL",
        )
        .bind(id)
        .bind(hash)
        .bind(now())
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(n == 1)
}

pub async fn recovery_codes_left(db: &Db, id: i64) -> Result<i64> {
    let n = db_run!(db, |pool| {
        sqlx::query_scalar::<_, i64>(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM admin_recovery_codes WHERE admin_id = $1 AND used_at IS NULL",
        )
        .bind(id)
        .fetch_one(pool)
        .await?
    });
    Ok(n)
}

/// The admin an owner linked this Mastodon account (`user@host`) to.
pub async fn find_by_mastodon_acct(db: &Db, acct: &str) -> Result<Option<AdminRow>> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, AdminRow>(concat!(select!(), "WHERE mastodon_acct = $1"))
            .bind(acct)
            .fetch_optional(pool)
            .await?
    });
    Ok(row)
}

/// Creates an admin for a Mastodon account (`user@host`), linked to it,
/// audited. It has no mailbox and no password, but the columns are NOT
/// NULL: its email is its handle ("@user@host", never an address, so no
/// mail is queued to it) and its password hash is empty (never verifies).
pub async fn create_for_mastodon(
    db: &Db,
    actor: &Actor,
    acct: &str,
    role: Role,
) -> Result<AdminRow> {
    let handle = format!("@{acct}");
    let mut tx = db.begin_write().await?;
    let row = crate::tx_run!(&mut tx, |conn| {
        sqlx::query_as::<_, AdminRow>(
            "INSERT INTO admins (email, email_normalized, password_hash, role, disabled, created_at, mastodon_acct) \
             VALUES ($1, $1, '', $2, $3, $4, $5) \
             RETURNING id, email, password_hash, role, disabled, created_at",
        )
        .bind(&handle)
        .bind(role.as_str())
        .bind(false)
        .bind(now())
        .bind(acct)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| {
            if e.as_database_error().is_some_and(|d| d.is_unique_violation()) {
                // Signed in twice at once, or an admin with this handle was
                // unlinked: not a new admin either way.
                Error::Forbidden
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
        json!({"email": row.email, "role": role.as_str(), "mastodon_acct": acct}),
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// Every admin's linked Mastodon account, by admin id.
pub async fn mastodon_accts(db: &Db) -> Result<Vec<(i64, String)>> {
    let rows = db_run!(db, |pool| {
        sqlx::query_as::<_, (i64, String)>(
            "SELECT id, mastodon_acct FROM admins WHERE mastodon_acct IS NOT NULL",
        )
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

/// Links (or with None unlinks) a Mastodon account to an admin; audited.
pub async fn set_mastodon_acct(db: &Db, actor: &Actor, id: i64, acct: Option<&str>) -> Result<()> {
    let mut tx = db.begin_write().await?;
    crate::tx_run!(&mut tx, |conn| {
        let n = sqlx::query("UPDATE admins SET mastodon_acct = $2 WHERE id = $1")
            .bind(id)
            .bind(acct)
            .execute(&mut *conn)
            .await
            .map_err(|e| {
                if e.as_database_error()
                    .is_some_and(|d| d.is_unique_violation())
                {
                    Error::conflict(
                        "mastodon_acct",
                        "this Mastodon account is linked to another admin",
                    )
                } else {
                    e.into()
                }
            })?
            .rows_affected();
        if n == 0 {
            return Err(Error::NotFound("admin"));
        }
    });
    tx.audit(
        actor,
        "admin.mastodon_link",
        "admin",
        id,
        json!({"acct": acct}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
