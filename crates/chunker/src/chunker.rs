//! The [`Chunker`]: language dispatch, bounded parsing with a pool of reusable parsers, and the lazy
//! [`ChunkStream`] of chunks.

use std::borrow::Cow;
use std::ops::ControlFlow;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use tree_sitter::{ParseOptions, ParseState, Parser};

use crate::chunk::{Chunk, ChunkKind, ChunkedFile, LineWindowReason, Strategy, Symbol, chunk_id};
use crate::plan::{self, PlannedChunk};
use crate::syntax::{self, Grammar, LineTable};
use crate::windows::LineWindows;
use crate::{ChunkError, ChunkerConfig, Language};

/// Splits files into chunks. Cheap to share: `Send + Sync`, one instance serves every thread. A parser per
/// language is created on first use and kept (up to [`ChunkerConfig::max_idle_parsers`] per language) for
/// reuse; the grammars themselves are static data.
#[derive(Debug)]
pub struct Chunker {
    config: ChunkerConfig,
    parsers: ParserPool,
}

impl Default for Chunker {
    fn default() -> Self {
        Self {
            parsers: ParserPool::new(ChunkerConfig::default().max_idle_parsers),
            config: ChunkerConfig::default(),
        }
    }
}

impl Chunker {
    /// A chunker with validated limits.
    pub fn new(config: ChunkerConfig) -> Result<Self, ChunkError> {
        config.validate()?;
        Ok(Self { parsers: ParserPool::new(config.max_idle_parsers), config })
    }

    pub fn config(&self) -> &ChunkerConfig {
        &self.config
    }

    /// Chunks a file, detecting its language with [`Language::detect`].
    pub fn chunk(&self, path: &str, source: &[u8]) -> Result<ChunkedFile, ChunkError> {
        self.chunk_as(path, source, Language::detect(path, source))
    }

    /// Chunks a file whose language the caller already knows (`None`: line windows).
    pub fn chunk_as(
        &self,
        path: &str,
        source: &[u8],
        language: Option<Language>,
    ) -> Result<ChunkedFile, ChunkError> {
        let mut stream = self.stream(path, source, language)?;
        let symbols = std::mem::take(&mut stream.symbols);
        let chunks = stream.by_ref().collect();
        Ok(ChunkedFile {
            language,
            strategy: stream.strategy,
            lossy_utf8: stream.lossy_utf8,
            symbols,
            chunks,
        })
    }

    /// Chunks lazily: parsing (bounded by [`ChunkerConfig::max_parse_bytes`]) happens now, but each chunk's
    /// text is copied only when the iterator reaches it, and line windows are found as it goes. Memory
    /// beyond the input is bounded by the parse limit plus one chunk
    /// (and one repaired copy of input that is not UTF-8).
    ///
    /// Input that is not UTF-8 is repaired (invalid sequences become U+FFFD) and flagged by
    /// [`ChunkStream::lossy_utf8`]; it is never refused. Only input over
    /// [`ChunkerConfig::max_file_bytes`] is refused, with [`ChunkError::TooLarge`].
    pub fn stream<'a>(
        &self,
        path: &'a str,
        source: &'a [u8],
        language: Option<Language>,
    ) -> Result<ChunkStream<'a>, ChunkError> {
        if source.len() > self.config.max_file_bytes {
            return Err(ChunkError::TooLarge { size: source.len(), limit: self.config.max_file_bytes });
        }
        let text = repair_utf8(source);
        let lossy_utf8 = matches!(text, Cow::Owned(_));
        let grammar = language.and_then(Grammar::for_language);
        let line_windows = |reason| {
            let pending = Pending::Windows(LineWindows::new(
                0,
                text.len(),
                0,
                self.config.window_lines,
                self.config.window_overlap_lines,
                self.config.max_bytes,
            ));
            (Strategy::LineWindows(reason), Vec::new(), pending)
        };
        let (strategy, symbols, pending) = match grammar {
            None => line_windows(LineWindowReason::NoGrammar),
            Some(_) if text.len() > self.config.max_parse_bytes => {
                line_windows(LineWindowReason::TooLargeToParse)
            }
            Some(_) if text.trim().is_empty() => {
                (Strategy::Syntax, Vec::new(), Pending::Planned(Vec::new().into_iter()))
            }
            Some(grammar) => match self.parse_and_plan(grammar, &text) {
                Ok((symbols, planned)) => (Strategy::Syntax, symbols, Pending::Planned(planned.into_iter())),
                Err(reason) => line_windows(reason),
            },
        };
        Ok(ChunkStream { path, text, language, strategy, lossy_utf8, symbols, pending })
    }

    fn parse_and_plan(
        &self,
        grammar: Grammar,
        text: &str,
    ) -> Result<(Vec<Symbol>, Vec<PlannedChunk>), LineWindowReason> {
        let mut parser = self.parsers.take(grammar).ok_or(LineWindowReason::GrammarUnavailable)?;
        let started = Instant::now();
        let (budget, timeout) = (self.config.parse_budget, self.config.parse_timeout);
        let mut steps = 0u64;
        let mut give_up = |_: &ParseState| {
            steps += 1;
            if steps > budget || started.elapsed() >= timeout {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        let bytes = text.as_bytes();
        let tree = parser.parse_with_options(
            &mut |offset, _| bytes.get(offset..).unwrap_or_default(),
            None,
            Some(ParseOptions::new().progress_callback(&mut give_up)),
        );
        let Some(tree) = tree else {
            // A cancelled parse would resume on the next call unless reset.
            parser.reset();
            self.parsers.give_back(grammar, parser);
            return Err(LineWindowReason::ParseTimedOut);
        };
        self.parsers.give_back(grammar, parser);
        let lines = LineTable::new(text);
        let root = tree.root_node();
        let items = syntax::extract(grammar, root, text, &lines);
        if items.is_empty() && root.has_error() {
            return Err(LineWindowReason::SyntaxErrors);
        }
        let planned = plan::plan(text, &lines, &items, &self.config);
        Ok((syntax::flatten_symbols(&items), planned))
    }
}

/// The text of `source`, borrowed when it is valid UTF-8; otherwise a copy with each invalid sequence
/// replaced by U+FFFD, allocated once at its exact size (unlike `String::from_utf8_lossy`, whose growth can
/// briefly hold twice the input).
fn repair_utf8(source: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(source) {
        return Cow::Borrowed(text);
    }
    let replacement = char::REPLACEMENT_CHARACTER;
    let size = source
        .utf8_chunks()
        .map(|chunk| {
            chunk.valid().len() + if chunk.invalid().is_empty() { 0 } else { replacement.len_utf8() }
        })
        .sum();
    let mut text = String::with_capacity(size);
    for chunk in source.utf8_chunks() {
        text.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            text.push(replacement);
        }
    }
    Cow::Owned(text)
}

