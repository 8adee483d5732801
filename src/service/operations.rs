//! What admins do about work that runs by itself: retrying dead tasks and
//! failed emails.

use serde_json::json;

use crate::{
    context::{Context, Effects},
    error::Result,
    store::{self, audit::Actor, tasks::TaskRow},
};

/// Puts a dead task back in the queue, audited, and wakes the worker.
pub async fn retry_task(ctx: &Context, actor: &Actor, id: i64) -> Result<TaskRow> {
    let mut tx = ctx.db.begin_write().await?;
    let task = store::tasks::revive(&mut tx, id).await?;
    tx.audit(
        actor,
        "task.retry",
        "task",
        id,
        json!({"kind": task.kind, "key": task.dedupe_key}),
    )
    .await?;
    tx.commit().await?;
    ctx.after_commit(Effects::TASKS);
    Ok(task)
}

/// Sends a failed email again from its first try, audited, and wakes the
/// mailer (on every replica).
pub async fn retry_message(ctx: &Context, actor: &Actor, id: i64) -> Result<()> {
    store::outbox::retry(&ctx.db, id).await?;
    store::audit::record(&ctx.db, actor, "outbox.retry", "outbox", id, json!({})).await?;
    ctx.after_commit(Effects::MAIL);
    Ok(())
}
