//! Behaviour particular to the embedded SQLite driver, and the consumer's settings validation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ledge_queue::conformance::{JOBS, recording, suite_config};
use ledge_queue::{
    Consumer, ConsumerSettings, MessageBody, QueueBackend, QueueConfig, QueueDeclaration, QueueDepth,
    QueueError, SendOptions, SqliteQueueOptions, SqliteQueues,
};

fn open(dir: &tempfile::TempDir) -> Arc<SqliteQueues> {
    SqliteQueues::open(dir.path().join("queues.db"), SqliteQueueOptions::new(suite_config())).unwrap()
}

#[tokio::test]
async fn reopening_releases_every_lease_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let queues = open(&dir);
    queues.producer(JOBS).unwrap().send(MessageBody::Text("x".into()), SendOptions::default()).await.unwrap();
    let claimed = queues.claim(JOBS, 10, Duration::from_secs(3600)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(queues.depth(JOBS).await.unwrap(), QueueDepth { ready: 0, delayed: 0, in_flight: 1 });
    drop(queues);

    let reopened = open(&dir);
    assert_eq!(reopened.depth(JOBS).await.unwrap(), QueueDepth { ready: 1, delayed: 0, in_flight: 0 });
    let again = reopened.claim(JOBS, 10, Duration::from_secs(30)).await.unwrap();
    assert_eq!((again[0].id, again[0].attempts), (claimed[0].id, 2));
}

#[tokio::test]
async fn large_bodies_are_stored_compressed_and_come_back_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let queues = open(&dir);
    let compressible = serde_json::json!({"commits": vec!["refs/heads/main 0123456789abcdef"; 2000]});
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let random: Vec<u8> = (0..60_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let producer = queues.producer(JOBS).unwrap();
    producer.send(MessageBody::Json(compressible.clone()), SendOptions::default()).await.unwrap();
    producer.send(MessageBody::Bytes(random.clone().into()), SendOptions::default()).await.unwrap();

    let peeked = queues.peek(JOBS, 10).await.unwrap();
    assert_eq!(peeked[0].body.json::<serde_json::Value>().unwrap(), compressible);
    let claimed = queues.claim(JOBS, 10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&claimed[0].body).unwrap(), compressible);
    assert_eq!(&claimed[1].body[..], &random[..]);

    let db = ledge_sqlite::rusqlite::Connection::open(dir.path().join("queues.db")).unwrap();
    let sizes: Vec<(i64, i64)> = db
        .prepare("SELECT body_encoding, length(body) FROM queue_messages ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let json_len = serde_json::to_vec(&compressible).unwrap().len() as i64;
    assert_eq!(sizes[0].0, 1, "the JSON body is stored compressed");
    assert!(sizes[0].1 * 10 < json_len, "{} of {json_len} bytes", sizes[0].1);
    assert_eq!(sizes[1], (0, 60_000), "incompressible bytes are stored as sent");
}

#[tokio::test]
async fn a_producer_for_an_undeclared_queue_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let result = open(&dir).producer("github-events");
    assert!(matches!(result, Err(QueueError::UnknownQueue(name)) if name == "github-events"));
}

#[tokio::test]
async fn an_invalid_configuration_is_rejected_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let config = QueueConfig::new([QueueDeclaration::new("a"), QueueDeclaration::new("a")]);
    let result = SqliteQueues::open(dir.path().join("q.db"), SqliteQueueOptions::new(config));
    assert!(matches!(result, Err(QueueError::InvalidInput { field: "queues", .. })));
}

#[tokio::test]
async fn consumer_settings_outside_the_contract_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let backend: Arc<dyn QueueBackend> = open(&dir);
    let base = ConsumerSettings::default;
    let cases = [
        ("max_batch_size", ConsumerSettings { max_batch_size: 0, ..base() }),
        ("max_batch_size", ConsumerSettings { max_batch_size: 101, ..base() }),
        ("max_batch_timeout", ConsumerSettings { max_batch_timeout: Duration::from_secs(61), ..base() }),
        ("max_retries", ConsumerSettings { max_retries: 101, ..base() }),
        ("retry_delay", ConsumerSettings { retry_delay: Some(Duration::from_secs(43_201)), ..base() }),
        ("max_concurrency", ConsumerSettings { max_concurrency: Some(0), ..base() }),
        ("max_concurrency", ConsumerSettings { max_concurrency: Some(251), ..base() }),
        ("visibility_timeout", ConsumerSettings { visibility_timeout: Duration::ZERO, ..base() }),
        ("dead_letter_queue", ConsumerSettings { dead_letter_queue: Some(JOBS.into()), ..base() }),
    ];
    for (field, settings) in cases {
        let (handler, _) = recording(|_| Ok(()));
        match Consumer::new(backend.clone(), JOBS, settings, handler) {
            Err(QueueError::InvalidInput { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: expected InvalidInput, got {other:?}"),
        }
    }
    let (handler, _) = recording(|_| Ok(()));
    let upper_bounds = ConsumerSettings {
        max_batch_size: 100,
        max_batch_timeout: Duration::from_secs(60),
        max_retries: 100,
        retry_delay: Some(Duration::from_secs(43_200)),
        max_concurrency: Some(250),
        ..base()
    };
    Consumer::new(backend, JOBS, upper_bounds, handler).expect("the contract's upper bounds are accepted");
}

/// Sanity check of the hot path (not a benchmark): 20 000 concurrent sends from 64 tasks are
/// group-committed and all persisted. Prints the rate; run with `--release --nocapture` to see
/// the figure the webhook intake can expect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_are_group_committed() {
    const SENDS: usize = 20_000;
    const TASKS: usize = 64;
    let dir = tempfile::tempdir().unwrap();
    let queues = open(&dir);
    let producer = queues.producer(JOBS).unwrap();
    let body = serde_json::json!({"action": "opened", "delivery": "x".repeat(200)});
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let producer = producer.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for i in (task..SENDS).step_by(TASKS) {
                let sent = Instant::now();
                let options = SendOptions::dedup(format!("delivery-{i}"));
                producer.send(MessageBody::Json(body.clone()), options).await.unwrap().id().expect("queued");
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(SENDS);
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let percentile = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    eprintln!(
        "{SENDS} sends with dedup keys from {TASKS} tasks: {elapsed:?} ({:.0}/s), p50 {:?}, p99 {:?}, max {:?}",
        SENDS as f64 / elapsed.as_secs_f64(),
        percentile(50),
        percentile(99),
        percentile(100),
    );
    assert_eq!(queues.depth(JOBS).await.unwrap().ready, SENDS as u64);
}
