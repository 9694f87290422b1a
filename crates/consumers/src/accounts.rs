//! [`PlatformAccounts`]: the indexing pipeline's [`RepositoryAccounts`] over the platform's records
//! ([`RepositoryLedger`]): the relational store opened on first use, secrets opened with
//! `LEDGE_ENCRYPTION_KEY`, limits from the `[plans.*]` of the configuration.

use std::sync::Arc;

use async_trait::async_trait;
use ledge_env::Env;
use ledge_indexing::{AccessToken, FilesAdmission, RepoRef, RepositoryAccounts};
use ledge_platform::{Admission, Plans, RepositoryLedger};
use tokio::sync::OnceCell;

use crate::ConsumersError;

/// The platform's repository records, as the indexing pipeline reads them.
pub struct PlatformAccounts {
    env: Arc<Env>,
    sealing_keys: Option<Arc<ledge_auth::SealingKeys>>,
    ledger: OnceCell<RepositoryLedger>,
}

impl std::fmt::Debug for PlatformAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlatformAccounts")
    }
}

impl PlatformAccounts {
    /// Reads `LEDGE_ENCRYPTION_KEY` now (a malformed one is an error); opens nothing.
    pub fn new(env: Arc<Env>) -> Result<PlatformAccounts, ConsumersError> {
        let sealing_keys = match env.secrets().encryption_key() {
            Some(keys) => Some(Arc::new(
                ledge_auth::SealingKeys::parse_list(keys.expose())
                    .map_err(|e| ConsumersError::SealingKeys(e.to_string()))?,
            )),
            None => None,
        };
        Ok(PlatformAccounts { env, sealing_keys, ledger: OnceCell::new() })
    }

    async fn ledger(&self) -> Result<&RepositoryLedger, String> {
        self.ledger
            .get_or_try_init(|| async {
                let db = self.env.db().await.map_err(|e| format!("cannot open the database: {e}"))?;
                Ok(RepositoryLedger::new(db, self.sealing_keys.clone(), plans(&self.env)))
            })
            .await
    }
}

/// The configured plans (`[plans.*]`), as `ledge-api`'s billing routes read them.
fn plans(env: &Env) -> Plans {
    Plans::configured(&env.config().plans)
}

#[async_trait]
impl RepositoryAccounts for PlatformAccounts {
    async fn access_token(&self, repo: &RepoRef) -> Result<Option<AccessToken>, String> {
        let ledger = self.ledger().await?;
        let token = ledger.access_token(repo.org(), &repo.key()).await.map_err(|e| e.to_string())?;
        Ok(token.map(AccessToken))
    }

    async fn admit_indexed_files(&self, repo: &RepoRef, files: u64) -> Result<FilesAdmission, String> {
        let ledger = self.ledger().await?;
        let admission =
            ledger.admit_indexed_files(repo.org(), &repo.key(), files).await.map_err(|e| e.to_string())?;
        Ok(match admission {
            Admission::Admitted => FilesAdmission::Admitted,
            Admission::LimitReached { plan, allowed, would_hold } => {
                FilesAdmission::LimitReached { plan, allowed, would_hold }
            }
        })
    }

    async fn forget_indexed_files(&self, repo: &RepoRef) -> Result<(), String> {
        let ledger = self.ledger().await?;
        ledger.forget_indexed_files(repo.org(), &repo.key()).await.map_err(|e| e.to_string())
    }
}
