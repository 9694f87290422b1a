//! The crate's one error type, with a matchable [`ErrorKind`] the HTTP layer maps to a status.

use crate::{BlobId, CommitId};

/// Everything that can go wrong fetching, listing, reading or diffing.
///
/// Messages never contain credentials: repositories are named by their redacted [`Source`](crate::Source)
/// display, and tokens only ever travel through the credential callback.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The caller passed something malformed (a URL, a ref name, an object id, a mirror path component)
    /// or a source that the mirror's options do not allow.
    #[error("invalid {field}: {message}")]
    InvalidInput { field: &'static str, message: String },
    /// The repository could not be reached: connection refused or timed out, DNS failure, a local path that
    /// does not exist. Usually worth retrying later.
    #[error("repository {repository} is unreachable: {message}")]
    Unreachable { repository: String, message: String },
    /// The server (or the local path) answered, but there is no git repository there.
    #[error("repository {repository} not found: {message}")]
    RepositoryNotFound { repository: String, message: String },
    /// The server wants credentials, or rejected the ones given.
    #[error("authentication to {repository} failed")]
    AuthenticationFailed { repository: String },
    /// The wanted ref does not exist in the repository.
    #[error("ref {name} not found in {repository}")]
    RefNotFound { repository: String, name: String },
    /// The wanted commit does not exist in the repository (or the server refuses to hand it out).
    #[error("commit {commit} not found in {repository}")]
    CommitNotFound { repository: String, commit: CommitId },
    /// The mirror does not hold this object: it was never fetched (fetch it first), or the mirror is new.
    #[error("object {id} is not in the mirror")]
    MissingObject { id: String },
    /// The object exists but is of another kind than the operation needs (a tree where a blob was expected).
    #[error("object {id} is a {actual}, expected a {expected}")]
    WrongObjectKind { id: String, expected: &'static str, actual: String },
    /// An object or pack could not be decoded.
    #[error("object {id} is corrupt: {message}")]
    CorruptObject { id: String, message: String },
    /// A blob is larger than the caller's cap; its size came from the object header, the blob was not loaded.
    #[error("blob {id} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { id: BlobId, size: u64, limit: u64 },
    /// Anything else: I/O on the mirror's directory, an unexpected gitoxide failure.
    #[error("{context}: {source}")]
    Backend {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

/// The kind of an [`Error`], for mapping to a status and a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    InvalidInput,
    NotFound,
    Unauthenticated,
    Unavailable,
    TooLarge,
    Corrupt,
    Backend,
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidInput { .. } | Error::WrongObjectKind { .. } => ErrorKind::InvalidInput,
            Error::RepositoryNotFound { .. }
            | Error::RefNotFound { .. }
            | Error::CommitNotFound { .. }
            | Error::MissingObject { .. } => ErrorKind::NotFound,
            Error::AuthenticationFailed { .. } => ErrorKind::Unauthenticated,
            Error::Unreachable { .. } => ErrorKind::Unavailable,
            Error::TooLarge { .. } => ErrorKind::TooLarge,
            Error::CorruptObject { .. } => ErrorKind::Corrupt,
            Error::Backend { .. } => ErrorKind::Backend,
        }
    }

    /// Whether trying again later may succeed without changing anything (the repository was unreachable).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unreachable { .. })
    }

    pub(crate) fn backend(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Error::Backend { context: context.into(), source: source.into() }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::backend(context, source)
    }
}
