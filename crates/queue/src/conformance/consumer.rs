//! Conformance cases of the consumer side: batching, ack/retry semantics and precedence, retry
//! delays, attempts, exhaustion, wake-ups, leases of slow batches, concurrency, shutdown, stats.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::*;
use crate::{AUTOSCALE_MAX_CONCURRENCY, BatchEntry, BatchOptions, QueueProducer, RetryOptions, SendOptions};

async fn send_texts(backend: &Arc<dyn QueueBackend>, queue: &str, bodies: &[&str]) -> Vec<MessageId> {
    let entries = bodies.iter().map(|b| BatchEntry::new(text(b))).collect();
    let outcomes = producer(backend, queue).send_batch(entries, BatchOptions::default()).await.unwrap();
    outcomes.into_iter().map(|o| o.id().expect("queued")).collect()
}

fn body_is(message: &crate::Message, body: &str) -> bool {
    message.body == text(body)
}

fn boom(message: impl Into<String>) -> HandlerError {
    message.into().into()
}

/// Queue row "batching": no batch holds more than `max_batch_size` messages.
pub async fn batches_hold_at_most_max_batch_size(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    let bodies: Vec<String> = (0..25).map(|i| format!("m{i}")).collect();
    let sent = send_texts(&backend, JOBS, &bodies.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let (handler, mut deliveries) = recording(|_| Ok(()));
    let autoscaled = ConsumerSettings {
        max_concurrency: None,
        max_batch_timeout: Duration::from_millis(200),
        ..settings()
    };
    let consumer = Running::start(&backend, JOBS, autoscaled, handler);
    let batches = deliveries.messages(25, PROMPTLY).await;
    consumer.stop().await;
    let mut sizes: Vec<usize> = batches.iter().map(|b| b.messages.len()).collect();
    sizes.sort();
    assert_eq!(sizes, vec![5, 10, 10]);
    assert_eq!(sorted(batches.iter().flat_map(|b| b.ids()).collect()), sorted(sent));
}

/// Queue row "batching": fewer than `max_batch_size` messages are delivered once the timeout
/// has passed since the first became ready, not before.
pub async fn partial_batch_is_delivered_after_the_timeout(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    let (handler, mut deliveries) = recording(|_| Ok(()));
    let waits = ConsumerSettings { max_batch_timeout: Duration::from_millis(300), ..settings() };
    let consumer = Running::start(&backend, JOBS, waits, handler);
    let sent_at = Instant::now();
    let sent = send_texts(&backend, JOBS, &["a", "b", "c"]).await;
    let batch = deliveries.next(PROMPTLY).await;
    assert_eq!(sorted(batch.ids()), sorted(sent));
    let waited = batch.at - sent_at;
    assert!(waited + CLOCK_SLACK >= Duration::from_millis(300), "a partial batch came after {waited:?}");
    deliveries.none_within(Duration::from_millis(200)).await;
    consumer.stop().await;
}

/// Queue row "batching": a full batch is delivered at once, without waiting for the timeout.
pub async fn full_batch_does_not_wait_for_the_timeout(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    let (handler, mut deliveries) = recording(|_| Ok(()));
    let long_wait =
        ConsumerSettings { max_batch_size: 5, max_batch_timeout: Duration::from_secs(60), ..settings() };
    let consumer = Running::start(&backend, JOBS, long_wait, handler);
    let sent_at = Instant::now();
    send_texts(&backend, JOBS, &["1", "2", "3", "4", "5"]).await;
    let batch = deliveries.next(PROMPTLY).await;
    assert_eq!(batch.messages.len(), 5);
    assert!(batch.at - sent_at < PROMPTLY);
    consumer.stop().await;
}

/// Queue row "batching": an idle consumer never calls its handler with an empty batch.
pub async fn no_empty_batch_is_ever_delivered(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    let (handler, mut deliveries) = recording(|_| Ok(()));
    let eager = ConsumerSettings { max_batch_timeout: Duration::ZERO, ..settings() };
    let consumer = Running::start(&backend, JOBS, eager, handler);
    deliveries.none_within(Duration::from_millis(300)).await;
    send_texts(&backend, JOBS, &["only"]).await;
    assert_eq!(deliveries.next(PROMPTLY).await.messages.len(), 1);
    deliveries.none_within(Duration::from_millis(300)).await;
    consumer.stop().await;
}

/// Queue row "implicit ack": when the handler succeeds, every message it did not retry is acked.
pub async fn success_acks_every_message_not_explicitly_retried(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    let sent = send_texts(&backend, JOBS, &["a", "b", "c"]).await;
    let (handler, mut deliveries) = recording(|batch| {
        for message in &batch.messages {
            if message.attempts == 1 && body_is(message, "b") {
                message.retry(RetryOptions::default())?;
            }
        }
        Ok(())
    });
    let consumer = Running::start(&backend, JOBS, settings(), handler);
    assert_eq!(deliveries.next(PROMPTLY).await.messages.len(), 3);
    let again = deliveries.next(PROMPTLY).await;
    assert_eq!((again.ids(), again.messages[0].attempts), (vec![sent[1]], 2));
    deliveries.none_within(Duration::from_millis(300)).await;
    consumer.stop().await;
    assert_eq!(stored_ids(&backend, JOBS).await, vec![]);
}

/// Queue row "handler fails": every message not explicitly acked is redelivered.
pub async fn failure_redelivers_every_message_not_explicitly_acked(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    let sent = send_texts(&backend, JOBS, &["a", "b", "c"]).await;
    let (handler, mut deliveries) = recording(|batch| {
        if batch.messages[0].attempts > 1 {
            return Ok(());
        }
        for message in batch.messages.iter().filter(|m| body_is(m, "a")) {
            message.ack();
        }
        Err(boom("the handler failed"))
    });
    let consumer = Running::start(&backend, JOBS, settings(), handler);
    assert_eq!(deliveries.next(PROMPTLY).await.messages.len(), 3);
    let again = deliveries.next(PROMPTLY).await;
    assert_eq!(sorted(again.ids()), sorted(vec![sent[1], sent[2]]));
    assert!(again.messages.iter().all(|m| m.attempts == 2));
    deliveries.none_within(Duration::from_millis(300)).await;
    consumer.stop().await;
    assert_eq!(stored_ids(&backend, JOBS).await, vec![]);
}

/// Queue row "precedence": the first call on a message wins, and a message's own call beats
/// ack_all/retry_all whatever the order; batch-wide calls count as explicit.
pub async fn first_call_wins_and_beats_batch_wide_calls(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    let sent = send_texts(&backend, JOBS, &["m0", "m1", "m2", "m3", "m4"]).await;
    let (handler, mut deliveries) = recording(|batch| {
        if batch.messages[0].attempts > 1 {
            // Explicitly acked, all of them: the failure redelivers nothing.
            batch.ack_all();
            return Err(boom("fails after ack_all"));
        }
        let find = |body| batch.messages.iter().find(|m| body_is(m, body)).expect("in the batch");
        find("m0").ack();
        find("m0").retry(RetryOptions::default())?;
        find("m1").retry(RetryOptions::default())?;
        find("m1").ack();
        find("m2").ack();
        batch.retry_all(RetryOptions::default())?;
        batch.ack_all();
        find("m4").ack();
        Ok(())
    });
    let consumer = Running::start(&backend, JOBS, settings(), handler);
    assert_eq!(deliveries.next(PROMPTLY).await.messages.len(), 5);
    let again = deliveries.next(PROMPTLY).await;
    assert_eq!(sorted(again.ids()), sorted(vec![sent[1], sent[3]]));
    deliveries.none_within(Duration::from_millis(300)).await;
    consumer.stop().await;
    assert_eq!(stored_ids(&backend, JOBS).await, vec![]);
}

/// Queue row "retry delay": `retry(delay)` beats the consumer's `retry_delay`, which beats none.
pub async fn retry_delay_precedence(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    let sent = send_texts(&backend, JOBS, &["explicit", "explicit zero", "implicit"]).await;
    let (handler, mut deliveries) = recording(|batch| {
        if batch.messages.iter().any(|m| m.attempts > 1) {
            return Ok(());
        }
        let find = |body| batch.messages.iter().find(|m| body_is(m, body)).expect("in the batch");
        find("explicit").retry(RetryOptions::delay(2))?;
        find("explicit zero").retry(RetryOptions::delay(0))?;
        assert!(find("implicit").retry(RetryOptions::delay(43_201)).is_err(), "over 43 200 s is rejected");
        Err(boom("implicit gets the consumer's retry_delay"))
    });
    let with_delay = ConsumerSettings { retry_delay: Some(Duration::from_secs(1)), ..settings() };
    let consumer = Running::start(&backend, JOBS, with_delay, handler);

    // No retry_delay anywhere: redelivered without delay.
    let other = send_texts(&backend, OTHER, &["no delay"]).await;
    let (plain_handler, mut plain) = recording(|batch| {
        if batch.messages[0].attempts == 1 {
            batch.messages[0].retry(RetryOptions::default())?;
        }
        Ok(())
    });
    let plain_consumer = Running::start(&backend, OTHER, settings(), plain_handler);

    let first = deliveries.next(PROMPTLY).await;
    assert_eq!(first.messages.len(), 3);
    let redelivered = deliveries.messages(3, PROMPTLY).await;
    let after = |id: MessageId| {
        let delivery = redelivered.iter().find(|d| d.ids().contains(&id)).expect("redelivered");
        delivery.at - first.at
    };
    assert!(after(sent[1]) < Duration::from_secs(1), "retry(0) overrides retry_delay: {:?}", after(sent[1]));
    assert!(
        after(sent[2]) + CLOCK_SLACK >= Duration::from_secs(1),
        "retry_delay applies: {:?}",
        after(sent[2])
    );
    assert!(after(sent[0]) + CLOCK_SLACK >= Duration::from_secs(2), "retry(2) applies: {:?}", after(sent[0]));

    let plain_first = plain.next(PROMPTLY).await;
    let plain_again = plain.next(PROMPTLY).await;
    assert_eq!(plain_again.ids(), other);
    assert!(plain_again.at - plain_first.at < Duration::from_secs(1), "no delay when none is set");
    consumer.stop().await;
    plain_consumer.stop().await;
}

/// Queue row "attempts": 1 on the first delivery, +1 on each redelivery; at most
/// 1 + max_retries deliveries.
pub async fn attempts_count_deliveries(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    send_texts(&backend, JOBS, &["always fails"]).await;
    let (handler, mut deliveries) = recording(|_| Err(boom("no")));
    let consumer = Running::start(&backend, JOBS, settings(), handler);
    let mut attempts = Vec::new();
    for _ in 0..4 {
        attempts.push(deliveries.next(PROMPTLY).await.messages[0].attempts);
    }
    assert_eq!(attempts, vec![1, 2, 3, 4]);
    deliveries.none_within(Duration::from_millis(300)).await;
    consumer.stop().await;
    assert_eq!(stored_ids(&backend, JOBS).await, vec![]);
}

/// Queue row "exhaustion": out of retries, a message moves to the dead-letter queue with its
/// attempts and last error, and is delivered there afresh.
pub async fn exhausted_messages_go_to_the_dead_letter_queue(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    let sent = send_texts(&backend, JOBS, &["poison"]).await;
    let (handler, mut deliveries) =
        recording(|batch| Err(boom(format!("failed attempt {}", batch.messages[0].attempts))));
    let with_dlq =
        ConsumerSettings { max_retries: 1, dead_letter_queue: Some(JOBS_DLQ.into()), ..settings() };
    let consumer = Running::start(&backend, JOBS, with_dlq, handler);
    assert_eq!(deliveries.next(PROMPTLY).await.messages[0].attempts, 1);
    assert_eq!(deliveries.next(PROMPTLY).await.messages[0].attempts, 2);
    deliveries.none_within(Duration::from_millis(300)).await;
    let stats = consumer.stats.clone();
    consumer.stop().await;
    assert_eq!(stats.snapshot().messages_dead_lettered, 1);
    assert_eq!(stored_ids(&backend, JOBS).await, vec![], "nothing is left on the source queue");

    let dead = backend.peek(JOBS_DLQ, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].id, dead[0].attempts, &dead[0].body), (sent[0], 0, &text("poison")));
    let info = dead[0].dead_letter.clone().expect("dead-letter info is kept");
    assert_eq!(info.source_queue, JOBS);
    assert_eq!(info.attempts, 2);
    assert_eq!(info.last_error.as_deref(), Some("failed attempt 2"));

    let (dlq_handler, mut dlq_deliveries) = recording(|_| Ok(()));
    let dlq_consumer = Running::start(&backend, JOBS_DLQ, settings(), dlq_handler);
    let delivered = dlq_deliveries.next(PROMPTLY).await;
    dlq_consumer.stop().await;
    assert_eq!(delivered.messages[0].attempts, 1);
    assert_eq!(delivered.messages[0].dead_letter, Some(info));
    assert_eq!(stored_ids(&backend, JOBS_DLQ).await, vec![]);
}

