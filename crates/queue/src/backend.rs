//! The driver trait: what a queue storage must do for producers and the consumer runtime.
//!
//! A driver stores messages and leases; it knows nothing of batching, retries or dead-letter
//! policy, which live once in the consumer runtime ([`crate::Consumer`]).

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;

use crate::{ContentType, MessageBody, MessageId, QueueConfig, QueueError, SendOutcome};

/// A validated message on its way into storage (built by [`crate::Producer`]).
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub content_type: ContentType,
    pub body: Bytes,
    /// Delay before the message becomes visible (already resolved against the queue's default).
    pub delay: Duration,
    pub dedup_key: Option<String>,
}

/// Identifies one claim of a message: settling or extending it needs the token of the current
/// lease, so a consumer whose lease was lost cannot touch the message any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseToken(pub i64);

/// Why a message sits in a dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterInfo {
    /// The queue it exhausted its retries on.
    pub source_queue: String,
    /// How many deliveries it had there.
    pub attempts: u32,
    /// The last handler error recorded for it, if any.
    pub last_error: Option<String>,
}

/// A message claimed by [`QueueBackend::claim`], leased to the caller.
#[derive(Debug, Clone)]
pub struct LeasedMessage {
    pub id: MessageId,
    pub timestamp: SystemTime,
    pub content_type: ContentType,
    pub body: Bytes,
    /// Deliveries so far, this one included (1 on the first).
    pub attempts: u32,
    pub lease: LeaseToken,
    pub dead_letter: Option<DeadLetterInfo>,
}

/// What to do with a leased message at the end of its batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettleAction {
    /// Delete it: it was handled.
    Ack,
    /// Make it visible again after `delay`, recording `error` (if any) as its last error.
    Retry { delay: Duration, error: Option<String> },
    /// Move it to `queue`, keeping its id, body, timestamp, attempts and last error as
    /// [`DeadLetterInfo`]; it starts there with 0 attempts and is visible at once.
    DeadLetter { queue: String, error: Option<String> },
    /// Delete it: out of retries with no dead-letter queue.
    Discard,
}

/// The outcome of one leased message. Ignored if the lease is no longer current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    pub id: MessageId,
    pub lease: LeaseToken,
    pub action: SettleAction,
}

/// What [`QueueBackend::ready`] sees, all times in epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadyState {
    /// Messages visible now, counted up to the `max` asked for.
    pub ready: usize,
    /// When the longest-visible ready message became visible.
    pub oldest_ready_at_ms: Option<i64>,
    /// When the next not-yet-visible message (delayed, retried or leased) becomes visible.
    pub next_visible_at_ms: Option<i64>,
}

/// A queue's backlog, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepth {
    /// Visible now (including messages whose lease expired).
    pub ready: u64,
    /// Waiting for their delay (send delay or retry delay).
    pub delayed: u64,
    /// Leased to a consumer.
    pub in_flight: u64,
}

/// A stored message as [`QueueBackend::peek`] shows it, without claiming it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedMessage {
    pub id: MessageId,
    pub timestamp: SystemTime,
    pub body: MessageBody,
    /// Deliveries so far on this queue.
    pub attempts: u32,
    /// When it becomes (or became) visible.
    pub visible_at: SystemTime,
    /// Leased to a consumer right now.
    pub leased: bool,
    pub last_error: Option<String>,
    pub dead_letter: Option<DeadLetterInfo>,
}

/// What [`QueueBackend::purge_expired`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PurgeReport {
    pub messages: u64,
    pub dedup_keys: u64,
}

/// A queue storage. Chosen by configuration at run time and held as `Arc<dyn QueueBackend>`.
///
/// Every method takes the queue's name; methods on an undeclared queue fail with
/// [`QueueError::UnknownQueue`].
#[async_trait]
pub trait QueueBackend: Send + Sync + 'static {
    /// The configuration the driver was opened with (declared queues, limits, retention).
    fn config(&self) -> &QueueConfig;

    /// Persists `messages` (validated by the producer) atomically, each dedup check in the same
    /// transaction as its insert, and returns one outcome per message once they are durable.
    async fn send(&self, queue: &str, messages: Vec<NewMessage>) -> Result<Vec<SendOutcome>, QueueError>;

    /// How many messages are ready (up to `max`) and when the next ones become visible.
    async fn ready(&self, queue: &str, max: usize) -> Result<ReadyState, QueueError>;

    /// Resolves when a send to `queue` may have made messages visible (spurious wake-ups are
    /// allowed; a send made since the previous wait is not lost). Without a notification
    /// channel a driver may resolve after a short interval instead.
    async fn wait_for_messages(&self, queue: &str);

    /// Leases up to `max` ready messages for `lease`: each gets `attempts + 1`, a new token and
    /// stays invisible to other claims until settled or the lease expires.
    async fn claim(&self, queue: &str, max: usize, lease: Duration)
    -> Result<Vec<LeasedMessage>, QueueError>;

    /// Pushes the expiry of still-current leases to now + `lease` (the runtime's heartbeat).
    async fn extend_leases(
        &self,
        queue: &str,
        leases: &[(MessageId, LeaseToken)],
        lease: Duration,
    ) -> Result<(), QueueError>;

    /// Applies the outcomes of a batch in one transaction.
    async fn settle(&self, queue: &str, settlements: Vec<Settlement>) -> Result<(), QueueError>;

    /// The queue's backlog by state.
    async fn depth(&self, queue: &str) -> Result<QueueDepth, QueueError>;

    /// Up to `limit` stored messages of `queue`, oldest first, without claiming them (to inspect
    /// a dead-letter queue, or a backlog).
    async fn peek(&self, queue: &str, limit: usize) -> Result<Vec<QueuedMessage>, QueueError>;

    /// Drops messages older than the retention and dedup keys older than the dedup window, on
    /// every queue.
    async fn purge_expired(&self) -> Result<PurgeReport, QueueError>;
}
