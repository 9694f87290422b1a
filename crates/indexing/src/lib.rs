//! The repository indexing domain of ledge. For now it holds the [`IndexingCoordinator`], the
//! durable object (one per repository) that coordinates an indexing job: it hands out batches of
//! files as claims with leases, records progress, and marks a commit indexed once every batch is
//! finished.
//!
//! # Layout
//!
//! * [`coordinator`] — the [`IndexingCoordinator`] object, its [`Request`]s and [`Response`]s,
//!   [`Progress`], [`CoordinatorConfig`], and the [`Clock`] it reads time from.
//!
//! # Invariant
//!
//! The coordinator's storage holds exactly one job: the latest commit it was asked to index.
//! Starting a job for another commit deletes every key of the older job in the same event, so no
//! claim, completion or failure of the older commit can change the newer job's state; they are
//! answered [`Response::Superseded`]. Each request runs in one storage transaction: a request that
//! fails writes nothing.
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

pub mod coordinator;

pub use coordinator::{
    BatchClaim, BatchOutcome, BatchSpec, Clock, CoordinatorConfig, FileFailure, IndexingCoordinator,
    JobState, ManualClock, NAMESPACE, Progress, Request, Response, SystemClock,
};
