//! The role sync helper (`/api/v1/admin/fediverse/role-sync`): linked
//! patrons who became active supporters or stopped, with the `tootctl`
//! lines to run, until an owner acknowledges them; and a sponsor's opt-in
//! to its amount in the bot's thank-you post.

use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    error::{Error, Result},
    http::{
        AppState,
        extract::{Admin, Json, Owner, Path},
    },
    service::{self, fediverse::RoleSync},
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(role_sync))
        .routes(routes!(acknowledge))
        .routes(routes!(amount_in_posts))
}

/// The changes not yet acknowledged, oldest first, each with its `tootctl`
/// line when the account is local to the configured instance (remote
/// accounts cannot hold its roles).
#[utoipa::path(get, path = "/api/v1/admin/fediverse/role-sync", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = RoleSync)))]
async fn role_sync(State(state): State<AppState>, _: Admin) -> Result<axum::Json<RoleSync>> {
    Ok(axum::Json(service::fediverse::role_sync(&state).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Acknowledge {
    /// The report's `up_to`: every change up to it is done.
    #[schema(minimum = 0)]
    up_to: i64,
}

#[derive(Serialize, ToSchema)]
struct Acknowledged {
    acknowledged: u64,
}

/// Marks the changes up to `up_to` as done (the lines were run).
#[utoipa::path(post, path = "/api/v1/admin/fediverse/role-sync/acknowledge", tag = "admin", security(("bearer" = [])),
    request_body = Acknowledge, responses((status = 200, body = Acknowledged)))]
async fn acknowledge(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Json(body): Json<Acknowledge>,
) -> Result<axum::Json<Acknowledged>> {
    if body.up_to < 0 {
        return Err(Error::field("up_to", "must be 0 or more"));
    }
    let n = service::fediverse::acknowledge(&state, body.up_to, &admin.email).await?;
    Ok(axum::Json(Acknowledged { acknowledged: n }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AmountInPosts {
    /// The sponsor allowed its amount (its tier's price) in the bot's
    /// thank-you post.
    allowed: bool,
}

/// Records whether a sponsor allowed its amount in its thank-you post.
#[utoipa::path(put, path = "/api/v1/admin/sponsors/{id}/amount-in-posts", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = AmountInPosts,
    responses((status = 204), (status = 404, body = crate::error::Problem)))]
async fn amount_in_posts(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Path(id): Path<i64>,
    Json(body): Json<AmountInPosts>,
) -> Result<StatusCode> {
    service::posts::set_amount_in_posts(&state, &admin.actor(), id, body.allowed).await?;
    Ok(StatusCode::NO_CONTENT)
}
