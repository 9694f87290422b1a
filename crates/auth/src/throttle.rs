//! Login throttling with in-process token buckets, one per account and one per client IP.
//!
//! Each login attempt takes a token from the account's bucket and from the IP's; an empty bucket
//! refuses with the time until a token is back (the `Retry-After`). A successful login refills the
//! account's bucket. The buckets live in this process: with several ledge nodes each node counts
//! on its own, until the distributed driver moves them to Redis/KV. Memory is bounded: past
//! `max_keys` entries, the buckets that have refilled completely (which carry no information) are
//! dropped, and if none has, the least recently touched are.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets keyed by string, all of one capacity and refill rate.
#[derive(Debug)]
pub struct TokenBuckets {
    capacity: f64,
    per_token: Duration,
    max_keys: usize,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl TokenBuckets {
    /// Buckets of `capacity` tokens, one token back every `per_token`.
    pub fn new(capacity: u32, per_token: Duration, max_keys: usize) -> TokenBuckets {
        TokenBuckets {
            capacity: f64::from(capacity.max(1)),
            per_token: per_token.max(Duration::from_millis(1)),
            max_keys: max_keys.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed / self.per_token.as_secs_f64()).min(self.capacity)
    }

    /// Takes one token for `key`, or says how long until one is back.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let tokens = match buckets.get(key) {
            Some(bucket) => self.refilled(*bucket, now),
            None => {
                if buckets.len() >= self.max_keys {
                    self.evict(&mut buckets, now);
                }
                self.capacity
            }
        };
        if tokens < 1.0 {
            buckets.insert(key.to_string(), Bucket { tokens, at: now });
            let wait = (1.0 - tokens) * self.per_token.as_secs_f64();
            return Err(Duration::from_secs_f64(wait).max(Duration::from_secs(1)));
        }
        buckets.insert(key.to_string(), Bucket { tokens: tokens - 1.0, at: now });
        Ok(())
    }

    /// Forgets `key` (its bucket is full again).
    pub fn reset(&self, key: &str) {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }

    pub fn len(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn evict(&self, buckets: &mut HashMap<String, Bucket>, now: Instant) {
        buckets.retain(|_, bucket| self.refilled(*bucket, now) < self.capacity);
        if buckets.len() >= self.max_keys {
            let mut ages: Vec<(Instant, String)> = buckets.iter().map(|(k, b)| (b.at, k.clone())).collect();
            ages.sort();
            for (_, key) in ages.into_iter().take(buckets.len() + 1 - self.max_keys / 2) {
                buckets.remove(&key);
            }
        }
    }
}

/// Login attempts per account and per IP.
#[derive(Debug)]
pub struct LoginThrottle {
    accounts: TokenBuckets,
    ips: TokenBuckets,
}

impl Default for LoginThrottle {
    /// 5 attempts per account, then one a minute; 20 per IP, then one every 6 seconds.
    fn default() -> Self {
        LoginThrottle {
            accounts: TokenBuckets::new(5, Duration::from_secs(60), 100_000),
            ips: TokenBuckets::new(20, Duration::from_secs(6), 100_000),
        }
    }
}

impl LoginThrottle {
    pub fn new(accounts: TokenBuckets, ips: TokenBuckets) -> LoginThrottle {
        LoginThrottle { accounts, ips }
    }

    /// Counts one attempt for `account` from `ip`; `Err(retry_after)` when either is over.
    pub fn attempt(&self, account: &str, ip: &str, now: Instant) -> Result<(), Duration> {
        self.ips.take(ip, now)?;
        self.accounts.take(account, now)
    }

    /// A successful login: the account's attempts start over.
    pub fn succeeded(&self, account: &str) {
        self.accounts.reset(account);
    }

    /// Counts one attempt from `ip` alone (sign-ups, refreshes).
    pub fn attempt_ip(&self, ip: &str, now: Instant) -> Result<(), Duration> {
        self.ips.take(ip, now)
    }
}
