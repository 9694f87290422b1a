//! [`ChunkDoc`] and the tantivy schema it is stored in: which field is analyzed how, which is a raw filter.
//!
//! | field | indexed as | stored | for |
//! |---|---|---|---|
//! | `text` | code analyzer, with positions | yes | BM25, phrases |
//! | `symbol` | code analyzer | yes | BM25 (boosted) |
//! | `symbols` | code analyzer, one value per name | yes | BM25 (boosted like `symbol`) |
//! | `symbol_exact` | whole, lowercased, `symbol` and every name of `symbols` | no | exact symbol match (boosted most), `sym:` |
//! | `path` | path analyzer | yes | BM25 on segments, stem, extension, parts |
//! | `path_raw` | raw | no | path prefix filter |
//! | `org`, `repo`, `language`, `kind`, `commit`, `chunk_id` | raw | yes | filters, display |
//! | `file_key` (`org\0repo\0path`), `repo_key` (`org\0repo`) | raw | no | replace a file, delete a repo |
//! | `start_line`, `end_line` | — | yes | display |

use serde::{Deserialize, Serialize};
use tantivy::TantivyDocument;
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::{LowerCaser, RawTokenizer, TextAnalyzer, TokenizerManager};

use crate::analyzer::{CodeTokenizer, PathTokenizer};
use crate::error::KeywordError;

/// One chunk as a keyword document. `chunk_id` is unique and deterministic (the chunker's id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkDoc {
    pub org: String,
    pub repo: String,
    pub commit: String,
    /// Repository-relative, `/`-separated.
    pub path: String,
    pub language: String,
    /// The definition this chunk is (a part of), when there is exactly one.
    pub symbol: Option<String>,
    /// Every definition whose name should find the chunk: its symbol and the definitions nested in it, or
    /// all the definitions of a chunk merged from several small ones (whose `symbol` is `None`). A name
    /// here is matched like the symbol: by the symbol boost, `sym:` and symbol mode.
    #[serde(default)]
    pub symbols: Vec<String>,
    pub kind: String,
    /// First line, 1-based.
    pub start_line: u32,
    /// Last line, 1-based, inclusive.
    pub end_line: u32,
    pub chunk_id: String,
    pub text: String,
}

pub(crate) const CODE_ANALYZER: &str = "ledge_code";
pub(crate) const PATH_ANALYZER: &str = "ledge_path";
pub(crate) const EXACT_ANALYZER: &str = "ledge_exact";

/// The fields of the schema, by name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    pub org: Field,
    pub repo: Field,
    pub commit: Field,
    pub path: Field,
    pub path_raw: Field,
    pub language: Field,
    pub symbol: Field,
    pub symbols: Field,
    pub symbol_exact: Field,
    pub kind: Field,
    pub chunk_id: Field,
    pub start_line: Field,
    pub end_line: Field,
    pub text: Field,
    pub file_key: Field,
    pub repo_key: Field,
}

fn analyzed(analyzer: &str, record: IndexRecordOption) -> TextOptions {
    TextOptions::default()
        .set_indexing_options(TextFieldIndexing::default().set_tokenizer(analyzer).set_index_option(record))
}

impl Fields {
    pub(crate) fn schema() -> (Schema, Fields) {
        let mut b = Schema::builder();
        let fields = Fields {
            org: b.add_text_field("org", STRING | STORED),
            repo: b.add_text_field("repo", STRING | STORED),
            commit: b.add_text_field("commit", STRING | STORED),
            path: b.add_text_field("path", analyzed(PATH_ANALYZER, IndexRecordOption::WithFreqs) | STORED),
            path_raw: b.add_text_field("path_raw", STRING),
            language: b.add_text_field("language", STRING | STORED),
            symbol: b
                .add_text_field("symbol", analyzed(CODE_ANALYZER, IndexRecordOption::WithFreqs) | STORED),
            symbols: b
                .add_text_field("symbols", analyzed(CODE_ANALYZER, IndexRecordOption::WithFreqs) | STORED),
            symbol_exact: b
                .add_text_field("symbol_exact", analyzed(EXACT_ANALYZER, IndexRecordOption::WithFreqs)),
            kind: b.add_text_field("kind", STRING | STORED),
            chunk_id: b.add_text_field("chunk_id", STRING | STORED),
            start_line: b.add_u64_field("start_line", STORED),
            end_line: b.add_u64_field("end_line", STORED),
            text: b.add_text_field(
                "text",
                analyzed(CODE_ANALYZER, IndexRecordOption::WithFreqsAndPositions) | STORED,
            ),
            file_key: b.add_text_field("file_key", STRING),
            repo_key: b.add_text_field("repo_key", STRING),
        };
        (b.build(), fields)
    }

