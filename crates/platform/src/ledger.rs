//! [`RepositoryLedger`]: what the code that fetches, indexes and verifies webhooks asks of the platform
//! records at run time, without a [`Platform`](crate::Platform) (which needs the JWT keys and the
//! sessions): a repository's access token, opened at fetch time; the indexed files an organization's
//! plan admits, metered per organization; the webhook secrets stored per repository; and
//! [`RepositoryChanges`], the counter that tells a cache of those secrets it is stale.
//!
//! A repository is named here as the indexing side knows it: the slug of its organization and its key
//! `<owner>/<name>`. An organization that does not exist (or is deleted) has no token, no secret and no
//! plan: its indexing is neither limited nor metered.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ledge_auth::SealingKeys;
use ledge_db::{Database, sqlx};
use ledge_kv::{Clock, SystemClock};
use sqlx::Row as _;

use crate::billing::{Limit, Plans, indexed_files_held, plan_of};
use crate::error::{PlatformError, Result};
use crate::repositories::context;

/// Counts changes to repository records (connected, updated, disconnected, their organization
/// deleted, restored or purged). Cheap to clone; every clone shares the count. A cache of what the
/// records hold (the webhook secrets) reloads when the count moved.
#[derive(Debug, Clone, Default)]
pub struct RepositoryChanges(Arc<AtomicU64>);

impl RepositoryChanges {
    /// The number of changes so far.
    pub fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    pub(crate) fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

/// Whether an indexing job may leave `files` files indexed for its repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Admitted and metered (or the organization has no plan, or no limit).
    Admitted,
    /// Over the plan's `indexed_files`: nothing was metered.
    LimitReached {
        plan: String,
        allowed: u64,
        /// What the organization would hold with this job: its other repositories' files plus `files`.
        would_hold: u64,
    },
}

/// A stored webhook secret of a repository, for the webhook intake.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredWebhookSecret {
    /// The slug of the repository's organization.
    pub org_slug: String,
    /// The repository key `<owner>/<name>`.
    pub name: String,
    /// The secret, opened; `None` when it cannot be opened with the configured keys (a delivery
    /// for that repository can then not be verified, and is refused).
    pub secret: Option<String>,
}

impl std::fmt::Debug for StoredWebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredWebhookSecret")
            .field("org_slug", &self.org_slug)
            .field("name", &self.name)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .finish()
    }
}

/// The platform records the indexing pipeline and the webhook intake read.
pub struct RepositoryLedger {
    db: Database,
    sealing_keys: Option<Arc<SealingKeys>>,
    plans: Plans,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for RepositoryLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepositoryLedger").field("sealing_keys", &self.sealing_keys).finish_non_exhaustive()
    }
}

impl RepositoryLedger {
    /// The ledger over `db` (migrated), opening secrets with `sealing_keys` (`LEDGE_ENCRYPTION_KEY`)
    /// and limiting with `plans`.
    pub fn new(db: Database, sealing_keys: Option<Arc<SealingKeys>>, plans: Plans) -> RepositoryLedger {
        RepositoryLedger { db, sealing_keys, plans, clock: Arc::new(SystemClock) }
    }