/// Idle parsers per grammar. A parser is not shareable between threads at once, so each call takes one
/// (creating it on first use) and gives it back.
struct ParserPool {
    idle: [Mutex<Vec<Parser>>; Grammar::COUNT],
    max_idle: usize,
}

impl std::fmt::Debug for ParserPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParserPool").field("max_idle", &self.max_idle).finish_non_exhaustive()
    }
}

impl ParserPool {
    fn new(max_idle: usize) -> Self {
        Self { idle: std::array::from_fn(|_| Mutex::new(Vec::new())), max_idle }
    }

    fn take(&self, grammar: Grammar) -> Option<Parser> {
        let reused = self.idle.get(grammar.index())?.lock().unwrap_or_else(PoisonError::into_inner).pop();
        if reused.is_some() {
            return reused;
        }
        let mut parser = Parser::new();
        parser.set_language(&grammar.tree_sitter_language()).ok()?;
        Some(parser)
    }

    fn give_back(&self, grammar: Grammar, parser: Parser) {
        if let Some(idle) = self.idle.get(grammar.index()) {
            let mut idle = idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < self.max_idle {
                idle.push(parser);
            }
        }
    }
}

/// The chunks of one file, produced on demand (see [`Chunker::stream`]).
#[derive(Debug)]
pub struct ChunkStream<'a> {
    path: &'a str,
    text: Cow<'a, str>,
    language: Option<Language>,
    strategy: Strategy,
    lossy_utf8: bool,
    symbols: Vec<Symbol>,
    pending: Pending,
}

#[derive(Debug)]
enum Pending {
    Planned(std::vec::IntoIter<PlannedChunk>),
    Windows(LineWindows),
}

impl ChunkStream<'_> {
    pub fn language(&self) -> Option<Language> {
        self.language
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// Whether invalid UTF-8 was replaced (byte offsets then refer to the repaired text).
    pub fn lossy_utf8(&self) -> bool {
        self.lossy_utf8
    }

    /// The definitions found (empty for line windows).
    pub fn symbols(&self) -> &[Symbol] {
        &self.symbols
    }

    fn materialise(&self, planned: PlannedChunk) -> Chunk {
        let text = self.text.get(planned.start_byte..planned.end_byte).unwrap_or_default().to_owned();
        Chunk {
            id: chunk_id(self.path, planned.start_byte, planned.end_byte, &text),
            language: self.language,
            kind: planned.kind,
            symbol: planned.symbol,
            symbols: planned.symbols,
            doc: planned.doc,
            part: planned.part,
            start_line: planned.first_row + 1,
            end_line: planned.last_row + 1,
            start_byte: planned.start_byte,
            end_byte: planned.end_byte,
            text,
        }
    }
}

impl Iterator for ChunkStream<'_> {
    type Item = Chunk;

    fn next(&mut self) -> Option<Chunk> {
        let planned = match &mut self.pending {
            Pending::Planned(planned) => planned.next()?,
            Pending::Windows(walk) => {
                let window = walk.next_window(&self.text)?;
                PlannedChunk {
                    first_row: window.first_row,
                    last_row: window.last_row,
                    start_byte: window.start_byte,
                    end_byte: window.end_byte,
                    kind: ChunkKind::Text,
                    symbol: None,
                    symbols: Vec::new(),
                    doc: None,
                    part: None,
                }
            }
        };
        Some(self.materialise(planned))
    }
}
