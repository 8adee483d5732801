//! Supporters as Stripe customers, and those created by checkout.

use super::prelude::*;

/// The patron with this email, created if new (with `locale` as the
/// language of their emails). An existing patron is never changed here, not
/// their name, visibility or language, not even once they pay: anyone can
/// start a checkout with any address, so doing so must not rename somebody
/// else in public or switch the language of their emails.
pub async fn upsert_patron(
    db: &Db,
    email: &crate::domain::supporter::Email,
    display_name: &str,
    visibility: crate::domain::supporter::Visibility,
    locale: Option<&str>,
) -> Result<i64> {
    let at = now();
    let mut tx = db.begin_write().await?;
    let (id, created_at) = crate::tx_run!(&mut tx, |conn| {
        let row: (i64, DateTime<Utc>) = sqlx::query_as(
            "INSERT INTO supporters (kind, email, email_normalized, display_name, visibility, locale, created_at, updated_at) \
             VALUES ('patron', $1, $2, $3, $4, $6, $5, $5) \
             ON CONFLICT (email_normalized) WHERE kind = 'patron' DO UPDATE SET updated_at = supporters.updated_at \
             RETURNING id, created_at",
        )
        .bind(&email.address)
        .bind(&email.normalized)
        .bind(display_name)
        .bind(visibility.as_str())
        .bind(at)
        .bind(locale)
        .fetch_one(&mut *conn)
        .await?;
        row
    });
    // A row made by this insert carries this call's time; a known patron
    // keeps theirs.
    if created_at == at {
        tx.emit(&crate::store::webhooks::OutboundEvent::new(
            crate::domain::webhooks::EventType::SupporterCreated,
            crate::store::webhooks::Subject::Supporter(id),
        ))
        .await?;
    }
    tx.bump_version();
    tx.commit().await?;
    Ok(id)
}

pub async fn set_customer(db: &Db, supporter_id: i64, customer_id: &str) -> Result<()> {
    db_run!(db, |pool| {
        sqlx::query("UPDATE supporters SET stripe_customer_id = $2 WHERE id = $1 AND (stripe_customer_id IS NULL OR stripe_customer_id = $2)")
            .bind(supporter_id)
            .bind(customer_id)
            .execute(pool)
            .await?;
    });
    Ok(())
}

pub async fn customer_of(db: &Db, supporter_id: i64) -> Result<Option<String>> {
    let id = db_run!(db, |pool| {
        sqlx::query_scalar::<_, Option<String>>(
            "SELECT stripe_customer_id FROM supporters WHERE id = $1",
        )
        .bind(supporter_id)
        .fetch_optional(pool)
        .await?
    });
    Ok(id.flatten())
}

/// A patron with a Stripe customer, by email: who may manage their support.
pub async fn patron_customer_by_email(db: &Db, normalized: &str) -> Result<Option<(i64, String)>> {
    let row = db_run!(db, |pool| {
        sqlx::query_as::<_, (i64, String)>(
            "SELECT id, stripe_customer_id FROM supporters WHERE kind = 'patron' AND email_normalized = $1 \
             AND stripe_customer_id IS NOT NULL",
        )
        .bind(normalized)
        .fetch_optional(pool)
        .await?
    });
    Ok(row)
}

pub async fn supporter_by_customer(db: &Db, customer_id: &str) -> Result<Option<i64>> {
    let id = db_run!(db, |pool| {
        sqlx::query_scalar::<_, i64>("SELECT id FROM supporters WHERE stripe_customer_id = $1")
            .bind(customer_id)
            .fetch_optional(pool)
            .await?
    });
    Ok(id)
}
