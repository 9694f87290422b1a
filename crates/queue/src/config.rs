//! Driver-independent queue configuration: the declared queues, the contract's limits, retention.

use std::time::Duration;

use crate::QueueError;

/// Longest delivery delay the contract allows (12 hours), for sends and retries.
pub const MAX_DELAY_SECONDS: u32 = 43_200;
/// How long an unconsumed message is kept by default (4 days).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(4 * 24 * 3600);
/// The longest retention the contract allows (14 days).
pub const MAX_RETENTION: Duration = Duration::from_secs(14 * 24 * 3600);

/// Size and delay limits enforced by every producer. Defaults are the contract's; exceeding one
/// is a typed error, never a truncation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueLimits {
    /// A message (body + [`QueueLimits::message_metadata_bytes`]) must be *smaller* than this
    /// (128 KB = 128 000 B).
    pub max_message_bytes: usize,
    /// Metadata counted with each message's body (~100 B).
    pub message_metadata_bytes: usize,
    /// Most messages in one `send_batch` (100).
    pub max_batch_messages: usize,
    /// Most bytes (bodies + metadata) in one `send_batch` (256 KB = 256 000 B).
    pub max_batch_bytes: usize,
    /// Longest `delay_seconds` (43 200).
    pub max_delay_seconds: u32,
    /// Longest dedup key (a ledge extension; 256 B).
    pub max_dedup_key_bytes: usize,
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits {
            max_message_bytes: 128_000,
            message_metadata_bytes: 100,
            max_batch_messages: 100,
            max_batch_bytes: 256_000,
            max_delay_seconds: MAX_DELAY_SECONDS,
            max_dedup_key_bytes: 256,
        }
    }
}

/// One declared queue. A producer or consumer for a queue that is not declared is an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDeclaration {
    /// 1–63 ASCII letters, digits, `-` or `_`.
    pub name: String,
    /// The producer's default delivery delay; a send's `delay_seconds` overrides it (0 cancels it).
    pub delivery_delay_seconds: u32,
}

impl QueueDeclaration {
    pub fn new(name: impl Into<String>) -> QueueDeclaration {
        QueueDeclaration { name: name.into(), delivery_delay_seconds: 0 }
    }

    pub fn with_delivery_delay(mut self, seconds: u32) -> QueueDeclaration {
        self.delivery_delay_seconds = seconds;
        self
    }
}

/// What every queue driver is configured with, whatever its storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    pub queues: Vec<QueueDeclaration>,
    pub limits: QueueLimits,
    /// Messages older than this are dropped by the periodic purge (default 4 days, at most 14).
    pub retention: Duration,
    /// How long a dedup key suppresses repeated sends (`None`: the retention).
    pub dedup_window: Option<Duration>,
}

impl QueueConfig {
    /// The given queues with the contract's limits and retention.
    pub fn new(queues: impl IntoIterator<Item = QueueDeclaration>) -> QueueConfig {
        QueueConfig {
            queues: queues.into_iter().collect(),
            limits: QueueLimits::default(),
            retention: DEFAULT_RETENTION,
            dedup_window: None,
        }
    }

    pub fn declaration(&self, queue: &str) -> Option<&QueueDeclaration> {
        self.queues.iter().find(|q| q.name == queue)
    }

    /// The effective dedup window.
    pub fn dedup_window(&self) -> Duration {
        self.dedup_window.unwrap_or(self.retention)
    }

    /// Checks names (valid, unique), delays and durations against the contract.
    pub fn validate(&self) -> Result<(), QueueError> {
        let mut seen = std::collections::HashSet::new();
        for queue in &self.queues {
            validate_queue_name(&queue.name)?;
            if !seen.insert(queue.name.as_str()) {
                return Err(QueueError::invalid(
                    "queues",
                    format!("queue {:?} is declared twice", queue.name),
                ));
            }
            if queue.delivery_delay_seconds > self.limits.max_delay_seconds {
                return Err(QueueError::invalid(
                    "delivery_delay_seconds",
                    format!(
                        "{} s for queue {:?} is over {} s",
                        queue.delivery_delay_seconds, queue.name, self.limits.max_delay_seconds
                    ),
                ));
            }
        }
        if self.retention.is_zero() || self.retention > MAX_RETENTION {
            return Err(QueueError::invalid("retention", "must be more than 0 and at most 14 days"));
        }
        if self.dedup_window.is_some_and(|w| w.is_zero() || w > MAX_RETENTION) {
            return Err(QueueError::invalid("dedup_window", "must be more than 0 and at most 14 days"));
        }
        Ok(())
    }
}

fn validate_queue_name(name: &str) -> Result<(), QueueError> {
    let valid_chars = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if name.is_empty() || name.len() > 63 || !valid_chars {
        return Err(QueueError::invalid(
            "queue",
            format!("{name:?}: a queue name is 1-63 ASCII letters, digits, '-' or '_'"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_contract_values() {
        let limits = QueueLimits::default();
        assert_eq!(limits.max_message_bytes, 128_000);
        assert_eq!(limits.max_batch_messages, 100);
        assert_eq!(limits.max_batch_bytes, 256_000);
        assert_eq!(limits.max_delay_seconds, 43_200);
        let config = QueueConfig::new([QueueDeclaration::new("jobs")]);
        assert_eq!(config.retention, Duration::from_secs(345_600));
        assert_eq!(config.dedup_window(), config.retention);
        config.validate().unwrap();
    }

    #[test]
    fn bad_declarations_are_rejected() {
        let bad = |config: QueueConfig| {
            assert!(matches!(config.validate(), Err(QueueError::InvalidInput { .. })), "{config:?}")
        };
        bad(QueueConfig::new([QueueDeclaration::new("")]));
        bad(QueueConfig::new([QueueDeclaration::new("has space")]));
        bad(QueueConfig::new([QueueDeclaration::new("x".repeat(64))]));
        bad(QueueConfig::new([QueueDeclaration::new("a"), QueueDeclaration::new("a")]));
        bad(QueueConfig::new([QueueDeclaration::new("a").with_delivery_delay(43_201)]));
        let mut long = QueueConfig::new([QueueDeclaration::new("a")]);
        long.retention = MAX_RETENTION + Duration::from_secs(1);
        bad(long);
    }
}
