//! Shared helpers: fixture loading, small configurations, and the invariants every chunking must satisfy.

use std::path::PathBuf;

use ledge_chunker::{ChunkedFile, Chunker, ChunkerConfig};

pub const FIXTURES: &[&str] = &[
    "rust.rs",
    "python.py",
    "javascript.js",
    "typescript.ts",
    "component.tsx",
    "go.go",
    "java.java",
    "c.c",
    "cpp.cpp",
    "ruby.rb",
    "README.md",
    "config.json",
];

pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A configuration small enough that the fixtures exercise splitting and merging.
pub fn small_config() -> ChunkerConfig {
    ChunkerConfig {
        max_lines: 12,
        max_bytes: 400,
        window_lines: 8,
        window_overlap_lines: 2,
        merge_below_lines: 5,
        merge_max_lines: 10,
        ..ChunkerConfig::default()
    }
}

pub fn chunker(config: ChunkerConfig) -> Chunker {
    Chunker::new(config).expect("valid config")
}

/// How many lines `text` has (a last line without newline counts).
pub fn line_count(text: &str) -> usize {
    text.lines().count()
}

/// The invariants of the crate documentation, checked on one result. `strict_coverage` also demands that
/// blank lines are covered (true whenever no run of blank lines fills a whole window).
pub fn assert_invariants(
    label: &str,
    path: &str,
    source: &[u8],
    file: &ChunkedFile,
    config: &ChunkerConfig,
    strict_coverage: bool,
) {
    let text = String::from_utf8_lossy(source);
    let text = text.as_ref();
    let mut covered = vec![false; line_count(text) + 1];
    let mut previous_start = 0;
    let mut ids = std::collections::HashSet::new();
    for chunk in &file.chunks {
        let context = format!("{label}: chunk {}-{}", chunk.start_line, chunk.end_line);
        assert_eq!(
            Some(chunk.text.as_str()),
            text.get(chunk.start_byte..chunk.end_byte),
            "{context}: text is the slice"
        );
        assert!(!chunk.text.trim().is_empty(), "{context}: whitespace-only chunk");
        assert!(chunk.start_byte >= previous_start, "{context}: chunks are ordered");
        previous_start = chunk.start_byte;
        let newlines_before = |end: usize| text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count();
        assert_eq!(chunk.start_line, 1 + newlines_before(chunk.start_byte), "{context}: start_line");
        assert_eq!(chunk.end_line, 1 + newlines_before(chunk.end_byte - 1), "{context}: end_line");
        assert!(chunk.end_byte - chunk.start_byte <= config.max_bytes, "{context}: over max_bytes");
        assert!(chunk.end_line - chunk.start_line < config.max_lines, "{context}: over max_lines");
        assert_eq!(
            chunk.id,
            ledge_chunker::chunk_id(path, chunk.start_byte, chunk.end_byte, &chunk.text),
            "{context}: id"
        );
        assert!(ids.insert(chunk.id.clone()), "{context}: duplicate id");
        assert_eq!(chunk.language, file.language);
        if let Some(symbol) = &chunk.symbol {
            assert!(chunk.symbols.contains(symbol), "{context}: symbol {symbol} not in symbols");
        }
        covered[chunk.start_line..=chunk.end_line].fill(true);
    }
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if strict_coverage || !line.trim().is_empty() {
            assert!(covered[number], "{label}: line {number} ({line:?}) is in no chunk");
        }
    }
    for symbol in &file.symbols {
        assert!(
            file.chunks.iter().any(|chunk| chunk.symbols.contains(&symbol.name)),
            "{label}: symbol {} is findable in no chunk",
            symbol.name
        );
        assert!(symbol.start_line <= symbol.end_line && symbol.start_byte < symbol.end_byte);
    }
}
