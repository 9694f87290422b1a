//! The embedded driver's inbox: sends are appended to a log and moved into the tables on the next
//! read; what a process leaves there is recovered at open, once, and a torn tail is cut.

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ledge_queue::conformance::{JOBS, suite_config};
use ledge_queue::{
    MessageBody, QueueBackend, QueueDepth, SendOptions, SendOutcome, SqliteQueueOptions, SqliteQueues,
};

fn open(dir: &tempfile::TempDir) -> Arc<SqliteQueues> {
    SqliteQueues::open(dir.path().join("queues.db"), SqliteQueueOptions::new(suite_config())).unwrap()
}

fn segments(dir: &tempfile::TempDir) -> Vec<(PathBuf, u64)> {
    let mut segments: Vec<_> = std::fs::read_dir(dir.path().join("queues.inbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let len = std::fs::metadata(&p).unwrap().len();
            (p, len)
        })
        .collect();
    segments.sort();
    segments
}

async fn send(queues: &Arc<SqliteQueues>, text: &str, options: SendOptions) -> SendOutcome {
    queues.producer(JOBS).unwrap().send(MessageBody::Text(text.into()), options).await.unwrap()
}

fn ready(n: u64) -> QueueDepth {
    QueueDepth { ready: n, delayed: 0, in_flight: 0 }
}

fn append_to(path: &Path, bytes: &[u8]) {
    std::fs::OpenOptions::new().append(true).open(path).unwrap().write_all(bytes).unwrap();
}

#[tokio::test]
async fn a_send_waits_in_the_inbox_until_the_queue_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let queues = open(&dir);
    for text in ["a", "b", "c"] {
        send(&queues, text, SendOptions::default()).await;
    }
    assert_eq!(queues.inbox_backlog(), 3);
    assert!(segments(&dir)[0].1 > 0, "the records are in the segment file");
    assert_eq!(queues.depth(JOBS).await.unwrap(), ready(3));
    assert_eq!(queues.inbox_backlog(), 0);
}

#[tokio::test]
async fn what_a_process_left_in_the_inbox_is_recovered_once() {
    let dir = tempfile::tempdir().unwrap();
    let queues = open(&dir);
    send(&queues, "drained", SendOptions::default()).await;
    send(&queues, "drained too", SendOptions::default()).await;
    assert_eq!(queues.depth(JOBS).await.unwrap(), ready(2));
    send(&queues, "left in the inbox", SendOptions::default()).await;
    drop(queues);

    let reopened = open(&dir);
    assert_eq!(reopened.depth(JOBS).await.unwrap(), ready(3), "nothing lost, nothing drained twice");
    let segments = segments(&dir);
    assert_eq!(segments.len(), 1, "recovered segments are removed: {segments:?}");
    assert_eq!(segments[0].1, 0, "a fresh segment is started");
    drop(reopened);
    assert_eq!(open(&dir).depth(JOBS).await.unwrap(), ready(3));
}

#[tokio::test]
async fn a_torn_record_at_the_end_is_cut_and_the_records_before_it_kept() {
    let dir = tempfile::tempdir().unwrap();
    let queues = open(&dir);
    send(&queues, "one", SendOptions::default()).await;
    send(&queues, "two", SendOptions::default()).await;
    drop(queues);
    let (segment, len) = segments(&dir).pop().unwrap();
    // A record header announcing 1000 bytes, of which only a few were written before the crash.
    let mut torn = 1000u32.to_le_bytes().to_vec();
    torn.extend_from_slice(&[0xAB; 4]);
    torn.extend_from_slice(b"partial");
    append_to(&segment, &torn);
    assert!(std::fs::metadata(&segment).unwrap().len() > len);

    let reopened = open(&dir);
    assert_eq!(reopened.depth(JOBS).await.unwrap(), ready(2));
    send(&reopened, "three", SendOptions::default()).await;
    let texts: Vec<String> = reopened
        .peek(JOBS, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| match m.body {
            MessageBody::Text(t) => t,
            other => panic!("a text body, got {other:?}"),
        })
        .collect();
    assert_eq!(texts, ["one", "two", "three"]);
}

#[tokio::test]
async fn a_record_whose_checksum_does_not_match_is_not_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let queues = open(&dir);
    send(&queues, "kept", SendOptions::default()).await;
    drop(queues);
    drop(open(&dir)); // recovers "kept" into the tables and starts a fresh segment
    // A complete record whose checksum does not match its payload.
    let (fresh, _) = segments(&dir).pop().unwrap();
    let mut record = 9u32.to_le_bytes().to_vec();
    record.extend_from_slice(&0xDEAD_BEEFu32.to_le_bytes());
    record.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 0]);
    append_to(&fresh, &record);
    assert_eq!(open(&dir).depth(JOBS).await.unwrap(), ready(1));
}

