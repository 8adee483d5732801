//! Patrons: added by hand, edited by admins.

use serde_json::json;

use crate::{
    context::{Context, Effects},
    domain::{
        supporter::{PatronDraft, Visibility},
        text,
    },
    error::{Error, Result},
    store::{self, audit::Actor, supporters::SupporterRow},
};

/// Adds a patron by hand (someone who pays by bank transfer, say).
pub async fn create_patron(
    ctx: &Context,
    actor: &Actor,
    draft: &PatronDraft,
) -> Result<SupporterRow> {
    let mut tx = ctx.db.begin_write().await?;
    let id = store::supporters::insert_patron(&mut tx, actor, draft).await?;
    tx.commit().await?;
    ctx.after_commit_now(Effects::PUBLIC).await;
    store::supporters::get(&ctx.db, id).await
}

/// Renames a supporter and sets who may see the name. The name is public
/// when the visibility says so, so the public views are rebuilt.
pub async fn update_profile(
    ctx: &Context,
    actor: &Actor,
    id: i64,
    display_name: &str,
    visibility: Visibility,
) -> Result<SupporterRow> {
    let name = text("display_name", display_name, 1, 100, false)
        .map_err(|e| Error::Validation(vec![e]))?;
    let mut tx = ctx.db.begin_write().await?;
    store::supporters::update_profile(&mut tx, actor, id, &name, visibility).await?;
    tx.commit().await?;
    ctx.after_commit_now(Effects::PUBLIC).await;
    store::supporters::get(&ctx.db, id).await
}

/// Emails a patron a fresh management link (their Billing Portal), as the
/// patron could ask for themselves; audited.
pub async fn send_manage_link(ctx: &Context, actor: &Actor, id: i64) -> Result<()> {
    if ctx.gateway.is_none() {
        return Err(Error::PaymentsNotConfigured);
    }
    let supporter = store::supporters::get(&ctx.db, id).await?;
    if store::stripe::patron_customer_by_email(&ctx.db, &supporter.email.to_lowercase())
        .await?
        .is_none()
    {
        return Err(Error::conflict(
            "supporter",
            "this supporter has never paid through Stripe, so there is nothing to manage",
        ));
    }
    // Through the outbox like every email: the link is made when the
    // message is sent, so no usable token sits in the database.
    let cause = format!("manage_link:{}", uuid::Uuid::new_v4());
    store::outbox::queue_to_supporter(&ctx.db, id, &cause, "manage_link", json!({})).await?;
    store::audit::record(
        &ctx.db,
        actor,
        "supporter.manage_link",
        "supporter",
        id,
        json!({}),
    )
    .await?;
    ctx.after_commit(Effects::MAIL);
    Ok(())
}
