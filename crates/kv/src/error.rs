//! The KV error type: one matchable kind per failure, naming the field at fault.

/// Errors of every KV operation, whatever the driver.
///
/// The HTTP layer maps kinds to statuses: `InvalidInput` → 400, `TooLarge` → 413 (414 for a key),
/// `Decode` → 422, `Closed` → 503, `Backend` → 500.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument is malformed or out of range (`key`, `keys`, `expiration`, `expiration_ttl`,
    /// `cache_ttl`, `limit`, `cursor`).
    #[error("invalid {field}: {message}")]
    InvalidInput { field: &'static str, message: String },
    /// An argument is over its size limit (`key`, `value`, `metadata`), in bytes.
    #[error("{field} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { field: &'static str, size: usize, limit: usize },
    /// A stored value could not be read as the requested type (`get_text` of non-UTF-8 bytes,
    /// `get_json` of something that is not the expected JSON).
    #[error("the value of key {key:?} is not {expected}: {message}")]
    Decode { key: String, expected: &'static str, message: String },
    /// The store was closed.
    #[error("the KV store is closed")]
    Closed,
    /// The storage behind the driver failed.
    #[error("KV storage failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The argument at fault, for `InvalidInput` and `TooLarge`.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Error::InvalidInput { field, .. } | Error::TooLarge { field, .. } => Some(field),
            _ => None,
        }
    }

    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Error {
        Error::InvalidInput { field, message: message.into() }
    }

    pub(crate) fn backend(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
        Error::Backend(source.into())
    }
}

impl From<ledge_sqlite::Error> for Error {
    fn from(e: ledge_sqlite::Error) -> Error {
        match e {
            ledge_sqlite::Error::Closed(_) => Error::Closed,
            other => Error::backend(other),
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        Error::backend(e)
    }
}
