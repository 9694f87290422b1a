//! The vector-index error type: one matchable kind per failure, naming what is at fault.

use crate::types::IndexConfig;

/// Errors of every vector-index operation, whatever the driver.
///
/// The HTTP layer maps kinds to statuses: `InvalidInput`, `DimensionMismatch` and `InvalidFilter`
/// → 400, `TooLarge` → 413, `NotFound` → 404, `Conflict` → 409, `ConfigMismatch` → 500 (a
/// deployment error), `Closed` → 503, `Backend` → 500.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument is malformed or out of range (`id`, `namespace`, `metadata`, `values`, `top_k`,
    /// `ids`, `property`, `dimensions`).
    #[error("invalid {field}: {message}")]
    InvalidInput { field: &'static str, message: String },
    /// A vector (or query vector) does not have the index's number of dimensions.
    #[error("the vector has {actual} dimensions, the index has {expected}")]
    DimensionMismatch { expected: usize, actual: usize },
    /// A value is over its limit: bytes for `id`, `namespace`, `metadata`, `filter`; a count for
    /// `vectors`, `ids`, `top_k`, `metadata_indexes`, `dimensions`.
    #[error("{field} is {size}, over the limit of {limit}")]
    TooLarge { field: &'static str, size: usize, limit: usize },
    /// A query filter is malformed: `key` is the filter key at fault (empty for the filter as a
    /// whole), `message` says what is wrong with it.
    #[error("invalid filter{}: {message}", if key.is_empty() { String::new() } else { format!(" at {key:?}") })]
    InvalidFilter { key: String, message: String },
    /// The named thing (a vector for `query_by_id`, a metadata index) does not exist.
    #[error("{what} {name:?} not found")]
    NotFound { what: &'static str, name: String },
    /// The request contradicts existing state (a metadata index of another type on the property).
    #[error("conflict: {message}")]
    Conflict { message: String },
    /// The stored index was created with another configuration than the one it was opened with.
    #[error(
        "the index was created with {} dimensions and metric {}, but opened with {} dimensions and metric {}",
        stored.dimensions, stored.metric.as_str(), requested.dimensions, requested.metric.as_str()
    )]
    ConfigMismatch { stored: IndexConfig, requested: IndexConfig },
    /// The index was closed.
    #[error("the vector index is closed")]
    Closed,
    /// The storage behind the driver failed (or holds data this driver cannot read).
    #[error("vector index storage failed: {0}")]
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

    pub(crate) fn filter(key: impl Into<String>, message: impl Into<String>) -> Error {
        Error::InvalidFilter { key: key.into(), message: message.into() }
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

impl From<ledge_sqlite::rusqlite::Error> for Error {
    fn from(e: ledge_sqlite::rusqlite::Error) -> Error {
        Error::backend(e)
    }
}