    /// The access token stored for repository `name` of the organization `org_slug`, opened: `None`
    /// when the repository is not connected there or has no token. Callers hold it only for the fetch.
    pub async fn access_token(&self, org_slug: &str, name: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT r.id, r.org_id, r.access_token FROM repositories r
             JOIN organizations o ON o.id = r.org_id
             WHERE o.slug = $1 AND o.deleted_at IS NULL AND r.full_name = $2",
        )
        .bind(org_slug)
        .bind(name)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let Some(sealed) = row.try_get::<Option<String>, _>("access_token")? else { return Ok(None) };
        let (id, org_id): (String, String) = (row.try_get("id")?, row.try_get("org_id")?);
        self.open(&sealed, &context(&org_id, &id, "access_token")).map(Some).ok_or(PlatformError::Internal(
            "the repository's access token cannot be opened with the configured LEDGE_ENCRYPTION_KEY",
        ))
    }

    /// Admits an indexing job of repository `name` that leaves `files` files indexed, if the
    /// organization's plan allows what it would then hold, and meters it: one conditional upsert,
    /// so two jobs of one organization on one store never pass the limit together. A job that does
    /// not add files (`files` at most what the repository is metered at) is always admitted, so an
    /// organization over its limit (a downgraded plan) can still shrink or refresh what it holds.
    pub async fn admit_indexed_files(&self, org_slug: &str, name: &str, files: u64) -> Result<Admission> {
        let Some(org_id) = self.org_id(org_slug).await? else { return Ok(Admission::Admitted) };
        let plan = plan_of(&self.db, &self.plans, &org_id).await?;
        let allowed = Limit::IndexedFiles.of(&plan.limits);
        let cap = allowed.map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let files_i64 = i64::try_from(files).unwrap_or(i64::MAX);
        let admitted = sqlx::query(
            "INSERT INTO indexed_files (org_id, repository, files, updated_at)
             SELECT $1, $2, $3, $4
             WHERE (SELECT COALESCE(SUM(files), 0) FROM indexed_files WHERE org_id = $1 AND repository <> $2)
                   + $3 <= $5
                OR $3 <= (SELECT COALESCE(MAX(files), 0) FROM indexed_files WHERE org_id = $1 AND repository = $2)
             ON CONFLICT (org_id, repository) DO UPDATE SET files = excluded.files, updated_at = excluded.updated_at",
        )
        .bind(&org_id)
        .bind(name)
        .bind(files_i64)
        .bind(self.clock.now_ms())
        .bind(cap)
        .execute(self.db.pool())
        .await?
        .rows_affected();
        if admitted == 1 {
            return Ok(Admission::Admitted);
        }
        let others: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(files), 0) AS BIGINT) FROM indexed_files WHERE org_id = $1 AND repository <> $2",
        )
        .bind(&org_id)
        .bind(name)
        .fetch_one(self.db.pool())
        .await?;
        Ok(Admission::LimitReached {
            plan: plan.name,
            allowed: allowed.unwrap_or(u64::MAX),
            would_hold: u64::try_from(others).unwrap_or(0).saturating_add(files),
        })
    }

    /// Stops metering repository `name` (its index was removed).
    pub async fn forget_indexed_files(&self, org_slug: &str, name: &str) -> Result<()> {
        let Some(org_id) = self.org_id(org_slug).await? else { return Ok(()) };
        sqlx::query("DELETE FROM indexed_files WHERE org_id = $1 AND repository = $2")
            .bind(&org_id)
            .bind(name)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// The indexed files metered for the organization `org_slug` (0 for an unknown one).
    pub async fn indexed_files(&self, org_slug: &str) -> Result<u64> {
        match self.org_id(org_slug).await? {
            Some(org_id) => indexed_files_held(&self.db, &org_id).await,
            None => Ok(0),
        }
    }

    /// Every webhook secret stored for a repository of a live organization, by `(org slug, key)`.
    pub async fn webhook_secrets(&self) -> Result<HashMap<(String, String), StoredWebhookSecret>> {
        let rows = sqlx::query(
            "SELECT r.id, r.org_id, o.slug, r.full_name, r.webhook_secret FROM repositories r
             JOIN organizations o ON o.id = r.org_id
             WHERE o.deleted_at IS NULL AND r.webhook_secret IS NOT NULL",
        )
        .fetch_all(self.db.pool())
        .await?;
        let mut secrets = HashMap::with_capacity(rows.len());
        for row in rows {
            let (id, org_id): (String, String) = (row.try_get("id")?, row.try_get("org_id")?);
            let sealed: String = row.try_get("webhook_secret")?;
            let stored = StoredWebhookSecret {
                org_slug: row.try_get("slug")?,
                name: row.try_get("full_name")?,
                secret: self.open(&sealed, &context(&org_id, &id, "webhook_secret")),
            };
            if stored.secret.is_none() {
                tracing::error!(repository = %stored.name, org = %stored.org_slug,
                    "the repository's webhook secret cannot be opened; its deliveries are refused");
            }
            secrets.insert((stored.org_slug.clone(), stored.name.clone()), stored);
        }
        Ok(secrets)
    }

    async fn org_id(&self, org_slug: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT id FROM organizations WHERE slug = $1 AND deleted_at IS NULL")
            .bind(org_slug)
            .fetch_optional(self.db.pool())
            .await?)
    }

    fn open(&self, sealed: &str, context: &str) -> Option<String> {
        let keys = self.sealing_keys.as_ref()?;
        let plain = keys.open(sealed, context).ok()?;
        String::from_utf8(plain).ok()
    }
}
