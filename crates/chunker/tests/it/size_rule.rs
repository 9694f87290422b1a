//! The size rule: long definitions are split into overlapping windows that keep their name, small adjacent
//! definitions are merged and stay findable, large containers are cut into their members, and code
//! between definitions gets chunks of its own.

use ledge_chunker::{ChunkKind, ChunkPart, ChunkedFile, ChunkerConfig};

use crate::support::{assert_invariants, chunker};

fn chunk(path: &str, source: &str, config: ChunkerConfig) -> ChunkedFile {
    let file = chunker(config.clone()).chunk(path, source.as_bytes()).unwrap();
    assert_invariants(path, path, source.as_bytes(), &file, &config, true);
    file
}

/// `(start_line, end_line, kind, symbol, part)` of a chunk.
type Layout<'a> = (usize, usize, ChunkKind, Option<&'a str>, Option<(usize, usize)>);

fn layout(file: &ChunkedFile) -> Vec<Layout<'_>> {
    file.chunks
        .iter()
        .map(|c| (c.start_line, c.end_line, c.kind, c.symbol.as_deref(), c.part.map(|p| (p.index, p.count))))
        .collect()
}

fn long_rust_function(body_lines: usize) -> String {
    let mut source = String::from("/// Sums many numbers.\nfn long_sum() -> u64 {\n    let mut total = 0;\n");
    for i in 0..body_lines {
        source.push_str(&format!("    total += {i};\n"));
    }
    source.push_str("    total\n}\n");
    source
}

#[test]
fn a_long_function_is_split_into_overlapping_windows_that_keep_its_name() {
    let source = long_rust_function(150); // 155 lines, over max_lines = 80
    let file = chunk("sum.rs", &source, ChunkerConfig::default());
    use ChunkKind::Function;
    assert_eq!(
        layout(&file),
        vec![
            (1, 60, Function, Some("long_sum"), Some((1, 3))),
            (51, 110, Function, Some("long_sum"), Some((2, 3))),
            (101, 155, Function, Some("long_sum"), Some((3, 3))),
        ]
    );
    for pair in file.chunks.windows(2) {
        assert_eq!(pair[0].end_line - pair[1].start_line + 1, 10, "windows overlap by window_overlap_lines");
    }
    assert!(file.chunks.iter().all(|c| c.doc.as_deref() == Some("Sums many numbers.")));
    assert!(file.chunks.iter().all(|c| c.symbols == ["long_sum"]));
}

#[test]
fn a_function_over_max_bytes_is_split_even_when_short_in_lines() {
    let mut source = String::from("fn wide() {\n");
    for i in 0..20 {
        source.push_str(&format!("    let value_{i} = \"{}\";\n", "x".repeat(300)));
    }
    source.push_str("}\n");
    let file = chunk("wide.rs", &source, ChunkerConfig::default());
    assert!(file.chunks.len() > 1);
    assert!(file.chunks.iter().all(|c| c.symbol.as_deref() == Some("wide") && c.part.is_some()));
    assert!(file.chunks.iter().all(|c| c.text.len() <= 4096));
}

fn tiny_go_functions(count: usize) -> String {
    let mut source = String::from("package tiny\n\n");
    for i in 0..count {
        source.push_str(&format!("// F{i} returns {i}.\nfunc F{i}() int {{ return {i} }}\n\n"));
    }
    source
}

#[test]
fn tiny_adjacent_definitions_are_merged_and_each_stays_findable() {
    let source = tiny_go_functions(8); // 26 lines
    let file = chunk("tiny.go", &source, ChunkerConfig::default());
    assert_eq!(layout(&file), vec![(1, 26, ChunkKind::Definitions, None, None)]);
    let names: Vec<String> = (0..8).map(|i| format!("F{i}")).collect();
    assert_eq!(file.chunks[0].symbols, names);
}

#[test]
fn merged_chunks_stay_within_merge_max_lines() {
    let source = tiny_go_functions(8);
    let config = ChunkerConfig { merge_below_lines: 5, merge_max_lines: 9, ..ChunkerConfig::default() };
    let file = chunk("tiny.go", &source, config);
    use ChunkKind::Definitions;
    // The package line joins F0; then three functions (three lines each, blank included) per chunk.
    assert_eq!(
        layout(&file),
        vec![
            (1, 8, Definitions, None, None),
            (9, 17, Definitions, None, None),
            (18, 26, Definitions, None, None),
        ]
    );
    assert_eq!(file.chunks[0].symbols, ["F0", "F1"]);
}

