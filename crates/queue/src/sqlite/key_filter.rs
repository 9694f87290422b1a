//! [`KeyFilter`]: a Bloom filter of the dedup keys held by the `queue_dedup_keys` table, so that a
//! send whose key the table cannot hold (every new delivery) skips the table read.
//!
//! It answers "maybe held" for every key in the table and, about 1 % of the time, for a key that is
//! not; a "maybe" costs the table read a send did before. Keys only enter the table through the
//! inbox's drains, which add them here; expired keys leave the table but not the filter, so the
//! filter is rebuilt from the table when more keys went in than it was sized for.

use std::hash::{BuildHasher, Hasher, RandomState};

/// Bits per key at the sized capacity, and probes per key: a ~1 % false-positive rate.
const BITS_PER_KEY: u64 = 10;
const PROBES: u64 = 7;
/// The smallest capacity (80 KiB of bits).
pub(super) const MIN_CAPACITY: u64 = 1 << 16;

pub(super) struct KeyFilter {
    bits: Vec<u64>,
    hasher: RandomState,
    /// Keys added, and how many the filter was sized for.
    added: u64,
    capacity: u64,
}

impl KeyFilter {
    /// An empty filter sized for `expected` keys (at least [`MIN_CAPACITY`]).
    pub(super) fn with_capacity(expected: u64) -> KeyFilter {
        let capacity = expected.max(MIN_CAPACITY);
        let words = (capacity * BITS_PER_KEY).div_ceil(64);
        KeyFilter { bits: vec![0; words as usize], hasher: RandomState::new(), added: 0, capacity }
    }

    pub(super) fn insert(&mut self, queue: &str, key: &str) {
        let bits = self.bits.len() as u64 * 64;
        let (h1, h2) = self.hashes(queue, key);
        for i in 0..PROBES {
            let bit = h1.wrapping_add(i.wrapping_mul(h2)) % bits;
            self.bits[(bit / 64) as usize] |= 1 << (bit % 64);
        }
        self.added += 1;
    }

    /// False only if `key` was never inserted for `queue`.
    pub(super) fn may_contain(&self, queue: &str, key: &str) -> bool {
        let bits = self.bits.len() as u64 * 64;
        let (h1, h2) = self.hashes(queue, key);
        (0..PROBES).all(|i| {
            let bit = h1.wrapping_add(i.wrapping_mul(h2)) % bits;
            self.bits[(bit / 64) as usize] & (1 << (bit % 64)) != 0
        })
    }

    /// Whether more keys went in than the filter was sized for (its error rate is rising).
    pub(super) fn is_overfull(&self) -> bool {
        self.added > self.capacity
    }

    fn hashes(&self, queue: &str, key: &str) -> (u64, u64) {
        let mut hasher = self.hasher.build_hasher();
        hasher.write(queue.as_bytes());
        hasher.write_u8(0);
        hasher.write(key.as_bytes());
        let hash = hasher.finish();
        // Double hashing: the second hash is odd, so the probes cover the table.
        (hash, hash.rotate_left(32) | 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_inserted_key_may_be_held_and_few_others_seem_to_be() {
        let mut filter = KeyFilter::with_capacity(MIN_CAPACITY);
        for i in 0..MIN_CAPACITY {
            filter.insert("github-events", &format!("delivery-{i}"));
        }
        assert!((0..MIN_CAPACITY).all(|i| filter.may_contain("github-events", &format!("delivery-{i}"))));
        let false_positives =
            (0..100_000).filter(|i| filter.may_contain("github-events", &format!("other-{i}"))).count();
        assert!(false_positives < 2_000, "{false_positives} false positives in 100,000 (expected ~1 %)");
        assert!(!filter.is_overfull());
        filter.insert("github-events", "one more");
        assert!(filter.is_overfull());
    }
}
