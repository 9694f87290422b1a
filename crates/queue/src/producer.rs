//! The producer side: the `QueueProducer` trait handlers hold, and the one implementation that
//! validates against the contract and hands messages to any [`QueueBackend`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::{
    BatchEntry, BatchOptions, MessageBody, NewMessage, QueueBackend, QueueError, QueueLimits, SendOptions,
    SendOutcome,
};

/// Sends messages to one queue. Object-safe: code holds `Arc<dyn QueueProducer>`.
#[async_trait]
pub trait QueueProducer: Send + Sync {
    /// The queue this producer sends to.
    fn queue(&self) -> &str;

    /// Sends one message; returns once it is persisted (or was a duplicate).
    async fn send(&self, body: MessageBody, options: SendOptions) -> Result<SendOutcome, QueueError>;

    /// Sends 1–100 messages atomically (all or none persisted); one outcome per entry, in order.
    async fn send_batch(
        &self,
        entries: Vec<BatchEntry>,
        options: BatchOptions,
    ) -> Result<Vec<SendOutcome>, QueueError>;
}

/// The producer of a declared queue over any backend.
pub struct Producer {
    backend: Arc<dyn QueueBackend>,
    queue: String,
    delivery_delay_seconds: u32,
    limits: QueueLimits,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").field("queue", &self.queue).finish()
    }
}

impl Producer {
    /// A producer for `queue`, which must be declared in the backend's configuration.
    pub fn new(backend: Arc<dyn QueueBackend>, queue: &str) -> Result<Producer, QueueError> {
        let config = backend.config();
        let declaration = config.declaration(queue).ok_or_else(|| QueueError::UnknownQueue(queue.into()))?;
        let delivery_delay_seconds = declaration.delivery_delay_seconds;
        let limits = config.limits.clone();
        Ok(Producer { backend, queue: queue.to_owned(), delivery_delay_seconds, limits })
    }

    /// Validates one message; returns it with its size including metadata.
    fn prepare(
        &self,
        body: MessageBody,
        options: SendOptions,
        batch_delay: Option<u32>,
    ) -> Result<(NewMessage, usize), QueueError> {
        let delay_seconds = options.delay_seconds.or(batch_delay).unwrap_or(self.delivery_delay_seconds);
        if delay_seconds > self.limits.max_delay_seconds {
            return Err(QueueError::invalid(
                "delay_seconds",
                format!("{delay_seconds} is over {}", self.limits.max_delay_seconds),
            ));
        }
        if let Some(key) = &options.dedup_key
            && (key.is_empty() || key.len() > self.limits.max_dedup_key_bytes)
        {
            return Err(QueueError::invalid(
                "dedup_key",
                format!("must be 1 to {} bytes, got {}", self.limits.max_dedup_key_bytes, key.len()),
            ));
        }
        let (content_type, body) = body.encode(options.content_type)?;
        let size = body.len() + self.limits.message_metadata_bytes;
        if size >= self.limits.max_message_bytes {
            return Err(QueueError::TooLarge {
                what: "message bytes (body + metadata; must be under the limit)",
                actual: size,
                limit: self.limits.max_message_bytes,
            });
        }
        let delay = Duration::from_secs(u64::from(delay_seconds));
        Ok((NewMessage { content_type, body, delay, dedup_key: options.dedup_key }, size))
    }
}

#[async_trait]
impl QueueProducer for Producer {
    fn queue(&self) -> &str {
        &self.queue
    }

    async fn send(&self, body: MessageBody, options: SendOptions) -> Result<SendOutcome, QueueError> {
        let (message, _) = self.prepare(body, options, None)?;
        let mut outcomes = self.backend.send(&self.queue, vec![message]).await?;
        outcomes.pop().ok_or_else(|| QueueError::Backend("the driver returned no send outcome".into()))
    }

    async fn send_batch(
        &self,
        entries: Vec<BatchEntry>,
        options: BatchOptions,
    ) -> Result<Vec<SendOutcome>, QueueError> {
        if entries.is_empty() {
            return Err(QueueError::invalid("messages", "a batch holds at least one message"));
        }
        if entries.len() > self.limits.max_batch_messages {
            return Err(QueueError::TooLarge {
                what: "batch messages",
                actual: entries.len(),
                limit: self.limits.max_batch_messages,
            });
        }
        let count = entries.len();
        let mut messages = Vec::with_capacity(count);
        let mut total = 0;
        for entry in entries {
            let (message, size) = self.prepare(entry.body, entry.options, options.delay_seconds)?;
            total += size;
            messages.push(message);
        }
        if total > self.limits.max_batch_bytes {
            return Err(QueueError::TooLarge {
                what: "batch bytes (bodies + metadata)",
                actual: total,
                limit: self.limits.max_batch_bytes,
            });
        }
        let outcomes = self.backend.send(&self.queue, messages).await?;
        if outcomes.len() != count {
            return Err(QueueError::Backend(
                format!("the driver returned {} outcomes for {count} messages", outcomes.len()).into(),
            ));
        }
        Ok(outcomes)
    }
}
