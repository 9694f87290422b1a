//! `ledge serve`: health, webhooks through the queue to the consumer, graceful shutdown, and a
//! SIGKILL that loses nothing.

use std::time::Duration;

use crate::harness::Server;

const PUSH: &[u8] =
    br#"{"ref":"refs/heads/main","installation":{"id":9},"repository":{"id":3,"full_name":"octo/e2e"}}"#;

#[test]
fn serve_answers_health_then_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let health = server.get("/health");
    assert_eq!(health.status, 200);
    assert_eq!(health.json(), serde_json::json!({"status": "ok"}));
    assert!(health.header("x-request-id").is_some());
    server.signal("TERM");
    let (status, log) = server.wait(Duration::from_secs(20));
    assert!(status.success(), "exit {status:?}; log:\n{}", log.join("\n"));
    assert!(log.iter().any(|l| l.contains("\"stopped\"")), "{}", log.join("\n"));
}

#[test]
fn an_idle_server_opens_no_storage_until_a_webhook_starts_the_consumers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    assert_eq!(server.get("/health").status, 200);
    std::thread::sleep(Duration::from_millis(600));
    let opened: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "LOCK")
        .collect();
    assert!(opened.is_empty(), "an idle server created {opened:?}");

    assert_eq!(server.webhook("push", "idle-1", PUSH).status, 202);
    server.wait_until(Duration::from_secs(20), "the consumers started and acked the delivery", |s| {
        s.metric("ledge_consumer_messages_acked_total{queue=\"github-events\"}") == Some(1.0)
    });
}

#[test]
fn a_webhook_travels_through_the_queue_to_its_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let answer = server.webhook("push", "e2e-1", PUSH);
    assert_eq!(answer.status, 202);
    assert_eq!(answer.json(), serde_json::json!({"queued": true, "delivery": "e2e-1"}));
    server.wait_until(Duration::from_secs(20), "the consumer acked the delivery", |s| {
        s.metric("ledge_consumer_messages_acked_total{queue=\"github-events\"}") == Some(1.0)
    });
    assert_eq!(server.metric("ledge_queue_depth{queue=\"github-events\",state=\"ready\"}"), Some(0.0));
    let again = server.webhook("push", "e2e-1", PUSH);
    assert_eq!((again.status, again.json()["duplicate"].as_bool()), (200, Some(true)));
}

#[test]
fn sigkill_after_acceptance_loses_no_webhook_and_duplicates_none() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    const N: usize = 300;
    for i in 0..N {
        let answer = server.webhook("push", &format!("kill-{i}"), PUSH);
        assert_eq!(answer.status, 202, "{}", String::from_utf8_lossy(&answer.body));
    }
    // Every 202 above promised the delivery was persisted: kill without warning.
    server.signal("KILL");
    let (status, _) = server.wait(Duration::from_secs(10));
    assert!(!status.success());

    let server = Server::start(dir.path());
    server.wait_until(Duration::from_secs(60), "every accepted delivery is recorded", |s| {
        s.metric("ledge_queue_depth{queue=\"github-events\",state=\"ready\"}") == Some(0.0)
            && s.metric("ledge_queue_depth{queue=\"github-events\",state=\"in_flight\"}") == Some(0.0)
            && s.metric("ledge_queue_depth{queue=\"github-events\",state=\"delayed\"}") == Some(0.0)
    });
    // Each delivery is recorded once: GitHub redelivering any of them is answered as a duplicate.
    for i in [0, N / 2, N - 1] {
        assert_eq!(server.webhook("push", &format!("kill-{i}"), PUSH).status, 200);
    }
    drop(server);
    let db = rusqlite::Connection::open(dir.path().join("ledge.db")).unwrap();
    let (rows, distinct): (i64, i64) = db
        .query_row(
            "SELECT count(*), count(DISTINCT delivery) FROM github_events WHERE delivery LIKE 'kill-%'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((rows, distinct), (N as i64, N as i64));
}
