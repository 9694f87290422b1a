//! The repository indexing domain of ledge: the [`IndexingCoordinator`] durable object (one per
//! repository) and the pipeline on the queues that turns a push into searchable chunks:
//!
//! ```text
//! github-events ──▶ repository-indexing ──▶ file-indexing ──▶ embedding-generation
//!  record, route     fetch, list, diff,      claim a batch,     cache lookup, embed the
//!                    StartJob, 1 message     chunk, artifacts,  misses, upsert vectors
//!                    per batch of 50         keyword docs
//! ```
//!
//! # Layout
//!
//! * [`coordinator`] — the [`IndexingCoordinator`] object, its [`Request`]s and [`Response`]s,
//!   [`Progress`], [`JobNotes`], [`CoordinatorConfig`], and the [`Clock`] it reads time from.
//! * [`repo`] — [`RepoRef`] (organization + `<owner>/<name>`) and the names derived from it;
//!   [`org_of_owner`], today's GitHub account → organization mapping.
//! * [`messages`] — the versioned JSON messages of the three indexing queues.
//! * [`pipeline`] — [`Pipeline`], what the consumers share (bindings from the env, the coordinators'
//!   durable-object host, chunker, filter), and [`PipelineOptions`].
//! * One module per consumer: [`github_events`] ([`GithubEventRouter`]), [`repository_indexing`]
//!   ([`RepositoryIndexer`]), [`file_indexing`] ([`FileIndexer`]), [`embedding_generation`]
//!   ([`EmbeddingGenerator`]).
//! * `notices` — the `indexing.finished` / `indexing.failed` event queued on `notifications` when a
//!   job ends, and `usage_limit.reached` when a job would pass the plan's indexed files.
//! * [`accounts`] — [`RepositoryAccounts`], what the pipeline asks the platform: a repository's
//!   access token, and whether its organization's plan admits a job's indexed files.
//! * [`status`] — [`IndexStatus`]: progress, queue backlog and dead letters, embeddings mode, as
//!   `GET /repositories/{id}/index-status` and `ledge index` show it.
//! * [`artifact`] — chunk artifacts in the `artifacts` bucket, the record of what is indexed, and the
//!   chunk ids every index shares; [`embedding_cache`] — vectors by organization, model and text hash.
//!
//! # Invariants
//!
//! The coordinator's storage holds exactly one job: the latest commit it was asked to index.
//! Starting a job for another commit deletes every key of the older job in the same event, so no
//! claim, completion or failure of the older commit can change the newer job's state; they are
//! answered [`Response::Superseded`]. Each request runs in one storage transaction: a request that
//! fails writes nothing.
//!
//! Every message, artifact key, KV key, keyword document and vector carries the organization. A path
//! has keyword documents or vectors only while it has a chunk artifact, and all of one path's
//! documents are of one version; every step of the pipeline is idempotent, so a message redelivered
//! after a crash at any point converges on what a clean run gives — no chunk lost, none duplicated.
//! The crate knows the job's bookkeeping and the order of writes, not how git, parsing, indexes or
//! models work inside.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use ledge_durable::{DurableHost, HostConfig, SqliteStorage};
//! use ledge_indexing::{BatchSpec, CoordinatorConfig, IndexingCoordinator, NAMESPACE, Request, Response};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let storage = SqliteStorage::open(dir.path().join("durable.db"), Default::default())?;
//! let host = DurableHost::new(Arc::new(storage), HostConfig::default());
//! let coordinators =
//!     host.namespace(NAMESPACE, |_| IndexingCoordinator::with_config(CoordinatorConfig::default()))?;
//! let run = host.start(std::future::pending())?;
//! let repo = coordinators.stub_for_name("org-1/repo-1");
//!
//! let batches = vec![BatchSpec { id: "b0".into(), files: vec!["src/lib.rs".into()] }];
//! repo.call(Request::StartJob { commit: "c1".into(), previous_commit: None, batches }).await?;
//! let Response::Claimed(claim) =
//!     repo.call(Request::Claim { worker: "w1".into(), lease: Duration::from_secs(60) }).await?
//! else {
//!     panic!("one batch to hand out")
//! };
//! // … index `claim.files` at `claim.commit`, then:
//! let done = Request::Complete {
//!     batch: claim.batch,
//!     commit: claim.commit,
//!     files_done: 1,
//!     files_failed: Vec::new(),
//!     chunks: 3,
//! };
//! repo.call(done).await?;
//! let Response::Status(progress) = repo.call(Request::Status).await? else { panic!("a status") };
//! assert_eq!(progress.last_indexed_commit.as_deref(), Some("c1"));
//! run.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub mod accounts;
pub mod artifact;
pub mod coordinator;
pub mod embedding_cache;
pub mod embedding_generation;
mod error;
pub mod file_indexing;
pub mod github_events;
pub mod messages;
mod notices;
pub mod pipeline;
pub mod repo;
pub mod repository_indexing;
pub mod status;

pub use accounts::{AccessToken, FilesAdmission, RepositoryAccounts};
pub use artifact::{ArtifactChunk, ArtifactStore, ChunkArtifact, chunk_key};
pub use coordinator::{
    BatchClaim, BatchOutcome, BatchSpec, Clock, CoordinatorConfig, FileFailure, IndexingCoordinator,
    JobError, JobNotes, JobState, ManualClock, NAMESPACE, Progress, Request, Response, Selection,
    SkipSummary, SkippedPath, SystemClock,
};
pub use embedding_cache::EmbeddingCache;
pub use embedding_generation::EmbeddingGenerator;
pub use error::PipelineError;
pub use file_indexing::FileIndexer;
pub use github_events::GithubEventRouter;
pub use messages::{EmbeddingTask, FileIndexingTask, MESSAGE_VERSION, RepositoryJob, RepositoryTask};
pub use pipeline::{Pipeline, PipelineHooks, PipelineOptions, PipelineStats};
pub use repo::{RepoRef, org_of_owner};
pub use repository_indexing::RepositoryIndexer;
pub use status::{INDEXING_QUEUES, IndexStatus, KEYWORD_ONLY, QueueBacklog};
