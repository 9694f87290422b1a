//! Router-level behaviour: problem+json for unknown routes and methods, request ids, the pending
//! route groups.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use axum::routing::get;

use crate::harness::{app, app_with};

#[tokio::test]
async fn unknown_routes_and_methods_answer_problem_json() {
    let app = app();
    app.get("/nope").await.problem(404, "not_found");
    let answer = app.send(Request::delete("/health").body(Body::empty()).unwrap()).await;
    answer.problem(405, "method_not_allowed");
    // The same from the routes built on first use.
    let answer = app.send(Request::delete("/openapi.json").body(Body::empty()).unwrap()).await;
    answer.problem(405, "method_not_allowed");
}

#[tokio::test]
async fn a_route_that_does_not_answer_in_time_gets_a_timeout_problem_and_one_that_waits_less_its_answer() {
    let limits = ledge_api::Limits { request_timeout: Duration::from_millis(300), ..Default::default() };
    let app = app_with(&[], limits);
    let router = axum::Router::new()
        .route("/slow", get(|| async { tokio::time::sleep(Duration::from_secs(30)).await }))
        .route("/waits", get(|| async { tokio::time::sleep(Duration::from_millis(50)).await }))
        .layer(ledge_api::middleware::AroundRequestLayer::new(app.state.clone()));
    let started = Instant::now();
    let response =
        tower::ServiceExt::oneshot(router.clone(), Request::get("/slow").body(Body::empty()).unwrap())
            .await
            .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["x-request-id"].len(), 32);
    let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["code"], "timeout", "{problem}");
    let response = tower::ServiceExt::oneshot(router, Request::get("/waits").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut metrics = String::new();
    app.state.metrics.http.render(&mut metrics);
    assert!(metrics.contains(r#"route="/slow",method="GET",status="503"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"route="/waits",method="GET",status="200"} 1"#), "{metrics}");
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_a_given_one_is_kept() {
    let app = app();
    let response = tower::ServiceExt::oneshot(
        app.router.clone(),
        Request::get("/health").header("x-request-id", "abc-123").body(Body::empty()).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123");
    let response =
        tower::ServiceExt::oneshot(app.router.clone(), Request::get("/nope").body(Body::empty()).unwrap())
            .await
            .unwrap();
    assert_eq!(response.headers()["x-request-id"].len(), 32);
}

#[tokio::test]
async fn a_pending_group_builds_only_its_own_module_and_answers_501() {
    let app = app();
    assert!(!app.loaded("chat"));
    app.get("/chat?q=x").await.problem(501, "not_implemented");
    assert!(app.loaded("chat"));
    for other in ["search", "bug-analysis", "analytics-enrichment", "webhooks", "auth"] {
        assert!(!app.loaded(other), "{other} was built by a chat request");
    }
    app.get("/bug-reports/42").await.problem(501, "not_implemented");
    assert!(app.loaded("bug-analysis"));
}

#[tokio::test]
async fn cors_answers_allowed_origins_only() {
    let app = crate::harness::app_with(
        &[("LEDGE_SERVER__CORS_ORIGINS", "https://app.example.com, chrome-extension://abcdef")],
        ledge_api::Limits::default(),
    );
    let send = |method: &str, origin: &str, preflight: bool| {
        let mut request = Request::builder().method(method).uri("/health").header("origin", origin);
        if preflight {
            request = request.header("access-control-request-method", "GET");
        }
        tower::ServiceExt::oneshot(app.router.clone(), request.body(Body::empty()).unwrap())
    };
    let allowed = send("OPTIONS", "chrome-extension://abcdef", true).await.unwrap();
    assert_eq!(allowed.status(), 204);
    assert_eq!(allowed.headers()["access-control-allow-origin"], "chrome-extension://abcdef");
    assert!(allowed.headers()["access-control-allow-headers"].to_str().unwrap().contains("authorization"));
    let simple = send("GET", "https://app.example.com", false).await.unwrap();
    assert_eq!(simple.status(), 200);
    assert_eq!(simple.headers()["access-control-allow-origin"], "https://app.example.com");
    let other = send("OPTIONS", "https://evil.example", true).await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    assert_eq!(other.status(), 405, "no preflight answer for an origin not allowed");
    // Without configuration, no CORS at all.
    let plain = crate::harness::app();
    let answer = tower::ServiceExt::oneshot(
        plain.router.clone(),
        Request::get("/health").header("origin", "https://app.example.com").body(Body::empty()).unwrap(),
    )
    .await
    .unwrap();
    assert!(answer.headers().get("access-control-allow-origin").is_none());
}
