//! [`KeywordQuery`] and [`KeywordHit`], and how a user's text becomes a tantivy query.
//!
//! The text is never given to tantivy's query parser: `foo:bar`, `*`, `AND`, brackets and stray quotes are
//! plain text. It is cut into words by the code analyzer ([`crate::analyzer`]); `"double-quoted"` runs are
//! phrases (an unbalanced quote is ignored). Then:
//!
//! - a word matches a document when its field holds the whole word or **all** of its parts (so `parseJson`
//!   finds `parse_json`); matching the whole word scores more;
//! - each word is looked up in `text`, the chunk's names (`symbol` or any of `symbols`, boosted
//!   ×[`SYMBOL_BOOST`]) and `path` (×[`PATH_BOOST`]), and as an exact name (×[`EXACT_SYMBOL_BOOST`]); so is
//!   the whole query text;
//! - words are alternatives ranked by BM25 (more words matched, rarer words, shorter chunks score more);
//!   phrases are required, over `text`;
//! - the organization filter, and the repository, language, path-prefix and symbol filters, are required and
//!   do not score; so is the absence of every [`exclude`](KeywordQuery::exclude)d word and phrase.
//!
//! [`scan`](crate::KeywordIndex::scan) reads the same text the other way: every word and phrase is
//! required (in the chunk's text), nothing is scored, and a text with no words keeps every chunk that
//! passes the filters.

use std::ops::Bound;

use serde::{Deserialize, Serialize};
use tantivy::Term;
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, DisjunctionMaxQuery, Occur, PhraseQuery, Query,
    RangeQuery, TermQuery, TermSetQuery,
};
use tantivy::schema::{Field, IndexRecordOption};

use crate::analyzer::{for_each_word, lowercase};
use crate::error::KeywordError;
use crate::schema::{ChunkDoc, Fields};

/// Boost of a match in the chunk's symbol over a match in its text.
pub const SYMBOL_BOOST: f32 = 3.0;
/// Boost of a match in the chunk's path over a match in its text.
pub const PATH_BOOST: f32 = 1.5;
/// Boost of a query word, or of the whole query, equal to the chunk's symbol (case-insensitive).
pub const EXACT_SYMBOL_BOOST: f32 = 5.0;
/// The largest [`KeywordQuery::limit`].
pub const MAX_LIMIT: usize = 1000;
/// Only the first this-many distinct words of a query are searched for (a pasted stack trace stays cheap).
pub const MAX_QUERY_WORDS: usize = 64;

/// A keyword search, always scoped to one organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeywordQuery {
    /// The caller's organization: only its documents can match. Required.
    pub org: String,
    /// What the user typed: identifiers, words, `"quoted phrases"`.
    pub text: String,
    /// Only these repositories (exact names); empty = all of the organization's.
    pub repos: Vec<String>,
    /// Only these languages (exact names, as indexed); empty = all.
    pub languages: Vec<String>,
    /// Only paths starting with this string (byte-wise, case-sensitive: `src/` keeps `src/lib.rs`, `src`
    /// also keeps `srcgen/x.rs`).
    pub path_prefix: Option<String>,
    /// At most this many hits (0 = none, at most [`MAX_LIMIT`]).
    pub limit: usize,
    /// Texts no hit may contain: a word leaves out the chunks that hold it (whole or all of its parts) in
    /// their text, symbol or path; a `"quoted phrase"` the chunks whose text holds the phrase.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Only chunks with a name (their symbol or one of their `symbols`) equal to, or starting with, this
    /// (case-insensitively); `None` = any chunk.
    #[serde(default)]
    pub symbol: Option<SymbolFilter>,
}

/// How [`KeywordQuery::symbol`] compares a chunk's symbol, case-insensitively (chunks without a symbol
/// never pass).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SymbolFilter {
    /// The symbol is exactly this.
    Exact(String),
    /// The symbol starts with this.
    Prefix(String),
}

impl KeywordQuery {
    /// A query for `text` in all of `org`'s repositories, with the default limit of 20.
    pub fn new(org: impl Into<String>, text: impl Into<String>) -> KeywordQuery {
        KeywordQuery {
            org: org.into(),
            text: text.into(),
            repos: Vec::new(),
            languages: Vec::new(),
            path_prefix: None,
            limit: 20,
            exclude: Vec::new(),
            symbol: None,
        }
    }
}

/// One result: the chunk as it was indexed, and its BM25 score (higher is better; comparable only within
/// one search).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeywordHit {
    pub doc: ChunkDoc,
    pub score: f32,
}

/// A query word: the whole word lowercased and its lowercased parts.
#[derive(Debug, PartialEq)]
struct QueryWord {
    whole: String,
    parts: Vec<String>,
}

/// The user's text, cut into optional words and required phrases (each a list of parts).
#[derive(Debug, Default)]
struct ParsedText {
    words: Vec<QueryWord>,
    phrases: Vec<Vec<String>>,
}

