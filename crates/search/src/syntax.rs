//! The query syntax: what a person types into the search box, parsed into [`ParsedQuery`].
//!
//! ```text
//! repo:octo/hello lang:rust path:src/ sym:parse parse json "exact phrase" -test -"old api" mode:keyword
//! ```
//!
//! - Tokens are separated by whitespace. `name:value` is a **filter** when `name` is letters and `_` and
//!   the value does not start with `:` or `//` (so `std::fmt` and `https://…` stay text). Known filters:
//!   `repo:` (`owner/name`, repeatable: any of them), `lang:` (repeatable), `path:` (a path prefix, once),
//!   `sym:` (a symbol name or prefix, once), `mode:` (once). A value may be quoted: `path:"my dir/"`.
//!   Any other filter name is an error that names it — quote the text (`"localhost:8080"`) to search for
//!   it. Filters cannot be negated.
//! - `"double quoted"` runs are phrases; an unclosed quote runs to the end of the query.
//! - `-word` and `-"a phrase"` exclude chunks that contain them.
//! - Everything else is a word. Words and phrases without a letter or digit are dropped (they can match
//!   nothing).
//!
//! In `regex` mode only the known filters are taken out of the query; the rest, trimmed, is the
//! pattern, verbatim ([`parse_regex`]).
//!
//! A query is at most [`MAX_QUERY_BYTES`] bytes; an empty query is an error. [`ParsedQuery`]'s
//! `Display` writes a canonical query that parses back to the same value.

use std::fmt;

use crate::error::SearchError;
use crate::request::Mode;

/// The longest query accepted, in bytes (UTF-8): 2 KiB. Longer queries (a pasted file, say) are refused
/// with an error on `q`.
pub const MAX_QUERY_BYTES: usize = 2048;

/// The filter names the syntax knows, as an error message lists them.
const KNOWN_FILTERS: &str = "repo:, lang:, path:, sym:, mode:";

/// A word or a phrase of the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    Word(String),
    Phrase(String),
}

impl Term {
    /// The text of the term, without quotes.
    pub fn text(&self) -> &str {
        match self {
            Term::Word(text) | Term::Phrase(text) => text,
        }
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Word(word) => f.write_str(word),
            Term::Phrase(phrase) => write!(f, "\"{phrase}\""),
        }
    }
}

/// A parsed query: terms, exclusions and filters. Values are kept as typed except `repo:` and `lang:`,
/// which are lowercased (repository keys and language names are lowercase in the indexes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedQuery {
    /// Words and phrases to search for, in order.
    pub terms: Vec<Term>,
    /// `-word` and `-"phrase"`: chunks containing one are left out.
    pub excluded: Vec<Term>,
    /// `repo:` values (`owner/name`), in order, each once.
    pub repos: Vec<String>,
    /// `lang:` values, in order, each once.
    pub languages: Vec<String>,
    /// `path:`: only paths starting with it.
    pub path: Option<String>,
    /// `sym:`: only chunks whose symbol equals or starts with it.
    pub symbol: Option<String>,
    /// `mode:`.
    pub mode: Option<Mode>,
    /// The pattern, in regex mode (then `terms` and `excluded` are empty).
    pub pattern: Option<String>,
}

impl ParsedQuery {
    /// The words and phrases as one plain text (for the embedding model): terms joined by spaces.
    pub fn free_text(&self) -> String {
        let texts: Vec<&str> = self.terms.iter().map(Term::text).collect();
        texts.join(" ")
    }
}

fn quote_if_needed(value: &str) -> String {
    if value.chars().any(char::is_whitespace) { format!("\"{value}\"") } else { value.to_owned() }
}

