//! The `github-events` consumer records deliveries once, and sends what it cannot read to the DLQ.

use std::sync::Arc;
use std::time::Duration;

use ledge_github::{Envelope, EventRecorder, Payload};
use ledge_queue::{
    Consumer, ConsumerSettings, MessageBody, QueueBackend, QueueConfig, QueueDeclaration, SendOptions,
    SqliteQueueOptions, SqliteQueues,
};

/// delivery, event, action, installation, repository
type Row = (String, String, Option<String>, Option<i64>, Option<String>);

#[tokio::test]
async fn deliveries_are_recorded_once_and_unreadable_messages_are_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let config = QueueConfig::new([QueueDeclaration::new("github-events"), QueueDeclaration::new("dlq")]);
    let queues = SqliteQueues::open(dir.path().join("q.db"), SqliteQueueOptions::new(config)).unwrap();
    let db = ledge_db::Database::connect(&format!("sqlite://{}", dir.path().join("ledge.db").display()))
        .await
        .unwrap();
    let producer = queues.producer("github-events").unwrap();
    let body = br#"{"action":"opened","installation":{"id":4},"repository":{"id":8,"full_name":"o/r"}}"#;
    for delivery in ["a", "b", "a"] {
        // "a" twice: a redelivery the intake's dedup missed must still be recorded once.
        let envelope = Envelope::parse(Some(b"issues"), Some(delivery.as_bytes()), body).unwrap();
        let message = envelope.queue_message(Payload::Inline(body));
        producer.send(MessageBody::RawJson(message.into()), SendOptions::default()).await.unwrap();
    }
    producer
        .send(MessageBody::Json(serde_json::json!({"not": "a delivery"})), SendOptions::default())
        .await
        .unwrap();

    let settings = ConsumerSettings {
        max_batch_size: 10,
        max_batch_timeout: Duration::from_millis(50),
        max_retries: 1,
        dead_letter_queue: Some("dlq".into()),
        ..ConsumerSettings::default()
    };
    let backend: Arc<dyn QueueBackend> = queues.clone();
    let consumer =
        Consumer::new(backend.clone(), "github-events", settings, Arc::new(EventRecorder::new(db.clone())))
            .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(consumer.run(async move {
        let _ = stopped.await;
    }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while backend.depth("dlq").await.unwrap().ready == 0
        || backend.depth("github-events").await.unwrap().ready > 0
    {
        assert!(tokio::time::Instant::now() < deadline, "the consumer did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(());
    running.await.unwrap().unwrap();

    let rows: Vec<Row> = ledge_db::sqlx::query_as(
        "SELECT delivery, event, action, installation, repository FROM github_events ORDER BY delivery",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    let opened = |d: &str| {
        (d.to_string(), "issues".to_string(), Some("opened".to_string()), Some(4), Some("o/r".to_string()))
    };
    assert_eq!(rows, vec![opened("a"), opened("b")]);
    let dead = backend.peek("dlq", 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    let dead_letter = dead[0].dead_letter.as_ref().unwrap();
    assert_eq!(dead_letter.attempts, 2);
    let reason = dead_letter.last_error.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with("not a github-events delivery: ") && reason.contains("missing field `event`"),
        "{reason}"
    );
}