fn words_of(text: &str) -> Vec<QueryWord> {
    let mut words = Vec::new();
    for_each_word(text, |text, word| {
        words.push(QueryWord {
            whole: lowercase(&text[word.range.clone()]),
            parts: word.parts.iter().map(|p| lowercase(&text[p.clone()])).collect(),
        });
    });
    words
}

fn parse_text(text: &str) -> ParsedText {
    let mut parsed = ParsedText::default();
    let quotes = text.matches('"').count();
    let add_word = |parsed: &mut ParsedText, word: QueryWord| {
        if parsed.words.len() < MAX_QUERY_WORDS && !parsed.words.contains(&word) {
            parsed.words.push(word);
        }
    };
    for (i, segment) in text.split('"').enumerate() {
        // Odd segments are inside quotes when their closing quote exists (an unbalanced last one does not).
        let quoted = i % 2 == 1 && i < quotes;
        let words = words_of(segment);
        if !quoted {
            words.into_iter().for_each(|w| add_word(&mut parsed, w));
            continue;
        }
        let parts: Vec<String> = words.into_iter().flat_map(|w| w.parts).collect();
        match parts.len() {
            0 => {}
            1 => {
                let part = parts.into_iter().next().unwrap_or_default();
                add_word(&mut parsed, QueryWord { whole: part.clone(), parts: vec![part] });
            }
            _ => parsed.phrases.push(parts),
        }
    }
    parsed
}

fn term(field: Field, text: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(Term::from_field_text(field, text), IndexRecordOption::WithFreqs))
}

fn boosted(query: Box<dyn Query>, boost: f32) -> Box<dyn Query> {
    if boost == 1.0 { query } else { Box::new(BoostQuery::new(query, boost)) }
}

/// Matches `word` in one analyzed field: the whole word, or all of its parts.
fn word_in(field: Field, word: &QueryWord) -> Box<dyn Query> {
    if word.parts.len() == 1 && word.parts[0] == word.whole {
        return term(field, &word.whole);
    }
    let all_parts = BooleanQuery::intersection(word.parts.iter().map(|p| term(field, p)).collect());
    Box::new(BooleanQuery::union(vec![term(field, &word.whole), Box::new(all_parts)]))
}

fn word_query(fields: &Fields, word: &QueryWord) -> Box<dyn Query> {
    Box::new(BooleanQuery::union(vec![
        word_in(fields.text, word),
        // The symbol or any other name of the chunk, counted once.
        boosted(
            Box::new(DisjunctionMaxQuery::new(vec![
                word_in(fields.symbol, word),
                word_in(fields.symbols, word),
            ])),
            SYMBOL_BOOST,
        ),
        boosted(word_in(fields.path, word), PATH_BOOST),
        boosted(term(fields.symbol_exact, &word.whole), EXACT_SYMBOL_BOOST),
    ]))
}

fn filter(query: Box<dyn Query>) -> (Occur, Box<dyn Query>) {
    (Occur::Must, Box::new(ConstScoreQuery::new(query, 0.0)))
}

/// The smallest string greater than every string starting with `prefix`, if there is one.
fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match u32::from(last) + 1 {
            0xD800 => Some('\u{E000}'),
            n => char::from_u32(n),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn check(query: &KeywordQuery) -> Result<(), KeywordError> {
    if query.org.is_empty() {
        return Err(KeywordError::InvalidArgument { field: "org", reason: "is empty".into() });
    }
    if query.limit > MAX_LIMIT {
        return Err(KeywordError::InvalidArgument {
            field: "limit",
            reason: format!("{} is over the maximum of {MAX_LIMIT}", query.limit),
        });
    }
    Ok(())
}

/// Checks `query` and builds its tantivy query; `None` when it can match nothing (no words, limit 0).
pub(crate) fn build(fields: &Fields, query: &KeywordQuery) -> Result<Option<Box<dyn Query>>, KeywordError> {
    check(query)?;
    let parsed = parse_text(&query.text);
    if query.limit == 0 || (parsed.words.is_empty() && parsed.phrases.is_empty()) {
        return Ok(None);
    }

    let mut scoring: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for word in &parsed.words {
        scoring.push((Occur::Should, word_query(fields, word)));
    }
    let whole = lowercase(query.text.trim().trim_matches('"').trim());
    if !whole.is_empty() && !parsed.words.iter().any(|w| w.whole == whole) {
        scoring.push((Occur::Should, boosted(term(fields.symbol_exact, &whole), EXACT_SYMBOL_BOOST)));
    }
    for phrase in &parsed.phrases {
        scoring.push((Occur::Must, phrase_query(fields, phrase)));
    }

    let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, Box::new(BooleanQuery::new(scoring)))];
    clauses.extend(filters(fields, query));
    Ok(Some(Box::new(BooleanQuery::new(clauses))))
}

