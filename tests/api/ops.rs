//! Health, readiness, metrics, request ids and the OpenAPI document.

use reqwest::StatusCode;

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    operations_endpoints_answer,
    the_openapi_document_lists_every_route
);

async fn operations_endpoints_answer(app: TestApp) {
    assert_eq!(app.get_json("/healthz", None).await["status"], "ok");
    assert_eq!(app.get_json("/readyz", None).await["status"], "ready");
    let res = app.get("/api/v1/funding", None).await;
    let id = res.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID request id is returned");
    let given = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "trace-me-123");

    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(
        metrics.contains("patronage_http_requests_total"),
        "{metrics}"
    );
    assert!(metrics.contains("route=\"/api/v1/funding\""), "{metrics}");
}

async fn the_openapi_document_lists_every_route(app: TestApp) {
    let doc = app.get_json("/api/openapi.json", None).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/funding",
        "/api/v1/tiers",
        "/api/v1/sponsors",
        "/api/v1/admin/login",
        "/api/v1/admin/tiers/{id}",
        "/api/v1/admin/contributions/{id}/void",
        "/api/v1/admin/reports/monthly",
        "/api/v1/admin/audit",
        "/readyz",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(paths["/api/v1/admin/tiers"]["post"].is_object());
    assert_eq!(
        app.get("/api/openapi.json", None).await.status(),
        StatusCode::OK
    );
}
