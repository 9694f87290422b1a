//! Errors: [`Error`] for callers of the host and of storage, [`ObjectError`] for what an object's
//! handler answers (serializable, so a distributed host can carry it), [`BackendError`] for drivers.

use serde::{Deserialize, Serialize};

/// Errors of the durable-object host and of an object's storage. Each variant is a kind the HTTP
/// layer can map to a status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `id_from_string` got text that is not an id of this namespace.
    #[error("invalid object id {id:?}: {message}")]
    InvalidId { id: String, message: String },
    /// A malformed argument (list options, a namespace name, …).
    #[error("invalid {field}: {message}")]
    InvalidInput { field: &'static str, message: String },
    /// A configured limit was exceeded (keys per batch, key + value bytes). Nothing was written.
    #[error("{what} too large: {actual} > {limit}")]
    TooLarge { what: &'static str, limit: usize, actual: usize },
    /// A value could not be encoded, or a stored value does not decode as the requested type.
    #[error("value of key {key:?} cannot be (de)serialized: {source}")]
    Codec {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    /// The object's handler answered with an error. The event's writes were still committed.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// Too many calls are waiting in the object's mailbox.
    #[error("object is overloaded: {queued} calls waiting")]
    Overloaded { queued: usize },
    /// The event's writes could not be committed. Nothing of the event was stored and the object's
    /// instance was dropped (its in-memory state is gone; the constructor runs again next event).
    #[error("the object's writes could not be committed; the object was reset: {0}")]
    WriteFailed(#[source] BackendError),
    /// The object's instance went away before answering (its handler panicked).
    #[error("the object was reset before answering")]
    Reset,
    /// The host was built but not started.
    #[error("the durable-object host is not started")]
    NotStarted,
    /// The host is shutting down or shut down.
    #[error("the durable-object host is shut down")]
    Closed,
    /// The storage backend failed.
    #[error("durable storage: {0}")]
    Backend(#[from] BackendError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A storage driver's failure, kept opaque behind its source.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct BackendError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl BackendError {
    /// A failure described by a message only.
    pub fn msg(message: impl Into<String>) -> BackendError {
        BackendError { message: message.into(), source: None }
    }

    /// A failure with an underlying cause.
    pub fn new(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> BackendError {
        let message = format!("{}: {source}", message.into());
        BackendError { message, source: Some(Box::new(source)) }
    }
}

impl From<ledge_sqlite::Error> for BackendError {
    fn from(e: ledge_sqlite::Error) -> BackendError {
        BackendError::new("sqlite", e)
    }
}

impl From<ledge_sqlite::rusqlite::Error> for BackendError {
    fn from(e: ledge_sqlite::rusqlite::Error) -> BackendError {
        BackendError::new("sqlite", e)
    }
}

/// What an object's handler answers when it fails. Domain outcomes an object expects (a lease held by
/// someone else, …) are better modelled in its `Response` type; this is for failures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct ObjectError {
    pub kind: ObjectErrorKind,
    pub message: String,
}

/// The kind of an [`ObjectError`], for the HTTP layer to map to a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectErrorKind {
    InvalidInput,
    NotFound,
    Conflict,
    PreconditionFailed,
    TooLarge,
    /// Storage failed underneath the object.
    Storage,
    Internal,
}

impl ObjectError {
    pub fn new(kind: ObjectErrorKind, message: impl Into<String>) -> ObjectError {
        ObjectError { kind, message: message.into() }
    }
    pub fn invalid_input(message: impl Into<String>) -> ObjectError {
        ObjectError::new(ObjectErrorKind::InvalidInput, message)
    }
    pub fn not_found(message: impl Into<String>) -> ObjectError {
        ObjectError::new(ObjectErrorKind::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> ObjectError {
        ObjectError::new(ObjectErrorKind::Conflict, message)
    }
    pub fn precondition_failed(message: impl Into<String>) -> ObjectError {
        ObjectError::new(ObjectErrorKind::PreconditionFailed, message)
    }
    pub fn internal(message: impl Into<String>) -> ObjectError {
        ObjectError::new(ObjectErrorKind::Internal, message)
    }
}

/// Lets a handler use `?` on storage calls.
impl From<Error> for ObjectError {
    fn from(e: Error) -> ObjectError {
        let kind = match &e {
            Error::Object(inner) => return inner.clone(),
            Error::InvalidId { .. } | Error::InvalidInput { .. } | Error::Codec { .. } => {
                ObjectErrorKind::InvalidInput
            }
            Error::TooLarge { .. } => ObjectErrorKind::TooLarge,
            Error::Backend(_) | Error::WriteFailed(_) => ObjectErrorKind::Storage,
            Error::Overloaded { .. } | Error::Reset | Error::NotStarted | Error::Closed => {
                ObjectErrorKind::Internal
            }
        };
        ObjectError::new(kind, e.to_string())
    }
}
