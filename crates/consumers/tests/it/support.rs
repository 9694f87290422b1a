//! Shared fixtures.

use std::time::Duration;

use ledge_auth::password::Cost;
use ledge_auth::{JwtKeys, LoginThrottle, SealingKeys, TokenBuckets};
use ledge_env::{Env, KvBinding};
use ledge_platform::{Platform, PlatformOptions};

/// The platform over `env`'s records, with cheap password hashing and no login throttling to speak of.
pub async fn platform(env: &Env, sealing_keys: Option<SealingKeys>) -> Platform {
    let db = env.db().await.unwrap();
    let sessions = env.kv(KvBinding::Sessions).await.unwrap();
    let jwt = JwtKeys::single("a-secret-of-at-least-thirty-two-bytes!!").unwrap();
    let lenient = || TokenBuckets::new(1000, Duration::from_millis(1), 1000);
    let options = PlatformOptions {
        password_cost: Cost { memory_kib: 64, passes: 1, lanes: 1 },
        throttle: LoginThrottle::new(lenient(), lenient()),
        sealing_keys,
        ..PlatformOptions::default()
    };
    Platform::new(db, sessions, jwt, options)
}
