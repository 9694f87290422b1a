//! Tunable limits of the chunker, with defaults sized for BM25 indexing and a ~512-token embedding window.

use std::time::Duration;

use crate::ChunkError;

/// The chunker's limits. Every field has a default (see [`ChunkerConfig::default`]); [`Chunker::new`]
/// validates the combination.
///
/// [`Chunker::new`]: crate::Chunker::new
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkerConfig {
    /// Inputs larger than this are refused with [`ChunkError::TooLarge`]. Default 64 MiB.
    pub max_file_bytes: usize,
    /// Inputs larger than this are not parsed but chunked with line windows, which stream over the text.
    /// Bounds the memory of the syntax tree. Default 1 MiB.
    pub max_parse_bytes: usize,
    /// A parse taking more steps than this falls back to line windows; a step is what tree-sitter does
    /// between two progress reports (about 100 parser operations). Counted, not timed, so a file is
    /// chunked the same on any machine and under any load: the same content always gets the same
    /// chunks. Default 2,000 (about 100 ms of a parse on the development machine while an index runs).
    pub parse_budget: u64,
    /// A parse running longer than this is cancelled whatever its steps, and the file falls back to
    /// line windows: a backstop for a machine so loaded that the budget takes seconds. Default 2 s.
    pub parse_timeout: Duration,
    /// A definition or code segment longer than this many lines is split into windows. Default 80.
    pub max_lines: usize,
    /// A definition or code segment larger than this many bytes is split into windows; no chunk is larger.
    /// Default 4096.
    pub max_bytes: usize,
    /// Lines per window when splitting or when chunking a file without a grammar. Default 60.
    pub window_lines: usize,
    /// Lines shared by two consecutive windows (at most half of the shorter window). Default 10.
    pub window_overlap_lines: usize,
    /// Chunks shorter than this many lines are candidates for merging with their neighbours; 0 disables
    /// merging. Default 15.
    pub merge_below_lines: usize,
    /// A merged chunk spans at most this many lines. Default 40.
    pub merge_max_lines: usize,
    /// Idle parsers kept per language for reuse across calls and threads. Default 4.
    pub max_idle_parsers: usize,
}

impl Default for ChunkerConfig {
    fn default() -> Self {
        Self {
            max_file_bytes: 64 * 1024 * 1024,
            max_parse_bytes: 1024 * 1024,
            parse_budget: 2_000,
            parse_timeout: Duration::from_secs(2),
            max_lines: 80,
            max_bytes: 4096,
            window_lines: 60,
            window_overlap_lines: 10,
            merge_below_lines: 15,
            merge_max_lines: 40,
            max_idle_parsers: 4,
        }
    }
}

impl ChunkerConfig {
    /// The smallest accepted [`max_bytes`](Self::max_bytes): room for a few characters of any encoding.
    pub const MIN_MAX_BYTES: usize = 64;

    /// Checks that the limits are usable together.
    pub fn validate(&self) -> Result<(), ChunkError> {
        if self.max_file_bytes == 0 {
            return Err(ChunkError::invalid("max_file_bytes", "must be at least 1"));
        }
        if self.parse_budget == 0 {
            return Err(ChunkError::invalid("parse_budget", "must be at least 1"));
        }
        if self.parse_timeout.is_zero() {
            return Err(ChunkError::invalid("parse_timeout", "must be longer than zero"));
        }
        if self.max_lines == 0 {
            return Err(ChunkError::invalid("max_lines", "must be at least 1"));
        }
        if self.max_bytes < Self::MIN_MAX_BYTES {
            return Err(ChunkError::invalid(
                "max_bytes",
                format!("must be at least {}", Self::MIN_MAX_BYTES),
            ));
        }
        if self.window_lines == 0 || self.window_lines > self.max_lines {
            return Err(ChunkError::invalid("window_lines", "must be between 1 and max_lines"));
        }
        if self.window_overlap_lines >= self.window_lines {
            return Err(ChunkError::invalid("window_overlap_lines", "must be less than window_lines"));
        }
        if self.merge_max_lines > self.max_lines {
            return Err(ChunkError::invalid("merge_max_lines", "must not exceed max_lines"));
        }
        if self.merge_below_lines > self.merge_max_lines {
            return Err(ChunkError::invalid("merge_below_lines", "must not exceed merge_max_lines"));
        }
        Ok(())
    }
}
