//! The queue conformance suite: every queue driver must pass these cases (bindings.md §1 and the
//! Queue rows of §7), through the same producer and consumer runtime that production uses.
//!
//! A driver's tests provide a [`QueueHarness`] (fresh storage per case, reopenable for restarts)
//! and instantiate [`queue_conformance_suite!`](crate::queue_conformance_suite), which expands to
//! one `#[tokio::test]` per case (the calling crate needs `tokio` with `macros` and
//! `rt-multi-thread`):
//!
//! ```text
//! ledge_queue::queue_conformance_suite!(fresh: MyHarness::fresh(), attach: MyHarness::attach);
//! ```
//!
//! `fresh` is a future giving a harness over new, empty storage; `attach` maps a
//! [`QueueHarness::locator`] to a harness over that same storage, used by the crash case in the
//! child process it starts (the test binary re-executed on that one test).

mod consumer;
mod crash;
mod producer;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use consumer::*;
pub use crash::{CRASH_CHILD_ENV, crash_mid_batch_redelivers_unacked_messages_after_restart};
pub use producer::*;

use crate::{
    BatchHandler, Consumer, ConsumerSettings, ConsumerStats, DeadLetterInfo, HandlerError, MessageBatch,
    MessageBody, MessageId, Producer, QueueBackend, QueueConfig, QueueDeclaration, QueueError,
    batch_handler_fn,
};

/// A driver under test, over storage of its own.
#[async_trait]
pub trait QueueHarness: Send + Sync + 'static {
    /// Opens the driver over this harness's storage with `config`. Every call opens the same
    /// storage: dropping the previous backend and opening again is a restart.
    async fn open(&self, config: QueueConfig) -> Result<Arc<dyn QueueBackend>, QueueError>;

    /// Names the storage, for `attach` in another process.
    fn locator(&self) -> String;
}

/// Expands to one `#[tokio::test]` per conformance case. See the [module docs](crate::conformance).
#[macro_export]
macro_rules! queue_conformance_suite {
    (fresh: $fresh:expr, attach: $attach:expr $(,)?) => {
        $crate::queue_conformance_suite!(@cases ($fresh)
            send_returns_once_the_message_is_persisted,
            undeclared_queues_are_errors,
            message_must_be_under_128_kb_including_metadata,
            batch_holds_at_most_100_messages_and_256_kb,
            content_type_defaults_to_json_and_bodies_round_trip,
            mismatched_body_is_rejected,
            delay_over_43200_seconds_is_rejected,
            delayed_message_is_not_delivered_early,
            explicit_zero_delay_overrides_the_queue_default,
            dedup_key_makes_a_repeated_send_a_no_op,
            concurrent_sends_with_one_dedup_key_store_one_message,
            dedup_key_expires_with_its_window,
            purge_drops_messages_past_retention_and_expired_dedup_keys,
            depth_counts_ready_delayed_and_in_flight,
            settling_needs_the_current_lease,
            batches_hold_at_most_max_batch_size,
            partial_batch_is_delivered_after_the_timeout,
            full_batch_does_not_wait_for_the_timeout,
            no_empty_batch_is_ever_delivered,
            success_acks_every_message_not_explicitly_retried,
            failure_redelivers_every_message_not_explicitly_acked,
            first_call_wins_and_beats_batch_wide_calls,
            retry_delay_precedence,
            attempts_count_deliveries,
            exhausted_messages_go_to_the_dead_letter_queue,
            exhausted_messages_without_dead_letter_queue_are_dropped,
            message_claimed_past_its_last_delivery_is_dead_lettered_unseen,
            handler_panic_fails_the_batch,
            idle_consumer_wakes_on_send_without_polling,
            delayed_message_wakes_the_consumer_by_timer,
            slow_batch_keeps_its_lease,
            max_concurrency_bounds_batches_in_flight,
            autoscale_runs_full_batches_concurrently,
            shutdown_mid_batch_finishes_the_batch_and_claims_no_more,
            stats_count_batches_and_outcomes,
        );
        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn crash_mid_batch_redelivers_unacked_messages_after_restart() {
            $crate::conformance::crash_mid_batch_redelivers_unacked_messages_after_restart(
                concat!(module_path!(), "::crash_mid_batch_redelivers_unacked_messages_after_restart"),
                $fresh,
                $attach,
            )
            .await;
        }
    };
    (@cases ($fresh:expr) $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::conformance::$case($fresh.await).await;
            }
        )*
    };
}

/// The suite's main queue.
pub const JOBS: &str = "jobs";
/// Dead-letter queue of [`JOBS`] in the cases that use one.
pub const JOBS_DLQ: &str = "jobs-dlq";
/// Another queue, to show queues are independent.
pub const OTHER: &str = "other";
/// A queue whose producer delays every message by 1 s by default.
pub const DELAYED: &str = "delayed";

/// The queues every case declares.
pub fn suite_config() -> QueueConfig {
    QueueConfig::new([
        QueueDeclaration::new(JOBS),
        QueueDeclaration::new(JOBS_DLQ),
        QueueDeclaration::new(OTHER),
        QueueDeclaration::new(DELAYED).with_delivery_delay(1),
    ])
}

