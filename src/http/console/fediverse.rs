//! The Fediverse page: the role sync helper (linked patrons who became
//! active supporters or stopped, with the `tootctl` lines to run), and how
//! many patrons linked an account.

use axum::{extract::State, response::Response};
use serde::{Deserialize, Serialize};

use super::{OwnerForm, Signed, after, page};
use crate::{
    error::Result,
    http::AppState,
    service::{self, fediverse::RoleSync},
};

#[derive(Serialize)]
struct FediversePage {
    sync: RoleSync,
    command: bool,
    schedule: String,
}

pub async fn show(State(state): State<AppState>, signed: Signed) -> Result<Response> {
    let sync = service::fediverse::role_sync(&state).await?;
    page(
        &signed,
        "fediverse.html",
        "fediverse",
        FediversePage {
            sync,
            command: !state.settings.mastodon.role_sync_command.is_empty(),
            schedule: state.settings.jobs.fediverse_role_sync.clone(),
        },
    )
}

#[derive(Deserialize)]
pub struct Acknowledge {
    up_to: i64,
}

/// "Done": the lines shown were run; they are not shown again.
pub async fn acknowledge(
    State(state): State<AppState>,
    OwnerForm { signed, form }: OwnerForm<Acknowledge>,
) -> Result<Response> {
    let outcome = service::fediverse::acknowledge(&state, form.up_to, &signed.admin.email)
        .await
        .map(|n| format!("{n} changes marked as done."));
    after(signed.cookies, "/admin/fediverse", outcome)
}
