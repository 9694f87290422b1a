//! Login token buckets: per account, per IP, bounded memory.

use std::time::{Duration, Instant};

use ledge_auth::throttle::*;

#[test]
fn a_bucket_empties_then_refills_at_its_rate() {
    let buckets = TokenBuckets::new(3, Duration::from_secs(10), 100);
    let t0 = Instant::now();
    for _ in 0..3 {
        assert_eq!(buckets.take("a", t0), Ok(()));
    }
    assert_eq!(buckets.take("a", t0), Err(Duration::from_secs(10)));
    assert_eq!(buckets.take("b", t0), Ok(()), "keys are independent");
    assert!(buckets.take("a", t0 + Duration::from_secs(5)).is_err());
    assert_eq!(buckets.take("a", t0 + Duration::from_secs(11)), Ok(()));
}

#[test]
fn the_account_and_the_ip_are_limited_separately_and_success_resets_the_account() {
    let throttle = LoginThrottle::new(
        TokenBuckets::new(2, Duration::from_secs(60), 100),
        TokenBuckets::new(4, Duration::from_secs(60), 100),
    );
    let t0 = Instant::now();
    assert!(throttle.attempt("ada", "1.1.1.1", t0).is_ok());
    assert!(throttle.attempt("ada", "2.2.2.2", t0).is_ok());
    assert!(throttle.attempt("ada", "3.3.3.3", t0).is_err(), "per account, whatever the IP");
    throttle.succeeded("ada");
    assert!(throttle.attempt("ada", "4.4.4.4", t0).is_ok());
    for account in ["b", "c", "d"] {
        assert!(throttle.attempt(account, "9.9.9.9", t0).is_ok());
    }
    assert!(throttle.attempt("e", "9.9.9.9", t0).is_ok());
    assert!(throttle.attempt("f", "9.9.9.9", t0).is_err(), "per IP, whatever the account");
}

#[test]
fn memory_stays_bounded() {
    let buckets = TokenBuckets::new(1, Duration::from_secs(3600), 100);
    let t0 = Instant::now();
    for i in 0..10_000 {
        let _ = buckets.take(&format!("k{i}"), t0);
    }
    assert!(buckets.len() <= 100, "{}", buckets.len());
}
