//! Single-use sign-in links for patrons, stored by hash.

use super::prelude::*;

/// Stores management links (by token hash, for a supporter, valid for a
/// while), all in one statement and commit.
pub async fn create_magic_links(db: &Db, links: &[(String, i64, chrono::Duration)]) -> Result<()> {
    if links.is_empty() {
        return Ok(());
    }
    let at = now();
    let _turn = db.turn().await?;
    db_run!(db, |pool| {
        let mut q = sqlx::QueryBuilder::new(
            "INSERT INTO magic_links (token_hash, supporter_id, purpose, created_at, expires_at) ",
        );
        q.push_values(links, |mut row, (hash, supporter_id, ttl)| {
            row.push_bind(hash)
                .push_bind(*supporter_id)
                .push("'manage'")
                .push_bind(at)
                .push_bind(at + *ttl);
        });
        q.build().execute(pool).await?;
    });
    Ok(())
}

/// When an unused, unexpired link expires; None if it cannot be used.
/// Reading never spends it: link scanners in mail systems open every link.
pub async fn magic_link_expiry(db: &Db, token_hash: &str) -> Result<Option<DateTime<Utc>>> {
    let at = now();
    let expires = db_run!(db, |pool| {
        sqlx::query_scalar::<_, DateTime<Utc>>(
            "SELECT expires_at FROM magic_links WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(at)
        .fetch_optional(pool)
        .await?
    });
    Ok(expires)
}

/// Spends a link: the supporter it was for, if it was unused and unexpired.
pub async fn consume_magic_link(db: &Db, token_hash: &str) -> Result<Option<i64>> {
    let at = now();
    let id = db_run!(db, |pool| {
        sqlx::query_scalar::<_, i64>(
            "UPDATE magic_links SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING supporter_id",
        )
        .bind(token_hash)
        .bind(at)
        .fetch_optional(pool)
        .await?
    });
    Ok(id)
}

/// Deletes management links and setup tokens that can no longer be used.
pub async fn prune_links(db: &Db, at: DateTime<Utc>) -> Result<u64> {
    let n = db_run!(db, |pool| {
        let links = sqlx::query("DELETE FROM magic_links WHERE expires_at < $1")
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected();
        let tokens = sqlx::query("DELETE FROM setup_tokens WHERE expires_at < $1")
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected();
        links + tokens
    });
    Ok(n)
}