#[tokio::test]
async fn a_dedup_key_holds_whether_its_message_is_in_the_inbox_or_the_tables() {
    let dir = tempfile::tempdir().unwrap();
    let queues = open(&dir);
    assert!(matches!(send(&queues, "x", SendOptions::dedup("k")).await, SendOutcome::Queued { .. }));
    assert_eq!(
        send(&queues, "x", SendOptions::dedup("k")).await,
        SendOutcome::Duplicate,
        "held by the inbox"
    );
    queues.depth(JOBS).await.unwrap();
    assert_eq!(
        send(&queues, "x", SendOptions::dedup("k")).await,
        SendOutcome::Duplicate,
        "held by the table"
    );
    assert!(matches!(send(&queues, "y", SendOptions::dedup("other")).await, SendOutcome::Queued { .. }));
    drop(queues);
    let reopened = open(&dir);
    assert_eq!(send(&reopened, "x", SendOptions::dedup("other")).await, SendOutcome::Duplicate);
    assert_eq!(
        send(&reopened, "x", SendOptions::dedup("k")).await,
        SendOutcome::Duplicate,
        "after a restart"
    );
    assert_eq!(reopened.depth(JOBS).await.unwrap(), ready(2));
}

#[tokio::test]
async fn the_inbox_rolls_over_to_a_new_segment_and_drains_across_them() {
    let dir = tempfile::tempdir().unwrap();
    let queues = open(&dir);
    let producer = queues.producer(JOBS).unwrap();
    // 700 messages of 100 KB: past the 64 MiB segment size.
    let body = bytes::Bytes::from(vec![7u8; 100_000]);
    for _ in 0..700 {
        producer.send(MessageBody::Bytes(body.clone()), SendOptions::default()).await.unwrap();
    }
    assert_eq!(segments(&dir).len(), 2, "a second segment was started");
    assert_eq!(queues.depth(JOBS).await.unwrap(), ready(700));
    assert_eq!(segments(&dir).len(), 1, "the drained, closed segment is removed");
    let claimed = queues.claim(JOBS, 100, std::time::Duration::from_secs(30)).await.unwrap();
    assert!(claimed.iter().all(|m| m.body == body));
}

#[tokio::test]
async fn senders_that_are_ready_together_are_written_together_and_each_answered_for_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let queues = open(&dir);
    // 60 sends at once on this one thread, 20 dedup keys used three times each.
    let sends = (0..60).map(|i| {
        let queues = queues.clone();
        async move { send(&queues, &format!("m{i}"), SendOptions::dedup(format!("key-{}", i % 20))).await }
    });
    let outcomes = futures_join_all(sends).await;
    let queued = outcomes.iter().filter(|o| matches!(o, SendOutcome::Queued { .. })).count();
    assert_eq!(queued, 20, "one send per key is queued");
    assert_eq!(queues.inbox_backlog(), 20, "every queued record is in the file before its send returned");
    drop(queues);
    let reopened = open(&dir);
    assert_eq!(reopened.depth(JOBS).await.unwrap(), ready(20), "the records are intact in the segment");
}

#[tokio::test]
async fn a_send_cancelled_while_its_record_waits_for_the_group_write_still_writes_it() {
    let dir = tempfile::tempdir().unwrap();
    let queues = open(&dir);
    let mut send_future = Box::pin(send(&queues, "the client went away", SendOptions::dedup("delivery-1")));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(send_future.as_mut().poll(&mut cx).is_pending(), "the record waits for the group write");
    drop(send_future);
    assert_eq!(queues.inbox_backlog(), 1, "its record was written when it was dropped");
    assert_eq!(send(&queues, "redelivered", SendOptions::dedup("delivery-1")).await, SendOutcome::Duplicate);
    drop(queues);
    assert_eq!(open(&dir).depth(JOBS).await.unwrap(), ready(1), "and it survives the process");
}

/// Runs the futures as concurrent tasks on this thread and returns their outputs in order.
async fn futures_join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + 'static,
    F::Output: 'static,
{
    let local = tokio::task::LocalSet::new();
    let handles: Vec<_> = futures.into_iter().map(|f| local.spawn_local(f)).collect();
    local
        .run_until(async move {
            let mut out = Vec::with_capacity(handles.len());
            for handle in handles {
                out.push(handle.await.unwrap());
            }
            out
        })
        .await
}
