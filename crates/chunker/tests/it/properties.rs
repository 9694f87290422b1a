//! Properties that hold for every fixture under several configurations: coverage of every line, exact
//! slices, consistent line numbers, size limits, unique ids, every symbol findable.

use ledge_chunker::{ChunkerConfig, Strategy};

use crate::support::{FIXTURES, assert_invariants, chunker, fixture, small_config};

/// Configurations to check, and whether blank lines must be covered too: with two-line windows, a run of
/// two blank lines fills a window, which is then skipped (the documented exception).
fn configs() -> Vec<(&'static str, ChunkerConfig, bool)> {
    vec![
        ("default", ChunkerConfig::default(), true),
        ("small", small_config(), true),
        ("no merging", ChunkerConfig { merge_below_lines: 0, ..small_config() }, true),
        (
            "tiny windows",
            ChunkerConfig {
                max_lines: 3,
                max_bytes: 64,
                window_lines: 2,
                window_overlap_lines: 1,
                merge_below_lines: 2,
                merge_max_lines: 3,
                ..ChunkerConfig::default()
            },
            false,
        ),
    ]
}

#[test]
fn every_fixture_is_covered_line_by_line_under_every_config() {
    for (label, config, strict) in configs() {
        let chunker = chunker(config.clone());
        for name in FIXTURES {
            let source = fixture(name);
            let file = chunker.chunk(name, &source).unwrap();
            assert!(!file.chunks.is_empty(), "{label}: {name} has chunks");
            assert_invariants(&format!("{label}/{name}"), name, &source, &file, &config, strict);
        }
    }
}

#[test]
fn parsed_fixtures_tile_the_file_when_nothing_is_split() {
    // With no windows involved, chunks follow each other without gap or overlap: concatenated, they are
    // the file.
    let chunker = chunker(ChunkerConfig::default());
    for name in FIXTURES {
        let source = fixture(name);
        let file = chunker.chunk(name, &source).unwrap();
        if file.strategy != Strategy::Syntax || file.chunks.iter().any(|c| c.part.is_some()) {
            continue;
        }
        let joined: String = file.chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(joined.as_bytes(), source.as_slice(), "{name}");
    }
}

#[test]
fn grammar_languages_are_parsed_and_others_use_line_windows() {
    let chunker = chunker(ChunkerConfig::default());
    for name in FIXTURES {
        let file = chunker.chunk(name, &fixture(name)).unwrap();
        let language = file.language.expect("fixtures have a known language");
        let expected = if language.has_grammar() {
            Strategy::Syntax
        } else {
            Strategy::LineWindows(ledge_chunker::LineWindowReason::NoGrammar)
        };
        assert_eq!(file.strategy, expected, "{name}");
        assert_eq!(file.symbols.is_empty(), !language.has_grammar(), "{name}");
    }
}
