//! What a handler sees: the batch, its messages, their ack/retry calls, and the handler trait.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::de::DeserializeOwned;

use crate::{DeadLetterInfo, MessageBody, MessageId, QueueError};

/// The error a handler fails with; its text is recorded as the messages' last error.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// Handles the batches of one queue. Returning `Err` (or panicking) fails the batch.
#[async_trait]
pub trait BatchHandler: Send + Sync + 'static {
    async fn handle(&self, batch: MessageBatch) -> Result<(), HandlerError>;
}

/// A [`BatchHandler`] made of an async closure.
pub fn batch_handler_fn<F, Fut>(f: F) -> Arc<dyn BatchHandler>
where
    F: Fn(MessageBatch) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    Arc::new(FnHandler(f))
}

struct FnHandler<F>(F);

#[async_trait]
impl<F, Fut> BatchHandler for FnHandler<F>
where
    F: Fn(MessageBatch) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    async fn handle(&self, batch: MessageBatch) -> Result<(), HandlerError> {
        (self.0)(batch).await
    }
}

/// Options of `retry` / `retry_all`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryOptions {
    /// 0–43 200; overrides the consumer's `retry_delay` (an explicit 0 cancels it).
    pub delay_seconds: Option<u32>,
}

impl RetryOptions {
    pub fn delay(seconds: u32) -> RetryOptions {
        RetryOptions { delay_seconds: Some(seconds) }
    }
}

/// A recorded ack/retry call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    Ack,
    /// `reason`: why, recorded as the message's last error (and kept if it is dead-lettered).
    Retry {
        delay: Option<Duration>,
        reason: Option<Arc<str>>,
    },
}

/// The calls made on one batch: the first call per message wins, the first batch-wide call wins,
/// and a message's own call beats the batch-wide one whatever the order.
#[derive(Debug)]
pub(crate) struct BatchDecisions {
    per_message: Vec<OnceLock<Decision>>,
    batch: OnceLock<Decision>,
    max_delay_seconds: u32,
}

impl BatchDecisions {
    pub(crate) fn new(messages: usize, max_delay_seconds: u32) -> BatchDecisions {
        BatchDecisions {
            per_message: (0..messages).map(|_| OnceLock::new()).collect(),
            batch: OnceLock::new(),
            max_delay_seconds,
        }
    }

    /// The explicit decision for message `index`, if any call was made.
    pub(crate) fn decision(&self, index: usize) -> Option<Decision> {
        self.per_message.get(index).and_then(|d| d.get()).or_else(|| self.batch.get()).cloned()
    }

    fn retry_decision(&self, options: RetryOptions) -> Result<Decision, QueueError> {
        match options.delay_seconds {
            Some(seconds) if seconds > self.max_delay_seconds => Err(QueueError::invalid(
                "delay_seconds",
                format!("{seconds} is over {}", self.max_delay_seconds),
            )),
            seconds => Ok(Decision::Retry {
                delay: seconds.map(|s| Duration::from_secs(u64::from(s))),
                reason: None,
            }),
        }
    }

    fn record(&self, index: usize, decision: Decision) {
        if let Some(slot) = self.per_message.get(index) {
            let _ = slot.set(decision);
        }
    }
}

/// One delivered message.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: MessageId,
    /// When it was sent.
    pub timestamp: SystemTime,
    pub body: MessageBody,
    /// 1 on the first delivery, +1 on each redelivery.
    pub attempts: u32,
    /// Set when this queue is a dead-letter queue and the message was moved here.
    pub dead_letter: Option<DeadLetterInfo>,
    index: usize,
    decisions: Arc<BatchDecisions>,
}

impl Message {
    pub(crate) fn new(
        id: MessageId,
        timestamp: SystemTime,
        body: MessageBody,
        attempts: u32,
        dead_letter: Option<DeadLetterInfo>,
        index: usize,
        decisions: Arc<BatchDecisions>,
    ) -> Message {
        Message { id, timestamp, body, attempts, dead_letter, index, decisions }
    }

    /// Marks the message handled, even if the handler fails. Ignored if a call was made before.
    pub fn ack(&self) {
        self.decisions.record(self.index, Decision::Ack);
    }

    /// Asks for redelivery, even if the handler succeeds. Ignored if a call was made before;
    /// an out-of-range delay is an error and records nothing.
    pub fn retry(&self, options: RetryOptions) -> Result<(), QueueError> {
        let decision = self.decisions.retry_decision(options)?;
        self.decisions.record(self.index, decision);
        Ok(())
    }

    /// Like [`Message::retry`], recording `reason` as the message's last error: what
    /// dead-letter inspection shows once its retries run out.
    pub fn retry_because(
        &self,
        options: RetryOptions,
        reason: impl std::fmt::Display,
    ) -> Result<(), QueueError> {
        let decision = match self.decisions.retry_decision(options)? {
            Decision::Retry { delay, .. } => {
                Decision::Retry { delay, reason: Some(reason.to_string().into()) }
            }
            ack => ack,
        };
        self.decisions.record(self.index, decision);
        Ok(())
    }

    /// Parses a json body as `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, QueueError> {
        self.body.json()
    }
}

/// The batch handed to a [`BatchHandler`]: never empty, at most `max_batch_size` messages.
///
/// Calls made after the handler returned are ignored.
#[derive(Debug, Clone)]
pub struct MessageBatch {
    pub queue: String,
    pub messages: Vec<Message>,
    decisions: Arc<BatchDecisions>,
}

impl MessageBatch {
    pub(crate) fn new(queue: String, messages: Vec<Message>, decisions: Arc<BatchDecisions>) -> MessageBatch {
        MessageBatch { queue, messages, decisions }
    }

    /// Acks every message that has no call of its own. Ignored after an earlier batch-wide call.
    pub fn ack_all(&self) {
        let _ = self.decisions.batch.set(Decision::Ack);
    }

    /// Retries every message that has no call of its own. Ignored after an earlier batch-wide
    /// call; an out-of-range delay is an error and records nothing.
    pub fn retry_all(&self, options: RetryOptions) -> Result<(), QueueError> {
        let decision = self.decisions.retry_decision(options)?;
        let _ = self.decisions.batch.set(decision);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_call_wins_and_own_calls_beat_batch_wide_ones() {
        let d = BatchDecisions::new(4, 43_200);
        let retry = |delay| Decision::Retry { delay, reason: None };
        d.record(0, Decision::Ack);
        d.record(0, retry(None));
        d.record(1, retry(Some(Duration::from_secs(2))));
        d.record(1, Decision::Ack);
        let _ = d.batch.set(retry(None));
        let _ = d.batch.set(Decision::Ack);
        d.record(2, Decision::Ack); // after the batch-wide call, still wins for message 2
        assert_eq!(d.decision(0), Some(Decision::Ack));
        assert_eq!(d.decision(1), Some(retry(Some(Duration::from_secs(2)))));
        assert_eq!(d.decision(2), Some(Decision::Ack));
        assert_eq!(d.decision(3), Some(retry(None)));
    }

    #[test]
    fn a_delay_over_the_limit_is_an_error_that_records_nothing() {
        let d = Arc::new(BatchDecisions::new(1, 43_200));
        let batch = MessageBatch::new("q".into(), vec![], d.clone());
        assert!(batch.retry_all(RetryOptions::delay(43_201)).is_err());
        assert_eq!(d.decision(0), None);
        batch.retry_all(RetryOptions::delay(43_200)).unwrap();
        assert_eq!(
            d.decision(0),
            Some(Decision::Retry { delay: Some(Duration::from_secs(43_200)), reason: None })
        );
    }
}
