//! ledge's platform records: users, organizations (soft-deleted), memberships with roles,
//! invitations, API keys, refresh tokens, server-side sessions and the audit log.
//!
//! * [`Platform`]: the one handle, over the relational store (`ledge-db`), the `sessions` KV
//!   namespace and the JWT keys. Its methods are grouped by record:
//!   [`accounts`] (sign-up, login, refresh, logout, authenticating a bearer credential),
//!   [`organizations`] (organizations, members, invitations), [`api_keys`], [`repositories`]
//!   (connected repositories, their secrets sealed with [`SealingKeys`]), [`audit`], [`billing`]
//!   (plans, usage quotas, subscriptions from Stripe events), [`ledger`] (what indexing and webhook
//!   intake ask of the records without a `Platform`: access tokens, admitted files, secrets),
//!   [`notifications`] (each member's notification preferences, the checks of their target URLs,
//!   and [`notifications::delivery`], the `notifications` queue consumer).
//! * The records every authenticated request reads (session, membership, organization, API key)
//!   are kept in memory while this process alone owns the data directory, forgotten on change.
//! * [`Principal`] is who a credential proves the caller is; [`Access`] is what the caller may do
//!   in one organization, checked against a [`Need`] by every route.
//! * [`page`]: cursor pagination of every list; [`records`]: the records as the API shows them.
//!
//! Invariant: every query below `users` is scoped by organization id, and an organization the
//! caller is not a member of (or that is deleted) reads as [`PlatformError::NotFound`], exactly
//! like one that does not exist. Knows SQL, the KV binding and `ledge-auth`; not the HTTP API (its
//! one HTTP client delivers notifications to webhooks).

pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod billing;
mod cache;
pub mod error;
pub mod ledger;
pub mod notifications;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod organizations;
pub mod page;
pub mod records;
pub mod repositories;

use std::sync::Arc;
use std::time::Duration;

use ledge_auth::password::Cost;
use ledge_auth::{JwtKeys, LoginThrottle, PasswordHasher, Role, Scope, Scopes, SealingKeys};
use ledge_db::Database;
use ledge_kv::{Clock, KvNamespace, SystemClock};

pub use accounts::{LoginTokens, Principal};
pub use billing::{BillingOverview, Limit, Plan, PlanLimits, Plans, Quota, StripeOutcome, Subscription};
pub use error::{PlatformError, Result};
pub use ledger::{Admission, RepositoryChanges, RepositoryLedger, StoredWebhookSecret};
pub use notifications::{NewPreferences, NotificationEvent, NotificationPreferences, TargetPolicy};
pub use page::{Cursor, Page, PageRequest};
pub use records::{
    ApiKey, AuditEntry, Invitation, Member, Organization, OrganizationWithRole, Repository, User,
};
pub use repositories::{IndexRemoval, NewRepository, RemovedRepository, RepositoryChange, RepositorySecrets};

/// Lifetimes and costs of the platform's credentials.
#[derive(Debug)]
pub struct PlatformOptions {
    pub password_cost: Cost,
    /// Password hashes computed at once (each takes `password_cost.memory_kib` of memory); more
    /// logins wait their turn.
    pub concurrent_hashes: usize,
    /// Lifetime of a JWT access token.
    pub access_ttl: Duration,
    /// A session ends after this long without a request (sliding).
    pub session_ttl: Duration,
    /// Lifetime of a refresh token (a refresh also needs the session alive).
    pub refresh_ttl: Duration,
    /// Default lifetime of an invitation.
    pub invitation_ttl: Duration,
    /// How long a deleted organization can be restored.
    pub deletion_grace: Duration,
    pub throttle: LoginThrottle,
    /// Seal the repositories' webhook secrets and access tokens (`LEDGE_ENCRYPTION_KEY`); without
    /// them, a repository can only be connected without secrets.
    pub sealing_keys: Option<SealingKeys>,
    /// Removes the index of the repositories of purged organizations; without it, organizations
    /// with connected repositories are never purged (their slugs stay taken).
    pub index_removal: Option<Arc<dyn IndexRemoval>>,
    /// The billing plans and their limits (`[plans.*]` of the configuration).
    pub plans: Plans,
    /// Bumped on every change to a repository record, for caches of what they hold.
    pub repository_changes: RepositoryChanges,
    /// Keep sessions, memberships, organizations and API keys in memory (see the crate docs). Exact
    /// only while this process is the only writer of the platform records: the embedded store,
    /// whose data directory one process locks.
    pub cache_records: bool,
    pub clock: Arc<dyn Clock>,
}

