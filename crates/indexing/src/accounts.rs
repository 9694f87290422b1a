//! [`RepositoryAccounts`]: what the pipeline asks of the platform about a repository while it runs —
//! the access token to fetch it with, and whether its organization's plan admits the files a job
//! would leave indexed. The platform implements it (wired by `ledge-consumers`); without one
//! ([`PipelineOptions::accounts`](crate::PipelineOptions::accounts) `None`), every https fetch uses the
//! server's `LEDGE_GITHUB_TOKEN` and nothing is limited.

use async_trait::async_trait;

use crate::RepoRef;

/// A repository's access token, opened for one fetch. `Debug` masks it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(pub String);

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(***)")
    }
}

/// Whether a job may leave a number of files indexed for its repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilesAdmission {
    /// Go ahead (and the files are metered for the organization).
    Admitted,
    /// The organization's `plan` allows `allowed` indexed files; with this job it would hold `would_hold`.
    LimitReached { plan: String, allowed: u64, would_hold: u64 },
}

/// The platform's side of a repository, as the indexing pipeline needs it. Errors are the store's,
/// as text; the job that hit one is retried.
#[async_trait]
pub trait RepositoryAccounts: Send + Sync + std::fmt::Debug + 'static {
    /// The access token stored for `repo`, if it is connected with one.
    async fn access_token(&self, repo: &RepoRef) -> Result<Option<AccessToken>, String>;

    /// Whether `repo` may hold `files` indexed files (counted before its job starts); admitted files
    /// are metered for its organization.
    async fn admit_indexed_files(&self, repo: &RepoRef, files: u64) -> Result<FilesAdmission, String>;

    /// `repo`'s index was removed: its files are no longer metered.
    async fn forget_indexed_files(&self, repo: &RepoRef) -> Result<(), String>;
}
