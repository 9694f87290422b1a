//! `POST /webhooks/github`: verification, validation, deduplication, queueing — over every
//! example payload GitHub publishes.

use axum::body::Body;
use axum::http::Request;
use ledge_api::Limits;
use ledge_env::QueueBinding;
use ledge_github::{QueuedDelivery, WebhookVerifier};

use crate::harness::{SECRET, TestApp, app, app_with};

fn delivery(event: &str, id: &str, body: &[u8], signature: Option<&str>) -> Request<Body> {
    let mut request = Request::post("/webhooks/github")
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", id);
    if let Some(signature) = signature {
        request = request.header("x-hub-signature-256", signature);
    }
    request.body(Body::from(body.to_vec())).unwrap()
}

fn signed(event: &str, id: &str, body: &[u8]) -> Request<Body> {
    delivery(event, id, body, Some(&WebhookVerifier::new(SECRET.as_bytes()).sign(body)))
}

async fn queued(app: &TestApp) -> Vec<QueuedDelivery> {
    let backend = app.state.env.queue_backend().await.unwrap();
    let messages = backend.peek(QueueBinding::GithubEvents.name(), 1000).await.unwrap();
    messages.iter().map(|m| m.body.json().unwrap()).collect()
}

#[derive(serde::Deserialize)]
struct EventExamples {
    name: String,
    examples: Vec<serde_json::Value>,
}

#[tokio::test]
async fn every_published_github_example_is_queued_once_and_redeliveries_are_not() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/octokit-webhooks-examples.json");
    let events: Vec<EventExamples> = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let app = app();
    let mut sent = Vec::new();
    for event in &events {
        for (i, example) in event.examples.iter().enumerate() {
            let body = serde_json::to_vec(example).unwrap();
            let id = format!("{}-{i}", event.name);
            let answer = app.send(signed(&event.name, &id, &body)).await;
            assert_eq!(answer.status, 202, "{id}: {:?}", answer.body);
            assert_eq!(answer.json(), serde_json::json!({"queued": true, "delivery": id}));
            sent.push((id, event.name.clone(), body));
        }
    }
    assert_eq!(sent.len(), 329);
    // A redelivery (same X-GitHub-Delivery) answers 200 and queues nothing.
    let (id, event, body) = &sent[0];
    let answer = app.send(signed(event, id, body)).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json(), serde_json::json!({"duplicate": true, "delivery": id}));

    let queued = queued(&app).await;
    assert_eq!(queued.len(), 329);
    for (id, event, body) in &sent {
        let message = queued.iter().find(|q| &q.envelope.delivery == id).expect("queued");
        assert_eq!(&message.envelope.event, event);
        let payload: serde_json::Value =
            serde_json::from_str(message.payload.as_ref().unwrap().get()).unwrap();
        assert_eq!(payload, serde_json::from_slice::<serde_json::Value>(body).unwrap());
    }
    // Webhooks never build the heavy modules.
    assert!(app.loaded("webhooks"));
    for heavy in ["search", "chat", "bug-analysis", "analytics-enrichment"] {
        assert!(!app.loaded(heavy), "{heavy} was built by webhooks");
    }
}

#[tokio::test]
async fn signatures_are_required_and_checked() {
    let app = app();
    let body = br#"{"zen":"Keep it logically awesome."}"#;
    let problem = app.send(delivery("ping", "d1", body, None)).await.problem(401, "invalid_signature");
    assert_eq!(problem["field"], "X-Hub-Signature-256");
    let wrong = WebhookVerifier::new(b"another secret").sign(body);
    app.send(delivery("ping", "d1", body, Some(&wrong))).await.problem(401, "invalid_signature");
    app.send(delivery("ping", "d1", body, Some("sha256=xyz"))).await.problem(401, "invalid_signature");
    assert!(queued(&app).await.is_empty());
}

#[tokio::test]
async fn bad_headers_and_bodies_are_400_naming_the_field() {
    let app = app();
    let body = br#"{"zen":"x"}"#;
    let signature = WebhookVerifier::new(SECRET.as_bytes()).sign(body);
    let no_event = Request::post("/webhooks/github")
        .header("x-github-delivery", "d1")
        .header("x-hub-signature-256", &signature)
        .body(Body::from(body.to_vec()))
        .unwrap();
    assert_eq!(app.send(no_event).await.problem(400, "bad_request")["field"], "X-GitHub-Event");
    let no_delivery = Request::post("/webhooks/github")
        .header("x-github-event", "ping")
        .header("x-hub-signature-256", &signature)
        .body(Body::from(body.to_vec()))
        .unwrap();
    assert_eq!(app.send(no_delivery).await.problem(400, "bad_request")["field"], "X-GitHub-Delivery");
    for bad in [&b"{\"repository\": {\"full_name\": "[..], b"[1,2,3]", b"", b"{} {}"] {
        let problem = app.send(signed("push", "d2", bad)).await.problem(400, "invalid_json");
        assert_eq!(problem["field"], "body");
    }
    assert!(queued(&app).await.is_empty());
}

#[tokio::test]
async fn bodies_over_the_webhook_limit_are_413() {
    let app = app_with(
        &[("LEDGE_GITHUB_WEBHOOK_SECRET", SECRET)],
        Limits { webhook_body: 1024, ..Limits::default() },
    );
    let body = format!("{{\"pad\":\"{}\"}}", "x".repeat(2000));
    app.send(signed("push", "big", body.as_bytes())).await.problem(413, "payload_too_large");
    assert!(queued(&app).await.is_empty());
}

