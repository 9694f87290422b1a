//! `/health`, `/health/modules` and `/metrics`.

use crate::harness::app;

#[tokio::test]
async fn health_answers_the_peer_contract_exactly() {
    let app = app();
    let answer = app.get("/health").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json(), serde_json::json!({"status": "ok"}));
}

#[tokio::test]
async fn health_opens_no_binding_and_builds_no_module() {
    let app = app();
    for _ in 0..3 {
        assert_eq!(app.get("/health").await.status, 200);
    }
    let report = app.get("/health/modules").await.json();
    let loaded: Vec<&str> = report["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["loaded"] == true)
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(loaded, ["health", "metrics"]);
    assert!(app.state.env.opened().is_empty(), "opened: {:?}", app.state.env.opened());
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_and_show_queues() {
    let app = app();
    app.get("/health").await;
    app.get("/health").await;
    app.get("/no/such/route").await;
    let answer = app.get("/metrics").await;
    assert_eq!(answer.status, 200);
    assert!(answer.content_type.unwrap().starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(answer.body.to_vec()).unwrap();
    for line in [
        "ledge_http_requests_total{route=\"/health\",method=\"GET\",status=\"200\"} 2",
        "ledge_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1",
        "ledge_queue_depth{queue=\"github-events\",state=\"ready\"} 0",
        "ledge_queue_dlq_depth{queue=\"github-events\"} 0",
        "ledge_module_loaded{module=\"search\"} 0",
        "# TYPE ledge_process_resident_memory_bytes gauge",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
}