/// Queue row "exhaustion": with no dead-letter queue, a message out of retries is deleted.
pub async fn exhausted_messages_without_dead_letter_queue_are_dropped(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    send_texts(&backend, JOBS, &["poison"]).await;
    let (handler, mut deliveries) = recording(|_| Err(boom("no")));
    let no_retries = ConsumerSettings { max_retries: 0, ..settings() };
    let consumer = Running::start(&backend, JOBS, no_retries, handler);
    assert_eq!(deliveries.next(PROMPTLY).await.messages[0].attempts, 1);
    deliveries.none_within(Duration::from_millis(300)).await;
    let stats = consumer.stats.clone();
    consumer.stop().await;
    assert_eq!(stats.snapshot().messages_discarded, 1);
    assert_eq!(stored_ids(&backend, JOBS).await, vec![]);
    assert_eq!(stored_ids(&backend, JOBS_DLQ).await, vec![]);
}

/// Queue row "handler fails": a panicking handler fails its batch like an error does.
pub async fn handler_panic_fails_the_batch(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    let sent = send_texts(&backend, JOBS, &["panics"]).await;
    let (handler, mut deliveries) = recording(|_| panic!("handler exploded"));
    let slow_retry = ConsumerSettings { retry_delay: Some(Duration::from_secs(30)), ..settings() };
    let consumer = Running::start(&backend, JOBS, slow_retry, handler);
    deliveries.next(PROMPTLY).await;
    consumer.stop().await;
    let stored = backend.peek(JOBS, 10).await.unwrap();
    assert_eq!(stored.iter().map(|m| m.id).collect::<Vec<_>>(), sent);
    assert_eq!(stored[0].attempts, 1);
    assert!(!stored[0].leased);
    let error = stored[0].last_error.clone().unwrap_or_default();
    assert!(error.contains("handler exploded"), "last error: {error:?}");
}