pub(crate) async fn open(harness: &impl QueueHarness) -> Arc<dyn QueueBackend> {
    open_with(harness, suite_config()).await
}

pub(crate) async fn open_with(harness: &impl QueueHarness, config: QueueConfig) -> Arc<dyn QueueBackend> {
    harness.open(config).await.expect("the driver opens")
}

pub(crate) fn producer(backend: &Arc<dyn QueueBackend>, queue: &str) -> Producer {
    Producer::new(backend.clone(), queue).expect("a declared queue has a producer")
}

pub(crate) fn text(s: &str) -> MessageBody {
    MessageBody::Text(s.to_owned())
}

/// Settings for the cases: small timeouts so the suite runs fast; one batch at a time.
pub(crate) fn settings() -> ConsumerSettings {
    ConsumerSettings {
        max_batch_size: 10,
        max_batch_timeout: Duration::from_millis(50),
        max_concurrency: Some(1),
        ..ConsumerSettings::default()
    }
}

/// One delivered message as the recording handler saw it.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub id: MessageId,
    pub attempts: u32,
    pub body: MessageBody,
    pub dead_letter: Option<DeadLetterInfo>,
}

/// One batch as the recording handler saw it, with the instant it arrived.
#[derive(Debug)]
pub struct Delivery {
    pub at: Instant,
    pub messages: Vec<Delivered>,
}

impl Delivery {
    pub fn ids(&self) -> Vec<MessageId> {
        self.messages.iter().map(|m| m.id).collect()
    }
}

/// The batches a recording handler received, in order.
pub struct Deliveries(mpsc::UnboundedReceiver<Delivery>);

impl Deliveries {
    /// The next batch; fails the case if none arrives `within`. Checks it is not empty.
    pub async fn next(&mut self, within: Duration) -> Delivery {
        let delivery = tokio::time::timeout(within, self.0.recv())
            .await
            .unwrap_or_else(|_| panic!("no batch delivered within {within:?}"))
            .expect("the handler is alive");
        assert!(!delivery.messages.is_empty(), "an empty batch was delivered");
        delivery
    }

    /// Batches until `count` messages arrived in all.
    pub async fn messages(&mut self, count: usize, within: Duration) -> Vec<Delivery> {
        let deadline = Instant::now() + within;
        let mut batches = Vec::new();
        let mut seen = 0;
        while seen < count {
            let left = deadline.saturating_duration_since(Instant::now());
            let delivery = self.next(left).await;
            seen += delivery.messages.len();
            batches.push(delivery);
        }
        assert_eq!(seen, count, "more messages than expected were delivered: {batches:?}");
        batches
    }

    /// Fails the case if a batch arrives within `window`.
    pub async fn none_within(&mut self, window: Duration) {
        if let Ok(Some(delivery)) = tokio::time::timeout(window, self.0.recv()).await {
            panic!("unexpected delivery: {delivery:?}");
        }
    }
}

/// A handler that records every batch, then answers as `behaviour` says.
pub fn recording<F>(behaviour: F) -> (Arc<dyn BatchHandler>, Deliveries)
where
    F: Fn(&MessageBatch) -> Result<(), HandlerError> + Send + Sync + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let handler = batch_handler_fn(move |batch: MessageBatch| {
        let delivery = Delivery {
            at: Instant::now(),
            messages: batch
                .messages
                .iter()
                .map(|m| Delivered {
                    id: m.id,
                    attempts: m.attempts,
                    body: m.body.clone(),
                    dead_letter: m.dead_letter.clone(),
                })
                .collect(),
        };
        let _ = tx.send(delivery);
        std::future::ready(behaviour(&batch))
    });
    (handler, Deliveries(rx))
}

/// A consumer running in a task until [`Running::stop`].
pub struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), QueueError>>,
    pub stats: Arc<ConsumerStats>,
}

impl Running {
    pub fn start(
        backend: &Arc<dyn QueueBackend>,
        queue: &str,
        settings: ConsumerSettings,
        handler: Arc<dyn BatchHandler>,
    ) -> Running {
        let consumer =
            Consumer::new(backend.clone(), queue, settings, handler).expect("valid consumer settings");
        let stats = consumer.stats();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(consumer.run(async move {
            let _ = stopped.await;
        }));
        Running { stop, task, stats }
    }

    /// Signals shutdown and waits for the batches in flight to settle.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the consumer stops")
            .expect("the consumer task did not panic")
            .expect("the consumer ended cleanly");
    }
}

/// Ids of the messages of `queue` still stored.
pub(crate) async fn stored_ids(backend: &Arc<dyn QueueBackend>, queue: &str) -> Vec<MessageId> {
    let mut ids: Vec<_> = backend.peek(queue, 1000).await.unwrap().into_iter().map(|m| m.id).collect();
    ids.sort();
    ids
}

pub(crate) fn sorted(mut ids: Vec<MessageId>) -> Vec<MessageId> {
    ids.sort();
    ids
}

/// Clock tolerance for "not delivered early": times are kept at millisecond resolution.
pub(crate) const CLOCK_SLACK: Duration = Duration::from_millis(2);
/// Upper bound for things that should happen promptly (generous: the machine may be loaded).
pub(crate) const PROMPTLY: Duration = Duration::from_secs(5);
