//! The code-aware analyzers: identifiers split into their parts (originals kept), and paths into segments.
//!
//! A *word* is a maximal run of alphanumeric characters and `_`, where a `-` between an alphanumeric and a
//! letter also joins (kebab-case: `default-features`). Everything else — spaces, `.`, `::`, brackets,
//! operators, quotes — separates words. A word's *parts* are its pieces split on `_` and `-`, on case
//! changes (`parseJson` → parse, json; acronyms stay whole: `HTTPServer` → http, server) and between
//! digits and letters (`sha256` → sha, 256). Tokens are lowercased.
//!
//! [`CodeTokenizer`] emits, for each word, the whole word when it differs from its only part, at the
//! position of its first part, then every part at consecutive positions. So `parse_json` is found by
//! `json`, by `parse_json` and by the phrase `"parse json"`, and positions of parts line up between a
//! document and a query (the phrase queries of [`crate::query`] use parts only).
//!
//! [`PathTokenizer`] emits each `/`-separated segment whole, the file name's stem and extension, and the
//! words and parts of every segment. Words longer than [`MAX_WORD_BYTES`] (minified code, base64, hashes
//! of absurd length) are skipped: they would only bloat the term dictionary.

use std::ops::Range;

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// Words longer than this many bytes are not indexed (nor searched for).
pub const MAX_WORD_BYTES: usize = 128;

/// One word of a text: its byte range and the byte ranges of its parts, all in the original text.
#[derive(Debug, Default, Clone)]
pub(crate) struct Word {
    pub range: Range<usize>,
    pub parts: Vec<Range<usize>>,
}

impl Word {
    /// True when the lowercased word differs from its only part, i.e. when it is worth its own token.
    fn keeps_original(&self) -> bool {
        self.parts.len() > 1 || self.parts.first() != Some(&self.range)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Upper,
    Lower,
    Digit,
}

fn class(c: char) -> Class {
    if c.is_numeric() {
        Class::Digit
    } else if c.is_uppercase() {
        Class::Upper
    } else {
        Class::Lower
    }
}

/// Calls `each` with every word of `text`, in order. `word` is reused between calls.
pub(crate) fn for_each_word(text: &str, mut each: impl FnMut(&str, &Word)) {
    let mut word = Word::default();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if !(c.is_alphanumeric() || c == '_') {
            continue;
        }
        let mut end = start + c.len_utf8();
        let mut prev = c;
        while let Some(&(i, c)) = chars.peek() {
            let joins = c.is_alphanumeric()
                || c == '_'
                || (c == '-'
                    && prev.is_alphanumeric()
                    && text[i + 1..].chars().next().is_some_and(char::is_alphabetic));
            if !joins {
                break;
            }
            end = i + c.len_utf8();
            prev = c;
            chars.next();
        }
        if end - start > MAX_WORD_BYTES {
            continue;
        }
        word.range = start..end;
        split_parts(text, start..end, &mut word.parts);
        if !word.parts.is_empty() {
            each(text, &word);
        }
    }
}

/// Splits `text[range]` (one word) into parts, written to `parts`.
fn split_parts(text: &str, range: Range<usize>, parts: &mut Vec<Range<usize>>) {
    parts.clear();
    let base = range.start;
    let word = &text[range];
    let mut part_start: Option<usize> = None;
    let mut prev: Option<Class> = None;
    let mut chars = word.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '_' || c == '-' {
            if let Some(s) = part_start.take() {
                parts.push(base + s..base + i);
            }
            prev = None;
            continue;
        }
        let cls = class(c);
        let boundary = match (prev, cls) {
            (Some(Class::Lower), Class::Upper) => true,
            (Some(Class::Digit), Class::Upper | Class::Lower) => true,
            (Some(Class::Upper | Class::Lower), Class::Digit) => true,
            // The last capital of an acronym starts the next part: HTTPServer → HTTP, Server.
            (Some(Class::Upper), Class::Upper) => {
                chars.peek().is_some_and(|&(_, next)| next.is_alphabetic() && class(next) == Class::Lower)
            }
            _ => false,
        };
        if boundary && let Some(s) = part_start.take() {
            parts.push(base + s..base + i);
        }
        part_start.get_or_insert(i);
        prev = Some(cls);
    }
    if let Some(s) = part_start {
        parts.push(base + s..base + word.len());
    }
}

/// Appends `text` lowercased to `out`.
pub(crate) fn push_lowercase(out: &mut String, text: &str) {
    if text.is_ascii() {
        out.extend(text.chars().map(|c| c.to_ascii_lowercase()));
    } else {
        out.extend(text.chars().flat_map(char::to_lowercase));
    }
}