/// Wake-ups: a send wakes an idle consumer at once, without waiting for a poll.
pub async fn idle_consumer_wakes_on_send_without_polling(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    let (handler, mut deliveries) = recording(|_| Ok(()));
    let no_polling = ConsumerSettings {
        max_batch_timeout: Duration::ZERO,
        poll_interval: Duration::from_secs(60),
        ..settings()
    };
    let consumer = Running::start(&backend, JOBS, no_polling, handler);
    tokio::time::sleep(Duration::from_millis(100)).await; // the consumer is now waiting
    let sent_at = Instant::now();
    send_texts(&backend, JOBS, &["wake up"]).await;
    let delivery = deliveries.next(PROMPTLY).await;
    assert!(delivery.at - sent_at < PROMPTLY);
    consumer.stop().await;
}

/// Wake-ups: a delayed message is delivered when it becomes visible, by timer, not by polling.
pub async fn delayed_message_wakes_the_consumer_by_timer(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    let (handler, mut deliveries) = recording(|_| Ok(()));
    let no_polling = ConsumerSettings {
        max_batch_timeout: Duration::ZERO,
        poll_interval: Duration::from_secs(60),
        ..settings()
    };
    let consumer = Running::start(&backend, JOBS, no_polling, handler);
    let sent_at = Instant::now();
    producer(&backend, JOBS).send(text("in a second"), SendOptions::delay(1)).await.unwrap();
    let delivery = deliveries.next(PROMPTLY).await;
    let waited = delivery.at - sent_at;
    assert!(
        waited + CLOCK_SLACK >= Duration::from_secs(1) && waited < PROMPTLY,
        "delivered after {waited:?}"
    );
    consumer.stop().await;
}

