//! `GET /openapi.json`: the document covers every route the router serves, with its methods, and is
//! a well-formed OpenAPI 3.1 document (every `$ref` resolves, operation ids are unique, every error
//! answer is problem+json). The contract test (`scripts/contract-test.sh`) checks the running
//! binary's answers against it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::harness::app;
use crate::matrix::{TABLE, registered_routes};

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

async fn document() -> Value {
    let app = app();
    let answer = app.get("/openapi.json").await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    answer.json()
}

/// (path, method) of every operation of the document.
fn operations(doc: &Value) -> BTreeMap<(String, String), &Value> {
    let mut operations = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            assert!(METHODS.contains(&method.as_str()), "{path}: unexpected key {method}");
            operations.insert((path.clone(), method.clone()), operation);
        }
    }
    operations
}

#[tokio::test]
async fn every_served_route_is_documented_with_its_methods() {
    let doc = document().await;
    let documented: BTreeSet<(String, String)> = operations(&doc).into_keys().collect();
    let app = app();
    let registered = registered_routes(&app);
    // The authorization matrix has a row per route and method the router serves (its own test
    // checks that against the router); the pending groups (any method, all 501) are not documented.
    let mut served = BTreeSet::new();
    for row in TABLE {
        assert!(registered.contains(row.route), "{}", row.route);
        if row.method == "ANY" {
            assert_eq!(row.expect, [501; 7], "{}: only the pending groups answer any method", row.route);
            continue;
        }
        served.insert((row.route.to_string(), row.method.to_ascii_lowercase()));
    }
    let missing: Vec<_> = served.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&served).collect();
    assert!(missing.is_empty(), "served but not in /openapi.json: {missing:?}");
    assert!(stale.is_empty(), "in /openapi.json but not served: {stale:?}");
    let pending: BTreeSet<&str> = TABLE.iter().filter(|r| r.method == "ANY").map(|r| r.route).collect();
    let documented_routes: BTreeSet<&str> = served.iter().map(|(route, _)| route.as_str()).collect();
    for route in &registered {
        assert!(
            documented_routes.contains(route.as_str()) || pending.contains(route.as_str()),
            "{route} is neither documented nor pending"
        );
    }
}

/// Every `$ref` under `value`, with where it is.
fn refs<'a>(value: &'a Value, at: String, into: &mut Vec<(String, &'a str)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key == "$ref" {
                    into.push((at.clone(), child.as_str().expect("a $ref is a string")));
                } else {
                    refs(child, format!("{at}/{key}"), into);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                refs(child, format!("{at}/{i}"), into);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_resolving_refs_and_unique_operation_ids() {
    let doc = document().await;
    let version = doc["openapi"].as_str().expect("openapi");
    assert!(version.starts_with("3.1."), "{version}");
    assert_eq!(doc["info"]["title"], "ledge");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));

    let mut all = Vec::new();
    refs(&doc, String::new(), &mut all);
    assert!(all.len() > 50, "{}", all.len());
    for (at, target) in &all {
        let pointer = target.strip_prefix('#').unwrap_or_else(|| panic!("{at}: external $ref {target}"));
        assert!(doc.pointer(pointer).is_some(), "{at}: $ref {target} does not resolve");
    }

    let mut ids = BTreeSet::new();
    for ((path, method), operation) in operations(&doc) {
        let id =
            operation["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
        assert!(ids.insert(id.to_owned()), "operationId {id} is not unique");
        let responses = operation["responses"].as_object().expect("responses");
        assert!(responses.keys().any(|status| status.starts_with('2')), "{method} {path}: no success answer");
        for (status, response) in responses {
            if status.starts_with(['4', '5']) {
                assert_eq!(
                    response["content"]["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{method} {path} {status}"
                );
            }
        }
        // Path parameters are declared, each once.
        for name in path.split('{').skip(1).filter_map(|part| part.split_once('}')).map(|(name, _)| name) {
            let declared = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path" && p["name"] == name)
                .count();
            assert_eq!(declared, 1, "{method} {path}: path parameter {name}");
        }
        // Authenticated operations answer 401; the document says which credentials they take.
        if let Some(security) = operation["security"].as_array() {
            assert!(responses.contains_key("401"), "{method} {path}");
            for requirement in security {
                for scheme in requirement.as_object().expect("requirement").keys() {
                    assert!(
                        doc["components"]["securitySchemes"][scheme].is_object(),
                        "{method} {path}: unknown scheme {scheme}"
                    );
                }
            }
        }
    }
    // The error codes of the Problem schema are the API's stable codes.
    let codes = doc["components"]["schemas"]["ProblemCode"]["enum"]
        .as_array()
        .or_else(|| doc["components"]["schemas"]["Problem"]["properties"]["code"]["enum"].as_array())
        .expect("the Problem code's values");
    assert_eq!(codes.len(), ledge_api::ErrorCode::ALL.len());
}

#[tokio::test]
async fn health_does_not_build_the_document_and_the_first_request_does() {
    let app = app();
    assert_eq!(app.get("/health").await.status, 200);
    assert!(!app.loaded("openapi"));
    let first = app.get("/openapi.json").await;
    assert!(app.loaded("openapi"));
    let second = app.get("/openapi.json").await;
    assert_eq!(first.body, second.body, "built once, served as built");
}

#[tokio::test]
async fn a_json_body_accepts_exactly_the_fields_of_its_schema() {
    let doc = document().await;
    let app = app();
    let t = app.tenants().await;
    // An unknown field is refused by name, and the answer lists the documented fields.
    let answer = app
        .call(
            "PATCH",
            &format!("/organizations/{}", t.org),
            Some(&t.owner),
            Some(serde_json::json!({ "name": "Acme", "colour": "red" })),
            [10, 4, 0, 1],
        )
        .await;
    let problem = answer.problem(400, "invalid_field");
    assert_eq!(problem["field"], "colour");
    let schema = &doc["components"]["schemas"]["UpdateOrganizationRequest"];
    let documented: Vec<&String> = schema["properties"].as_object().expect("properties").keys().collect();
    assert_eq!(documented, ["name"]);
    assert!(problem["detail"].as_str().unwrap().ends_with("fields: name"), "{problem}");
}

/// Found by the contract test: `?limit=x&limit=5` was answered with the last value, although the
/// document describes one `limit`.
#[tokio::test]
async fn a_single_valued_query_parameter_given_twice_is_refused() {
    let app = app();
    let t = app.tenants().await;
    let ip = [10, 4, 0, 2];
    let audit = format!("/organizations/{}/audit-log?limit=x&limit=5", t.org);
    let answer = app.call("GET", &audit, Some(&t.owner), None, ip).await;
    assert_eq!(answer.problem(400, "invalid_field")["field"], "limit");
    let repositories = format!("/repositories?org={}&cursor=&cursor=", t.org);
    let answer = app.call("GET", &repositories, Some(&t.owner), None, ip).await;
    assert_eq!(answer.problem(400, "invalid_field")["field"], "cursor");
    let answer = app.call("GET", "/search?q=a&q=b&org=acme", Some(&t.owner), None, ip).await;
    assert_eq!(answer.problem(400, "invalid_field")["field"], "q");
    // Lists may repeat.
    let answer = app.call("GET", "/search?q=a&org=acme&repo=a/b&repo=c/d", Some(&t.owner), None, ip).await;
    assert_ne!(answer.status, 400, "{:?}", answer.body);
}