pub(crate) fn lowercase(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_lowercase(&mut out, text);
    out
}

/// The tokens of one text, kept in a buffer that is reused between texts.
#[derive(Clone, Default)]
struct TokenBuffer {
    tokens: Vec<Token>,
    len: usize,
}

impl TokenBuffer {
    fn clear(&mut self) {
        self.len = 0;
    }

    fn push(&mut self, text: &str, offsets: Range<usize>, position: usize) {
        if self.len == self.tokens.len() {
            self.tokens.push(Token::default());
        }
        let token = &mut self.tokens[self.len];
        token.text.clear();
        push_lowercase(&mut token.text, &text[offsets.clone()]);
        token.offset_from = offsets.start;
        token.offset_to = offsets.end;
        token.position = position;
        token.position_length = 1;
        self.len += 1;
    }

    /// True if one of the tokens pushed since `from` has the text of `text[offsets]`, lowercased.
    fn contains_since(&self, from: usize, text: &str, offsets: Range<usize>) -> bool {
        let candidate = &text[offsets];
        self.tokens[from..self.len].iter().any(|t| {
            if candidate.is_ascii() {
                t.text.eq_ignore_ascii_case(candidate)
            } else {
                t.text == lowercase(candidate)
            }
        })
    }

    fn stream(&mut self) -> BufferStream<'_> {
        BufferStream { tokens: &mut self.tokens[..self.len], next: 0 }
    }
}

/// A token stream over a filled [`TokenBuffer`].
pub(crate) struct BufferStream<'a> {
    tokens: &'a mut [Token],
    next: usize,
}

impl TokenStream for BufferStream<'_> {
    fn advance(&mut self) -> bool {
        if self.next < self.tokens.len() {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next.saturating_sub(1).min(self.tokens.len().saturating_sub(1))]
    }

    fn token_mut(&mut self) -> &mut Token {
        let i = self.next.saturating_sub(1).min(self.tokens.len().saturating_sub(1));
        &mut self.tokens[i]
    }
}

/// The analyzer of code text and symbols: words with their parts, lowercased (see the module docs).
#[derive(Clone, Default)]
pub(crate) struct CodeTokenizer {
    buffer: TokenBuffer,
}

impl Tokenizer for CodeTokenizer {
    type TokenStream<'a> = BufferStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> BufferStream<'a> {
        let buffer = &mut self.buffer;
        buffer.clear();
        let mut position = 0;
        for_each_word(text, |text, word| {
            if word.keeps_original() {
                buffer.push(text, word.range.clone(), position);
            }
            for part in &word.parts {
                buffer.push(text, part.clone(), position);
                position += 1;
            }
        });
        buffer.stream()
    }
}

/// The analyzer of repository paths: segments, the file's stem and extension, and each segment's words
/// and parts, lowercased (see the module docs).
#[derive(Clone, Default)]
pub(crate) struct PathTokenizer {
    buffer: TokenBuffer,
}