impl fmt::Display for ParsedQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        parts.extend(self.repos.iter().map(|r| format!("repo:{}", quote_if_needed(r))));
        parts.extend(self.languages.iter().map(|l| format!("lang:{}", quote_if_needed(l))));
        parts.extend(self.path.iter().map(|p| format!("path:{}", quote_if_needed(p))));
        parts.extend(self.symbol.iter().map(|s| format!("sym:{}", quote_if_needed(s))));
        parts.extend(self.mode.iter().map(|m| format!("mode:{}", m.as_str())));
        parts.extend(self.terms.iter().map(Term::to_string));
        parts.extend(self.excluded.iter().map(|t| format!("-{t}")));
        parts.extend(self.pattern.iter().cloned());
        f.write_str(&parts.join(" "))
    }
}

fn invalid(reason: impl Into<String>) -> SearchError {
    SearchError::invalid("q", reason)
}

/// Checks the size and emptiness of `q`.
pub(crate) fn check_size(q: &str) -> Result<(), SearchError> {
    if q.len() > MAX_QUERY_BYTES {
        return Err(invalid(format!("is {} bytes, over the limit of {MAX_QUERY_BYTES} bytes", q.len())));
    }
    if q.trim().is_empty() {
        return Err(invalid("is empty"));
    }
    Ok(())
}

/// One whitespace-separated piece of the query, as the scanner sees it.
#[derive(Debug)]
enum Token<'a> {
    /// A word, a phrase, or a filter (name, value), with whether it was negated.
    Term {
        negated: bool,
        term: Term,
    },
    Filter {
        negated: bool,
        name: &'a str,
        value: String,
    },
}

/// Is `name:rest` a filter? `name` is `[A-Za-z_]+`, `rest` does not start with `:` or `//`.
fn filter_name(token: &str) -> Option<(&str, &str)> {
    let (name, rest) = token.split_once(':')?;
    let is_name = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphabetic() || c == '_');
    if !is_name || rest.starts_with(':') || rest.starts_with("//") {
        return None;
    }
    Some((name, rest))
}

/// Scans `q` into tokens. `&q[i..]` is always at a char boundary.
fn tokens(q: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut i = 0;
    let bytes = q.as_bytes();
    while i < q.len() {
        let c = q[i..].chars().next().unwrap_or(' ');
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        let negated = c == '-' && q[i + 1..].starts_with(|n: char| !n.is_whitespace());
        let start = if negated { i + 1 } else { i };
        if bytes.get(start) == Some(&b'"') {
            let (phrase, next) = quoted(q, start);
            out.push(Token::Term { negated, term: Term::Phrase(phrase.to_owned()) });
            i = next;
            continue;
        }
        // A bare token ends at whitespace or a quote, except that a filter's value may be quoted.
        let end = q[start..].find(|c: char| c.is_whitespace() || c == '"').map_or(q.len(), |e| start + e);
        let bare = &q[start..end];
        if let Some((name, rest)) = filter_name(bare) {
            if rest.is_empty() && bytes.get(end) == Some(&b'"') {
                let (value, next) = quoted(q, end);
                out.push(Token::Filter { negated, name, value: value.to_owned() });
                i = next;
                continue;
            }
            out.push(Token::Filter { negated, name, value: rest.to_owned() });
        } else if !bare.is_empty() {
            out.push(Token::Term { negated, term: Term::Word(bare.to_owned()) });
        }
        // `end == start` only when `q[start]` is a quote, handled above; step one char regardless.
        i = if end > start { end } else { start + q[start..].chars().next().map_or(1, char::len_utf8) };
    }
    out
}

/// The text between the quote at `q[at]` and the next quote (or the end), and the index after it.
fn quoted(q: &str, at: usize) -> (&str, usize) {
    let inner = at + 1;
    match q[inner..].find('"') {
        Some(close) => (&q[inner..inner + close], inner + close + 1),
        None => (&q[inner..], q.len()),
    }
}

fn has_word_char(text: &str) -> bool {
    text.chars().any(char::is_alphanumeric)
}

