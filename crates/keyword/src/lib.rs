//! The keyword (BM25) index of code chunks: a code-aware analyzer over tantivy, every search scoped to one
//! organization.
//!
//! # Layout
//!
//! - `index`: [`KeywordIndex`] — open a directory, stage writes ([`replace_file`](KeywordIndex::replace_file),
//!   [`delete_repo`](KeywordIndex::delete_repo)), [`commit`](KeywordIndex::commit), [`search`](KeywordIndex::search)
//!   (ranked), [`scan`](KeywordIndex::scan) (every match, unranked, bounded), [`chunks`](KeywordIndex::chunks) (by
//!   id); [`KeywordOptions`] (memory).
//! - `schema`: [`ChunkDoc`] and the tantivy fields it is stored in (which are analyzed, which are raw filters).
//! - `analyzer`: the code analyzer (identifiers split on case, `_`, `-`, digits and punctuation, the whole
//!   word kept) and the path analyzer (segments, stem, extension, parts), as tantivy tokenizers.
//! - `query`: [`KeywordQuery`], [`KeywordHit`], and how user text becomes a query (never tantivy's query
//!   syntax). `staging`: back-pressure between callers and tantivy's indexing thread. `error`:
//!   [`KeywordError`].
//!
//! # Invariant
//!
//! Every document carries its organization, and every search is filtered by it: no query text can reach
//! another organization's documents. A file's documents are named by one (org, repo, path) key and are
//! replaced as a whole, so re-indexing a file never duplicates it. Nothing written is searchable or durable
//! before [`commit`](KeywordIndex::commit); everything committed survives `kill -9`, and whatever was staged
//! but not committed is lost and must be redone by the caller. The crate knows tantivy and chunks, not
//! queues, git, embeddings or HTTP; tantivy's types stay out of its public API.
//!
//! # Memory
//!
//! The index is memory-mapped: searches touch only the pages they need, and every second the pages touched
//! are given back to the kernel (`resident`: they stay in the page cache, out of the process's resident
//! memory); document stores are read with pread (`pread`).
//! The writer buffers up to [`KeywordOptions::writer_memory_bytes`] (default 32 MiB) with one indexing and
//! one merge thread; documents waiting for the indexing thread are bounded by
//! [`KeywordOptions::staging_memory_bytes`] (default 8 MiB: past it, writes wait); the reader caches a few
//! decompressed blocks of stored documents per segment.
//!
//! ```
//! use ledge_keyword::{ChunkDoc, KeywordIndex, KeywordOptions, KeywordQuery};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let index = KeywordIndex::open(dir.path(), KeywordOptions::default()).unwrap();
//! let doc = ChunkDoc {
//!     org: "acme".into(), repo: "api".into(), commit: "c0ffee".into(), path: "src/json.rs".into(),
//!     language: "rust".into(), symbol: Some("parse_json".into()),
//!     symbols: vec!["parse_json".into()], kind: "function".into(),
//!     start_line: 1, end_line: 3, chunk_id: "c1".into(),
//!     text: "fn parse_json(input: &str) -> Value {\n    serde_json::from_str(input)\n}".into(),
//! };
//! index.replace_file("acme", "api", "src/json.rs", vec![doc]).unwrap();
//! index.commit().unwrap();
//! let hits = index.search(&KeywordQuery::new("acme", "json")).unwrap();
//! assert_eq!(hits[0].doc.symbol.as_deref(), Some("parse_json"));
//! assert!(index.search(&KeywordQuery::new("other-org", "json")).unwrap().is_empty());
//! ```

mod analyzer;
mod error;
mod index;
mod pread;
mod query;
mod resident;
mod schema;
mod staging;

pub use analyzer::MAX_WORD_BYTES;
pub use error::KeywordError;
pub use index::{
    KeywordIndex, KeywordOptions, MAX_CHUNK_IDS, MAX_WRITER_MEMORY_BYTES, MIN_WRITER_MEMORY_BYTES,
    ScanSummary,
};
pub use query::{
    EXACT_SYMBOL_BOOST, KeywordHit, KeywordQuery, MAX_LIMIT, MAX_QUERY_WORDS, PATH_BOOST, SYMBOL_BOOST,
    SymbolFilter,
};
pub use schema::ChunkDoc;
