//! What the chunker produces: chunks, the definitions (symbols) found in a file, and how the file was chunked.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Language;

/// What kind of definition a [`Symbol`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SymbolKind {
    /// A free function (including C prototypes and TypeScript overload signatures).
    Function,
    /// A function defined in (or, for C++, Go and out-of-line definitions, attached to) a type.
    Method,
    Class,
    Struct,
    Enum,
    Union,
    Trait,
    Interface,
    /// A Rust `impl` block.
    Impl,
    /// A module or namespace (Rust `mod`, C++ `namespace`, TypeScript `namespace`, Ruby `module`).
    Module,
    TypeAlias,
    /// A Rust `macro_rules!` definition.
    Macro,
}

impl SymbolKind {
    /// Whether definitions nested in this one are members (methods) rather than free functions.
    pub(crate) fn is_type(self) -> bool {
        matches!(
            self,
            Self::Class
                | Self::Struct
                | Self::Enum
                | Self::Union
                | Self::Trait
                | Self::Interface
                | Self::Impl
        )
    }
}

/// What a [`Chunk`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChunkKind {
    Function,
    Method,
    Class,
    Struct,
    Enum,
    Union,
    Trait,
    Interface,
    Impl,
    Module,
    TypeAlias,
    Macro,
    /// Several small definitions merged into one chunk; their names are in [`Chunk::symbols`].
    Definitions,
    /// Top-level code between definitions: imports, constants, statements.
    Code,
    /// A line window of a file chunked without a grammar.
    Text,
}

impl From<SymbolKind> for ChunkKind {
    fn from(kind: SymbolKind) -> Self {
        match kind {
            SymbolKind::Function => Self::Function,
            SymbolKind::Method => Self::Method,
            SymbolKind::Class => Self::Class,
            SymbolKind::Struct => Self::Struct,
            SymbolKind::Enum => Self::Enum,
            SymbolKind::Union => Self::Union,
            SymbolKind::Trait => Self::Trait,
            SymbolKind::Interface => Self::Interface,
            SymbolKind::Impl => Self::Impl,
            SymbolKind::Module => Self::Module,
            SymbolKind::TypeAlias => Self::TypeAlias,
            SymbolKind::Macro => Self::Macro,
        }
    }
}

/// A definition found by the parser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Symbol {
    /// The name, qualified where the syntax makes it cheap: `Type::method` (Rust, C++), `Class.method`
    /// (Python, JavaScript, TypeScript, Java, Go), `Module::Class#method` / `Class.singleton` (Ruby),
    /// `<Type as Trait>` for a Rust trait impl.
    pub name: String,
    pub kind: SymbolKind,
    /// The attached doc comment or docstring, without comment markers and common indentation.
    pub doc: Option<String>,
    /// First line of the definition (1-based), not counting leading comments and attributes.
    pub start_line: usize,
    /// Last line of the definition (1-based, inclusive).
    pub end_line: usize,
    /// Byte offset of the definition's first byte in the (UTF-8) text.
    pub start_byte: usize,
    /// Byte offset just past the definition's last byte.
    pub end_byte: usize,
}

/// Which of several windows a split definition or code segment this chunk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkPart {
    /// 1-based index of this window.
    pub index: usize,
    /// Number of windows the segment was split into.
    pub count: usize,
}

/// A piece of a file to index: exactly a slice of the file's text plus what is known about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Deterministic identity: hex SHA-256 over the path, the byte range and the SHA-256 of the text. The
    /// same file content at the same path, chunked with the same configuration, yields the same ids.
    pub id: String,
    pub language: Option<Language>,
    pub kind: ChunkKind,
    /// The definition this chunk is (a part of), when there is exactly one.
    pub symbol: Option<String>,
    /// Every definition whose name should find this chunk: the symbol and the definitions nested in it, or
    /// all definitions of a merged chunk.
    pub symbols: Vec<String>,
    /// The symbol's doc comment or docstring.
    pub doc: Option<String>,
    /// Set when a long definition or segment was split into overlapping windows.
    pub part: Option<ChunkPart>,
    /// First line (1-based).
    pub start_line: usize,
    /// Last line (1-based, inclusive).
    pub end_line: usize,
    /// Byte offset of the first byte.
    pub start_byte: usize,
    /// Byte offset just past the last byte.
    pub end_byte: usize,
    /// `text[start_byte..end_byte]` of the (UTF-8) file text.
    pub text: String,
}

/// Why a file was chunked with line windows rather than by definitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LineWindowReason {
    /// The language is unknown or has no grammar.
    NoGrammar,
    /// The file is larger than [`ChunkerConfig::max_parse_bytes`](crate::ChunkerConfig::max_parse_bytes).
    TooLargeToParse,
    /// Parsing took more than [`ChunkerConfig::parse_budget`](crate::ChunkerConfig::parse_budget) steps
    /// (or, as a backstop, longer than [`ChunkerConfig::parse_timeout`](crate::ChunkerConfig::parse_timeout)).
    ParseTimedOut,
    /// The parse found syntax errors and no definition at all.
    SyntaxErrors,
    /// The grammar could not be loaded (an incompatible grammar version; a build problem, not an input one).
    GrammarUnavailable,
}

/// How a file was chunked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "strategy", content = "reason")]
pub enum Strategy {
    /// Parsed; chunks follow definitions.
    Syntax,
    /// Overlapping line windows.
    LineWindows(LineWindowReason),
}

/// All chunks of one file, with what was learnt on the way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkedFile {
    pub language: Option<Language>,
    pub strategy: Strategy,
    /// The input was not valid UTF-8: invalid sequences were replaced by U+FFFD before chunking, so byte
    /// offsets refer to the repaired text, not to the original bytes.
    pub lossy_utf8: bool,
    /// The definitions found, in document order, outer before inner (empty for line windows).
    pub symbols: Vec<Symbol>,
    /// The chunks, ordered by start offset.
    pub chunks: Vec<Chunk>,
}

/// The deterministic id of a chunk of `path` spanning `start_byte..end_byte` with content `text`.
pub fn chunk_id(path: &str, start_byte: usize, end_byte: usize, text: &str) -> String {
    let content = Sha256::digest(text.as_bytes());
    let mut hasher = Sha256::new();
    hasher.update(b"ledge-chunk\0");
    hasher.update((path.len() as u64).to_le_bytes());
    hasher.update(path.as_bytes());
    hasher.update((start_byte as u64).to_le_bytes());
    hasher.update((end_byte as u64).to_le_bytes());
    hasher.update(content);
    hex::encode(hasher.finalize())
}
