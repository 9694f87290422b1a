//! [`PipelineError`]: what can go wrong in the indexing pipeline, by the binding or library at fault.

/// An error of the indexing pipeline. [`PipelineError::InvalidMessage`] and
/// [`PipelineError::InvalidInput`] are the input's fault (a malformed message: retrying cannot help);
/// the others come from storage, git or a model, and are worth retrying.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// A queue message that is not what its queue carries (bad JSON, unknown version, missing field).
    #[error("malformed {queue} message: {reason}")]
    InvalidMessage { queue: &'static str, reason: String },
    /// A value that cannot be used (a repository name, a commit id…), naming the field.
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: &'static str, reason: String },
    #[error(transparent)]
    Git(#[from] ledge_git::Error),
    #[error("bucket: {0}")]
    Bucket(#[from] ledge_bucket::Error),
    #[error("kv: {0}")]
    Kv(#[from] ledge_kv::Error),
    #[error("vector index: {0}")]
    Vector(#[from] ledge_vector::Error),
    #[error("queue: {0}")]
    Queue(#[from] ledge_queue::QueueError),
    #[error("indexing coordinator: {0}")]
    Coordinator(#[from] ledge_durable::Error),
    #[error("keyword index: {0}")]
    Keyword(#[from] ledge_keyword::KeywordError),
    #[error("embedder: {0}")]
    Embed(#[from] ledge_embed::EmbedError),
    #[error(transparent)]
    Env(#[from] ledge_env::EnvError),
    /// An artifact in the `artifacts` bucket that cannot be read back.
    #[error("artifact {key}: {reason}")]
    Artifact { key: String, reason: String },
    /// The coordinator answered something the caller cannot act on.
    #[error("indexing coordinator answered {0}")]
    UnexpectedResponse(String),
    /// The platform's records of repositories (access tokens, metered files) cannot be read.
    #[error("repository accounts: {0}")]
    Accounts(String),
    /// A blocking task (git, chunking, keyword index) panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
}

impl PipelineError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> PipelineError {
        PipelineError::InvalidInput { field, reason: reason.into() }
    }

    pub(crate) fn message(queue: &'static str, reason: impl Into<String>) -> PipelineError {
        PipelineError::InvalidMessage { queue, reason: reason.into() }
    }

    /// Whether the input is at fault, so that retrying cannot help.
    pub fn is_malformed(&self) -> bool {
        matches!(self, PipelineError::InvalidMessage { .. } | PipelineError::InvalidInput { .. })
    }
}

/// Runs blocking work (git, chunking, the keyword index) on the blocking pool.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, PipelineError>
where
    F: FnOnce() -> Result<T, PipelineError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work).await.map_err(|e| PipelineError::Task(e.to_string()))?
}
