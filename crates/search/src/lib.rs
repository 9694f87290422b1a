//! Code search over the keyword and the vector index: the query syntax, five modes, hybrid ranking,
//! snippets with highlights and cursor pagination — every search scoped to one organization.
//!
//! # Layout
//!
//! - `searcher`: [`Searcher`] (over an `Arc<KeywordIndex>`, an `Arc<dyn VectorIndex>` and an optional
//!   `Arc<dyn Embedder>`), [`SearchOptions`], the answer types [`SearchResults`] and [`SearchHit`].
//! - `request`: [`SearchRequest`] (what the HTTP routes and the CLI fill in), [`Mode`], [`Fusion`], limits.
//! - [`syntax`]: the query language (`repo:`, `lang:`, `path:`, `sym:`, `mode:`, `"phrases"`,
//!   `-negation`) parsed into [`ParsedQuery`].
//! - `rank`: reciprocal rank fusion and the weighted sum, the exact-symbol bonus, de-duplication of
//!   overlapping chunks, diversification across files.
//! - `pattern`: regex mode's compiled pattern (linear time, size limits) and its prefilter words.
//! - `snippet`: [`Snippet`]s around the best match, with highlighted byte ranges.
//! - `cursor`: opaque cursors bound to their query. `error`: [`SearchError`].
//!
//! # Invariant
//!
//! A search only ever returns chunks of its request's organization: the keyword index filters every
//! query by it, the vector index is asked within the organization's namespace and every vector hit is read
//! back through the keyword index under the same filter. A `repo:` the organization does not have finds
//! nothing. Bad input is refused before any index is touched, with the request field at fault. The crate
//! knows the indexes' and the model's traits, not HTTP, queues or how chunks are made.
//!
//! Without a model every search is keyword-only: [`SearchResults::notices`] says so in each answer and
//! one warning is logged per searcher.

mod cursor;
mod error;
mod pattern;
mod rank;
mod request;
mod searcher;
mod snippet;
pub mod syntax;

pub use error::SearchError;
pub use pattern::MAX_PROGRAM_BYTES;
pub use rank::{FusionWeights, MAX_HITS_PER_FILE, RRF_K, SEMANTIC_WEIGHT};
pub use request::{DEFAULT_LIMIT, Fusion, MAX_LIMIT, MAX_RESULTS, Mode, SearchRequest};
pub use searcher::{SearchHit, SearchOptions, SearchResults, Searcher};
pub use snippet::{MAX_SNIPPET_BYTES, SNIPPET_LINES, Snippet};
pub use syntax::{MAX_QUERY_BYTES, ParsedQuery, Term};
