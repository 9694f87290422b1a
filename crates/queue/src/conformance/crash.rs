//! The crash case: a child process sends, consumes, and is SIGKILLed in the middle of a batch;
//! after a restart the unacked messages come back with one more attempt, and nothing acked does.
//!
//! The child is the test binary itself, re-executed on this one test with [`CRASH_CHILD_ENV`]
//! naming the storage; it reports what it did on stdout, one prefixed line per event. A normal run
//! cannot pass vacuously: the parent fails unless the child reported every step.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use super::*;
use crate::{QueueProducer, SendOptions};

/// Set (to a [`QueueHarness::locator`]) in the environment of the crash case's child process.
pub const CRASH_CHILD_ENV: &str = "LEDGE_QUEUE_CRASH_CHILD";
const REPORT_PREFIX: &str = "ledge-queue-crash-child:";

/// Queue row "crash". `test_path` is the test's full path (`module_path!()` + name), `fresh`
/// gives a harness over new storage (parent side), `attach` one over a located storage (child).
pub async fn crash_mid_batch_redelivers_unacked_messages_after_restart<H, Fresh, Attach, Attached>(
    test_path: &str,
    fresh: Fresh,
    attach: Attach,
) where
    H: QueueHarness,
    Fresh: Future<Output = H>,
    Attach: FnOnce(String) -> Attached,
    Attached: Future<Output = H>,
{
    if let Ok(locator) = std::env::var(CRASH_CHILD_ENV) {
        run_child(attach(locator).await).await;
        return;
    }
    let harness = fresh.await;
    // libtest names tests by their path without the crate's name.
    let test_name = test_path.split_once("::").map_or(test_path, |(_, rest)| rest);
    let mut child = tokio::process::Command::new(std::env::current_exe().expect("the test binary's path"))
        .args([test_name, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CRASH_CHILD_ENV, harness.locator())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the crash child starts");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();

    let mut sent = Vec::new();
    let mut batches: BTreeMap<usize, Vec<(MessageId, u32)>> = BTreeMap::new();
    let mut hanging = false;
    let reading = async {
        while let Some(line) = lines.next_line().await.expect("the child's stdout is readable") {
            // libtest may have written "test <name> ... " on the same line first.
            let Some(start) = line.find(REPORT_PREFIX) else { continue };
            let event = &line[start + REPORT_PREFIX.len()..];
            let words: Vec<&str> = event.split_whitespace().collect();
            match words[..] {
                ["sent", id] => sent.push(id.parse::<MessageId>().expect("an id")),
                ["delivered", batch, id, attempts] => batches
                    .entry(batch.parse().expect("a batch number"))
                    .or_default()
                    .push((id.parse().expect("an id"), attempts.parse().expect("attempts"))),
                ["hanging"] => {
                    hanging = true;
                    break;
                }
                _ => panic!("unexpected report from the crash child: {line}"),
            }
        }
    };
    let read_in_time = tokio::time::timeout(Duration::from_secs(60), reading).await.is_ok();
    child.kill().await.expect("SIGKILL the child");
    assert!(
        read_in_time && hanging,
        "the crash child did not reach its second batch (sent {sent:?}, batches {batches:?})"
    );

    assert_eq!(sent.len(), 4, "the child sent four messages");
    let acked: Vec<MessageId> = batches.get(&1).expect("a first batch").iter().map(|(id, _)| *id).collect();
    let unacked: Vec<MessageId> =
        batches.get(&2).expect("a second batch").iter().map(|(id, _)| *id).collect();
    assert_eq!((acked.len(), unacked.len()), (2, 2));
    assert!(batches.values().flatten().all(|&(_, attempts)| attempts == 1));
    assert_eq!(sorted([acked.clone(), unacked.clone()].concat()), sorted(sent.clone()));

    // Restart: a new backend on the same storage.
    let backend = open(&harness).await;
    assert_eq!(
        stored_ids(&backend, JOBS).await,
        sorted(unacked.clone()),
        "sent messages survived; acked ones are gone"
    );
    let (handler, mut deliveries) = recording(|_| Ok(()));
    let consumer = Running::start(&backend, JOBS, settings(), handler);
    let redelivered: Vec<Delivered> =
        deliveries.messages(2, Duration::from_secs(20)).await.into_iter().flat_map(|d| d.messages).collect();
    assert_eq!(sorted(redelivered.iter().map(|m| m.id).collect()), sorted(unacked));
    assert!(redelivered.iter().all(|m| m.attempts == 2), "attempts + 1 after the crash: {redelivered:?}");
    deliveries.none_within(Duration::from_millis(300)).await;
    consumer.stop().await;
    assert_eq!(stored_ids(&backend, JOBS).await, vec![]);
}

fn report(event: &str) {
    // Straight to the process's stdout: the test harness's capture does not see it.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{REPORT_PREFIX} {event}");
    let _ = out.flush();
}

/// The child: sends four messages, acks a first batch of two, hangs in the second until killed.
async fn run_child(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    let jobs = producer(&backend, JOBS);
    for i in 0..4 {
        let outcome = jobs.send(text(&format!("crash {i}")), SendOptions::default()).await.expect("sent");
        report(&format!("sent {}", outcome.id().expect("queued")));
    }
    let batches = Arc::new(AtomicUsize::new(0));
    let handler = batch_handler_fn(move |batch: MessageBatch| {
        let number = batches.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            for message in &batch.messages {
                report(&format!("delivered {number} {} {}", message.id, message.attempts));
            }
            if number >= 2 {
                report("hanging");
                std::future::pending::<()>().await;
            }
            Ok(())
        }
    });
    let pairs = ConsumerSettings {
        max_batch_size: 2,
        max_batch_timeout: Duration::ZERO,
        max_concurrency: Some(1),
        // Short, for drivers that recover by lease expiry rather than at open.
        visibility_timeout: Duration::from_secs(2),
        ..settings()
    };
    let consumer = Consumer::new(backend, JOBS, pairs, handler).expect("valid settings");
    let _ = consumer.run(std::future::pending()).await;
    panic!("the crash child's consumer stopped before it was killed");
}
