//! No input makes the chunker panic: invalid UTF-8, random bytes, truncated files, pathological nesting,
//! NUL bytes, CRLF line endings. Whatever it returns still satisfies the invariants.

use ledge_chunker::{Chunker, ChunkerConfig, Strategy};

use crate::support::{FIXTURES, assert_invariants, fixture, small_config};

/// Paths whose extensions select every grammar (and a line-window language).
const PATHS: &[&str] =
    &["a.rs", "a.py", "a.js", "a.ts", "a.tsx", "a.go", "a.java", "a.c", "a.cpp", "a.rb", "a.md"];

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    /// Random bytes, or a random soup of code tokens that drives parsers into deeper states.
    fn input(&mut self) -> Vec<u8> {
        const TOKENS: &[&str] = &[
            "fn ",
            "def ",
            "class ",
            "struct ",
            "impl ",
            "func ",
            "function ",
            "module ",
            "namespace ",
            "interface ",
            "enum ",
            "trait ",
            "mod ",
            "end\n",
            "{",
            "}",
            "(",
            ")",
            "[",
            "]",
            ";",
            ":",
            "::",
            ".",
            ",",
            "=",
            "=>",
            "->",
            "<",
            ">",
            "\"",
            "'",
            "`",
            "/*",
            "*/",
            "//",
            "#",
            "///",
            "\"\"\"",
            "\n",
            "\n\n",
            "    ",
            "\t",
            "name",
            "Type",
            "self",
            "return",
            "export ",
            "template<T> ",
            "#ifdef X\n",
            "#endif\n",
            "é",
            "🦀",
        ];
        let length = self.below(3000);
        if self.below(3) == 0 {
            (0..length).map(|_| self.next() as u8).collect()
        } else {
            let mut text = String::new();
            while text.len() < length {
                text.push_str(TOKENS[self.below(TOKENS.len())]);
            }
            text.into_bytes()
        }
    }
}

#[test]
fn random_inputs_never_panic_and_keep_the_invariants() {
    let config = small_config();
    let chunker = Chunker::new(config.clone()).unwrap();
    let mut noise = Noise(0x5eed_1234_abcd_ef01);
    for round in 0..60 {
        for path in PATHS {
            let input = noise.input();
            let file = chunker.chunk(path, &input).unwrap();
            assert_invariants(&format!("round {round} {path}"), path, &input, &file, &config, false);
        }
    }
}

#[test]
fn truncated_files_never_panic_and_keep_the_invariants() {
    let config = ChunkerConfig::default();
    let chunker = Chunker::default();
    for name in FIXTURES {
        let source = fixture(name);
        let step = (source.len() / 50).max(1);
        for cut in (0..source.len()).step_by(step) {
            let truncated = &source[..cut];
            let file = chunker.chunk(name, truncated).unwrap();
            assert_invariants(&format!("{name} cut at {cut}"), name, truncated, &file, &config, false);
        }
    }
}

#[test]
fn invalid_utf8_is_repaired_and_flagged() {
    let source = b"/// Caf\xe9 menu.\nfn caf\xe9() {}\n\nfn ok() -> u8 { 0xff }\n";
    let file = Chunker::default().chunk("menu.rs", source).unwrap();
    assert!(file.lossy_utf8);
    assert_eq!(file.strategy, Strategy::Syntax);
    assert!(file.symbols.iter().any(|s| s.name == "ok"));
    assert_eq!(file.symbols[0].doc.as_deref(), Some("Caf\u{fffd} menu."));
    assert_invariants("latin-1", "menu.rs", source, &file, &ChunkerConfig::default(), true);

    let valid = Chunker::default().chunk("menu.rs", "fn café() {}\n".as_bytes()).unwrap();
    assert!(!valid.lossy_utf8);
}

#[test]
fn deeply_nested_input_is_bounded() {
    let chunker = Chunker::default();
    let depth = 5000;
    let nested_modules = format!("{}fn leaf() {{}}\n{}", "mod m {\n".repeat(depth), "}\n".repeat(depth));
    let nested_classes = format!("{}{}", "class A {\n".repeat(depth), "}\n".repeat(depth));
    let brackets = "[".repeat(100_000);
    let parens = format!("x = {}", "(".repeat(100_000));
    let cases: [(&str, &str); 4] = [
        ("deep.rs", &nested_modules),
        ("Deep.java", &nested_classes),
        ("deep.js", &brackets),
        ("deep.py", &parens),
    ];
    for (path, source) in cases {
        let file = chunker.chunk(path, source.as_bytes()).unwrap();
        assert_invariants(path, path, source.as_bytes(), &file, chunker.config(), false);
    }
}

#[test]
fn nul_bytes_and_control_characters_are_just_text() {
    let source = b"int main(void) {\n    return 0;\x00\x01\x02\n}\n\x00\x00\n";
    let file = Chunker::default().chunk("nul.c", source).unwrap();
    assert!(file.symbols.iter().any(|s| s.name == "main"));
    assert_invariants("nul", "nul.c", source, &file, &ChunkerConfig::default(), true);
}

#[test]
fn crlf_line_endings_keep_line_numbers_and_exact_text() {
    let source = "use std::io;\r\n\r\n/// Reads.\r\nfn read() -> io::Result<()> {\r\n    Ok(())\r\n}\r\n";
    let file = Chunker::default().chunk("crlf.rs", source.as_bytes()).unwrap();
    let read = &file.symbols[0];
    assert_eq!((read.name.as_str(), read.start_line, read.end_line), ("read", 4, 6));
    assert_eq!(read.doc.as_deref(), Some("Reads."));
    assert_invariants("crlf", "crlf.rs", source.as_bytes(), &file, &ChunkerConfig::default(), true);
}
