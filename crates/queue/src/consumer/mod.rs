//! The consumer runtime: one generic loop over any [`QueueBackend`] that forms batches, runs the
//! handler with bounded concurrency, keeps leases alive, and settles acks, retries and dead letters.
//!
//! The loop claims a batch when `max_batch_size` messages are ready, or when the oldest ready
//! message has waited `max_batch_timeout` — never an empty batch. Between claims it sleeps until
//! the earliest of: a send notification from the backend, the batch timeout, the next delayed
//! message's visibility, a finished batch, or the fallback poll interval. It never spins.

mod batch;
mod stats;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use batch::{BatchDecisions, Decision};
pub use batch::{BatchHandler, HandlerError, Message, MessageBatch, RetryOptions, batch_handler_fn};
use stats::BatchTally;
pub use stats::{BATCH_LATENCY_BUCKETS, ConsumerStats, ConsumerStatsSnapshot, HistogramSnapshot};

use crate::{
    LeaseToken, LeasedMessage, MessageBody, MessageId, QueueBackend, QueueError, SettleAction, Settlement,
    now_ms,
};

/// Concurrent batches allowed when `max_concurrency` is unset (autoscale). Under autoscale a batch
/// is claimed while others are in flight only if a *full* batch is ready: the backlog alone scales
/// the consumer out, one batch at a time, up to this bound; partial (timed-out) batches run only
/// when nothing else is in flight.
pub const AUTOSCALE_MAX_CONCURRENCY: usize = 10;

/// A consumer's settings, with the contract's defaults and ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSettings {
    /// Most messages per batch: 1–100 (default 10).
    pub max_batch_size: usize,
    /// Longest wait for a full batch once a message is ready: at most 60 s (default 5 s).
    pub max_batch_timeout: Duration,
    /// Redeliveries after the first delivery: at most 100 (default 3).
    pub max_retries: u32,
    /// Delay of a retry that names none (default none); at most 43 200 s.
    pub retry_delay: Option<Duration>,
    /// Where messages go after their last retry (default: they are deleted). Must be declared.
    pub dead_letter_queue: Option<String>,
    /// Concurrent batches: 1–250, or `None` to autoscale (see [`AUTOSCALE_MAX_CONCURRENCY`]).
    pub max_concurrency: Option<usize>,
    /// Lease of a claimed message; the runtime renews it every third of this while the handler
    /// runs, so only a dead consumer's messages become visible again (default 30 s).
    pub visibility_timeout: Duration,
    /// Fallback wake-up when no notification comes (another process's sends; default 1 s).
    pub poll_interval: Duration,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        ConsumerSettings {
            max_batch_size: 10,
            max_batch_timeout: Duration::from_secs(5),
            max_retries: 3,
            retry_delay: None,
            dead_letter_queue: None,
            max_concurrency: None,
            visibility_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
        }
    }
}

impl ConsumerSettings {
    fn validate(&self, backend: &dyn QueueBackend, queue: &str) -> Result<(), QueueError> {
        let config = backend.config();
        if config.declaration(queue).is_none() {
            return Err(QueueError::UnknownQueue(queue.into()));
        }
        let check = |ok: bool, field: &'static str, rule: &str| {
            if ok { Ok(()) } else { Err(QueueError::invalid(field, rule)) }
        };
        check((1..=100).contains(&self.max_batch_size), "max_batch_size", "must be 1 to 100")?;
        check(
            self.max_batch_timeout <= Duration::from_secs(60),
            "max_batch_timeout",
            "must be at most 60 s",
        )?;
        check(self.max_retries <= 100, "max_retries", "must be at most 100")?;
        let max_delay = Duration::from_secs(u64::from(config.limits.max_delay_seconds));
        check(self.retry_delay.is_none_or(|d| d <= max_delay), "retry_delay", "must be at most 43 200 s")?;
        check(
            self.max_concurrency.is_none_or(|n| (1..=250).contains(&n)),
            "max_concurrency",
            "must be 1 to 250",
        )?;
        check(!self.visibility_timeout.is_zero(), "visibility_timeout", "must be more than 0")?;
        check(!self.poll_interval.is_zero(), "poll_interval", "must be more than 0")?;
        if let Some(dlq) = &self.dead_letter_queue {
            check(dlq != queue, "dead_letter_queue", "must differ from the consumed queue")?;
            if config.declaration(dlq).is_none() {
                return Err(QueueError::UnknownQueue(dlq.clone()));
            }
        }
        Ok(())
    }
}

