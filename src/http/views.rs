//! The views pages embed and poll, answered before the router: totals,
//! tiers, sponsors, badges, the embed, the default sponsor wall, the support
//! page, funding.json, and `/healthz`. Their bodies are bytes from the
//! snapshot, so the stack every route shares (routing, extractors, request
//! span, timeout, labelled histogram, CORS layer) cost more than the view.
//! Here a request costs a path comparison, an ETag comparison and clones:
//!
//! - each view's headers are built once per snapshot, by the handlers' own
//!   `conditional_with`, with the CORS layer's headers where it applies;
//! - a counter per route and status, resolved once, in the router's
//!   `patronage_http_requests_total` (no latency histogram: nothing here
//!   waits);
//! - no request span: with tracing at debug, every request takes the router;
//! - a panic still answers problem+json 500;
//! - only exact paths and query strings are served, so no control character
//!   can reach a view. Anything else (HEAD, other methods or queries,
//!   unknown badges, escaped paths) takes the router, as before.

use std::{
    convert::Infallible,
    future::{Ready, ready},
    net::SocketAddr,
    panic::AssertUnwindSafe,
    sync::Arc,
    task::{Context, Poll},
};

use arc_swap::ArcSwap;
use axum::{
    Extension, Router,
    body::{Body, Bytes},
    extract::{ConnectInfo, Request},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::AddExtension,
    response::{IntoResponse, Response},
    serve::IncomingStream,
};
use metrics::Counter;
use tokio::net::TcpListener;
use tokio_util::either::Either;
use tower::{Layer, Service, ServiceExt, util::Oneshot};

use super::{AppState, REQUEST_ID, ops, pages, public};
use crate::{
    error::Error,
    snapshot::{Rendered, Snapshot},
};

/// Routes answered here, by the router's template (the `route` label).
#[derive(Clone, Copy)]
enum Route {
    Funding,
    Tiers,
    Sponsors,
    Badge,
    Embed,
    Wall,
    Manifest,
    Support,
    Health,
}

impl Route {
    const ALL: [Route; 9] = [
        Route::Funding,
        Route::Tiers,
        Route::Sponsors,
        Route::Badge,
        Route::Embed,
        Route::Wall,
        Route::Manifest,
        Route::Support,
        Route::Health,
    ];

    /// Routes of `public::routes`, under its CORS layer.
    fn behind_cors(self) -> bool {
        matches!(self, Route::Funding | Route::Tiers | Route::Sponsors)
    }

    fn template(self) -> &'static str {
        match self {
            Route::Funding => "/api/v1/funding",
            Route::Tiers => "/api/v1/tiers",
            Route::Sponsors => "/api/v1/sponsors",
            Route::Badge => "/badge/{file}",
            Route::Embed => "/embed/progress",
            Route::Wall => "/sponsors.svg",
            Route::Manifest => "/funding.json",
            Route::Support => "/support",
            Route::Health => "/healthz",
        }
    }
}

/// A route's counters, for 200 and 304.
#[derive(Clone)]
struct Hits {
    ok: Counter,
    not_modified: Counter,
}

impl Hits {
    fn new(route: Route) -> Self {
        let counter = |status: &'static str| {
            metrics::counter!("patronage_http_requests_total",
                "method" => "GET", "route" => route.template(), "status" => status)
        };
        Hits {
            ok: counter("200"),
            not_modified: counter("304"),
        }
    }
}

/// One view as answered: body and both header sets, built once.
struct View {
    path: String,
    query: Option<&'static str>,
    body: Bytes,
    /// None: answered in full whatever the client has (`/healthz`).
    etag: Option<String>,
    ok: HeaderMap,
    not_modified: HeaderMap,
    hits: Hits,
}

