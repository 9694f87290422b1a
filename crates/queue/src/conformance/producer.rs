//! Conformance cases of the producer side and of the driver's storage: persistence, limits,
//! content types, delays, dedup keys, retention, depth and leases.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tokio::time::Instant;

use super::*;
use crate::{
    BatchEntry, BatchOptions, ContentType, NewMessage, QueueDepth, QueueProducer, SendOptions, SendOutcome,
    SettleAction, Settlement,
};

fn queued(outcome: SendOutcome) -> MessageId {
    outcome.id().expect("the message was queued")
}

fn bytes_of_len(n: usize) -> MessageBody {
    MessageBody::Bytes(Bytes::from(vec![b'a'; n]))
}

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, QueueError>, field: &str) {
    match result {
        Err(QueueError::InvalidInput { field: f, .. }) if f == field => {}
        other => panic!("expected InvalidInput on {field}, got {other:?}"),
    }
}

fn assert_too_large<T: std::fmt::Debug>(result: Result<T, QueueError>) {
    assert!(matches!(result, Err(QueueError::TooLarge { .. })), "expected TooLarge, got {result:?}");
}

/// Queue row "send": a send that returned is persisted (it survives reopening the storage).
pub async fn send_returns_once_the_message_is_persisted(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    let jobs = producer(&backend, JOBS);
    let one = queued(jobs.send(text("kept"), SendOptions::default()).await.unwrap());
    let batch = vec![BatchEntry::new(text("b1")), BatchEntry::new(text("b2"))];
    let more: Vec<_> =
        jobs.send_batch(batch, BatchOptions::default()).await.unwrap().into_iter().map(queued).collect();
    drop(jobs);
    drop(backend);

    let reopened = open(&harness).await;
    let stored = reopened.peek(JOBS, 10).await.unwrap();
    assert_eq!(sorted(stored.iter().map(|m| m.id).collect()), sorted(vec![one, more[0], more[1]]));
    let kept = stored.iter().find(|m| m.id == one).unwrap();
    assert_eq!(kept.body, text("kept"));
    assert_eq!(kept.attempts, 0);
    assert!(!kept.leased);
}

/// A producer or consumer for an undeclared queue is an error, never a silent drop.
pub async fn undeclared_queues_are_errors(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    assert!(
        matches!(Producer::new(backend.clone(), "undeclared"), Err(QueueError::UnknownQueue(q)) if q == "undeclared")
    );
    let message = NewMessage {
        content_type: ContentType::Text,
        body: Bytes::from_static(b"x"),
        delay: Duration::ZERO,
        dedup_key: None,
    };
    assert!(matches!(backend.send("undeclared", vec![message]).await, Err(QueueError::UnknownQueue(_))));
    let (handler, _) = recording(|_| Ok(()));
    let consumer = Consumer::new(backend.clone(), "undeclared", settings(), handler.clone());
    assert!(matches!(consumer, Err(QueueError::UnknownQueue(_))));
    let to_undeclared_dlq = ConsumerSettings { dead_letter_queue: Some("nowhere".into()), ..settings() };
    assert!(matches!(
        Consumer::new(backend, JOBS, to_undeclared_dlq, handler),
        Err(QueueError::UnknownQueue(_))
    ));
}

/// Queue row "limits": a message must be under 128 KB, its ~100 B of metadata included.
pub async fn message_must_be_under_128_kb_including_metadata(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    let jobs = producer(&backend, JOBS);
    let largest = 128_000 - 100 - 1;
    queued(jobs.send(bytes_of_len(largest), SendOptions::default()).await.unwrap());
    assert_too_large(jobs.send(bytes_of_len(largest + 1), SendOptions::default()).await);
    let in_batch = vec![BatchEntry::new(text("small")), BatchEntry::new(bytes_of_len(largest + 1))];
    assert_too_large(jobs.send_batch(in_batch, BatchOptions::default()).await);
    assert_eq!(backend.depth(JOBS).await.unwrap().ready, 1, "rejected sends store nothing");
}