    pub(crate) fn document_of(&self, doc: &ChunkDoc) -> TantivyDocument {
        let mut d = TantivyDocument::with_capacity(crate::staging::document_size(doc));
        d.add_text(self.org, &doc.org);
        d.add_text(self.repo, &doc.repo);
        d.add_text(self.commit, &doc.commit);
        d.add_text(self.path, &doc.path);
        d.add_text(self.path_raw, &doc.path);
        d.add_text(self.language, &doc.language);
        if let Some(symbol) = &doc.symbol {
            d.add_text(self.symbol, symbol);
            d.add_text(self.symbol_exact, symbol);
        }
        for name in &doc.symbols {
            d.add_text(self.symbols, name);
            if doc.symbol.as_ref() != Some(name) {
                d.add_text(self.symbol_exact, name);
            }
        }
        d.add_text(self.kind, &doc.kind);
        d.add_text(self.chunk_id, &doc.chunk_id);
        d.add_u64(self.start_line, u64::from(doc.start_line));
        d.add_u64(self.end_line, u64::from(doc.end_line));
        d.add_text(self.text, &doc.text);
        d.add_text(self.file_key, file_key(&doc.org, &doc.repo, &doc.path));
        d.add_text(self.repo_key, repo_key(&doc.org, &doc.repo));
        d
    }

    pub(crate) fn chunk_of(&self, d: &TantivyDocument) -> Result<ChunkDoc, KeywordError> {
        let text = |field: Field, name: &'static str| -> Result<String, KeywordError> {
            d.get_first(field).and_then(|v| v.as_str()).map(str::to_owned).ok_or_else(|| missing(name))
        };
        let line = |field: Field, name: &'static str| -> Result<u32, KeywordError> {
            d.get_first(field)
                .and_then(|v| v.as_u64())
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| missing(name))
        };
        Ok(ChunkDoc {
            org: text(self.org, "org")?,
            repo: text(self.repo, "repo")?,
            commit: text(self.commit, "commit")?,
            path: text(self.path, "path")?,
            language: text(self.language, "language")?,
            symbol: d.get_first(self.symbol).and_then(|v| v.as_str()).map(str::to_owned),
            symbols: d.get_all(self.symbols).filter_map(|v| v.as_str()).map(str::to_owned).collect(),
            kind: text(self.kind, "kind")?,
            start_line: line(self.start_line, "start_line")?,
            end_line: line(self.end_line, "end_line")?,
            chunk_id: text(self.chunk_id, "chunk_id")?,
            text: text(self.text, "text")?,
        })
    }
}

fn missing(field: &'static str) -> KeywordError {
    crate::error::storage(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("a stored document has no {field}"),
    ))
}

/// The analyzers the schema names, with tantivy's defaults (`raw` for the `STRING` fields).
pub(crate) fn tokenizers() -> TokenizerManager {
    let manager = TokenizerManager::default();
    manager.register(CODE_ANALYZER, CodeTokenizer::default());
    manager.register(PATH_ANALYZER, PathTokenizer::default());
    manager
        .register(EXACT_ANALYZER, TextAnalyzer::builder(RawTokenizer::default()).filter(LowerCaser).build());
    manager
}

/// The one term naming every document of a file. NUL cannot occur in the parts (checked on write).
pub(crate) fn file_key(org: &str, repo: &str, path: &str) -> String {
    format!("{org}\0{repo}\0{path}")
}

/// The one term naming every document of a repository.
pub(crate) fn repo_key(org: &str, repo: &str) -> String {
    format!("{org}\0{repo}")
}