impl View {
    fn new(
        path: &str,
        query: Option<&'static str>,
        rendered: &Rendered,
        cache_control: &HeaderValue,
        extra: &[(HeaderName, HeaderValue)],
        hits: &Hits,
    ) -> Self {
        let headers = |client: &HeaderMap| {
            public::conditional_with(rendered, client, cache_control.clone(), extra)
                .into_parts()
                .0
                .headers
        };
        let mut matching = HeaderMap::new();
        matching.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&rendered.etag).expect("hex etag"),
        );
        View {
            path: path.to_owned(),
            query,
            body: rendered.body.clone(),
            etag: Some(rendered.etag.clone()),
            ok: headers(&HeaderMap::new()),
            not_modified: headers(&matching),
            hits: hits.clone(),
        }
    }

    fn answer(&self, client: &HeaderMap) -> Response {
        let fresh = self
            .etag
            .as_deref()
            .is_some_and(|etag| public::etag_matches(client, etag));
        let mut response = if fresh {
            self.hits.not_modified.increment(1);
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            *r.headers_mut() = self.not_modified.clone();
            r
        } else {
            self.hits.ok.increment(1);
            let mut r = Response::new(Body::from(self.body.clone()));
            *r.headers_mut() = self.ok.clone();
            r
        };
        response
            .headers_mut()
            .insert(REQUEST_ID, request_id(client));
        response
    }
}

/// What every snapshot's views are built with.
struct Parts {
    hits: Vec<Hits>,
    /// What the API's CORS layer adds to a GET.
    cors: HeaderMap,
}

/// Every view of one snapshot.
struct Table {
    /// The snapshot they were built from.
    snapshot: Arc<Snapshot>,
    views: Vec<View>,
}

impl Table {
    fn build(snapshot: Arc<Snapshot>, parts: &Parts) -> Self {
        let s = &*snapshot;
        let embed = pages::embed_headers(s);
        let wall = s.cached_wall(&pages::default_wall(), false);
        let mut views = Vec::new();
        let mut add = |path: &str, query, rendered, extra: &[_], route: Route| {
            let hits = &parts.hits[route as usize];
            let mut view = View::new(path, query, rendered, &s.cache_control, extra, hits);
            if route.behind_cors() {
                for headers in [&mut view.ok, &mut view.not_modified] {
                    headers.extend(parts.cors.clone());
                }
            }
            views.push(view);
        };
        // The most asked first: the list is searched in order.
        add(
            "/api/v1/funding",
            None,
            &s.funding,
            &public::API,
            Route::Funding,
        );
        for (name, badge) in &s.badges {
            let svg = format!("/badge/{name}.svg");
            add(&svg, None, &badge.svg, &pages::BADGE_SVG, Route::Badge);
            let json = format!("/badge/{name}.json");
            add(&json, None, &badge.json, &pages::BADGE_JSON, Route::Badge);
        }
        let light = &s.embed_light;
        add("/embed/progress", None, light, &embed, Route::Embed);
        add(
            "/embed/progress",
            Some("theme=light"),
            light,
            &embed,
            Route::Embed,
        );
        let dark = &s.embed_dark;
        add(
            "/embed/progress",
            Some("theme=dark"),
            dark,
            &embed,
            Route::Embed,
        );
        add("/api/v1/tiers", None, &s.tiers, &public::API, Route::Tiers);
        add(
            "/api/v1/sponsors",
            None,
            &s.sponsors,
            &public::API,
            Route::Sponsors,
        );
        if let Some(wall) = &wall {
            add("/sponsors.svg", None, wall, &pages::WALL, Route::Wall);
        }
        let manifest = &s.funding_manifest;
        add(
            "/funding.json",
            None,
            manifest,
            &pages::MANIFEST,
            Route::Manifest,
        );
        let page = &s.support_page;
        add("/support", None, page, &pages::SUPPORT_PAGE, Route::Support);
        views.push(health(&parts.hits[Route::Health as usize]));
        Table { snapshot, views }
    }

    fn find(&self, path: &str, query: Option<&str>) -> Option<&View> {
        self.views
            .iter()
            .find(|v| v.path == path && v.query == query)
    }
}

