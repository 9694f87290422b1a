//! The KV conformance suite, run against the embedded SQLite driver.

use std::sync::Arc;

use ledge_kv::conformance::KvUnderTest;
use ledge_kv::{ManualClock, SqliteKv, SqliteKvOptions};

/// A fresh store in a temporary directory, on a manual clock.
async fn embedded() -> KvUnderTest {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // A whole second plus a fraction, so that cases cannot assume an aligned clock.
    let clock = Arc::new(ManualClock::new(1_800_000_000_250));
    let options = SqliteKvOptions { clock: clock.clone(), ..SqliteKvOptions::default() };
    let kv = SqliteKv::open(dir.path().join("kv.db"), options).expect("open the store");
    KvUnderTest::new(kv.namespace("sessions"), kv.namespace("embedding-cache"), clock).keeping(dir)
}

ledge_kv::kv_conformance_tests!(embedded());
