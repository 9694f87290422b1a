//! A platform over fresh stores, and helpers to make accounts.

use std::sync::Arc;
use std::time::Duration;

use ledge_auth::password::Cost;
use ledge_auth::{JwtKeys, LoginThrottle, SealingKeys, TokenBuckets};
use ledge_kv::{ManualClock, SqliteKv, SqliteKvOptions};
use ledge_platform::{
    IndexRemoval, LoginTokens, Plan, Plans, Platform, PlatformOptions, Principal, RepositoryLedger,
};

pub const PASSWORD: &str = "a long enough passphrase";

pub struct TestPlatform {
    pub platform: Platform,
    /// The platform's store, for a [`RepositoryLedger`] over it.
    pub db: ledge_db::Database,
    pub clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

pub async fn platform() -> TestPlatform {
    platform_with(LoginThrottle::default()).await
}

pub const SEALING_KEYS: &str = "s1:a-sealing-secret-of-at-least-32-bytes";

pub async fn platform_with(throttle: LoginThrottle) -> TestPlatform {
    platform_sealing(throttle, Some(SealingKeys::parse_list(SEALING_KEYS).unwrap())).await
}

/// A platform with these sealing keys (`None`: no `LEDGE_ENCRYPTION_KEY`).
pub async fn platform_sealing(throttle: LoginThrottle, sealing_keys: Option<SealingKeys>) -> TestPlatform {
    platform_options(throttle, sealing_keys, None).await
}

pub async fn platform_options(
    throttle: LoginThrottle,
    sealing_keys: Option<SealingKeys>,
    index_removal: Option<Arc<dyn IndexRemoval>>,
) -> TestPlatform {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let db = match std::env::var("LEDGE_PLATFORM_TEST_POSTGRES") {
        Ok(server) => postgres(&server).await,
        Err(_) => {
            let url = format!("sqlite://{}", dir.path().join("ledge.db").display());
            ledge_db::Database::connect(&url).await.unwrap()
        }
    };
    let kv = SqliteKv::open(
        dir.path().join("kv.db"),
        SqliteKvOptions { clock: clock.clone(), ..SqliteKvOptions::default() },
    )
    .unwrap();
    let jwt = JwtKeys::single("a-secret-of-at-least-thirty-two-bytes!!").unwrap();
    let options = PlatformOptions {
        password_cost: Cost { memory_kib: 64, passes: 1, lanes: 1 },
        throttle,
        sealing_keys,
        index_removal,
        plans: plans(),
        clock: clock.clone(),
        ..PlatformOptions::default()
    };
    let platform = Platform::new(db.clone(), kv.namespace("sessions"), jwt, options);
    TestPlatform { platform, db, clock, _dir: dir }
}

/// The built-in plans, but 10 repositories on free, so that tests of the records are not about
/// plan limits (`billing.rs` is).
pub fn plans() -> Plans {
    let mut plans: Vec<Plan> = Plans::default().all().to_vec();
    plans[0].limits.repositories = Some(10);
    Plans::new(plans)
}

/// The store in a fresh schema of the Postgres database at `server` (e.g.
/// `postgres://postgres@127.0.0.1:5432/test`), so that tests running at once do not meet.
async fn postgres(server: &str) -> ledge_db::Database {
    use ledge_db::sqlx::Connection as _;
    let schema = format!("t{}", uuid::Uuid::new_v4().simple());
    let mut admin = ledge_db::sqlx::postgres::PgConnection::connect(server).await.unwrap();
    ledge_db::sqlx::raw_sql(ledge_db::sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let separator = if server.contains('?') { '&' } else { '?' };
    let url = format!("{server}{separator}options=-c%20search_path%3D{schema}");
    ledge_db::Database::connect(&url).await.unwrap()
}

/// A throttle that never refuses (for tests that log in a lot).
pub fn lenient() -> LoginThrottle {
    LoginThrottle::new(
        TokenBuckets::new(1000, Duration::from_millis(1), 1000),
        TokenBuckets::new(1000, Duration::from_millis(1), 1000),
    )
}

impl TestPlatform {
    /// Signs `email` up and logs in.
    pub async fn account(&self, email: &str) -> LoginTokens {
        self.platform.signup(email, PASSWORD, None, "127.0.0.1").await.unwrap();
        self.platform.login(email, PASSWORD, "127.0.0.1").await.unwrap()
    }

    pub async fn principal(&self, tokens: &LoginTokens) -> Principal {
        self.platform.authenticate(format!("Bearer {}", tokens.access_token).as_bytes()).await.unwrap()
    }

    /// The ledger the indexing pipeline and the webhook intake read, over this platform's store,
    /// with its sealing keys and plans.
    pub fn ledger(&self) -> RepositoryLedger {
        let keys = Arc::new(SealingKeys::parse_list(SEALING_KEYS).unwrap());
        RepositoryLedger::new(self.db.clone(), Some(keys), self.platform.plans().clone())
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}