impl Default for PlatformOptions {
    fn default() -> Self {
        PlatformOptions {
            password_cost: Cost::default(),
            concurrent_hashes: 2,
            access_ttl: Duration::from_secs(5 * 60),
            session_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            invitation_ttl: Duration::from_secs(7 * 24 * 3600),
            deletion_grace: Duration::from_secs(30 * 24 * 3600),
            throttle: LoginThrottle::default(),
            sealing_keys: None,
            index_removal: None,
            plans: Plans::default(),
            repository_changes: RepositoryChanges::default(),
            cache_records: true,
            clock: Arc::new(SystemClock),
        }
    }
}

/// The platform records. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Platform {
    db: Database,
    sessions: Arc<dyn KvNamespace>,
    jwt: JwtKeys,
    hasher: PasswordHasher,
    /// Bounds the argon2 computations running at once (each holds `password_cost.memory_kib`),
    /// so a burst of logins queues instead of multiplying the memory.
    hashing: tokio::sync::Semaphore,
    cache: cache::RecordCache,
    options: PlatformOptions,
}

impl Platform {
    /// The platform over `db` (migrated by `ledge-db`), the `sessions` namespace and `jwt` keys.
    pub fn new(
        db: Database,
        sessions: Arc<dyn KvNamespace>,
        jwt: JwtKeys,
        options: PlatformOptions,
    ) -> Platform {
        let hasher = PasswordHasher::new(options.password_cost);
        let hashing = tokio::sync::Semaphore::new(options.concurrent_hashes.max(1));
        let cache = cache::RecordCache::new(options.cache_records);
        Platform { db, sessions, jwt, hasher, hashing, cache, options }
    }

    /// Runs `work` (an argon2 hash or verification) on the blocking pool, at most
    /// [`PlatformOptions::concurrent_hashes`] at once.
    pub(crate) async fn hash_work<T: Send + 'static>(
        &self,
        work: impl FnOnce(&PasswordHasher) -> T + Send + 'static,
    ) -> Result<T> {
        let _permit =
            self.hashing.acquire().await.map_err(|_| PlatformError::Internal("password hashing stopped"))?;
        let hasher = self.hasher.clone();
        tokio::task::spawn_blocking(move || work(&hasher))
            .await
            .map_err(|_| PlatformError::Internal("password hashing failed"))
    }

    pub fn options(&self) -> &PlatformOptions {
        &self.options
    }

    fn now_ms(&self) -> i64 {
        self.options.clock.now_ms()
    }
}

/// A new record id: a UUIDv7, so ids sort by creation time.
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

pub(crate) fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// What a route needs of the caller in an organization: a signed-in member needs at least `role`;
/// an API key of the organization needs `scope` (`None`: any key of the organization) and can
/// never act as an owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    pub role: Role,
    pub scope: Option<Scope>,
}

impl Need {
    pub const fn new(role: Role, scope: Option<Scope>) -> Need {
        Need { role, scope }
    }
}

/// What the caller may do in one organization it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub org: Organization,
    /// The member's role; `None` for an API key.
    pub role: Option<Role>,
    /// The member's scopes by role, or the key's.
    pub scopes: Scopes,
    /// Who acts, for the audit log: a user id, or `key:<id>`.
    pub actor: String,
}

impl Access {
    pub fn allows(&self, need: Need) -> bool {
        match self.role {
            Some(role) => role >= need.role,
            None => need.role < Role::Owner && need.scope.is_none_or(|scope| self.scopes.contains(scope)),
        }
    }

    /// `Ok` if [`Access::allows`] `need`, else [`PlatformError::Forbidden`].
    pub fn require(&self, need: Need) -> Result<()> {
        if self.allows(need) {
            return Ok(());
        }
        Err(PlatformError::Forbidden(match self.role {
            Some(_) => "your role in this organization does not allow this",
            None => "this API key's scopes do not allow this",
        }))
    }

    /// Whether the caller is the owner (an API key never is).
    pub fn is_owner(&self) -> bool {
        self.role == Some(Role::Owner)
    }
}
