//! Turning comment blocks and docstrings into clean documentation text: markers, quotes and common
//! indentation removed.

/// Whether a comment documents its *enclosing* item (Rust `//!`, `/*!`) rather than the next one.
pub(crate) fn is_inner_doc(comment: &str) -> bool {
    comment.starts_with("//!") || comment.starts_with("/*!")
}

/// The documentation text of consecutive comments (in source order), or `None` when it is empty.
pub(crate) fn from_comments<'a>(comments: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut lines = Vec::new();
    for comment in comments {
        comment_lines(comment.trim_end(), &mut lines);
    }
    finish(lines)
}

fn comment_lines<'a>(comment: &'a str, out: &mut Vec<&'a str>) {
    if let Some(inner) = comment.strip_prefix("/*").and_then(|c| c.strip_suffix("*/")) {
        let inner = inner.strip_prefix(['*', '!']).unwrap_or(inner);
        for line in inner.lines() {
            let line = line.trim_start();
            let line = if line.starts_with("*/") { line } else { line.strip_prefix('*').unwrap_or(line) };
            out.push(strip_one_space(line).trim_end());
        }
    } else if comment.starts_with("=begin") {
        // Ruby block comment: drop the `=begin` and `=end` lines.
        out.extend(comment.lines().skip(1).filter(|line| !line.starts_with("=end")).map(str::trim_end));
    } else {
        for line in comment.lines() {
            let line = line.trim_start();
            let line =
                ["///", "//!", "//", "#"].iter().find_map(|marker| line.strip_prefix(marker)).unwrap_or(line);
            out.push(strip_one_space(line).trim_end());
        }
    }
}

fn strip_one_space(line: &str) -> &str {
    line.strip_prefix(' ').unwrap_or(line)
}

/// The text of a Python docstring literal: prefixes and quotes removed, then cleaned like `inspect.cleandoc`
/// (first line stripped, the rest dedented).
pub(crate) fn from_docstring(literal: &str) -> Option<String> {
    let literal = literal.trim_start_matches(|c: char| "rRuUbBfF".contains(c));
    let body = ["\"\"\"", "'''", "\"", "'"]
        .iter()
        .find_map(|quote| literal.strip_prefix(quote).and_then(|rest| rest.strip_suffix(quote)))?;
    let mut lines: Vec<&str> = body.lines().collect();
    if let Some(first) = lines.first_mut() {
        *first = first.trim();
    }
    let indent = lines
        .iter()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    let lines = lines
        .iter()
        .enumerate()
        .map(|(i, line)| if i == 0 { line } else { line.get(indent..).unwrap_or_else(|| line.trim_start()) })
        .map(|line| line.trim_end())
        .collect();
    finish(lines)
}

/// Drops blank lines at both ends and the indentation common to all lines; `None` when nothing is left.
fn finish(lines: Vec<&str>) -> Option<String> {
    let first = lines.iter().position(|line| !line.trim().is_empty())?;
    let last = lines.iter().rposition(|line| !line.trim().is_empty())?;
    let lines = &lines[first..=last];
    let indent = lines
        .iter()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut doc = String::new();
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            doc.push('\n');
        }
        doc.push_str(line.get(indent..).unwrap_or_else(|| line.trim_start()));
    }
    Some(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_comments_lose_their_markers() {
        assert_eq!(
            from_comments(["/// Creates a cache.\n", "///\n", "/// Evicts oldest.\n"]).as_deref(),
            Some("Creates a cache.\n\nEvicts oldest.")
        );
        assert_eq!(
            from_comments(["# Sends mail.", "#   indented"]).as_deref(),
            Some("Sends mail.\n  indented")
        );
        assert_eq!(from_comments(["// ", "//"]), None);
    }

    #[test]
    fn block_comments_lose_their_frame_and_stars() {
        let javadoc = "/**\n     * Adds a line.\n     * @param line the line\n     */";
        assert_eq!(from_comments([javadoc]).as_deref(), Some("Adds a line.\n@param line the line"));
        assert_eq!(from_comments(["/* A ring. */"]).as_deref(), Some("A ring."));
        assert_eq!(from_comments(["/**/"]), None);
    }

    #[test]
    fn docstrings_are_dedented_like_cleandoc() {
        let literal = "r\"\"\"Reads an inventory.\n\n        One item per line.\n    \"\"\"";
        assert_eq!(from_docstring(literal).as_deref(), Some("Reads an inventory.\n\nOne item per line."));
        assert_eq!(from_docstring("'''All items.'''").as_deref(), Some("All items."));
        assert_eq!(from_docstring("\"\""), None);
    }
}