/// The consumer of one queue: built without starting, run with [`Consumer::run`].
pub struct Consumer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer").field("queue", &self.shared.queue).finish()
    }
}

struct Shared {
    backend: Arc<dyn QueueBackend>,
    queue: String,
    settings: ConsumerSettings,
    handler: Arc<dyn BatchHandler>,
    stats: Arc<ConsumerStats>,
}

impl Consumer {
    /// Checks the settings against the contract and the backend's declared queues.
    pub fn new(
        backend: Arc<dyn QueueBackend>,
        queue: &str,
        settings: ConsumerSettings,
        handler: Arc<dyn BatchHandler>,
    ) -> Result<Consumer, QueueError> {
        settings.validate(backend.as_ref(), queue)?;
        let stats = Arc::new(ConsumerStats::default());
        Ok(Consumer {
            shared: Arc::new(Shared { backend, queue: queue.to_owned(), settings, handler, stats }),
        })
    }

    pub fn queue(&self) -> &str {
        &self.shared.queue
    }

    /// The consumer's counters, readable while it runs.
    pub fn stats(&self) -> Arc<ConsumerStats> {
        self.shared.stats.clone()
    }

    /// Consumes until `shutdown` resolves; then claims nothing more, waits for the batches in
    /// flight to finish and settle, and returns. Storage errors are logged and retried with
    /// backoff; only a closed backend ends the loop early, with [`QueueError::Closed`].
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), QueueError> {
        let shared = self.shared;
        let settings = &shared.settings;
        let max = settings.max_batch_size;
        let autoscale = settings.max_concurrency.is_none();
        let limit = settings.max_concurrency.unwrap_or(AUTOSCALE_MAX_CONCURRENCY);
        let timeout_ms = i64::try_from(settings.max_batch_timeout.as_millis()).unwrap_or(i64::MAX);
        let poll_ms = i64::try_from(settings.poll_interval.as_millis()).unwrap_or(i64::MAX);
        // After a send wakes the consumer, wait this long for more before counting the backlog:
        // under load one count covers many sends instead of one each.
        let gather = settings.max_batch_timeout.min(GATHER_WINDOW);
        let mut shutdown = std::pin::pin!(shutdown);
        let mut in_flight: JoinSet<()> = JoinSet::new();
        let mut backoff = ErrorBackoff::new(settings.poll_interval);
        let mut result = Ok(());

        loop {
            while let Some(joined) = in_flight.try_join_next() {
                log_batch_task(joined);
            }
            if in_flight.len() >= limit {
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    Some(joined) = in_flight.join_next() => log_batch_task(joined),
                }
                continue;
            }

            let ready = match shared.backend.ready(&shared.queue, max).await {
                Ok(ready) => ready,
                Err(QueueError::Closed) => {
                    result = Err(QueueError::Closed);
                    break;
                }
                Err(error) => {
                    tracing::warn!(queue = %shared.queue, %error, "queue consumer cannot read the backlog");
                    tokio::select! {
                        biased;
                        () = &mut shutdown => break,
                        () = backoff.wait() => continue,
                    }
                }
            };
            backoff.reset();

            let now = now_ms();
            let full = ready.ready >= max;
            let timed_out = ready.ready > 0
                && ready.oldest_ready_at_ms.is_some_and(|t| t.saturating_add(timeout_ms) <= now);
            if full || (timed_out && (!autoscale || in_flight.is_empty())) {
                match shared.backend.claim(&shared.queue, max, settings.visibility_timeout).await {
                    Ok(leased) if !leased.is_empty() => {
                        in_flight.spawn(run_batch(shared.clone(), leased));
                    }
                    Ok(_) => {}
                    Err(QueueError::Closed) => {
                        result = Err(QueueError::Closed);
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(queue = %shared.queue, %error, "queue consumer cannot claim a batch");
                        tokio::select! {
                            biased;
                            () = &mut shutdown => break,
                            () = backoff.wait() => {}
                        }
                    }
                }
                continue;
            }

            let mut wake_ms = now.saturating_add(poll_ms);
            if let Some(oldest) = ready.oldest_ready_at_ms.filter(|_| ready.ready > 0 && !timed_out) {
                wake_ms = wake_ms.min(oldest.saturating_add(timeout_ms));
            }
            if let Some(next) = ready.next_visible_at_ms {
                wake_ms = wake_ms.min(next);
            }
            // +1 ms: visibility is "visible_at <= now" at millisecond resolution.
            let sleep_for = Duration::from_millis(u64::try_from(wake_ms - now).unwrap_or(0) + 1);
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => log_batch_task(joined),
                () = shared.backend.wait_for_messages(&shared.queue) => {
                    if !gather.is_zero() {
                        tokio::select! {
                            biased;
                            () = &mut shutdown => break,
                            () = tokio::time::sleep(gather) => {}
                        }
                    }
                }
                () = tokio::time::sleep(sleep_for) => {}
            }
        }

        while let Some(joined) = in_flight.join_next().await {
            log_batch_task(joined);
        }
        result
    }
}