/// Applies one filter to `parsed`.
fn apply_filter(parsed: &mut ParsedQuery, negated: bool, name: &str, value: &str) -> Result<(), SearchError> {
    let known = matches!(name, "repo" | "lang" | "path" | "sym" | "mode");
    if !known {
        return Err(invalid(format!(
            "has an unknown filter `{name}:`; the filters are {KNOWN_FILTERS} (to search for the text, put it in \
             double quotes)"
        )));
    }
    if negated {
        return Err(invalid(format!("negates the filter `{name}:`, but filters cannot be negated")));
    }
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid(format!("has the filter `{name}:` with no value")));
    }
    let once = |slot: &Option<String>, value: &str| match slot {
        Some(previous) if previous != value => {
            Err(invalid(format!("has the filter `{name}:` given twice ({previous:?} and {value:?})")))
        }
        _ => Ok(value.to_owned()),
    };
    match name {
        "repo" => {
            let repo =
                check_repo(value).map_err(|reason| invalid(format!("has `repo:{value}`, which {reason}")))?;
            push_once(&mut parsed.repos, repo);
        }
        "lang" => push_once(&mut parsed.languages, normalize_language(value)),
        "path" => parsed.path = Some(once(&parsed.path, &normalize_path(value))?),
        "sym" => parsed.symbol = Some(once(&parsed.symbol, value)?),
        _ => {
            let mode: Mode = value
                .parse()
                .map_err(|e: SearchError| invalid(format!("has a `mode:` filter: {}", e.reason())))?;
            if let Some(previous) = parsed.mode
                && previous != mode
            {
                return Err(invalid(format!("has the filter `mode:` given twice ({previous} and {mode})")));
            }
            parsed.mode = Some(mode);
        }
    }
    Ok(())
}

fn push_once(list: &mut Vec<String>, value: String) {
    if !list.contains(&value) {
        list.push(value);
    }
}

/// A repository key as indexed: `owner/name`, lowercased. The reason when it is not one.
pub(crate) fn check_repo(value: &str) -> Result<String, &'static str> {
    let repo = value.trim().to_ascii_lowercase();
    match repo.split_once('/') {
        Some((owner, name)) if !owner.is_empty() && !name.is_empty() && !name.contains('/') => Ok(repo),
        _ => Err("is not a repository key of the form owner/name"),
    }
}

/// A language as indexed (lowercase), with a few common short names understood.
pub(crate) fn normalize_language(value: &str) -> String {
    let lower = value.trim().to_lowercase();
    let name = match lower.as_str() {
        "rs" => "rust",
        "py" => "python",
        "js" => "javascript",
        "ts" => "typescript",
        "golang" => "go",
        "rb" => "ruby",
        "c++" | "cc" | "hpp" => "cpp",
        other => other,
    };
    name.to_owned()
}

/// A path prefix as indexed: repository-relative, without a leading `/` or `./`.
pub(crate) fn normalize_path(value: &str) -> String {
    let mut path = value.trim();
    loop {
        if let Some(rest) = path.strip_prefix("./") {
            path = rest;
        } else if let Some(rest) = path.strip_prefix('/') {
            path = rest;
        } else {
            return path.to_owned();
        }
    }
}

/// Finds the `mode:` filter of `q` without parsing the rest (the mode decides how the rest is parsed).
pub(crate) fn mode_of(q: &str) -> Result<Option<Mode>, SearchError> {
    let mut mode = None;
    for token in q.split_whitespace() {
        if let Some(value) = token.strip_prefix("mode:") {
            let value = value.trim_matches('"');
            let found: Mode = value
                .parse()
                .map_err(|e: SearchError| invalid(format!("has a `mode:` filter: {}", e.reason())))?;
            if mode.is_some_and(|m| m != found) {
                return Err(invalid("has the filter `mode:` given twice with different values"));
            }
            mode = Some(found);
        }
    }
    Ok(mode)
}

