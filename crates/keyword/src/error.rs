//! [`KeywordError`]: what can go wrong at the crate boundary, each variant naming the input at fault.

use std::path::PathBuf;

/// An error of the keyword index.
#[derive(Debug, thiserror::Error)]
pub enum KeywordError {
    /// An argument is unusable: `field` names it (`org`, `repo`, `path`, `limit`, `writer_memory_bytes`…).
    #[error("invalid {field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },

    /// Document number `index` of a [`replace_file`](crate::KeywordIndex::replace_file) call is unusable:
    /// `field` names the field at fault.
    #[error("invalid document #{index}, field {field}: {reason}")]
    InvalidDoc { index: usize, field: &'static str, reason: String },

    /// Another [`KeywordIndex`](crate::KeywordIndex), in this process or another, has the directory open.
    #[error("keyword index {dir} is already open for writing (by this process or another)")]
    Locked { dir: PathBuf },

    /// The directory holds an index built with another schema (another version of ledge): it must be
    /// rebuilt (delete the directory and reindex).
    #[error("keyword index {dir} was built with another schema; delete it and reindex")]
    SchemaMismatch { dir: PathBuf },

    /// A previous write panicked while holding the writer: reopen the index (what was not committed is
    /// lost, as after a crash).
    #[error("the keyword index writer is unusable after a panic; reopen the index")]
    Poisoned,

    /// Reading or writing the index failed (I/O, corruption, a worker thread's failure).
    #[error("keyword index storage failed: {source}")]
    Storage {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Wraps a storage failure (tantivy's or I/O), keeping tantivy's types out of the public API.
pub(crate) fn storage(error: impl std::error::Error + Send + Sync + 'static) -> KeywordError {
    KeywordError::Storage { source: Box::new(error) }
}
