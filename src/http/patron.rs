//! Patron self-service without passwords: an emailed, signed, single-use,
//! expiring link that opens Stripe's Billing Portal.

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    extract::{ClientIp, Json, Query},
};
use crate::{
    domain::supporter::Email,
    error::{Error, Result},
    links, store,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_link))
        .routes(routes!(open_portal))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ManageRequest {
    #[schema(schema_with = crate::http::openapi::field::email)]
    email: String,
}

#[derive(Serialize, ToSchema)]
struct ManageResponse {
    /// Always the same, whether or not the address is known.
    status: &'static str,
}

/// Emails a management link if the address belongs to a paying patron. The
/// answer never says whether it does.
#[utoipa::path(post, path = "/api/v1/patron/manage", tag = "public", request_body = ManageRequest,
    responses((status = 202, body = ManageResponse), (status = 429, body = crate::error::Problem)))]
async fn request_link(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<ManageRequest>,
) -> Result<(StatusCode, axum::Json<ManageResponse>)> {
    let email = Email::parse("email", &req.email).map_err(|e| Error::Validation(vec![e]))?;
    state.manage_limiter.check(ip, &email.normalized)?;
    if state.gateway.is_none() {
        return Err(Error::PaymentsNotConfigured);
    }
    if let Some((supporter_id, _customer)) =
        store::stripe::patron_customer_by_email(&state.db, &email.normalized).await?
    {
        // Through the outbox like every email: the link itself is made
        // when the message is sent, so no usable token sits in the database.
        let cause = format!("manage_link:{}", uuid::Uuid::new_v4());
        store::outbox::queue_to_supporter(
            &state.db,
            supporter_id,
            &cause,
            "manage_link",
            json!({}),
        )
        .await?;
        state.mailer.wake();
    }
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(ManageResponse {
            status: "If this address supports us, a link is on its way.",
        }),
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct PortalQuery {
    token: String,
}

/// Spends a management link and redirects to the Stripe Billing Portal.
#[utoipa::path(get, path = "/api/v1/patron/portal", tag = "public", params(PortalQuery),
    responses((status = 303, description = "Redirect to the Billing Portal"), (status = 404, body = crate::error::Problem)))]
async fn open_portal(
    State(state): State<AppState>,
    Query(q): Query<PortalQuery>,
) -> Result<Response> {
    let gateway = state.gateway.as_ref().ok_or(Error::PaymentsNotConfigured)?;
    let supporter =
        store::stripe::consume_magic_link(&state.db, &links::token_hash(q.token.trim()))
            .await?
            .ok_or(Error::NotFound(
                "management link (it expired or was already used)",
            ))?;
    let customer = store::stripe::customer_of(&state.db, supporter)
        .await?
        .ok_or(Error::NotFound("management link"))?;
    let return_url = match state.settings.stripe.portal_return_url.as_str() {
        "" => links::public_base(&state.db, &state.settings).await?,
        url => url.to_owned(),
    };
    let url = gateway.portal_url(&customer, &return_url).await?;
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response())
}