/// Checks `query` and builds the query of [`scan`](crate::KeywordIndex::scan): every word and phrase of
/// the text required in the chunk's text, the filters, nothing scored.
pub(crate) fn build_scan(fields: &Fields, query: &KeywordQuery) -> Result<Box<dyn Query>, KeywordError> {
    check(query)?;
    let parsed = parse_text(&query.text);
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for word in &parsed.words {
        clauses.push(filter(word_in(fields.text, word)));
    }
    for phrase in &parsed.phrases {
        clauses.push(filter(phrase_query(fields, phrase)));
    }
    if clauses.is_empty() {
        clauses.push(filter(Box::new(AllQuery)));
    }
    clauses.extend(filters(fields, query));
    Ok(Box::new(BooleanQuery::new(clauses)))
}

fn phrase_query(fields: &Fields, phrase: &[String]) -> Box<dyn Query> {
    let terms = phrase.iter().map(|p| Term::from_field_text(fields.text, p)).collect();
    Box::new(PhraseQuery::new(terms))
}

/// The clauses every hit must pass and that do not score: organization, repositories, languages, path
/// prefix, symbol, exclusions.
fn filters(fields: &Fields, query: &KeywordQuery) -> Vec<(Occur, Box<dyn Query>)> {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![filter(Box::new(TermQuery::new(
        Term::from_field_text(fields.org, &query.org),
        IndexRecordOption::Basic,
    )))];
    if !query.repos.is_empty() {
        let repos = query.repos.iter().map(|r| Term::from_field_text(fields.repo, r));
        clauses.push(filter(Box::new(TermSetQuery::new(repos))));
    }
    if !query.languages.is_empty() {
        let languages = query.languages.iter().map(|l| Term::from_field_text(fields.language, l));
        clauses.push(filter(Box::new(TermSetQuery::new(languages))));
    }
    if let Some(prefix) = query.path_prefix.as_deref().filter(|p| !p.is_empty()) {
        clauses.push(filter(prefix_query(fields.path_raw, prefix)));
    }
    match &query.symbol {
        None => {}
        Some(SymbolFilter::Exact(symbol)) => {
            clauses.push(filter(term(fields.symbol_exact, &lowercase(symbol))));
        }
        Some(SymbolFilter::Prefix(prefix)) => {
            clauses.push(filter(prefix_query(fields.symbol_exact, &lowercase(prefix))));
        }
    }
    for text in &query.exclude {
        let parsed = parse_text(text);
        for word in &parsed.words {
            let anywhere = BooleanQuery::union(vec![
                word_in(fields.text, word),
                word_in(fields.symbol, word),
                word_in(fields.symbols, word),
                word_in(fields.path, word),
            ]);
            clauses.push((Occur::MustNot, Box::new(anywhere)));
        }
        for phrase in &parsed.phrases {
            clauses.push((Occur::MustNot, phrase_query(fields, phrase)));
        }
    }
    clauses
}

/// The terms of `field` that start with `prefix` (an empty prefix: every term).
fn prefix_query(field: Field, prefix: &str) -> Box<dyn Query> {
    let lower = Bound::Included(Term::from_field_text(field, prefix));
    let upper = match prefix_upper_bound(prefix) {
        Some(bound) => Bound::Excluded(Term::from_field_text(field, &bound)),
        None => Bound::Unbounded,
    };
    Box::new(RangeQuery::new(lower, upper))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        parse_text(text).words.into_iter().map(|w| w.whole).collect()
    }

    fn phrases(text: &str) -> Vec<Vec<String>> {
        parse_text(text).phrases
    }

    #[test]
    fn query_syntax_is_plain_text() {
        assert_eq!(
            words("org:other AND repo:* (x OR y) +z -w"),
            ["org", "other", "and", "repo", "x", "or", "y", "z", "w"]
        );
        assert_eq!(words("*"), Vec::<String>::new());
        assert_eq!(words("parseJson parseJson"), ["parsejson"]);
    }

    #[test]
    fn quoted_runs_are_phrases_of_parts_and_a_stray_quote_is_ignored() {
        assert_eq!(phrases(r#"find "parse_json data" now"#), [["parse", "json", "data"]]);
        assert_eq!(words(r#"find "parse_json data" now"#), ["find", "now"]);
        assert_eq!(phrases(r#"a "b c" d "e"#), [["b", "c"]]);
        assert_eq!(words(r#"a "b c" d "e"#), ["a", "d", "e"]);
        assert_eq!(phrases(r#""unclosed phrase"#), Vec::<Vec<String>>::new());
        assert_eq!(words(r#""unclosed phrase"#), ["unclosed", "phrase"]);
        assert_eq!(words(r#""single""#), ["single"]);
    }

    #[test]
    fn long_queries_keep_their_first_words() {
        let text: Vec<String> = (0..200).map(|i| format!("w{i}x")).collect();
        assert_eq!(parse_text(&text.join(" ")).words.len(), MAX_QUERY_WORDS);
    }

    #[test]
    fn prefix_upper_bounds_are_the_next_string() {
        assert_eq!(prefix_upper_bound("src/").as_deref(), Some("src0"));
        assert_eq!(prefix_upper_bound("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
    }
}