/// Queue row "limits": a batch holds at most 100 messages and 256 KB; a rejected batch stores
/// nothing.
pub async fn batch_holds_at_most_100_messages_and_256_kb(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    let jobs = producer(&backend, JOBS);
    let entries = |n: usize| (0..n).map(|i| BatchEntry::new(text(&format!("m{i}")))).collect::<Vec<_>>();
    assert_eq!(jobs.send_batch(entries(100), BatchOptions::default()).await.unwrap().len(), 100);
    assert_too_large(jobs.send_batch(entries(101), BatchOptions::default()).await);
    // Two messages of 127 999 B with metadata: 255 998 B, within 256 KB.
    let two_large = vec![BatchEntry::new(bytes_of_len(127_899)), BatchEntry::new(bytes_of_len(127_899))];
    assert_eq!(jobs.send_batch(two_large, BatchOptions::default()).await.unwrap().len(), 2);
    let three = (0..3).map(|_| BatchEntry::new(bytes_of_len(90_000))).collect();
    assert_too_large(jobs.send_batch(three, BatchOptions::default()).await);
    assert_invalid(jobs.send_batch(Vec::new(), BatchOptions::default()).await, "messages");
    assert_eq!(backend.depth(JOBS).await.unwrap().ready, 102);
}

/// Queue row "content type": json is the default for JSON values; every type round-trips.
pub async fn content_type_defaults_to_json_and_bodies_round_trip(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    let jobs = producer(&backend, JOBS);
    let cases = vec![
        (
            MessageBody::Json(json!({"a": 1})),
            SendOptions::default(),
            MessageBody::RawJson(Bytes::from_static(br#"{"a":1}"#)),
        ),
        (
            MessageBody::RawJson(Bytes::from_static(b"[1, 2]")),
            SendOptions::default(),
            MessageBody::RawJson(Bytes::from_static(b"[1, 2]")),
        ),
        (text("hé"), SendOptions::default(), text("hé")),
        (
            MessageBody::Bytes(Bytes::from_static(&[0, 255])),
            SendOptions::default(),
            MessageBody::Bytes(Bytes::from_static(&[0, 255])),
        ),
        (
            text(r#"{"t":true}"#),
            SendOptions::content_type(ContentType::Json),
            MessageBody::RawJson(Bytes::from_static(br#"{"t":true}"#)),
        ),
        (
            MessageBody::Bytes(Bytes::from_static(b"ok")),
            SendOptions::content_type(ContentType::Text),
            text("ok"),
        ),
    ];
    let mut expected = Vec::new();
    for (body, options, received) in cases {
        expected.push((queued(jobs.send(body, options).await.unwrap()), received));
    }
    let (handler, mut deliveries) = recording(|_| Ok(()));
    let consumer = Running::start(&backend, JOBS, settings(), handler);
    let delivered: Vec<Delivered> =
        deliveries.messages(expected.len(), PROMPTLY).await.into_iter().flat_map(|d| d.messages).collect();
    consumer.stop().await;
    for (id, body) in expected {
        let got = delivered.iter().find(|d| d.id == id).expect("every message is delivered");
        assert_eq!(got.body, body);
    }
    let first: serde_json::Value =
        delivered.iter().find_map(|d| d.body.json().ok().filter(|v| v == &json!({"a": 1}))).unwrap();
    assert_eq!(first["a"], 1);
}

/// Queue row "content type": a body that does not match its type is rejected, even in a batch.
pub async fn mismatched_body_is_rejected(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    let jobs = producer(&backend, JOBS);
    let send = |body: MessageBody, content_type: Option<ContentType>| {
        jobs.send(body, SendOptions { content_type, ..SendOptions::default() })
    };
    assert_invalid(send(MessageBody::RawJson(Bytes::from_static(b"{not json")), None).await, "body");
    assert_invalid(
        send(MessageBody::Bytes(Bytes::from_static(&[0xff, 0xfe])), Some(ContentType::Text)).await,
        "body",
    );
    assert_invalid(send(text("plain words"), Some(ContentType::Json)).await, "body");
    assert_invalid(send(MessageBody::Json(json!(1)), Some(ContentType::Bytes)).await, "content_type");
    let batch = vec![
        BatchEntry::new(text("fine")),
        BatchEntry::new(MessageBody::RawJson(Bytes::from_static(b"nope"))),
    ];
    assert_invalid(jobs.send_batch(batch, BatchOptions::default()).await, "body");
    assert_eq!(backend.depth(JOBS).await.unwrap(), QueueDepth::default(), "nothing was stored");
}

/// Queue row "delay": more than 43 200 s is rejected, wherever it is given; 43 200 is accepted.
pub async fn delay_over_43200_seconds_is_rejected(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    let jobs = producer(&backend, JOBS);
    assert_invalid(jobs.send(text("x"), SendOptions::delay(43_201)).await, "delay_seconds");
    let batch = || vec![BatchEntry::new(text("x"))];
    assert_invalid(
        jobs.send_batch(batch(), BatchOptions { delay_seconds: Some(43_201) }).await,
        "delay_seconds",
    );
    let entry = vec![BatchEntry { body: text("x"), options: SendOptions::delay(43_201) }];
    assert_invalid(jobs.send_batch(entry, BatchOptions::default()).await, "delay_seconds");
    queued(jobs.send(text("x"), SendOptions::delay(43_200)).await.unwrap());
    assert_eq!(backend.depth(JOBS).await.unwrap(), QueueDepth { ready: 0, delayed: 1, in_flight: 0 });
}

/// Queue row "delay": a delayed message is not delivered before its delay.
pub async fn delayed_message_is_not_delivered_early(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    let (handler, mut deliveries) = recording(|_| Ok(()));
    let consumer = Running::start(&backend, JOBS, settings(), handler);
    let sent_at = Instant::now();
    let id = queued(producer(&backend, JOBS).send(text("later"), SendOptions::delay(1)).await.unwrap());
    assert_eq!(backend.depth(JOBS).await.unwrap(), QueueDepth { ready: 0, delayed: 1, in_flight: 0 });
    let delivery = deliveries.next(PROMPTLY).await;
    assert_eq!(delivery.ids(), vec![id]);
    let waited = delivery.at - sent_at;
    assert!(
        waited + CLOCK_SLACK >= Duration::from_secs(1),
        "delivered after {waited:?}, before its 1 s delay"
    );
    consumer.stop().await;
}

/// Queue row "delay": `delay_seconds` overrides the queue's default delay, and 0 cancels it.
pub async fn explicit_zero_delay_overrides_the_queue_default(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    let delayed = producer(&backend, DELAYED);
    let sent_at = Instant::now();
    let by_default = queued(delayed.send(text("default"), SendOptions::default()).await.unwrap());
    assert_eq!(backend.depth(DELAYED).await.unwrap(), QueueDepth { ready: 0, delayed: 1, in_flight: 0 });
    let zero = queued(delayed.send(text("zero"), SendOptions::delay(0)).await.unwrap());
    let batch_zero = delayed
        .send_batch(vec![BatchEntry::new(text("batch zero"))], BatchOptions { delay_seconds: Some(0) })
        .await
        .unwrap();
    let entry_zero = vec![BatchEntry { body: text("entry zero"), options: SendOptions::delay(0) }];
    let entry_zero = delayed.send_batch(entry_zero, BatchOptions { delay_seconds: Some(600) }).await.unwrap();
    assert_eq!(backend.depth(DELAYED).await.unwrap(), QueueDepth { ready: 3, delayed: 1, in_flight: 0 });

    let (handler, mut deliveries) = recording(|_| Ok(()));
    let consumer = Running::start(&backend, DELAYED, settings(), handler);
    let first = deliveries.messages(3, PROMPTLY).await;
    let first_ids = sorted(first.iter().flat_map(|d| d.ids()).collect());
    assert_eq!(first_ids, sorted(vec![zero, queued(batch_zero[0]), queued(entry_zero[0])]));
    let last = deliveries.next(PROMPTLY).await;
    assert_eq!(last.ids(), vec![by_default]);
    assert!(last.at - sent_at + CLOCK_SLACK >= Duration::from_secs(1), "the default delay was not honoured");
    consumer.stop().await;
}

/// ledge extension: a second send with a dedup key seen within the window does nothing.
pub async fn dedup_key_makes_a_repeated_send_a_no_op(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    let jobs = producer(&backend, JOBS);
    let first = queued(jobs.send(text("a"), SendOptions::dedup("delivery-1")).await.unwrap());
    assert_eq!(
        jobs.send(text("a again"), SendOptions::dedup("delivery-1")).await.unwrap(),
        SendOutcome::Duplicate
    );
    // Keys are per queue.
    queued(producer(&backend, OTHER).send(text("a"), SendOptions::dedup("delivery-1")).await.unwrap());
    let batch = vec![
        BatchEntry { body: text("b"), options: SendOptions::dedup("delivery-2") },
        BatchEntry { body: text("b again"), options: SendOptions::dedup("delivery-2") },
        BatchEntry { body: text("a third time"), options: SendOptions::dedup("delivery-1") },
        BatchEntry::new(text("no key")),
    ];
    let outcomes = jobs.send_batch(batch, BatchOptions::default()).await.unwrap();
    assert!(matches!(
        outcomes[..],
        [
            SendOutcome::Queued { .. },
            SendOutcome::Duplicate,
            SendOutcome::Duplicate,
            SendOutcome::Queued { .. }
        ]
    ));
    let stored = stored_ids(&backend, JOBS).await;
    assert_eq!(stored, sorted(vec![first, queued(outcomes[0]), queued(outcomes[3])]));
    assert_invalid(jobs.send(text("x"), SendOptions::dedup("")).await, "dedup_key");
}

/// ledge extension: the dedup check and the insert are atomic.
pub async fn concurrent_sends_with_one_dedup_key_store_one_message(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    let jobs: Arc<dyn QueueProducer> = Arc::new(producer(&backend, JOBS));
    let mut tasks = Vec::new();
    for i in 0..32 {
        let jobs = jobs.clone();
        tasks.push(tokio::spawn(async move {
            jobs.send(text(&format!("copy {i}")), SendOptions::dedup("same")).await
        }));
    }
    let mut queued_count = 0;
    for task in tasks {
        if let SendOutcome::Queued { .. } = task.await.unwrap().unwrap() {
            queued_count += 1;
        }
    }
    assert_eq!(queued_count, 1);
    assert_eq!(stored_ids(&backend, JOBS).await.len(), 1);
}

/// ledge extension: once the dedup window has passed, the key can be used again.
pub async fn dedup_key_expires_with_its_window(harness: impl QueueHarness) {
    let mut config = suite_config();
    config.dedup_window = Some(Duration::from_millis(200));
    let backend = open_with(&harness, config).await;
    let jobs = producer(&backend, JOBS);
    queued(jobs.send(text("a"), SendOptions::dedup("k")).await.unwrap());
    assert_eq!(jobs.send(text("a"), SendOptions::dedup("k")).await.unwrap(), SendOutcome::Duplicate);
    tokio::time::sleep(Duration::from_millis(250)).await;
    queued(jobs.send(text("a"), SendOptions::dedup("k")).await.unwrap());
}

/// Retention: the purge drops messages older than the retention, and expired dedup keys.
pub async fn purge_drops_messages_past_retention_and_expired_dedup_keys(harness: impl QueueHarness) {
    let mut config = suite_config();
    config.retention = Duration::from_millis(200);
    let backend = open_with(&harness, config).await;
    let jobs = producer(&backend, JOBS);
    queued(jobs.send(text("old"), SendOptions::dedup("k")).await.unwrap());
    queued(producer(&backend, OTHER).send(text("old too"), SendOptions::delay(60)).await.unwrap());
    tokio::time::sleep(Duration::from_millis(250)).await;
    let fresh = queued(jobs.send(text("fresh"), SendOptions::default()).await.unwrap());
    let report = backend.purge_expired().await.unwrap();
    assert_eq!((report.messages, report.dedup_keys), (2, 1));
    assert_eq!(stored_ids(&backend, JOBS).await, vec![fresh]);
    assert_eq!(stored_ids(&backend, OTHER).await, vec![]);
}

/// Observability: depth splits a queue's backlog into ready, delayed and in flight.
pub async fn depth_counts_ready_delayed_and_in_flight(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    let jobs = producer(&backend, JOBS);
    for i in 0..3 {
        jobs.send(text(&format!("ready {i}")), SendOptions::default()).await.unwrap();
    }
    jobs.send(text("delayed"), SendOptions::delay(60)).await.unwrap();
    let claimed = backend.claim(JOBS, 1, Duration::from_secs(30)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(backend.depth(JOBS).await.unwrap(), QueueDepth { ready: 2, delayed: 1, in_flight: 1 });
    assert_eq!(backend.depth(OTHER).await.unwrap(), QueueDepth::default());
}

/// Crash safety: a claim leases a message; only the current lease can settle it, and an
/// expired lease makes it visible again with one more attempt.
pub async fn settling_needs_the_current_lease(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    let id = queued(producer(&backend, JOBS).send(text("leased"), SendOptions::default()).await.unwrap());
    let first = backend.claim(JOBS, 10, Duration::from_millis(100)).await.unwrap();
    assert_eq!((first.len(), first[0].id, first[0].attempts), (1, id, 1));
    assert!(
        backend.claim(JOBS, 10, Duration::from_secs(30)).await.unwrap().is_empty(),
        "a leased message is invisible"
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    let second = backend.claim(JOBS, 10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(
        (second.len(), second[0].attempts),
        (1, 2),
        "an expired lease makes the message visible again"
    );
    let ack = |lease| vec![Settlement { id, lease, action: SettleAction::Ack }];
    backend.settle(JOBS, ack(first[0].lease)).await.unwrap();
    assert_eq!(stored_ids(&backend, JOBS).await, vec![id], "a stale lease cannot ack");
    backend.settle(JOBS, ack(second[0].lease)).await.unwrap();
    assert_eq!(stored_ids(&backend, JOBS).await, vec![]);
}
