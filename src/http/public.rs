//! The public API: totals, tiers and sponsors, served from the in-memory
//! snapshot with ETag and Cache-Control. It carries no email and no amount
//! that belongs to one person.

use axum::{
    extract::State,
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use tower_http::cors::{Any, CorsLayer};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use crate::{
    domain::funding::Funding,
    snapshot::{PublicSponsorList, PublicTierList, Rendered},
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(funding))
        .routes(routes!(tiers))
        .routes(routes!(sponsors))
        .layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
                .allow_headers([header::IF_NONE_MATCH])
                .expose_headers([header::ETAG]),
        )
}

/// Funding totals for the about page.
#[utoipa::path(get, path = "/api/v1/funding", tag = "public",
    responses((status = 200, body = Funding), (status = 304, description = "Not modified")))]
async fn funding(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let snapshot = state.public.current();
    conditional(&state, &snapshot.funding, &headers)
}

/// Active tiers, in display order.
#[utoipa::path(get, path = "/api/v1/tiers", tag = "public",
    responses((status = 200, body = PublicTierList), (status = 304, description = "Not modified")))]
async fn tiers(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let snapshot = state.public.current();
    conditional(&state, &snapshot.tiers, &headers)
}

/// Approved sponsors whose paid period has not ended.
#[utoipa::path(get, path = "/api/v1/sponsors", tag = "public",
    responses((status = 200, body = PublicSponsorList), (status = 304, description = "Not modified")))]
async fn sponsors(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let snapshot = state.public.current();
    conditional(&state, &snapshot.sponsors, &headers)
}

/// 304 when the client's ETag matches, the body otherwise, with the
/// configured Cache-Control.
pub(crate) fn conditional(state: &AppState, rendered: &Rendered, headers: &HeaderMap) -> Response {
    let cache_control = state.public.current().cache_control.clone();
    conditional_with(
        rendered,
        headers,
        cache_control,
        &[(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        )],
    )
}

/// Like `conditional`, with a given Cache-Control and extra headers (sent on
/// the 304 too, as a cache may use them). Header values are built once, not
/// per request.
pub(crate) fn conditional_with(
    rendered: &Rendered,
    headers: &HeaderMap,
    cache_control: HeaderValue,
    extra: &[(HeaderName, HeaderValue)],
) -> Response {
    let etag = HeaderValue::from_str(&rendered.etag).expect("hex etag");
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == rendered.etag || t.trim() == "*")
        });
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = rendered.body.clone().into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(rendered.content_type),
        );
        r
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, etag);
    h.insert(header::CACHE_CONTROL, cache_control);
    for (name, value) in extra {
        h.insert(name.clone(), value.clone());
    }
    response
}
