//! `GET|PUT /organizations/{org}/notifications`: the caller's own preferences, bad fields named,
//! private targets refused, another organization 404.

use serde_json::json;

use crate::harness::app;
use crate::tenants::LOCAL;

#[tokio::test]
async fn members_keep_their_own_preferences() {
    let app = app();
    let t = app.tenants().await;
    let path = format!("/organizations/{}/notifications", t.org);
    let empty = app.call("GET", &path, Some(&t.member), None, LOCAL).await;
    assert_eq!(empty.status, 200, "{:?}", empty.body);
    assert_eq!(empty.json()["events"], json!([]));
    assert_eq!(empty.json()["email_delivery"], "not_configured");

    let body = json!({
        "email": "member@example.com",
        "webhook_url": "https://93.184.215.14/hooks/ledge",
        "slack_webhook_url": "https://93.184.215.15/services/T/B/x",
        "events": ["indexing.finished", "indexing.failed"],
    });
    let saved = app.call("PUT", &path, Some(&t.member), Some(body), LOCAL).await;
    assert_eq!(saved.status, 200, "{:?}", saved.body);
    let read = app.call("GET", &path, Some(&t.member), None, LOCAL).await.json();
    assert_eq!(read["webhook_url"], "https://93.184.215.14/hooks/ledge");
    assert_eq!(read["events"], json!(["indexing.finished", "indexing.failed"]));
    // The owner's are their own.
    let owner = app.call("GET", &path, Some(&t.owner), None, LOCAL).await.json();
    assert_eq!(owner["events"], json!([]));
    assert!(owner.get("webhook_url").is_none());

    // Another organization's preferences read as missing.
    let other = format!("/organizations/{}/notifications", t.other_org);
    app.call("GET", &other, Some(&t.member), None, LOCAL).await.problem(404, "not_found");
}

#[tokio::test]
async fn bad_targets_and_events_are_named() {
    let app = app();
    let t = app.tenants().await;
    let path = format!("/organizations/{}/notifications", t.org);
    let cases = [
        (json!({ "webhook_url": "http://127.0.0.1:8080/", "events": [] }), "webhook_url", "loopback"),
        (json!({ "webhook_url": "http://169.254.169.254/", "events": [] }), "webhook_url", "link-local"),
        (json!({ "slack_webhook_url": "http://10.0.0.1/x", "events": [] }), "slack_webhook_url", "private"),
        (json!({ "webhook_url": "ftp://93.184.215.14/", "events": [] }), "webhook_url", "http"),
        (json!({ "events": ["indexing.started"] }), "events", "unknown event"),
        (json!({ "webhook_url": "https://93.184.215.14/" }), "events", "required"),
        (json!({ "sms": "+1555", "events": [] }), "sms", "not a field"),
    ];
    for (body, field, words) in cases {
        let answer = app.call("PUT", &path, Some(&t.member), Some(body.clone()), LOCAL).await;
        let problem = answer.problem(400, "invalid_field");
        assert_eq!(problem["field"], field, "{body}");
        assert!(problem["detail"].as_str().unwrap().contains(words), "{body}: {problem}");
    }
}

#[tokio::test]
async fn private_targets_are_accepted_when_the_configuration_allows_them() {
    let app = crate::harness::app_with(
        &[
            ("LEDGE_JWT_KEYS", crate::harness::JWT_KEYS),
            ("LEDGE_NOTIFICATIONS__ALLOW_PRIVATE_TARGETS", "true"),
        ],
        ledge_api::Limits::default(),
    );
    let t = app.tenants().await;
    let path = format!("/organizations/{}/notifications", t.org);
    let body = json!({ "webhook_url": "http://127.0.0.1:9000/hook", "events": ["usage_limit.reached"] });
    let answer = app.call("PUT", &path, Some(&t.owner), Some(body), LOCAL).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
}