/// Longest a full batch waits for the consumer to notice it (never more than `max_batch_timeout`).
const GATHER_WINDOW: Duration = Duration::from_millis(5);

fn log_batch_task(joined: Result<(), tokio::task::JoinError>) {
    if let Err(error) = joined {
        tracing::error!(%error, "queue batch task failed");
    }
}

/// Exponential backoff after storage errors: 50 ms doubling up to the poll interval.
struct ErrorBackoff {
    next: Duration,
    max: Duration,
}

impl ErrorBackoff {
    const FIRST: Duration = Duration::from_millis(50);

    fn new(max: Duration) -> ErrorBackoff {
        ErrorBackoff { next: Self::FIRST, max: max.max(Self::FIRST) }
    }

    async fn wait(&mut self) {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        tokio::time::sleep(wait).await;
    }

    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

/// Runs one claimed batch through the handler and settles every message.
async fn run_batch(shared: Arc<Shared>, leased: Vec<LeasedMessage>) {
    let started = Instant::now();
    let settings = &shared.settings;
    let max_deliveries = settings.max_retries.saturating_add(1);
    let mut tally = BatchTally::default();
    let mut settlements = Vec::with_capacity(leased.len());

    // A message past its last delivery can only come from consumers that died mid-batch (its
    // lease expired, or was released at restart): it is not delivered again.
    let (exhausted, deliver): (Vec<_>, Vec<_>) =
        leased.into_iter().partition(|m| m.attempts > max_deliveries);
    for message in exhausted {
        let error = format!("claimed {} times without being settled", message.attempts);
        settlements.push(shared.exhausted(message.id, message.lease, Some(error), &mut tally));
    }

    if !deliver.is_empty() {
        let max_delay = shared.backend.config().limits.max_delay_seconds;
        let decisions = Arc::new(BatchDecisions::new(deliver.len(), max_delay));
        let mut leases = Vec::with_capacity(deliver.len());
        let mut attempts = Vec::with_capacity(deliver.len());
        let mut messages = Vec::with_capacity(deliver.len());
        for (index, m) in deliver.into_iter().enumerate() {
            leases.push((m.id, m.lease));
            attempts.push(m.attempts);
            let body = MessageBody::decode(m.content_type, m.body);
            messages.push(Message::new(
                m.id,
                m.timestamp,
                body,
                m.attempts,
                m.dead_letter,
                index,
                decisions.clone(),
            ));
        }
        let batch = MessageBatch::new(shared.queue.clone(), messages, decisions.clone());
        let outcome = shared.handle_with_heartbeat(batch, &leases).await;
        if let Err(error) = &outcome {
            tracing::warn!(queue = %shared.queue, %error, "queue handler failed its batch");
        }
        tally.delivered = leases.len() as u64;
        tally.handler_failed = outcome.is_err();
        let error = outcome.as_ref().err();
        for (index, &(id, lease)) in leases.iter().enumerate() {
            let implicit =
                if outcome.is_ok() { Decision::Ack } else { Decision::Retry { delay: None, reason: None } };
            let settlement = match decisions.decision(index).unwrap_or(implicit) {
                Decision::Ack => {
                    tally.acked += 1;
                    Settlement { id, lease, action: SettleAction::Ack }
                }
                Decision::Retry { reason, .. } if attempts[index] >= max_deliveries => {
                    let error = reason.map(|r| r.to_string()).or_else(|| error.cloned());
                    shared.exhausted(id, lease, error, &mut tally)
                }
                Decision::Retry { delay, reason } => {
                    tally.retried += 1;
                    let delay = delay.or(settings.retry_delay).unwrap_or_default();
                    let error = reason.map(|r| r.to_string()).or_else(|| error.cloned());
                    Settlement { id, lease, action: SettleAction::Retry { delay, error } }
                }
            };
            settlements.push(settlement);
        }
    }

    if let Err(error) = shared.backend.settle(&shared.queue, settlements).await {
        // The leases run out and the messages are delivered again: at-least-once holds.
        tracing::error!(queue = %shared.queue, %error, "queue consumer cannot settle a batch");
    }
    shared.stats.record_batch(tally, started.elapsed());
}

impl Shared {
    /// Out of retries: to the dead-letter queue if there is one, else deleted.
    fn exhausted(
        &self,
        id: MessageId,
        lease: LeaseToken,
        error: Option<String>,
        tally: &mut BatchTally,
    ) -> Settlement {
        let action = match &self.settings.dead_letter_queue {
            Some(queue) => {
                tally.dead_lettered += 1;
                SettleAction::DeadLetter { queue: queue.clone(), error }
            }
            None => {
                tally.discarded += 1;
                SettleAction::Discard
            }
        };
        Settlement { id, lease, action }
    }

