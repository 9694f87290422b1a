//! When chunking falls back to line windows (and why), and what is refused outright.

use std::time::Duration;

use ledge_chunker::{ChunkError, ChunkKind, Chunker, ChunkerConfig, Language, LineWindowReason, Strategy};

use crate::support::{assert_invariants, chunker, fixture};

fn many_rust_functions(count: usize) -> String {
    (0..count)
        .map(|i| format!("/// Function {i}.\nfn function_{i}(x: u32) -> u32 {{\n    x + {i}\n}}\n\n"))
        .collect()
}

#[test]
fn a_parse_over_the_timeout_falls_back_to_line_windows() {
    let config = ChunkerConfig { parse_timeout: Duration::from_nanos(1), ..ChunkerConfig::default() };
    let chunker = chunker(config.clone());
    let source = many_rust_functions(2000);
    let file = chunker.chunk("big.rs", source.as_bytes()).unwrap();
    assert_eq!(file.strategy, Strategy::LineWindows(LineWindowReason::ParseTimedOut));
    assert!(file.symbols.is_empty());
    assert!(file.chunks.iter().all(|c| c.kind == ChunkKind::Text));
    assert_invariants("timeout", "big.rs", source.as_bytes(), &file, &config, true);
}

#[test]
fn a_parse_over_the_budget_falls_back_the_same_way_every_time_however_long_it_takes() {
    // Counted steps, not time: a budget the file exceeds falls back on every run, and one it fits in
    // never does, whatever else the machine is doing.
    let source = many_rust_functions(2000);
    let tight = chunker(ChunkerConfig { parse_budget: 10, ..ChunkerConfig::default() });
    let roomy = chunker(ChunkerConfig::default());
    for _ in 0..3 {
        let file = tight.chunk("big.rs", source.as_bytes()).unwrap();
        assert_eq!(file.strategy, Strategy::LineWindows(LineWindowReason::ParseTimedOut));
        assert_eq!(roomy.chunk("big.rs", source.as_bytes()).unwrap().strategy, Strategy::Syntax);
    }
}

#[test]
fn a_cancelled_parse_does_not_leak_into_the_next_file() {
    // Regression: a tree-sitter parser resumes a cancelled parse unless it is reset before reuse. A file
    // too small to reach the first progress check parses even with a 1 ns timeout.
    let chunker =
        chunker(ChunkerConfig { parse_timeout: Duration::from_nanos(1), ..ChunkerConfig::default() });
    let timed_out = chunker.chunk("big.rs", many_rust_functions(500).as_bytes()).unwrap();
    assert_eq!(timed_out.strategy, Strategy::LineWindows(LineWindowReason::ParseTimedOut));
    let small = chunker.chunk("small.rs", b"fn tiny() {}\n").unwrap();
    assert_eq!(small.strategy, Strategy::Syntax);
    let names: Vec<_> = small.symbols.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["tiny"]);
}

#[test]
fn a_file_over_max_parse_bytes_is_not_parsed() {
    let config = ChunkerConfig { max_parse_bytes: 1000, ..ChunkerConfig::default() };
    let source = fixture("rust.rs");
    assert!(source.len() > 1000);
    let file = chunker(config.clone()).chunk("rust.rs", &source).unwrap();
    assert_eq!(file.strategy, Strategy::LineWindows(LineWindowReason::TooLargeToParse));
    assert_eq!(file.language, Some(Language::Rust));
    assert_invariants("too large to parse", "rust.rs", &source, &file, &config, true);
}

#[test]
fn a_file_with_only_syntax_errors_falls_back_to_line_windows() {
    let source = b"}}} ))) ;;; => => @@ let = = = ] ] ]\n#[[[[ !!! ??? ::: ,,,\n";
    let file = Chunker::default().chunk("broken.rs", source).unwrap();
    assert_eq!(file.strategy, Strategy::LineWindows(LineWindowReason::SyntaxErrors));
    assert_eq!(file.chunks.len(), 1);
    assert_eq!(file.chunks[0].kind, ChunkKind::Text);
}

