//! /api/openapi.json describes the API it serves: every error answer is a
//! problem+json that the document names, and input constraints are stated,
//! so a client generated from it can rely on it. tests/schemathesis.sh checks
//! the same against generated requests.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_json};
use crate::on_both_backends;

on_both_backends!(
    every_error_answer_is_documented_as_problem_json,
    input_constraints_are_in_the_document,
    integral_floats_are_accepted_as_integers,
);

/// A response object, following a `$ref` into components.
fn resolve<'a>(doc: &'a Value, response: &'a Value) -> &'a Value {
    match response["$ref"].as_str() {
        Some(r) => {
            let name = r.strip_prefix("#/components/responses/").unwrap();
            &doc["components"]["responses"][name]
        }
        None => response,
    }
}

/// An operation a browser uses: it answers a page, or takes a form.
fn is_page(op: &Value) -> bool {
    op["responses"]["200"]["content"]
        .as_object()
        .is_some_and(|c| c.contains_key("text/html"))
        || op["requestBody"]["content"]
            .as_object()
            .is_some_and(|c| c.contains_key("application/x-www-form-urlencoded"))
}

async fn every_error_answer_is_documented_as_problem_json(app: TestApp) {
    let doc = app.get_json("/api/openapi.json", None).await;
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let at = format!("{method} {path}");
            let responses = op["responses"].as_object().unwrap();
            for (status, response) in responses {
                if status.as_str() < "400" {
                    continue;
                }
                let content = resolve(&doc, response)["content"].as_object().unwrap();
                let types: Vec<&String> = content.keys().collect();
                // A page a person opens (the management link) answers its
                // own errors as a page too.
                if is_page(op) {
                    assert_eq!(
                        types,
                        ["application/problem+json", "text/html"],
                        "{at} {status}"
                    );
                } else {
                    assert_eq!(types, ["application/problem+json"], "{at} {status}");
                }
                assert_eq!(
                    content["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{at} {status}"
                );
            }
            let has = |status: &str| responses.contains_key(status);
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            if secured {
                assert!(has("401"), "{at} needs a token: 401");
                if method != "get" {
                    assert!(has("403"), "{at} needs an owner: 403");
                }
            }
            if path.starts_with("/api/") {
                assert!(has("429") && has("503"), "{at}: 429 and 503");
            }
            if op["requestBody"]["content"]["application/json"].is_object() {
                for status in ["400", "413", "415", "422"] {
                    assert!(has(status), "{at} takes JSON: {status}");
                }
            }
            if path.contains('{') {
                assert!(has("404"), "{at} names a resource: 404");
            }
        }
    }
    assert!(operations > 40, "{operations} operations");

    // The payment operations say they can be switched off.
    let checkout = &doc["paths"]["/api/v1/checkout"]["post"]["responses"];
    assert!(checkout["503"].is_object());
    assert!(
        doc["paths"]["/api/v1/admin/me"]["get"]["security"][0]["bearer"].is_array(),
        "admin operations name the bearer scheme"
    );
}

async fn input_constraints_are_in_the_document(app: TestApp) {
    let doc = app.get_json("/api/openapi.json", None).await;
    let schema = |name: &str| doc["components"]["schemas"][name]["properties"].clone();

    let tier = schema("CreateTier");
    assert_eq!(tier["amount_minor"]["minimum"], 1);
    assert_eq!(tier["amount_minor"]["maximum"], 1_000_000_000_000_i64);
    assert!(tier["name"]["pattern"].is_string());
    assert_eq!(tier["slots"]["maximum"], 1_000_000);

    let patron = schema("CreatePatron");
    assert_eq!(patron["email"]["format"], "email");
    assert_eq!(patron["email"]["maxLength"], 254);

    let setup = schema("SetupRequest");
    assert_eq!(setup["password"]["minLength"], 12);
    assert_eq!(setup["password"]["maxLength"], 256);

    let checkout = schema("CheckoutRequest");
    assert_eq!(checkout["amount_minor"]["minimum"], 1);
    assert_eq!(checkout["email"]["format"], "email");

    let campaign = schema("UpdateCampaign");
    let currencies = campaign["currency"]["enum"].as_array().unwrap();
    assert!(currencies.contains(&json!("EUR")) && currencies.contains(&json!("JPY")));
    assert!(!currencies.contains(&json!("XAU")), "metals are refused");

    let params = doc["paths"]["/api/v1/admin/patrons"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let limit = params.iter().find(|p| p["name"] == "limit").unwrap();
    assert_eq!(limit["schema"]["minimum"], 1);
    assert_eq!(limit["schema"]["maximum"], 200);
}

/// JSON Schema counts 500.0 as the integer 500, so a client may send it.
async fn integral_floats_are_accepted_as_integers(app: TestApp) {
    let owner = app.owner_token().await;
    let tier = json!({"kind": "patron", "name": "Friend", "amount_minor": 500.0, "interval": "month", "rank": 1e1});
    let created = expect_json(
        app.post("/api/v1/admin/tiers", &owner, tier).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(created["amount"]["amount_minor"], 500);
    assert_eq!(created["rank"], 10);

    let fraction =
        json!({"kind": "patron", "name": "Half", "amount_minor": 500.5, "interval": "month"});
    let res = app.post("/api/v1/admin/tiers", &owner, fraction).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
}