    /// Runs the handler in its own task (a panic fails the batch), renewing the batch's leases
    /// every third of the visibility timeout until it returns.
    async fn handle_with_heartbeat(
        &self,
        batch: MessageBatch,
        leases: &[(MessageId, LeaseToken)],
    ) -> Result<(), String> {
        let handler = self.handler.clone();
        let mut task = tokio::spawn(async move { handler.handle(batch).await });
        let period = (self.settings.visibility_timeout / 3).max(Duration::from_millis(1));
        let mut heartbeat = tokio::time::interval_at(Instant::now() + period, period);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                joined = &mut task => {
                    return match joined {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(error)) => Err(error.to_string()),
                        Err(error) if error.is_panic() => {
                            Err(format!("handler panicked: {}", panic_text(error.into_panic())))
                        }
                        Err(error) => Err(format!("handler task failed: {error}")),
                    };
                }
                _ = heartbeat.tick() => {
                    let extended =
                        self.backend.extend_leases(&self.queue, leases, self.settings.visibility_timeout).await;
                    if let Err(error) = extended {
                        tracing::warn!(queue = %self.queue, %error, "queue consumer cannot renew its leases");
                    }
                }
            }
        }
    }
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => {
            payload.downcast_ref::<&str>().map_or_else(|| "(no message)".into(), |s| (*s).to_owned())
        }
    }
}
