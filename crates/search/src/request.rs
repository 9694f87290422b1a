//! [`SearchRequest`]: what a caller asks (the HTTP query or body, the CLI's arguments), and its
//! vocabulary: [`Mode`], [`Fusion`], the limits.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::SearchError;

/// The default number of hits per page.
pub const DEFAULT_LIMIT: usize = 20;
/// The most hits per page.
pub const MAX_LIMIT: usize = 100;
/// How deep pagination goes: hits past this rank are never returned (the next cursor ends there).
pub const MAX_RESULTS: usize = 1000;

/// How a query is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Keyword (BM25) and semantic (embedding) results fused; keyword only without a model.
    #[default]
    Hybrid,
    /// BM25 over the code-aware analyzer.
    Keyword,
    /// Nearest chunks to the query's embedding (keyword without a model, with a notice).
    Semantic,
    /// A regular expression over the chunk texts (linear time; literals prefilter through the keyword
    /// index).
    Regex,
    /// Chunks whose symbol is, or starts with, the query.
    Symbol,
}

impl Mode {
    pub const ALL: [Mode; 5] = [Mode::Hybrid, Mode::Keyword, Mode::Semantic, Mode::Regex, Mode::Symbol];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Hybrid => "hybrid",
            Mode::Keyword => "keyword",
            Mode::Semantic => "semantic",
            Mode::Regex => "regex",
            Mode::Symbol => "symbol",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = SearchError;

    fn from_str(s: &str) -> Result<Mode, SearchError> {
        Mode::ALL.into_iter().find(|m| m.as_str() == s.trim().to_ascii_lowercase()).ok_or_else(|| {
            SearchError::invalid(
                "mode",
                format!("{s:?} is not one of hybrid, keyword, semantic, regex, symbol"),
            )
        })
    }
}

/// How hybrid mode fuses the keyword and the semantic ranking. The default is the weighted sum: on the
/// quality evaluation (`examples/eval`, BENCHMARKS.md) it had the best MRR@10 and never a lower Recall@10
/// than keyword search on any corpus, where RRF lost recall on the one whose semantic ranking is weakest
/// (regex-syntax).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// Reciprocal rank fusion: `Σ 1 / (k + rank)` over the two rankings (rank from 1, `k` =
    /// [`RRF_K`](crate::RRF_K)).
    Rrf,
    /// A weighted sum of min-max normalised scores: `(1 − w)·keyword + w·semantic`, `w` =
    /// [`SEMANTIC_WEIGHT`](crate::SEMANTIC_WEIGHT).
    #[default]
    Weighted,
}

impl Fusion {
    pub fn as_str(self) -> &'static str {
        match self {
            Fusion::Rrf => "rrf",
            Fusion::Weighted => "weighted",
        }
    }
}

impl FromStr for Fusion {
    type Err = SearchError;

    fn from_str(s: &str) -> Result<Fusion, SearchError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "rrf" => Ok(Fusion::Rrf),
            "weighted" => Ok(Fusion::Weighted),
            _ => Err(SearchError::invalid("fusion", format!("{s:?} is not one of rrf, weighted"))),
        }
    }
}

/// One search. `org` is required and is the only organization whose chunks can be returned.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SearchRequest {
    /// The caller's organization.
    pub org: String,
    /// The query, in the syntax of [`crate::syntax`]; at most [`MAX_QUERY_BYTES`](crate::MAX_QUERY_BYTES).
    pub q: String,
    /// Only these repositories (`owner/name`), besides any `repo:` in `q` (any of them).
    pub repos: Vec<String>,
    /// Only these languages, besides any `lang:` in `q` (any of them).
    pub languages: Vec<String>,
    /// Only paths starting with this (must agree with a `path:` in `q`).
    pub path: Option<String>,
    /// The mode (must agree with a `mode:` in `q`); default hybrid.
    pub mode: Option<Mode>,
    /// Hits per page, 1..=[`MAX_LIMIT`]; default [`DEFAULT_LIMIT`].
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page of the same query.
    pub cursor: Option<String>,
    /// How hybrid mode fuses; default weighted.
    pub fusion: Option<Fusion>,
}

impl SearchRequest {
    /// A request for `q` in `org`, everything else default.
    pub fn new(org: impl Into<String>, q: impl Into<String>) -> SearchRequest {
        SearchRequest { org: org.into(), q: q.into(), ..SearchRequest::default() }
    }
}
