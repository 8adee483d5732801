//! Patron self-service without passwords: an emailed, signed, single-use,
//! expiring link that opens Stripe's Billing Portal.

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    extract::{ClientIp, Json, Query},
};
use crate::{
    domain::supporter::Email,
    error::{Error, Result},
    mail, store,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_link))
        .routes(routes!(open_portal))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ManageRequest {
    email: String,
}

#[derive(Serialize, ToSchema)]
struct ManageResponse {
    /// Always the same, whether or not the address is known.
    status: &'static str,
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The public base for links in emails: the campaign's, else our own address.
pub async fn link_base(state: &AppState) -> Result<String> {
    let campaign = store::campaign::get(&state.db).await?;
    Ok(campaign
        .public_base_url
        .unwrap_or_else(|| format!("http://{}", state.settings.server.bind)))
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
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let token = hex::encode(raw);
        let ttl = chrono::Duration::minutes(state.settings.mail.magic_link_ttl_minutes);
        store::stripe::create_magic_link(&state.db, &token_hash(&token), supporter_id, ttl).await?;
        let campaign = store::campaign::get(&state.db).await?;
        let link = format!(
            "{}/api/v1/patron/portal?token={token}",
            link_base(&state).await?
        );
        let message = mail::Email {
            to: email.address.clone(),
            subject: format!("Manage your support for {}", campaign.name),
            text: format!(
                "Hello,\n\nUse this link to change your card, switch tier or cancel your support for {}:\n\n{link}\n\n\
                 It works once and expires in {} minutes. If you did not ask for it, ignore this email.\n",
                campaign.name, state.settings.mail.magic_link_ttl_minutes
            ),
        };
        if let Err(e) = state.mailer.send(&message).await {
            tracing::error!(error = %e, "could not send a management link");
        }
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
    let supporter = store::stripe::consume_magic_link(&state.db, &token_hash(q.token.trim()))
        .await?
        .ok_or(Error::NotFound(
            "management link (it expired or was already used)",
        ))?;
    let customer = store::stripe::customer_of(&state.db, supporter)
        .await?
        .ok_or(Error::NotFound("management link"))?;
    let return_url = match state.settings.stripe.portal_return_url.as_str() {
        "" => link_base(&state).await?,
        url => url.to_owned(),
    };
    let url = gateway.portal_url(&customer, &return_url).await?;
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response())
}
