//! The crate's typed error: what a caller can get back from building a [`Chunker`](crate::Chunker) or chunking a file.

/// Why a chunker could not be built or a file could not be chunked.
///
/// Parse failures are *not* errors: a file whose parser fails, times out or finds nothing falls back to line
/// windows (see [`Strategy`](crate::Strategy)). Only bad configuration and inputs over a hard limit are refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// A configuration value or an argument is out of its valid range.
    #[error("invalid {field}: {message}")]
    InvalidInput {
        /// The offending field or argument.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The file is larger than [`ChunkerConfig::max_file_bytes`](crate::ChunkerConfig::max_file_bytes).
    #[error("file of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The size of the refused input, in bytes.
        size: usize,
        /// The configured limit, in bytes.
        limit: usize,
    },
}

impl ChunkError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidInput { field, message: message.into() }
    }
}