impl Tokenizer for PathTokenizer {
    type TokenStream<'a> = BufferStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> BufferStream<'a> {
        let buffer = &mut self.buffer;
        buffer.clear();
        let mut position = 0;
        let mut segments = text.split('/').scan(0, |offset, segment| {
            let start = *offset;
            *offset += segment.len() + 1;
            Some(start..start + segment.len())
        });
        let mut current = segments.next();
        while let Some(segment) = current {
            current = segments.next();
            let is_file_name = current.is_none();
            if segment.is_empty() || segment.len() > MAX_WORD_BYTES {
                continue;
            }
            let first = buffer.len;
            let mut push_new = |buffer: &mut TokenBuffer, offsets: Range<usize>| {
                if !offsets.is_empty() && !buffer.contains_since(first, text, offsets.clone()) {
                    buffer.push(text, offsets, position);
                    position += 1;
                }
            };
            push_new(buffer, segment.clone());
            if is_file_name && let Some(dot) = text[segment.clone()].rfind('.').filter(|&dot| dot > 0) {
                push_new(buffer, segment.start..segment.start + dot);
                push_new(buffer, segment.start + dot + 1..segment.end);
            }
            let shift = |range: &Range<usize>| segment.start + range.start..segment.start + range.end;
            for_each_word(&text[segment.clone()], |_, word| {
                push_new(buffer, shift(&word.range));
                for part in &word.parts {
                    push_new(buffer, shift(part));
                }
            });
        }
        buffer.stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(mut tokenizer: impl Tokenizer, text: &str) -> Vec<(String, usize)> {
        let mut stream = tokenizer.token_stream(text);
        let mut out = Vec::new();
        while let Some(token) = stream.next() {
            assert_eq!(
                crate::analyzer::lowercase(&text[token.offset_from..token.offset_to]),
                token.text,
                "offsets of {:?} point at its text",
                token.text
            );
            out.push((token.text.clone(), token.position));
        }
        out
    }

    #[track_caller]
    fn check(text: &str, expected: &[&str]) {
        let actual: Vec<String> = tokens(CodeTokenizer::default(), text).into_iter().map(|t| t.0).collect();
        assert_eq!(actual, expected, "code tokens of {text:?}");
    }

    #[track_caller]
    fn check_path(path: &str, expected: &[&str]) {
        let actual: Vec<String> = tokens(PathTokenizer::default(), path).into_iter().map(|t| t.0).collect();
        assert_eq!(actual, expected, "path tokens of {path:?}");
    }

    #[test]
    fn identifiers_are_split_into_parts_and_kept_whole() {
        check("parseHTTPRequest2", &["parsehttprequest2", "parse", "http", "request", "2"]);
        check("HTTPServer", &["httpserver", "http", "server"]);
        check("JsonParser", &["jsonparser", "json", "parser"]);
        check("parse_json", &["parse_json", "parse", "json"]);
        check("MAX_WORD_BYTES", &["max_word_bytes", "max", "word", "bytes"]);
        check("default-features", &["default-features", "default", "features"]);
        check("sha256", &["sha256", "sha", "256"]);
        check("x86_64", &["x86_64", "x", "86", "64"]);
        check("IOError", &["ioerror", "io", "error"]);
        // The rule's known limit: a plural acronym reads as an acronym followed by a word.
        check("getURLs", &["geturls", "get", "ur", "ls"]);
        check("__init__", &["__init__", "init"]);
    }

    #[test]
    fn single_part_words_are_one_token() {
        check("parse", &["parse"]);
        check("Parse", &["parse"]);
        check("HTTP", &["http"]);
        check("42", &["42"]);
        check("é", &["é"]);
    }

    #[test]
    fn punctuation_separates_words() {
        check("std::io::Read", &["std", "io", "read"]);
        check("self.parse_json(data)", &["self", "parse_json", "parse", "json", "data"]);
        check("a - b", &["a", "b"]);
        check("--no-default", &["no-default", "no", "default"]);
        check("utf-8", &["utf", "8"]);
        check("\"quoted\" `code` 'c'", &["quoted", "code", "c"]);
        check("foo:bar* (baz)", &["foo", "bar", "baz"]);
        check("", &[]);
        check("_ __ -- ::", &[]);
    }

    #[test]
    fn non_ascii_text_is_lowercased_and_split_on_case() {
        check("ÜberCafé", &["übercafé", "über", "café"]);
        check("数据Parser", &["数据parser", "数据", "parser"]);
    }

    #[test]
    fn overlong_words_are_skipped() {
        let blob = "A".repeat(MAX_WORD_BYTES + 1);
        check(&format!("keep {blob} this"), &["keep", "this"]);
        let longest = "a".repeat(MAX_WORD_BYTES);
        check(&longest, &[longest.as_str()]);
    }

    #[test]
    fn parts_take_consecutive_positions_and_the_whole_word_shares_the_first() {
        let positions = tokens(CodeTokenizer::default(), "fn parse_json(x)");
        let expected = [("fn", 0), ("parse_json", 1), ("parse", 1), ("json", 2), ("x", 3)];
        let expected: Vec<(String, usize)> = expected.iter().map(|&(t, p)| (t.to_string(), p)).collect();
        assert_eq!(positions, expected);
    }

    #[test]
    fn paths_give_segments_stem_extension_and_parts() {
        check_path("crates/keyword/src/lib.rs", &["crates", "keyword", "src", "lib.rs", "lib", "rs"]);
        check_path(
            "src/indexer/index_writer.rs",
            &["src", "indexer", "index_writer.rs", "index_writer", "rs", "index", "writer"],
        );
        check_path(
            "web/components/UserProfile.test.tsx",
            &[
                "web",
                "components",
                "userprofile.test.tsx",
                "userprofile.test",
                "tsx",
                "userprofile",
                "user",
                "profile",
                "test",
            ],
        );
        check_path("Makefile", &["makefile"]);
        check_path(".github/workflows/ci.yml", &[".github", "github", "workflows", "ci.yml", "ci", "yml"]);
        check_path("a//b/", &["a", "b"]);
    }
}