#[tokio::test]
async fn payloads_too_large_for_a_queue_message_are_archived_and_referenced() {
    let app = app();
    let body = serde_json::to_vec(&serde_json::json!({
        "installation": {"id": 77},
        "repository": {"id": 1, "full_name": "octo/big"},
        "commits": vec!["a".repeat(1000); 300],
    }))
    .unwrap();
    assert!(body.len() > 128_000);
    assert_eq!(app.send(signed("push", "huge-1", &body)).await.status, 202);
    let queued = queued(&app).await;
    assert_eq!(queued.len(), 1);
    assert!(queued[0].payload.is_none());
    let key = queued[0].payload_key.as_deref().unwrap();
    assert_eq!(key, "github/installations/77/deliveries/huge-1.json");
    let archives = app.state.env.bucket(ledge_env::BucketBinding::Archives).await.unwrap();
    let object = archives.head(key).await.unwrap().expect("archived");
    assert_eq!(object.size, body.len() as u64);
}

#[tokio::test]
async fn without_a_secret_webhooks_are_503_not_configured() {
    let app = app_with(&[], Limits::default());
    let body = br#"{}"#;
    let problem =
        app.send(delivery("ping", "d1", body, Some("sha256=00"))).await.problem(503, "not_configured");
    assert!(problem["detail"].as_str().unwrap().contains("LEDGE_GITHUB_WEBHOOK_SECRET"));
}

const ENCRYPTION_KEY: &str = "e1:an-encryption-key-of-at-least-32-bytes";

/// The body of a delivery about repository `full_name`.
fn about(full_name: &str) -> Vec<u8> {
    serde_json::json!({ "action": "opened", "repository": { "id": 1, "full_name": full_name } })
        .to_string()
        .into_bytes()
}

fn signed_with(secret: &str, id: &str, body: &[u8]) -> Request<Body> {
    delivery("issues", id, body, Some(&WebhookVerifier::new(secret.as_bytes()).sign(body)))
}

#[tokio::test]
async fn a_repository_with_its_own_secret_is_verified_with_it_and_not_the_servers() {
    use crate::harness::JWT_KEYS;
    use crate::tenants::LOCAL;
    let app = app_with(
        &[
            ("LEDGE_GITHUB_WEBHOOK_SECRET", SECRET),
            ("LEDGE_JWT_KEYS", JWT_KEYS),
            ("LEDGE_ENCRYPTION_KEY", ENCRYPTION_KEY),
        ],
        Limits::default(),
    );
    let t = app.tenants().await;
    // Before any repository secret: the server's secret (the fast path builds the module).
    assert_eq!(app.send(signed_with(SECRET, "d0", &about("acme/hello"))).await.status, 202);
    let connect = serde_json::json!({
        "org": "acme", "git_url": "https://github.com/acme/hello", "webhook_secret": "hello-secret",
    });
    let answer = app.call("POST", "/repositories", Some(&t.owner), Some(connect), LOCAL).await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    let id = answer.json()["repository"]["id"].as_str().unwrap().to_string();

    let body = about("Acme/Hello");
    assert_eq!(app.send(signed_with("hello-secret", "d1", &body)).await.status, 202, "its own secret");
    let problem = app.send(signed_with(SECRET, "d2", &body)).await.problem(401, "invalid_signature");
    assert_eq!(problem["field"], "X-Hub-Signature-256");
    let tampered = about("acme/hello").into_iter().chain(b" ".iter().copied()).collect::<Vec<u8>>();
    let signature = WebhookVerifier::new(b"hello-secret").sign(&body);
    app.send(delivery("issues", "d3", &tampered, Some(&signature))).await.problem(401, "invalid_signature");
    // Other repositories keep the server's secret, and not this repository's.
    assert_eq!(app.send(signed_with(SECRET, "d4", &about("acme/other"))).await.status, 202);
    app.send(signed_with("hello-secret", "d5", &about("acme/other"))).await.problem(401, "invalid_signature");

    // A rotated secret applies at once (the cache is told), the old one no longer.
    let path = format!("/repositories/{id}");
    let rotate = serde_json::json!({ "webhook_secret": "rotated" });
    assert_eq!(app.call("PATCH", &path, Some(&t.owner), Some(rotate), LOCAL).await.status, 200);
    app.send(signed_with("hello-secret", "d6", &body)).await.problem(401, "invalid_signature");
    assert_eq!(app.send(signed_with("rotated", "d7", &body)).await.status, 202);
    // Removed: the server's secret again.
    let clear = serde_json::json!({ "webhook_secret": null });
    assert_eq!(app.call("PATCH", &path, Some(&t.owner), Some(clear), LOCAL).await.status, 200);
    assert_eq!(app.send(signed_with(SECRET, "d8", &body)).await.status, 202);

    // A secret stored in an organization its deliveries are not indexed under does not decide.
    let elsewhere = serde_json::json!({
        "org": "acme", "git_url": "https://github.com/octo/hello", "webhook_secret": "acme-copy",
    });
    assert_eq!(app.call("POST", "/repositories", Some(&t.owner), Some(elsewhere), LOCAL).await.status, 201);
    assert_eq!(app.send(signed_with(SECRET, "d9", &about("octo/hello"))).await.status, 202);

    let delivered: Vec<String> = queued(&app).await.into_iter().map(|q| q.envelope.delivery).collect();
    assert_eq!(delivered, ["d0", "d1", "d4", "d7", "d8", "d9"]);
}
