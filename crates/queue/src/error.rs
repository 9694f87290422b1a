//! The queue binding's error type: one variant per kind the HTTP layer maps to a status.

/// Errors of producers, backends and the consumer runtime.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// An argument breaks the contract (bad delay, mismatched content type, bad setting, …).
    #[error("invalid {field}: {message}")]
    InvalidInput { field: &'static str, message: String },
    /// A configured limit is exceeded (`what` names the measure, e.g. "message bytes").
    #[error("{what} is {actual}, over the limit of {limit}")]
    TooLarge { what: &'static str, actual: usize, limit: usize },
    /// The queue is not among the declared queues.
    #[error("queue {0:?} is not declared")]
    UnknownQueue(String),
    /// The backend was closed.
    #[error("the queue backend is closed")]
    Closed,
    /// The storage behind the driver failed.
    #[error("queue storage: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl QueueError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> QueueError {
        QueueError::InvalidInput { field, message: message.into() }
    }
}

impl From<ledge_sqlite::Error> for QueueError {
    fn from(error: ledge_sqlite::Error) -> Self {
        match error {
            ledge_sqlite::Error::Closed(_) => QueueError::Closed,
            other => QueueError::Backend(Box::new(other)),
        }
    }
}

impl From<ledge_sqlite::rusqlite::Error> for QueueError {
    fn from(error: ledge_sqlite::rusqlite::Error) -> Self {
        QueueError::Backend(Box::new(error))
    }
}

impl From<ledge_sqlite::rusqlite::types::FromSqlError> for QueueError {
    fn from(error: ledge_sqlite::rusqlite::types::FromSqlError) -> Self {
        QueueError::Backend(Box::new(error))
    }
}
