//! Per-consumer counters and a batch-latency histogram, updated with atomics (no locks) and read
//! as snapshots by `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the batch-latency histogram's buckets; a last `+Inf` bucket follows.
pub const BATCH_LATENCY_BUCKETS: [f64; 13] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Counters of one consumer. Shared (`Arc`) between the runtime and readers.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    batches: AtomicU64,
    handler_failures: AtomicU64,
    messages_delivered: AtomicU64,
    messages_acked: AtomicU64,
    messages_retried: AtomicU64,
    messages_dead_lettered: AtomicU64,
    messages_discarded: AtomicU64,
    latency: LatencyHistogram,
}

/// A point-in-time copy of [`ConsumerStats`].
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerStatsSnapshot {
    /// Batches handed to the handler and settled.
    pub batches: u64,
    /// Batches whose handler returned an error or panicked.
    pub handler_failures: u64,
    pub messages_delivered: u64,
    pub messages_acked: u64,
    pub messages_retried: u64,
    /// Moved to the dead-letter queue after their last retry.
    pub messages_dead_lettered: u64,
    /// Deleted after their last retry, with no dead-letter queue.
    pub messages_discarded: u64,
    pub batch_latency: HistogramSnapshot,
}

/// Cumulative histogram counts, Prometheus-style.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound in seconds, observations <= bound)`, ending with `f64::INFINITY`.
    pub buckets: Vec<(f64, u64)>,
    pub sum_seconds: f64,
    pub count: u64,
}

#[derive(Debug, Default)]
struct LatencyHistogram {
    /// Per-bucket (non-cumulative) counts; the last is `+Inf`.
    counts: [AtomicU64; BATCH_LATENCY_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

/// How one settled batch went, for [`ConsumerStats::record_batch`].
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct BatchTally {
    pub delivered: u64,
    pub acked: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    pub discarded: u64,
    pub handler_failed: bool,
}

impl ConsumerStats {
    pub(crate) fn record_batch(&self, tally: BatchTally, latency: Duration) {
        let add = |counter: &AtomicU64, n: u64| {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        };
        if tally.delivered > 0 {
            add(&self.batches, 1);
            self.latency.observe(latency);
        }
        add(&self.handler_failures, u64::from(tally.handler_failed));
        add(&self.messages_delivered, tally.delivered);
        add(&self.messages_acked, tally.acked);
        add(&self.messages_retried, tally.retried);
        add(&self.messages_dead_lettered, tally.dead_lettered);
        add(&self.messages_discarded, tally.discarded);
    }

    pub fn snapshot(&self) -> ConsumerStatsSnapshot {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ConsumerStatsSnapshot {
            batches: get(&self.batches),
            handler_failures: get(&self.handler_failures),
            messages_delivered: get(&self.messages_delivered),
            messages_acked: get(&self.messages_acked),
            messages_retried: get(&self.messages_retried),
            messages_dead_lettered: get(&self.messages_dead_lettered),
            messages_discarded: get(&self.messages_discarded),
            batch_latency: self.latency.snapshot(),
        }
    }
}

impl LatencyHistogram {
    fn observe(&self, latency: Duration) {
        let seconds = latency.as_secs_f64();
        let bucket = BATCH_LATENCY_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(BATCH_LATENCY_BUCKETS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0;
        let bounds = BATCH_LATENCY_BUCKETS.iter().copied().chain([f64::INFINITY]);
        let buckets = bounds
            .zip(&self.counts)
            .map(|(bound, count)| {
                cumulative += count.load(Ordering::Relaxed);
                (bound, cumulative)
            })
            .collect();
        HistogramSnapshot {
            buckets,
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            count: self.count.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_land_in_cumulative_buckets() {
        let stats = ConsumerStats::default();
        let batch = BatchTally { delivered: 2, acked: 1, retried: 1, ..BatchTally::default() };
        stats.record_batch(batch, Duration::from_millis(3));
        stats.record_batch(batch, Duration::from_millis(700));
        stats.record_batch(batch, Duration::from_secs(100));
        let snap = stats.snapshot();
        assert_eq!((snap.batches, snap.messages_delivered, snap.messages_acked), (3, 6, 3));
        let h = snap.batch_latency;
        assert_eq!(h.count, 3);
        assert_eq!(h.buckets.first(), Some(&(0.005, 1)));
        assert_eq!(h.buckets.iter().find(|(b, _)| *b == 1.0), Some(&(1.0, 2)));
        assert_eq!(h.buckets.iter().find(|(b, _)| *b == 60.0), Some(&(60.0, 2)));
        assert_eq!(h.buckets.last(), Some(&(f64::INFINITY, 3)));
        assert!((h.sum_seconds - 100.703).abs() < 1e-6);
    }

    #[test]
    fn a_settlement_without_deliveries_is_not_a_batch() {
        let stats = ConsumerStats::default();
        stats.record_batch(BatchTally { discarded: 1, ..BatchTally::default() }, Duration::ZERO);
        let snap = stats.snapshot();
        assert_eq!((snap.batches, snap.messages_discarded, snap.batch_latency.count), (0, 1, 0));
    }
}