#[test]
fn definitions_survive_nearby_syntax_errors() {
    let source = b"fn good() -> u32 { 1 }\n\nfn broken( {\n\nfn also_good() {}\n";
    let file = Chunker::default().chunk("partial.rs", source).unwrap();
    assert_eq!(file.strategy, Strategy::Syntax);
    let names: Vec<_> = file.symbols.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"good"), "{names:?}");
}

#[test]
fn a_file_without_definitions_is_code() {
    let source = b"import os\nprint(os.getcwd())\n";
    let file = Chunker::default().chunk("script.py", source).unwrap();
    assert_eq!(file.strategy, Strategy::Syntax);
    assert_eq!(file.chunks.len(), 1);
    assert_eq!(file.chunks[0].kind, ChunkKind::Code);
}

#[test]
fn unknown_and_grammarless_files_use_line_windows() {
    let chunker = Chunker::default();
    let notes = chunker.chunk("notes.txt", b"some notes\n").unwrap();
    assert_eq!((notes.language, notes.strategy), (None, Strategy::LineWindows(LineWindowReason::NoGrammar)));
    let yaml = chunker.chunk("ci.yml", b"on: push\n").unwrap();
    assert_eq!(yaml.language, Some(Language::Yaml));
    assert_eq!(yaml.strategy, Strategy::LineWindows(LineWindowReason::NoGrammar));
    let forced = chunker.chunk_as("lib.rs", b"fn f() {}\n", None).unwrap();
    assert_eq!(forced.strategy, Strategy::LineWindows(LineWindowReason::NoGrammar));
    assert_eq!(forced.chunks[0].kind, ChunkKind::Text);
}

#[test]
fn empty_and_blank_files_have_no_chunks() {
    let chunker = Chunker::default();
    for (path, source) in [("a.rs", ""), ("b.rs", "\n\n   \n"), ("c.md", ""), ("d.md", " \n\t\n")] {
        let file = chunker.chunk(path, source.as_bytes()).unwrap();
        assert!(file.chunks.is_empty() && file.symbols.is_empty(), "{path}");
    }
}

#[test]
fn a_file_over_max_file_bytes_is_refused() {
    let chunker = chunker(ChunkerConfig { max_file_bytes: 100, ..ChunkerConfig::default() });
    let result = chunker.chunk("big.md", &[b'x'; 101]);
    assert!(matches!(result, Err(ChunkError::TooLarge { size: 101, limit: 100 })), "{result:?}");
    assert!(chunker.chunk("ok.md", &[b'x'; 100]).is_ok());
}

#[test]
fn invalid_configurations_are_refused_with_the_offending_field() {
    let base = ChunkerConfig::default;
    let cases: Vec<(ChunkerConfig, &str)> = vec![
        (ChunkerConfig { max_file_bytes: 0, ..base() }, "max_file_bytes"),
        (ChunkerConfig { parse_timeout: Duration::ZERO, ..base() }, "parse_timeout"),
        (ChunkerConfig { parse_budget: 0, ..base() }, "parse_budget"),
        (ChunkerConfig { max_lines: 0, ..base() }, "max_lines"),
        (ChunkerConfig { max_bytes: 10, ..base() }, "max_bytes"),
        (ChunkerConfig { window_lines: 0, ..base() }, "window_lines"),
        (ChunkerConfig { window_lines: 81, ..base() }, "window_lines"),
        (ChunkerConfig { window_overlap_lines: 60, ..base() }, "window_overlap_lines"),
        (ChunkerConfig { merge_max_lines: 81, ..base() }, "merge_max_lines"),
        (ChunkerConfig { merge_below_lines: 41, ..base() }, "merge_below_lines"),
    ];
    for (config, expected) in cases {
        match Chunker::new(config) {
            Err(ChunkError::InvalidInput { field, .. }) => assert_eq!(field, expected),
            other => panic!("{expected}: expected InvalidInput, got {other:?}"),
        }
    }
    assert!(Chunker::new(ChunkerConfig::default()).is_ok());
}
