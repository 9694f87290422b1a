//! [`IndexStatus`]: what `GET /repositories/{id}/index-status` and `ledge index` show of a repository's
//! indexing — the coordinator's [`Progress`], the backlog and dead letters of the indexing queues, and
//! whether the chunks are embedded (the model's id) or keyword-indexed only.

use ledge_env::QueueBinding;
use serde::Serialize;

use crate::{JobState, Pipeline, PipelineError, Progress, RepoRef};

/// The queues of the pipeline, in the order a push goes through them.
pub const INDEXING_QUEUES: [QueueBinding; 4] = [
    QueueBinding::GithubEvents,
    QueueBinding::RepositoryIndexing,
    QueueBinding::FileIndexing,
    QueueBinding::EmbeddingGeneration,
];

/// What `"embeddings"` says when a job's chunks go to the keyword index only (no model installed).
pub const KEYWORD_ONLY: &str = "keyword only";

/// A repository's indexing as a client sees it. Serialized as the index-status JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IndexStatus {
    pub org: String,
    /// The repository key, `<owner>/<name>`.
    pub repository: String,
    /// Whether the repository has ever had a job, an error or an indexed commit.
    pub known: bool,
    /// The current job is finished (indexed or failed, or it could not start) and no message of the
    /// indexing queues is left to handle: its chunks are as searchable as they will get.
    pub finished: bool,
    /// The embedding model of the current job's chunks, or [`KEYWORD_ONLY`]; `None` before a job
    /// has started.
    pub embeddings: Option<String>,
    pub progress: Progress,
    /// Messages not yet settled on the indexing queues (every repository of this node: queues are
    /// shared).
    pub pending_messages: u64,
    pub queues: Vec<QueueBacklog>,
}

/// The backlog of one indexing queue and of its dead-letter queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueBacklog {
    pub queue: &'static str,
    pub ready: u64,
    pub delayed: u64,
    pub in_flight: u64,
    /// Messages in the queue's dead-letter queue (those that failed every retry).
    pub dead_letters: u64,
}

impl IndexStatus {
    /// Dead letters over the four indexing queues.
    pub fn dead_letters(&self) -> u64 {
        self.queues.iter().map(|q| q.dead_letters).sum()
    }
}

impl Pipeline {
    /// The index status of `repo`: its coordinator's progress and the indexing queues' backlog.
    pub async fn index_status(&self, repo: &RepoRef) -> Result<IndexStatus, PipelineError> {
        let progress = self.status(repo).await?;
        let backend = self.env.queue_backend().await?;
        let mut queues = Vec::with_capacity(INDEXING_QUEUES.len());
        for binding in INDEXING_QUEUES {
            let queue = binding.name();
            let depth = backend.depth(queue).await?;
            let dlq = self.env.config().queue(queue).and_then(|q| q.dead_letter_queue.clone());
            let dead_letters = match dlq {
                Some(dlq) => {
                    let d = backend.depth(&dlq).await?;
                    d.ready + d.delayed + d.in_flight
                }
                None => 0,
            };
            queues.push(QueueBacklog {
                queue,
                ready: depth.ready,
                delayed: depth.delayed,
                in_flight: depth.in_flight,
                dead_letters,
            });
        }
        let pending_messages = queues.iter().map(|q| q.ready + q.delayed + q.in_flight).sum();
        let known = progress.state != JobState::Idle
            || progress.error.is_some()
            || progress.last_indexed_commit.is_some();
        let job_over =
            matches!(progress.state, JobState::Indexed | JobState::Failed) || progress.error.is_some();
        let embeddings = progress
            .notes
            .as_ref()
            .map(|notes| notes.embedding_model.clone().unwrap_or_else(|| KEYWORD_ONLY.to_owned()));
        Ok(IndexStatus {
            org: repo.org().to_owned(),
            repository: repo.key(),
            known,
            finished: job_over && pending_messages == 0,
            embeddings,
            progress,
            pending_messages,
            queues,
        })
    }
}
