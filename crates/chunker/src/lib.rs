//! Splits source files into meaningful chunks — functions, methods, classes and the code between them — for
//! keyword (BM25) and semantic (embedding) search.
//!
//! # Layout
//!
//! - `language`: [`Language`] detection from a path, a shebang line, or a `.h` file's content (a `.h` header
//!   is C unless its first 16 KiB show C++-only syntax; see [`Language::detect`]).
//! - `chunker`: [`Chunker`] (parser pool, bounded parsing, fallback) and the lazy [`ChunkStream`].
//! - `syntax`: the walk over a tree-sitter tree that finds definitions ([`Symbol`]s) with names, doc
//!   comments and ranges; one small module per language family says which nodes are definitions.
//! - `plan`: the size rule, from definitions to chunk ranges.
//! - `windows`: overlapping line windows, for files without a grammar and for splitting long definitions.
//! - `chunk`: the output types ([`ChunkedFile`], [`Chunk`], [`Symbol`]) and the deterministic [`chunk_id`];
//!   `doc`: comment cleaning. `error` and `config`: [`ChunkError`] and [`ChunkerConfig`].
//!
//! # Invariant
//!
//! A chunk's text is exactly `text[start_byte..end_byte]` of the file (after UTF-8 repair, see below) and is
//! never reformatted or truncated; chunks are ordered by start offset; every line of the file is in at
//! least one chunk, except inside runs of blank lines long enough to fill a whole line window (no chunk is
//! whitespace only, so a file of only whitespace has none); the same path and bytes with the same
//! configuration give the same chunks and ids. The
//! crate knows nothing of storage, search or repositories, and no input makes it panic.
//!
//! # The size rule
//!
//! Files in a language with a grammar (Rust, Python, JavaScript, TypeScript, TSX, Go, Java, C, C++, Ruby)
//! are parsed, and chunks follow definitions:
//!
//! 1. The file is tiled by *units*: each top-level definition, with the doc comments and attributes
//!    directly above it, and each run of code between definitions (imports, constants, statements). Blank
//!    lines join the preceding unit, so the units cover every line exactly once.
//! 2. A unit of at most [`max_lines`](ChunkerConfig::max_lines) (80) lines and
//!    [`max_bytes`](ChunkerConfig::max_bytes) (4096) bytes is one chunk. A larger definition that contains
//!    definitions (a class, impl, trait, module, namespace) is tiled again over its own lines: header, members,
//!    code between them, tail; its header and tail chunks carry the container's name. Any other larger unit is
//!    split into [`window_lines`](ChunkerConfig::window_lines) (60) line windows overlapping by
//!    [`window_overlap_lines`](ChunkerConfig::window_overlap_lines) (10); each keeps the definition's name and
//!    records its [`ChunkPart`] (`index` of `count`).
//! 3. Adjacent chunks shorter than [`merge_below_lines`](ChunkerConfig::merge_below_lines) (15) lines are
//!    merged, left to right, while the merged chunk stays within
//!    [`merge_max_lines`](ChunkerConfig::merge_max_lines) (40) lines and `max_bytes`. A merged chunk lists
//!    every definition it holds in [`Chunk::symbols`]; its kind is [`ChunkKind::Definitions`] when it holds
//!    more than one named piece.
//!
//! Everything else — files without a grammar, files over [`max_parse_bytes`](ChunkerConfig::max_parse_bytes)
//! (1 MiB), parses over [`parse_budget`](ChunkerConfig::parse_budget) steps (counted, not timed, so a file
//! is chunked the same under any load; 2,000, about 100 ms here), and parses that find only
//! syntax errors — is cut into the same overlapping line windows, found lazily without building any large
//! structure ([`Strategy::LineWindows`] says why). A line longer than `max_bytes` is cut into pieces at
//! character boundaries. Input that is not valid UTF-8 is repaired with U+FFFD replacements and flagged
//! ([`ChunkedFile::lossy_utf8`]); offsets then refer to the repaired text. Input over
//! [`max_file_bytes`](ChunkerConfig::max_file_bytes) (64 MiB) is refused with [`ChunkError::TooLarge`].
//!
//! ```
//! use ledge_chunker::{Chunker, ChunkKind};
//!
//! let chunker = Chunker::default();
//! let file = chunker.chunk("src/lib.rs", b"/// Adds.\nfn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n").unwrap();
//! assert_eq!(file.symbols[0].name, "add");
//! assert_eq!(file.symbols[0].doc.as_deref(), Some("Adds."));
//! assert_eq!(file.chunks[0].kind, ChunkKind::Function);
//! assert_eq!((file.chunks[0].start_line, file.chunks[0].end_line), (1, 4));
//! ```

mod chunk;
mod chunker;
mod config;
mod doc;
mod error;
mod language;
mod plan;
mod syntax;
mod windows;

pub use chunk::{
    Chunk, ChunkKind, ChunkPart, ChunkedFile, LineWindowReason, Strategy, Symbol, SymbolKind, chunk_id,
};
pub use chunker::{ChunkStream, Chunker};
pub use config::ChunkerConfig;
pub use error::ChunkError;
pub use language::Language;
