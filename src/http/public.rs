//! The public API: totals, tiers and sponsors, served from the in-memory
//! snapshot with ETag and Cache-Control. It carries no email and no amount
//! that belongs to one person.

use std::{
    pin::pin,
    task::{Context, Poll, Waker},
};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use tower::{Layer, Service};
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
        .layer(cors())
}

fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
        .allow_headers([header::IF_NONE_MATCH])
        .expose_headers([header::ETAG])
}

/// The headers the CORS layer adds to a GET, asked of the layer itself so
/// the views served before the router (`views`) cannot drift from it.
pub(super) fn cors_headers() -> HeaderMap {
    let answer = |_: Request| std::future::ready(Ok::<_, ()>(Response::new(Body::empty())));
    let mut layered = cors().layer(tower::service_fn(answer));
    let call = layered.call(Request::new(Body::empty()));
    match pin!(call).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(response)) => response.into_parts().0.headers,
        _ => unreachable!("the CORS layer answers a GET at once"),
    }
}

/// Besides ETag and Cache-Control, what every public API view carries.
pub(super) const API: [(HeaderName, HeaderValue); 1] = [(
    header::X_CONTENT_TYPE_OPTIONS,
    HeaderValue::from_static("nosniff"),
)];

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
    conditional_with(rendered, headers, cache_control, &API)
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
    let mut response = if etag_matches(headers, &rendered.etag) {
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

/// Whether the client's If-None-Match names `etag` (or is `*`).
pub(crate) fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}