#[test]
fn merging_can_be_disabled() {
    let source = tiny_go_functions(3);
    let config = ChunkerConfig { merge_below_lines: 0, ..ChunkerConfig::default() };
    let file = chunk("tiny.go", &source, config);
    use ChunkKind::{Code, Function};
    assert_eq!(
        layout(&file),
        vec![
            (1, 2, Code, None, None),
            (3, 5, Function, Some("F0"), None),
            (6, 8, Function, Some("F1"), None),
            (9, 11, Function, Some("F2"), None),
        ]
    );
    assert_eq!(file.chunks[1].doc.as_deref(), Some("F0 returns 0."));
}

#[test]
fn a_small_definition_merged_with_code_keeps_its_name() {
    let source = "import os\nimport sys\n\n\ndef main():\n    \"\"\"Entry point.\"\"\"\n    print(os, sys)\n";
    let file = chunk("main.py", source, ChunkerConfig::default());
    assert_eq!(layout(&file), vec![(1, 7, ChunkKind::Function, Some("main"), None)]);
    assert_eq!(file.chunks[0].doc.as_deref(), Some("Entry point."));
}

fn python_method(name: &str, lines: usize) -> String {
    let mut method = format!("    def {name}(self):\n        \"\"\"Does {name}.\"\"\"\n");
    for i in 0..lines {
        method.push_str(&format!("        self.step({i})\n"));
    }
    method.push('\n');
    method
}

#[test]
fn a_large_class_is_cut_into_its_header_and_methods() {
    let mut source = String::from("class Big:\n    \"\"\"A big class.\"\"\"\n\n    LIMIT = 3\n\n");
    for name in ["alpha", "beta", "gamma", "delta"] {
        source.push_str(&python_method(name, 22));
    }
    let file = chunk("big.py", &source, ChunkerConfig::default());
    use ChunkKind::{Class, Method};
    assert_eq!(
        layout(&file),
        vec![
            (1, 5, Class, Some("Big"), None),
            (6, 30, Method, Some("Big.alpha"), None),
            (31, 55, Method, Some("Big.beta"), None),
            (56, 80, Method, Some("Big.gamma"), None),
            (81, 105, Method, Some("Big.delta"), None),
        ]
    );
    assert_eq!(file.chunks[0].doc.as_deref(), Some("A big class."));
    assert_eq!(file.chunks[1].doc.as_deref(), Some("Does alpha."));
}

#[test]
fn code_between_definitions_gets_its_own_chunks() {
    let mut source = String::new();
    for i in 0..20 {
        source.push_str(&format!("import module_{i}\n"));
    }
    source.push_str(&python_method("helper", 18).replace("\n    ", "\n").replacen("    def", "def", 1));
    for i in 0..20 {
        source.push_str(&format!("print(module_{i})\n"));
    }
    let file = chunk("script.py", &source, ChunkerConfig::default());
    use ChunkKind::{Code, Function};
    assert_eq!(
        layout(&file),
        vec![(1, 20, Code, None, None), (21, 41, Function, Some("helper"), None), (42, 61, Code, None, None)]
    );
}

#[test]
fn an_over_long_line_is_cut_into_pieces_within_max_bytes() {
    let numbers: Vec<String> = (0..3000).map(|i| i.to_string()).collect();
    let source = format!("const data = [{}];\nfunction f() {{ return data; }}\n", numbers.join(","));
    let file = chunk("data.js", &source, ChunkerConfig::default());
    let pieces: Vec<_> = file.chunks.iter().filter(|c| c.start_line == 1 && c.end_line == 1).collect();
    assert!(pieces.len() >= 3, "{} pieces", pieces.len());
    let count = pieces.len();
    for (index, piece) in pieces.iter().enumerate() {
        assert_eq!(piece.kind, ChunkKind::Code);
        assert_eq!(piece.part, Some(ChunkPart { index: index + 1, count }));
    }
    let first_line: String = pieces.iter().map(|c| c.text.as_str()).collect();
    assert!(first_line == format!("{}\n", source.lines().next().unwrap()), "the pieces make up the line");
    assert!(file.symbols.iter().any(|s| s.name == "f"));
}
