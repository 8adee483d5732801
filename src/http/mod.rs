//! HTTP: the router, its layers, and the handlers grouped by audience
//! (`public`, `admin`, `ops`). Handlers stay thin: parse input into domain
//! values, call one service, shape the answer.

pub mod admin;
pub mod checkout;
pub mod console;
pub mod controls;
pub mod download;
pub mod extract;
pub mod fediverse;
pub mod openapi;
pub mod ops;
pub mod origin;
pub mod pages;
pub mod patron;
pub mod public;
pub mod views;
pub mod webhooks;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Router,
    error_handling::HandleErrorLayer,
    extract::{MatchedPath, Request},
    http::{HeaderName, Method, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use metrics_exporter_prometheus::PrometheusHandle;
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    sensitive_headers::SetSensitiveRequestHeadersLayer,
    trace::{DefaultOnResponse, TraceLayer},
};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::{auth::ratelimit::LoginLimiter, context::Context, error::Error};

/// What handlers share: the services' `Context`, plus what only the web
/// needs. Derefs to the `Context`, so `state.db` reads as before.
pub struct WebState {
    pub core: Arc<Context>,
    pub login_limiter: LoginLimiter,
    /// Limits requests for patron management links, per address and email.
    pub manage_limiter: LoginLimiter,
    /// Limits sponsor applications, per address and contact email.
    pub sponsor_limiter: LoginLimiter,
    pub metrics: PrometheusHandle,
}

impl std::ops::Deref for WebState {
    type Target = Context;
    fn deref(&self) -> &Context {
        &self.core
    }
}

pub type AppState = Arc<WebState>;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What `axum::serve` runs: the snapshot's hot views before the router.
pub fn service(state: AppState) -> views::MakeFront {
    views::MakeFront::new(state.clone(), router(state))
}

pub fn router(state: AppState) -> Router {
    let (api, mut doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(public::routes())
        .merge(checkout::routes())
        .merge(patron::routes())
        .merge(admin::routes())
        .merge(ops::routes())
        .split_for_parts();
    openapi::add_problem_responses(&mut doc);
    let openapi_json = axum::body::Bytes::from(doc.to_pretty_json().expect("openapi serialises"));
    let settings = &state.settings.server;

    let request_id_span = |req: &Request| {
        let id = req
            .headers()
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
    };

    api.merge(webhooks::routes())
        .merge(pages::routes(&state))
        .merge(fediverse::routes())
        .merge(console::routes())
        .route(
            "/api/openapi.json",
            axum::routing::get(move || {
                let body = openapi_json.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], body) }
            }),
        )
        .fallback(|| async { Error::NotFound("route") })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(
            ServiceBuilder::new()
                .layer(SetSensitiveRequestHeadersLayer::new([
                    header::AUTHORIZATION,
                    header::COOKIE,
                ]))
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_id_span)
                        .on_response(DefaultOnResponse::new().level(tracing::Level::DEBUG)),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(CatchPanicLayer::custom(|_| {
                    Error::internal("handler panicked").into_response()
                }))
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                    Error::Timeout
                }))
                .layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(
                    settings.request_timeout_secs,
                )))
                .layer(middleware::from_fn(track_metrics))
                .layer(middleware::from_fn(problem_for_bare_errors))
                .layer(middleware::from_fn(controls::refuse_in_uri))
                .layer(axum::extract::DefaultBodyLimit::max(
                    settings.body_limit_bytes,
                )),
        )
        .with_state(state)
}

/// Counts requests and their latency per route template.
async fn track_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(req.method());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("patronage_http_requests_total", &labels).increment(1);
    metrics::histogram!("patronage_http_request_duration_seconds", &labels[..2])
        .record(started.elapsed().as_secs_f64());
    response
}

fn method_label(m: &Method) -> String {
    match *m {
        Method::GET
        | Method::POST
        | Method::PUT
        | Method::PATCH
        | Method::DELETE
        | Method::HEAD
        | Method::OPTIONS => m.as_str().to_owned(),
        _ => "other".to_owned(),
    }
}

/// Layers and extractors outside our control answer with empty bodies; give
/// those the same problem+json shape as everything else.
async fn problem_for_bare_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_bare = (status.is_client_error() || status.is_server_error())
        && response.headers().get(header::CONTENT_TYPE).is_none();
    if !is_bare {
        return response;
    }
    match status.as_u16() {
        413 => Error::PayloadTooLarge.into_response(),
        _ => response,
    }
}