fn health(hits: &Hits) -> View {
    let mut ok = HeaderMap::new();
    ok.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    View {
        path: "/healthz".into(),
        query: None,
        body: serde_json::to_vec(&ops::HEALTHY)
            .expect("serialisable")
            .into(),
        etag: None,
        not_modified: ok.clone(),
        ok,
        hits: hits.clone(),
    }
}

/// The client's request id, or a new UUID v4 as the router's layer makes,
/// from the thread's generator rather than a system call.
fn request_id(client: &HeaderMap) -> HeaderValue {
    if let Some(given) = client.get(&REQUEST_ID) {
        return given.clone();
    }
    let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    let mut text = uuid::Uuid::encode_buffer();
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut text)).expect("ascii")
}

/// The views and what they are built from, shared by every connection.
struct Views {
    state: AppState,
    table: ArcSwap<Table>,
    parts: Parts,
}

impl Views {
    /// The response, or None when the router should answer.
    fn answer(&self, req: &Request) -> Option<Response> {
        if req.method() != Method::GET {
            return None;
        }
        let current = self.state.public.peek();
        let mut table = self.table.load();
        if !Arc::ptr_eq(&table.snapshot, &current) {
            // A new snapshot: the first request to see it builds its views.
            self.table
                .store(Arc::new(Table::build(Arc::clone(&current), &self.parts)));
            table = self.table.load();
        }
        let view = table.find(req.uri().path(), req.uri().query())?;
        Some(view.answer(req.headers()))
    }
}

/// Makes a `Front` per connection, with the client's address for the
/// router's extractors (as `into_make_service_with_connect_info` does).
#[derive(Clone)]
pub struct MakeFront {
    views: Option<Arc<Views>>,
    router: Router,
}

impl MakeFront {
    /// With tracing at debug every request takes the router, span and all.
    pub fn new(state: AppState, router: Router) -> Self {
        let traced = tracing::level_filters::LevelFilter::current() >= tracing::Level::DEBUG;
        let views = (!traced).then(|| {
            let parts = Parts {
                hits: Route::ALL.into_iter().map(Hits::new).collect(),
                cors: public::cors_headers(),
            };
            let table = Table::build(state.public.current(), &parts);
            Arc::new(Views {
                state,
                table: ArcSwap::from_pointee(table),
                parts,
            })
        });
        MakeFront { views, router }
    }
}

impl<'a> Service<IncomingStream<'a, TcpListener>> for MakeFront {
    type Response = Front;
    type Error = Infallible;
    type Future = Ready<Result<Front, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, stream: IncomingStream<'a, TcpListener>) -> Self::Future {
        let client: SocketAddr = *stream.remote_addr();
        ready(Ok(Front(Arc::new(Connection {
            views: self.views.clone(),
            router: Extension(ConnectInfo(client)).layer(self.router.clone()),
        }))))
    }
}

/// One connection's service: the views, or the router. Cloned for every
/// request, so it is one reference to what the connection holds.
#[derive(Clone)]
pub struct Front(Arc<Connection>);

struct Connection {
    views: Option<Arc<Views>>,
    router: AddExtension<Router, ConnectInfo<SocketAddr>>,
}

type Routed = Oneshot<AddExtension<Router, ConnectInfo<SocketAddr>>, Request>;

impl Service<Request> for Front {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, Routed>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if let Some(views) = &self.0.views {
            let answered = std::panic::catch_unwind(AssertUnwindSafe(|| views.answer(&req)))
                .unwrap_or_else(|_| {
                    let mut r = Error::internal("handler panicked").into_response();
                    r.headers_mut()
                        .insert(REQUEST_ID, request_id(req.headers()));
                    Some(r)
                });
            if let Some(response) = answered {
                return Either::Left(ready(Ok(response)));
            }
        }
        Either::Right(self.0.router.clone().oneshot(req))
    }
}
