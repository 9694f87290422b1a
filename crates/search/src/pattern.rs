//! Regex mode's pattern: compiled with the `regex` crate (finite automata: linear time in the text, no
//! backtracking, so no pattern is catastrophic) under size limits, and the words every match must
//! contain, which prefilter the chunks through the keyword index.

use regex::{Regex, RegexBuilder};
use regex_syntax::hir::{Hir, HirKind};

use crate::error::SearchError;

/// The largest compiled program of a pattern (bytes): a pattern past it (`\w{1000}{1000}`, say) is
/// refused instead of using the memory.
pub const MAX_PROGRAM_BYTES: usize = 1 << 20;
/// The lazy DFA's cache per pattern (bytes).
const DFA_CACHE_BYTES: usize = 2 << 20;
/// How deeply groups and repetitions may nest.
const NEST_LIMIT: u32 = 64;
/// Words longer than this are not indexed by the keyword index, so they cannot prefilter.
const MAX_WORD_BYTES: usize = ledge_keyword::MAX_WORD_BYTES;

/// A compiled pattern and the words every match contains.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    pub regex: Regex,
    /// Complete words of the pattern's required literals, for the keyword prefilter (may be empty).
    pub required_words: Vec<String>,
}

/// Compiles `pattern`; an invalid one or one too large is an error on `q` that says what is wrong.
pub(crate) fn compile(pattern: &str) -> Result<Pattern, SearchError> {
    let regex = RegexBuilder::new(pattern)
        .size_limit(MAX_PROGRAM_BYTES)
        .dfa_size_limit(DFA_CACHE_BYTES)
        .nest_limit(NEST_LIMIT)
        .build()
        .map_err(|error| {
            let reason = match error {
                regex::Error::CompiledTooBig(limit) => {
                    format!(
                        "compiles to a regular expression program of more than {limit} bytes; make it smaller"
                    )
                }
                regex::Error::Syntax(message) => {
                    // The crate's message draws a caret under the pattern; keep its one-line verdict.
                    let verdict = message
                        .lines()
                        .rev()
                        .find_map(|l| l.strip_prefix("error: "))
                        .unwrap_or("syntax error");
                    format!("is not a valid regular expression: {verdict}")
                }
                other => format!("is not a valid regular expression: {other}"),
            };
            SearchError::invalid("q", reason)
        })?;
    let hir = regex_syntax::ParserBuilder::new().nest_limit(NEST_LIMIT).build().parse(pattern);
    let required_words = match hir {
        Ok(hir) => {
            let mut literals = Vec::new();
            required_literals(&hir, &mut literals);
            literals.iter().flat_map(|l| interior_words(l)).collect()
        }
        Err(_) => Vec::new(),
    };
    Ok(Pattern { regex, required_words })
}

/// Appends the literal strings every match of `hir` contains (maximal runs of a concatenation).
fn required_literals(hir: &Hir, out: &mut Vec<String>) {
    match hir.kind() {
        HirKind::Literal(literal) => out.push(String::from_utf8_lossy(&literal.0).into_owned()),
        HirKind::Capture(capture) => required_literals(&capture.sub, out),
        HirKind::Repetition(repetition) if repetition.min >= 1 => required_literals(&repetition.sub, out),
        HirKind::Concat(children) => {
            let mut run = String::new();
            for child in children {
                if let HirKind::Literal(literal) = child.kind() {
                    run.push_str(&String::from_utf8_lossy(&literal.0));
                    continue;
                }
                if !run.is_empty() {
                    out.push(std::mem::take(&mut run));
                }
                required_literals(child, out);
            }
            if !run.is_empty() {
                out.push(run);
            }
        }
        _ => {}
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The words of `literal` that are whole words wherever the literal occurs: those with a non-word
/// character on both sides *inside* the literal (the text around a match is unknown, so the first and
/// last words may be parts of longer words). A `-` inside a word joins like the keyword analyzer's
/// kebab-case rule; a word the analyzer would join with a `-` outside it is still found by its parts.
fn interior_words(literal: &str) -> Vec<String> {
    let mut words = Vec::new();
    let chars: Vec<(usize, char)> = literal.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        if !is_word_char(chars[i].1) {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && is_word_char(chars[i].1) {
            i += 1;
        }
        let touches_edge = start == 0 || i == chars.len();
        if touches_edge {
            continue;
        }
        let (from, to) = (chars[start].0, chars[i].0);
        let word = &literal[from..to];
        if word.len() <= MAX_WORD_BYTES && !words.iter().any(|w| w == word) {
            words.push(word.to_owned());
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_words_are_whole_words_of_required_literals() {
        assert_eq!(compile(r"fn parse_json\(").unwrap().required_words, ["parse_json"]);
        assert_eq!(compile(r"\bfn parse_json\(input").unwrap().required_words, ["parse_json"]);
        assert_eq!(compile(r"(foo|bar) baz ").unwrap().required_words, ["baz"]);
        assert_eq!(compile(r"(?i)fn parse_json\(").unwrap().required_words, Vec::<String>::new());
        assert_eq!(compile(r"x( struct Widget )?y").unwrap().required_words, Vec::<String>::new());
        assert_eq!(compile(r"\w+").unwrap().required_words, Vec::<String>::new());
        assert_eq!(compile(r"( impl Widget ){2}").unwrap().required_words, ["impl", "Widget"]);
    }

    #[test]
    fn invalid_and_huge_patterns_are_errors_on_q() {
        let error = compile("fn (").unwrap_err();
        assert_eq!(error.field(), Some("q"));
        assert!(error.to_string().contains("not a valid regular expression"), "{error}");
        let error = compile(r"\w{1000}{1000}").unwrap_err();
        assert_eq!(error.field(), Some("q"));
        let deep = format!("{}x{}", "(".repeat(200), ")".repeat(200));
        assert_eq!(compile(&deep).unwrap_err().field(), Some("q"));
    }

    #[test]
    fn catastrophic_backtracking_patterns_run_in_linear_time() {
        let pattern = compile("(a+)+$").unwrap();
        let text = format!("{}!", "a".repeat(100_000));
        assert!(!pattern.regex.is_match(&text));
    }
}
