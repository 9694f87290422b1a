//! [`SearchError`]: what can go wrong at the crate boundary; bad input names the request field at fault.

use ledge_embed::EmbedError;
use ledge_keyword::KeywordError;

/// An error of a search.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The request is unusable: `field` names it (`q`, `mode`, `limit`, `cursor`, `repo`, `lang`, `path`,
    /// `org`, `fusion`), `reason` says why (for `q`, it names the filter or the pattern at fault).
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },

    /// The keyword index failed.
    #[error("keyword index: {0}")]
    Keyword(#[from] KeywordError),

    /// The vector index failed.
    #[error("vector index: {0}")]
    Vector(#[from] ledge_vector::Error),

    /// The embedding model failed on the query.
    #[error("embedding model: {0}")]
    Embed(#[from] EmbedError),

    /// A search task on the blocking pool died.
    #[error("search task failed: {0}")]
    Task(String),
}

impl SearchError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> SearchError {
        SearchError::Invalid { field, reason: reason.into() }
    }

    /// The request field at fault, when the request is (not the indexes).
    pub fn field(&self) -> Option<&'static str> {
        match self {
            SearchError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    /// Why the request is refused (the message without the field), or the whole message.
    pub fn reason(&self) -> String {
        match self {
            SearchError::Invalid { reason, .. } => reason.clone(),
            other => other.to_string(),
        }
    }
}
