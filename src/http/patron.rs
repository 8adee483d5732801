//! Patron self-service without passwords: an emailed, single-use, expiring
//! link to a page whose button opens Stripe's Billing Portal.

use crate::context::Effects;
use axum::{
    Form,
    extract::{State, rejection::FormRejection},
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
    pages,
};
use crate::{
    domain::supporter::Email,
    error::{Error, Result},
    links,
    render::page,
    store,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_link))
        .routes(routes!(portal_page, open_portal))
        // The same request from the page a spent link shows.
        .route("/patron/manage", axum::routing::post(request_link_form))
}

const LINK_ON_ITS_WAY: &str = "If this address supports us, a link is on its way.";

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
    send_link(&state, ip, &req.email).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(ManageResponse {
            status: LINK_ON_ITS_WAY,
        }),
    ))
}

/// `request_link` for a browser: the form on the page of a spent link.
async fn request_link_form(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    form: std::result::Result<Form<ManageRequest>, FormRejection>,
) -> Response {
    let email = form.map(|Form(f)| f.email).unwrap_or_default();
    match send_link(&state, ip, &email).await {
        Ok(()) => pages::html_page(
            StatusCode::OK,
            page::message("Check your inbox", LINK_ON_ITS_WAY, &[], "/support"),
        ),
        Err(e) => pages::message_page(&e, "A new management link", "/support"),
    }
}

/// Queues a management link for `email` if it belongs to a paying patron.
async fn send_link(state: &AppState, ip: std::net::IpAddr, email: &str) -> Result<()> {
    let email = Email::parse("email", email).map_err(|e| Error::Validation(vec![e]))?;
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
        state.after_commit(Effects::MAIL);
    }
    Ok(())
}

#[derive(Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
struct PortalToken {
    token: String,
}

const LINK_TITLE: &str = "Manage your support";

/// The page behind an emailed management link: a button that opens the
/// Billing Portal. Opening the page never spends the link, so the link
/// scanners of mail systems cannot use it up.
#[utoipa::path(get, path = "/api/v1/patron/portal", tag = "public", params(PortalToken),
    responses((status = 200, content_type = "text/html", description = "A page with a button that spends the link"),
              (status = 404, content_type = "text/html", description = "The link was used or has expired")))]
async fn portal_page(State(state): State<AppState>, Query(q): Query<PortalToken>) -> Response {
    if state.gateway.is_none() {
        return pages::message_page(&Error::PaymentsNotConfigured, LINK_TITLE, "/support");
    }
    let hash = links::token_hash(q.token.trim());
    match store::stripe::magic_link_expiry(&state.db, &hash).await {
        Ok(Some(expires)) => {
            let expires = expires.format("%-d %B %Y, %H:%M UTC").to_string();
            pages::html_page(
                StatusCode::OK,
                page::manage(&campaign(&state), Some((q.token.trim(), &expires))),
            )
        }
        Ok(None) => link_spent(&state),
        Err(e) => pages::message_page(&e, LINK_TITLE, "/support"),
    }
}

/// Spends a management link (the page's button) and redirects to the
/// Stripe Billing Portal.
#[utoipa::path(post, path = "/api/v1/patron/portal", tag = "public",
    request_body(content = PortalToken, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Redirect to the Billing Portal"),
              (status = 404, content_type = "text/html", description = "The link was used or has expired")))]
async fn open_portal(
    State(state): State<AppState>,
    form: std::result::Result<Form<PortalToken>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return link_spent(&state);
    };
    match portal_url(&state, form.token.trim()).await {
        Ok(Some(url)) => (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response(),
        Ok(None) => link_spent(&state),
        Err(e) => pages::message_page(&e, LINK_TITLE, "/support"),
    }
}

/// The Billing Portal's URL for the link's patron, or None if the link was
/// used or has expired.
async fn portal_url(state: &AppState, token: &str) -> Result<Option<String>> {
    let gateway = state.gateway.as_ref().ok_or(Error::PaymentsNotConfigured)?;
    let Some(supporter) =
        store::stripe::consume_magic_link(&state.db, &links::token_hash(token)).await?
    else {
        return Ok(None);
    };
    let customer = store::stripe::customer_of(&state.db, supporter)
        .await?
        .ok_or(Error::NotFound("management link"))?;
    let return_url = match state.settings.stripe.portal_return_url.as_str() {
        "" => links::public_base(&state.db, &state.settings).await?,
        url => url.to_owned(),
    };
    Ok(Some(gateway.portal_url(&customer, &return_url).await?))
}

fn link_spent(state: &AppState) -> Response {
    pages::html_page(StatusCode::NOT_FOUND, page::manage(&campaign(state), None))
}

fn campaign(state: &AppState) -> String {
    state.public.current().data.name.clone()
}