/// Crash safety: the runtime renews the leases of a batch whose handler outlives the visibility
/// timeout, so it is not delivered a second time meanwhile.
pub async fn slow_batch_keeps_its_lease(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    send_texts(&backend, JOBS, &["slow"]).await;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let handler = batch_handler_fn(move |batch: MessageBatch| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(batch.messages[0].attempts);
            tokio::time::sleep(Duration::from_millis(1500)).await;
            Ok(())
        }
    });
    let short_lease = ConsumerSettings {
        visibility_timeout: Duration::from_millis(500),
        max_concurrency: Some(2),
        ..settings()
    };
    let consumer = Running::start(&backend, JOBS, short_lease, handler);
    let mut rx = rx;
    assert_eq!(tokio::time::timeout(PROMPTLY, rx.recv()).await.expect("delivered"), Some(1));
    tokio::time::sleep(Duration::from_millis(1800)).await;
    consumer.stop().await;
    assert!(rx.try_recv().is_err(), "the slow batch was delivered again while in flight");
    assert_eq!(stored_ids(&backend, JOBS).await, vec![]);
}

/// Concurrency: at most `max_concurrency` batches are in flight at once.
pub async fn max_concurrency_bounds_batches_in_flight(harness: impl QueueHarness) {
    let peak = run_concurrently(harness, Some(2)).await;
    assert_eq!(peak, 2);
}

