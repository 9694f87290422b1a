//! Snippets: a few lines of a chunk around its best match, with the byte ranges of what matched.

use std::ops::Range;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use crate::syntax::Term;

/// Lines in a snippet: the best line, one before it and three after (fewer at a chunk's edges).
pub const SNIPPET_LINES: usize = 5;
/// The longest snippet text, in bytes (a minified line is cut at a character boundary).
pub const MAX_SNIPPET_BYTES: usize = 1024;
/// Matches looked for in one chunk, at most.
const MAX_MATCHES: usize = 256;

/// A few lines of a hit's chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Snippet {
    /// The file line (1-based) of the snippet's first line.
    pub start_line: u32,
    /// The lines, verbatim, `\n`-separated.
    pub text: String,
    /// Byte ranges `[start, end)` of `text` that matched the query, in order, not overlapping.
    pub highlights: Vec<[usize; 2]>,
}

/// What to highlight: the query's words and their parts, or a pattern's matches.
#[derive(Debug, Clone)]
pub(crate) struct Highlighter {
    regex: Option<Regex>,
}

/// The parts of an identifier: split on non-alphanumerics, case changes and digit boundaries.
fn parts(word: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut prev: Option<char> = None;
    for c in word.chars() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            prev = None;
            continue;
        }
        let boundary = match prev {
            Some(p) => (p.is_lowercase() && c.is_uppercase()) || (p.is_numeric() != c.is_numeric()),
            None => false,
        };
        if boundary && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        current.push(c);
        prev = Some(c);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

impl Highlighter {
    /// Highlights the words of `terms` (whole, and their parts of two characters or more) and their
    /// phrases, case-insensitively.
    pub(crate) fn for_terms(terms: &[Term]) -> Highlighter {
        let mut alternatives: Vec<String> = Vec::new();
        for term in terms {
            let words = parts(term.text());
            if let Term::Phrase(_) = term
                && words.len() > 1
            {
                let escaped: Vec<String> = words.iter().map(|w| regex::escape(w)).collect();
                alternatives.push(escaped.join(r"[^\p{L}\p{N}]*"));
            }
            let whole: String = term.text().chars().filter(|c| c.is_alphanumeric() || *c == '_').collect();
            if !whole.is_empty() {
                alternatives.push(regex::escape(&whole));
            }
            alternatives.extend(words.iter().filter(|w| w.chars().count() >= 2).map(|w| regex::escape(w)));
        }
        alternatives.sort_by_key(|a| std::cmp::Reverse(a.len()));
        alternatives.dedup();
        if alternatives.is_empty() {
            return Highlighter { regex: None };
        }
        let regex = RegexBuilder::new(&alternatives.join("|"))
            .case_insensitive(true)
            .size_limit(1 << 20)
            .build()
            .ok();
        Highlighter { regex }
    }

    /// Highlights the matches of a pattern.
    pub(crate) fn for_regex(regex: Regex) -> Highlighter {
        Highlighter { regex: Some(regex) }
    }

    /// The byte ranges of `text` that match, non-empty, at most a few hundred.
    pub(crate) fn matches(&self, text: &str) -> Vec<Range<usize>> {
        let Some(regex) = &self.regex else { return Vec::new() };
        regex.find_iter(text).filter(|m| !m.is_empty()).take(MAX_MATCHES).map(|m| m.range()).collect()
    }
}

/// The snippet of a chunk whose text starts at file line `first_line`, around the line with the most
/// `matches` (the first lines when nothing matched).
pub(crate) fn snippet(text: &str, first_line: u32, matches: &[Range<usize>]) -> Snippet {
    let mut line_starts = vec![0];
    line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1).filter(|&i| i < text.len()));
    let line_of = |offset: usize| line_starts.partition_point(|&s| s <= offset) - 1;
    let mut per_line = vec![0usize; line_starts.len()];
    for m in matches {
        per_line[line_of(m.start)] += 1;
    }
    let best =
        per_line.iter().enumerate().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0))).map_or(0, |(i, _)| i);
    let best = if matches.is_empty() { 0 } else { best };
    let first = best.saturating_sub(1).min(line_starts.len().saturating_sub(SNIPPET_LINES));
    let last = (first + SNIPPET_LINES).min(line_starts.len());
    let start = line_starts[first];
    let mut end = if last < line_starts.len() { line_starts[last] - 1 } else { text.len() };
    end = end.max(start);
    if end - start > MAX_SNIPPET_BYTES {
        end = start + MAX_SNIPPET_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
    }
    let body = text[start..end].trim_end_matches(['\n', '\r']);
    let highlights = matches
        .iter()
        .filter(|m| m.start >= start && m.end <= start + body.len())
        .map(|m| [m.start - start, m.end - start])
        .collect();
    Snippet {
        start_line: first_line.saturating_add(u32::try_from(first).unwrap_or(u32::MAX)),
        text: body.to_owned(),
        highlights,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_split_into_parts() {
        assert_eq!(parts("parseJson"), ["parse", "Json"]);
        assert_eq!(parts("parse_json2"), ["parse", "json", "2"]);
        assert_eq!(parts("HTTPServer"), ["HTTPServer"]);
    }

    #[test]
    fn the_snippet_is_around_the_line_with_most_matches() {
        let text = (1..=20).map(|i| format!("line {i}")).collect::<Vec<_>>().join("\n");
        let highlighter = Highlighter::for_terms(&[Term::Word("12".into())]);
        let matches = highlighter.matches(&text);
        let s = snippet(&text, 100, &matches);
        assert_eq!(s.start_line, 110, "one line before line 12 of the chunk, which starts at line 100");
        assert_eq!(s.text.lines().count(), SNIPPET_LINES);
        assert_eq!(s.text.lines().next(), Some("line 11"));
        let [a, b] = s.highlights[0];
        assert_eq!(&s.text[a..b], "12");
    }

    #[test]
    fn parts_and_phrases_are_highlighted_case_insensitively() {
        let text = "fn parse_json(input: &str) {\n    // Parse JSON here\n}";
        let highlighter = Highlighter::for_terms(&[Term::Word("parseJson".into())]);
        let s = snippet(text, 1, &highlighter.matches(text));
        let found: Vec<&str> = s.highlights.iter().map(|&[a, b]| &s.text[a..b]).collect();
        assert_eq!(found, ["parse", "json", "Parse", "JSON"]);
        let highlighter = Highlighter::for_terms(&[Term::Phrase("parse json".into())]);
        let s = snippet(text, 1, &highlighter.matches(text));
        let found: Vec<&str> = s.highlights.iter().map(|&[a, b]| &s.text[a..b]).collect();
        assert_eq!(found, ["parse_json", "Parse JSON"]);
    }

    #[test]
    fn short_chunks_long_lines_and_no_matches() {
        let s = snippet("one line", 7, &[]);
        assert_eq!((s.start_line, s.text.as_str()), (7, "one line"));
        let long = "é".repeat(2000);
        let s = snippet(&long, 1, std::slice::from_ref(&(0..2)));
        assert!(s.text.len() <= MAX_SNIPPET_BYTES);
        assert_eq!(s.highlights, [[0, 2]]);
        let s = snippet("", 1, &[]);
        assert_eq!(s.text, "");
    }
}
