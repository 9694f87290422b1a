//! ledge's queue binding: producers, the consumer runtime, and the embedded SQLite driver.
//!
//! Layout:
//! * `message` — bodies, content types, ids, send options and outcomes;
//! * `config` — declared queues, the contract's limits ([`QueueLimits`]), retention;
//! * `producer` — [`QueueProducer`], the object-safe trait handlers hold, and [`Producer`], its one
//!   implementation: it validates every send against the contract, then hands it to a backend;
//! * `backend` — [`QueueBackend`], the driver trait (send, claim with leases, settle, depth, purge);
//! * `consumer` — [`Consumer`], the one runtime over any backend: batching, concurrency, lease
//!   heartbeats, ack/retry precedence, retries and dead letters, stats;
//! * `sqlite` — [`SqliteQueues`], the embedded driver;
//! * `conformance` (feature `conformance`) — the suite every driver passes, and
//!   the `queue_conformance_suite!` macro to instantiate it.
//!
//! Invariant: drivers store messages and leases and know no delivery policy; the policy (when a
//! batch is due, what an ack, a retry or a failure does, when a message is out of retries) lives
//! once, in the consumer runtime, so every driver behaves the same. A send returns only once the
//! message is persisted, and a message is deleted only by the holder of its current lease (or by
//! the retention purge).

mod backend;
mod config;
mod consumer;
mod error;
mod message;
mod producer;
mod sqlite;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use backend::{
    DeadLetterInfo, LeaseToken, LeasedMessage, NewMessage, PurgeReport, QueueBackend, QueueDepth,
    QueuedMessage, ReadyState, SettleAction, Settlement,
};
pub use config::{
    DEFAULT_RETENTION, MAX_DELAY_SECONDS, MAX_RETENTION, QueueConfig, QueueDeclaration, QueueLimits,
};
pub use consumer::{
    AUTOSCALE_MAX_CONCURRENCY, BATCH_LATENCY_BUCKETS, BatchHandler, Consumer, ConsumerSettings,
    ConsumerStats, ConsumerStatsSnapshot, HandlerError, HistogramSnapshot, Message, MessageBatch,
    RetryOptions, batch_handler_fn,
};
pub use error::QueueError;
pub use ledge_sqlite::Durability;
pub use message::{BatchEntry, BatchOptions, ContentType, MessageBody, MessageId, SendOptions, SendOutcome};
pub use producer::{Producer, QueueProducer};
pub use sqlite::{SqliteQueueOptions, SqliteQueues};

/// Epoch milliseconds, the time unit of [`ReadyState`] and of the drivers.
pub(crate) fn now_ms() -> i64 {
    ledge_sqlite::now_ms()
}
