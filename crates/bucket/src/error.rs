//! The bucket binding's error type: one matchable variant per thing a caller can act on.

use std::io;
use std::path::PathBuf;

use crate::ChecksumAlgorithm;

/// Everything a bucket operation can fail with. The HTTP layer maps each variant to a status;
/// [`Error::Backend`] is the only one whose details are not for clients.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameter is malformed or out of range (empty key, list limit 0, part number 0, …).
    #[error("invalid {field}: {message}")]
    InvalidInput { field: &'static str, message: String },
    /// A size or count limit was exceeded (key > 1024 B, custom metadata > 8192 B, more than
    /// 1000 keys in one delete, a body over the object or part limit, …).
    #[error("{what} exceeds the limit of {limit}")]
    TooLarge { what: &'static str, limit: u64 },
    /// The body's digest differs from the checksum the caller sent; nothing was stored.
    #[error("{algorithm} checksum mismatch: expected {expected}, computed {computed}")]
    ChecksumMismatch { algorithm: ChecksumAlgorithm, expected: String, computed: String },
    /// The multipart upload does not exist: never created, or already completed or aborted.
    #[error("multipart upload {upload_id} does not exist (unknown, completed or aborted)")]
    NoSuchUpload { upload_id: String },
    /// A part listed in `complete` is missing, has another etag, is out of order, or breaks the
    /// "all parts the same size but the last" rule.
    #[error("part {part_number}: {message}")]
    InvalidPart { part_number: u32, message: String },
    /// A part other than the last is smaller than the minimum part size.
    #[error("part {part_number} is {size} bytes, below the minimum part size of {minimum}")]
    PartTooSmall { part_number: u32, size: u64, minimum: u64 },
    /// Reading the caller's body stream failed; nothing was stored.
    #[error("reading the request body failed: {0}")]
    Body(#[source] io::Error),
    /// Another bucket instance (in this or another process) holds the bucket's directory.
    #[error("bucket directory {0} is already open elsewhere")]
    InUse(PathBuf),
    /// The bucket was closed.
    #[error("bucket is closed")]
    Closed,
    /// The storage underneath failed (disk, index, network).
    #[error("bucket storage failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Error {
        Error::InvalidInput { field, message: message.into() }
    }

    /// A filesystem failure, with what was being done and to which path.
    pub(crate) fn file(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Backend(Box::new(FileError { action, path: path.into(), source }))
    }
}

impl From<ledge_sqlite::Error> for Error {
    fn from(e: ledge_sqlite::Error) -> Self {
        match e {
            ledge_sqlite::Error::Closed(_) => Error::Closed,
            other => Error::Backend(Box::new(other)),
        }
    }
}

impl From<ledge_sqlite::rusqlite::Error> for Error {
    fn from(e: ledge_sqlite::rusqlite::Error) -> Self {
        Error::Backend(Box::new(e))
    }
}

/// A filesystem operation that failed, for [`Error::Backend`].
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {path}: {source}")]
pub(crate) struct FileError {
    action: &'static str,
    path: PathBuf,
    #[source]
    source: io::Error,
}