/// Concurrency: unset, the consumer scales out on a backlog of full batches, within its bound.
pub async fn autoscale_runs_full_batches_concurrently(harness: impl QueueHarness) {
    let peak = run_concurrently(harness, None).await;
    assert!((2..=AUTOSCALE_MAX_CONCURRENCY).contains(&peak), "peak concurrency {peak}");
}

/// Runs 6 one-message batches that each take 200 ms; returns the most in flight at once.
async fn run_concurrently(harness: impl QueueHarness, max_concurrency: Option<usize>) -> usize {
    let backend = open(&harness).await;
    send_texts(&backend, JOBS, &["1", "2", "3", "4", "5", "6"]).await;
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let all_done = Arc::new(Notify::new());
    let handler = {
        let (in_flight, peak, done, all_done) =
            (in_flight.clone(), peak.clone(), done.clone(), all_done.clone());
        batch_handler_fn(move |_batch: MessageBatch| {
            let (in_flight, peak, done, all_done) =
                (in_flight.clone(), peak.clone(), done.clone(), all_done.clone());
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(200)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                if done.fetch_add(1, Ordering::SeqCst) + 1 == 6 {
                    all_done.notify_one();
                }
                Ok(())
            }
        })
    };
    let one_per_batch = ConsumerSettings { max_batch_size: 1, max_concurrency, ..settings() };
    let consumer = Running::start(&backend, JOBS, one_per_batch, handler);
    tokio::time::timeout(PROMPTLY, all_done.notified()).await.expect("all six batches ran");
    consumer.stop().await;
    peak.load(Ordering::SeqCst)
}