/// Parses a query of the text modes (hybrid, keyword, semantic, symbol).
pub fn parse(q: &str) -> Result<ParsedQuery, SearchError> {
    check_size(q)?;
    let mut parsed = ParsedQuery::default();
    for token in tokens(q) {
        match token {
            Token::Filter { negated, name, value } => apply_filter(&mut parsed, negated, name, &value)?,
            Token::Term { negated, term } => {
                if !has_word_char(term.text()) {
                    continue;
                }
                let list = if negated { &mut parsed.excluded } else { &mut parsed.terms };
                if !list.contains(&term) {
                    list.push(term);
                }
            }
        }
    }
    Ok(parsed)
}

/// Parses a query of `regex` mode: the known filters are taken out (wherever they are, separated by
/// whitespace), the rest, trimmed, is the pattern. An empty pattern is an error.
pub fn parse_regex(q: &str) -> Result<ParsedQuery, SearchError> {
    check_size(q)?;
    let mut parsed = ParsedQuery::default();
    let mut pattern = String::new();
    let mut rest = q;
    // Whitespace-separated pieces; a filter is dropped with the whitespace before it, the pattern's
    // pieces keep theirs verbatim.
    while !rest.is_empty() {
        let space_len = rest.len() - rest.trim_start().len();
        let space = &rest[..space_len];
        rest = &rest[space_len..];
        if rest.is_empty() {
            break;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let piece = &rest[..end];
        rest = &rest[end..];
        let filter = filter_name(piece).filter(|(name, value)| {
            matches!(*name, "repo" | "lang" | "path" | "sym" | "mode") && !value.is_empty()
        });
        match filter {
            Some((name, value)) => apply_filter(&mut parsed, false, name, value.trim_matches('"'))?,
            None => {
                if !pattern.is_empty() {
                    pattern.push_str(space);
                }
                pattern.push_str(piece);
            }
        }
    }
    if pattern.is_empty() {
        return Err(invalid("has no pattern to search for (only filters)"));
    }
    parsed.pattern = Some(pattern);
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(terms: &[Term]) -> Vec<String> {
        terms.iter().map(Term::to_string).collect()
    }

    #[test]
    fn filters_words_phrases_and_negations() {
        let p =
            parse(r#"repo:Octo/Hello lang:RS path:./src/ sym:parse parse "exact phrase" -test -"old api""#)
                .unwrap();
        assert_eq!(p.repos, ["octo/hello"]);
        assert_eq!(p.languages, ["rust"]);
        assert_eq!(p.path.as_deref(), Some("src/"));
        assert_eq!(p.symbol.as_deref(), Some("parse"));
        assert_eq!(words(&p.terms), ["parse", "\"exact phrase\""]);
        assert_eq!(words(&p.excluded), ["test", "\"old api\""]);
        assert_eq!(p.free_text(), "parse exact phrase");
    }

    #[test]
    fn colons_that_are_not_filters_stay_text() {
        let p = parse("std::fmt::Display https://example.com a-b").unwrap();
        assert_eq!(words(&p.terms), ["std::fmt::Display", "https://example.com", "a-b"]);
        let p = parse(r#""localhost:8080" -> =>"#).unwrap();
        assert_eq!(words(&p.terms), ["\"localhost:8080\""], "punctuation-only tokens are dropped");
    }

    #[test]
    fn unknown_and_misused_filters_are_errors_naming_the_filter() {
        for (q, expected) in [
            ("foo:bar baz", "`foo:`"),
            ("localhost:8080", "`localhost:`"),
            ("-repo:a/b x", "cannot be negated"),
            ("repo: x", "no value"),
            ("repo:hello x", "owner/name"),
            ("path:a path:b x", "given twice"),
            ("mode:fast x", "`mode:`"),
            ("mode:regex mode:keyword x", "twice"),
        ] {
            let error = parse(q).unwrap_err();
            assert_eq!(error.field(), Some("q"), "{q}");
            assert!(error.to_string().contains(expected), "{q}: {error}");
        }
    }

    #[test]
    fn size_limits() {
        assert!(parse("").is_err());
        assert!(parse("  \t ").is_err());
        let long = "a".repeat(MAX_QUERY_BYTES + 1);
        assert!(parse(&long).unwrap_err().to_string().contains("over the limit"));
        assert!(parse(&"a".repeat(MAX_QUERY_BYTES)).is_ok());
    }

    #[test]
    fn quoted_filter_values_and_unclosed_quotes() {
        let p = parse(r#"path:"my dir/" x "unclosed phrase"#).unwrap();
        assert_eq!(p.path.as_deref(), Some("my dir/"));
        assert_eq!(words(&p.terms), ["x", "\"unclosed phrase\""]);
    }

    #[test]
    fn regex_queries_keep_the_pattern_verbatim() {
        let p = parse_regex(r#"repo:a/b fn\s+parse_(\w+)  "x" lang:rust"#).unwrap();
        assert_eq!(p.pattern.as_deref(), Some(r#"fn\s+parse_(\w+)  "x""#));
        assert_eq!(p.repos, ["a/b"]);
        assert_eq!(p.languages, ["rust"]);
        let p = parse_regex(r"(?i)foo:\d+ mode:regex").unwrap();
        assert_eq!(p.pattern.as_deref(), Some(r"(?i)foo:\d+"));
        assert_eq!(p.mode, Some(Mode::Regex));
        assert!(parse_regex("repo:a/b").is_err());
    }

    /// A small deterministic generator (xorshift), so the fuzz tests need no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    #[test]
    fn no_input_makes_the_parsers_panic() {
        let pieces = [
            "a",
            "-",
            "\"",
            ":",
            "repo:",
            "repo:a/b",
            "lang:",
            "path:\"",
            "sym:x",
            "mode:",
            "mode:regex",
            " ",
            "\t",
            "é",
            "日本",
            "\u{0}",
            "//",
            "::",
            "-\"",
            "x:y",
            "\\",
            "(",
            "*",
            "\u{10FFFF}",
            "-repo:a/b",
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            let n = rng.below(12);
            let q: String = (0..n).map(|_| rng.pick(&pieces)).collect();
            let _ = parse(&q);
            let _ = parse_regex(&q);
            let _ = mode_of(&q);
        }
        // Random bytes, as far as they are UTF-8.
        for _ in 0..20_000 {
            let n = rng.below(24);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            let q = String::from_utf8_lossy(&bytes);
            let _ = parse(&q);
            let _ = parse_regex(&q);
        }
    }

    #[test]
    fn parsed_queries_round_trip_through_their_canonical_text() {
        let words = ["parse", "json", "Widget", "add_numbers", "x1", "日本"];
        let mut rng = Rng(42);
        for _ in 0..5_000 {
            let mut p = ParsedQuery::default();
            for _ in 0..rng.below(3) {
                push_once(&mut p.repos, format!("{}/{}", rng.pick(&words), rng.pick(&words)).to_lowercase());
            }
            for _ in 0..rng.below(3) {
                push_once(&mut p.languages, rng.pick(&["rust", "python", "go"]).to_owned());
            }
            if rng.below(2) == 0 {
                p.path = Some(rng.pick(&["src/", "a b/", "lib.rs"]).to_owned());
            }
            if rng.below(2) == 0 {
                p.symbol = Some(rng.pick(&words).to_owned());
            }
            if rng.below(3) == 0 {
                p.mode = Some([Mode::Hybrid, Mode::Keyword, Mode::Semantic, Mode::Symbol][rng.below(4)]);
            }
            for _ in 0..1 + rng.below(3) {
                let term = if rng.below(3) == 0 {
                    Term::Phrase(format!("{} {}", rng.pick(&words), rng.pick(&words)))
                } else {
                    Term::Word(rng.pick(&words).to_owned())
                };
                if !p.terms.contains(&term) {
                    p.terms.push(term);
                }
            }
            for _ in 0..rng.below(2) {
                let term = Term::Word(rng.pick(&words).to_owned());
                if !p.excluded.contains(&term) {
                    p.excluded.push(term);
                }
            }
            let text = p.to_string();
            assert_eq!(parse(&text).unwrap(), p, "{text}");
        }
    }
}