/// Shutdown: signalled mid-batch, the consumer finishes and acks the batch, claims no other, and
/// returns.
pub async fn shutdown_mid_batch_finishes_the_batch_and_claims_no_more(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    let sent = send_texts(&backend, JOBS, &["first", "second"]).await;
    let started = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let handler = {
        let (started, release, calls) = (started.clone(), release.clone(), calls.clone());
        batch_handler_fn(move |_batch: MessageBatch| {
            let (started, release, calls) = (started.clone(), release.clone(), calls.clone());
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                started.notify_one();
                release.notified().await;
                Ok(())
            }
        })
    };
    let one_at_a_time =
        ConsumerSettings { max_batch_size: 1, max_batch_timeout: Duration::ZERO, ..settings() };
    let consumer = Consumer::new(backend.clone(), JOBS, one_at_a_time, handler).unwrap();
    let shutdown = Arc::new(Notify::new());
    let signal = shutdown.clone();
    let run = tokio::spawn(consumer.run(async move { signal.notified().await }));
    tokio::time::timeout(PROMPTLY, started.notified()).await.expect("the first batch started");
    shutdown.notify_one();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!run.is_finished(), "run returned before its batch finished");
    release.notify_one();
    tokio::time::timeout(PROMPTLY, run).await.expect("run returns").unwrap().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1, "no batch is claimed after shutdown");
    let left = backend.peek(JOBS, 10).await.unwrap();
    assert_eq!(left.len(), 1, "the finished batch was acked");
    assert!(sent.contains(&left[0].id));
    assert_eq!((left[0].attempts, left[0].leased), (0, false), "the other message was never claimed");
}

/// Observability: the consumer counts batches, outcomes and batch latency.
pub async fn stats_count_batches_and_outcomes(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    send_texts(&backend, JOBS, &["a", "b", "c"]).await;
    let (handler, mut deliveries) = recording(|batch| {
        if batch.messages[0].attempts == 1 {
            batch.messages.iter().find(|m| body_is(m, "b")).expect("b").retry(RetryOptions::default())?;
        }
        Ok(())
    });
    let consumer = Running::start(&backend, JOBS, settings(), handler);
    deliveries.messages(4, PROMPTLY).await;
    let stats = consumer.stats.clone();
    consumer.stop().await;
    let snapshot = stats.snapshot();
    assert_eq!(snapshot.batches, 2);
    assert_eq!(snapshot.messages_delivered, 4);
    assert_eq!((snapshot.messages_acked, snapshot.messages_retried), (3, 1));
    assert_eq!(
        (snapshot.messages_dead_lettered, snapshot.messages_discarded, snapshot.handler_failures),
        (0, 0, 0)
    );
    assert_eq!(snapshot.batch_latency.count, 2);
    assert_eq!(snapshot.batch_latency.buckets.last().map(|b| b.1), Some(2));
}

/// Queue row "exhaustion", after crashes: a message whose leases ran out more times than it may
/// be delivered (its consumers died mid-batch) is dead-lettered, not handed to the handler again.
pub async fn message_claimed_past_its_last_delivery_is_dead_lettered_unseen(harness: impl QueueHarness) {
    let backend = open(&harness).await;
    let sent = send_texts(&backend, JOBS, &["crashes its consumer"]).await;
    // Two claims whose consumers "died": their leases simply run out.
    for attempt in 1..=2 {
        let claimed = backend.claim(JOBS, 10, Duration::from_millis(50)).await.unwrap();
        assert_eq!(claimed[0].attempts, attempt);
        tokio::time::sleep(Duration::from_millis(80)).await;
    }
    let (handler, mut deliveries) = recording(|_| Ok(()));
    let one_retry =
        ConsumerSettings { max_retries: 1, dead_letter_queue: Some(JOBS_DLQ.into()), ..settings() };
    let consumer = Running::start(&backend, JOBS, one_retry, handler);
    let dlq_deadline = Instant::now() + PROMPTLY;
    while stored_ids(&backend, JOBS_DLQ).await.is_empty() {
        assert!(Instant::now() < dlq_deadline, "the message never reached the dead-letter queue");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    deliveries.none_within(Duration::from_millis(100)).await;
    consumer.stop().await;
    let dead = backend.peek(JOBS_DLQ, 10).await.unwrap();
    assert_eq!(dead[0].id, sent[0]);
    assert_eq!(dead[0].dead_letter.as_ref().map(|d| d.attempts), Some(3));
}
