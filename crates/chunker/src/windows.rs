//! Overlapping line windows over a byte range of text, computed lazily with memory bounded by one window.
//!
//! A window holds at most `window_lines` lines and `max_bytes` bytes. Consecutive windows share
//! `min(overlap, lines / 2)` lines, so every window advances. A single line longer than `max_bytes` (minified
//! code, data) is cut into pieces at character boundaries, without overlap. Windows that hold only whitespace
//! are skipped. Scanning never looks further than `max_bytes` ahead, so a huge one-line input costs linear time.

/// A window's position: 0-based rows (inclusive) and byte offsets (end exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub first_row: usize,
    pub last_row: usize,
    pub start_byte: usize,
    pub end_byte: usize,
}

/// The state of a window walk; the text is passed to [`LineWindows::next_window`] so that this holds no borrow.
#[derive(Debug)]
pub(crate) struct LineWindows {
    pos: usize,
    end: usize,
    row: usize,
    window_lines: usize,
    overlap_lines: usize,
    max_bytes: usize,
    /// Start offsets of the lines of the current window (reused between windows).
    line_starts: Vec<usize>,
}

impl LineWindows {
    /// Windows over `start_byte..end_byte`, whose first byte is on 0-based row `first_row`.
    pub fn new(
        start_byte: usize,
        end_byte: usize,
        first_row: usize,
        window_lines: usize,
        overlap_lines: usize,
        max_bytes: usize,
    ) -> Self {
        Self {
            pos: start_byte,
            end: end_byte,
            row: first_row,
            window_lines: window_lines.max(1),
            overlap_lines,
            max_bytes: max_bytes.max(4),
            line_starts: Vec::new(),
        }
    }

    /// The next window holding something other than whitespace.
    pub fn next_window(&mut self, text: &str) -> Option<Window> {
        loop {
            let window = self.next_raw(text)?;
            let content = text.get(window.start_byte..window.end_byte).unwrap_or_default();
            if !content.trim().is_empty() {
                return Some(window);
            }
        }
    }

    fn next_raw(&mut self, text: &str) -> Option<Window> {
        let end = self.end.min(text.len());
        if self.pos >= end {
            return None;
        }
        let bytes = text.as_bytes();
        let start = self.pos;
        let budget_end = end.min(start.saturating_add(self.max_bytes));
        self.line_starts.clear();
        let mut cursor = start;
        while cursor < end && self.line_starts.len() < self.window_lines {
            let search = bytes.get(cursor..budget_end).unwrap_or_default();
            match search.iter().position(|&b| b == b'\n') {
                Some(offset) => {
                    self.line_starts.push(cursor);
                    cursor += offset + 1;
                }
                None if budget_end == end => {
                    self.line_starts.push(cursor);
                    cursor = end;
                }
                None if self.line_starts.is_empty() => {
                    // One line longer than the byte budget: cut it at a character boundary.
                    let cut = piece_end(text, start, budget_end, end);
                    self.pos = cut;
                    return Some(Window {
                        first_row: self.row,
                        last_row: self.row,
                        start_byte: start,
                        end_byte: cut,
                    });
                }
                None => break,
            }
        }
        let lines = self.line_starts.len();
        let window = Window {
            first_row: self.row,
            last_row: self.row + lines.saturating_sub(1),
            start_byte: start,
            end_byte: cursor,
        };
        if cursor >= end {
            self.pos = end;
        } else {
            let overlap = self.overlap_lines.min(lines / 2);
            let next = lines - overlap;
            self.pos = self.line_starts.get(next).copied().unwrap_or(cursor);
            self.row += next;
        }
        Some(window)
    }
}

/// The end of a piece of an over-long line: the last character boundary at or before `budget_end`, but at
/// least one character past `start`.
fn piece_end(text: &str, start: usize, budget_end: usize, end: usize) -> usize {
    let mut cut = budget_end;
    while cut > start && !text.is_char_boundary(cut) {
        cut -= 1;
    }
    if cut == start {
        cut = start + 1;
        while cut < end && !text.is_char_boundary(cut) {
            cut += 1;
        }
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(text: &str, lines: usize, overlap: usize, max_bytes: usize) -> Vec<(usize, usize, String)> {
        let mut walk = LineWindows::new(0, text.len(), 0, lines, overlap, max_bytes);
        std::iter::from_fn(|| walk.next_window(text))
            .map(|w| (w.first_row, w.last_row, text[w.start_byte..w.end_byte].to_owned()))
            .collect()
    }

    #[test]
    fn consecutive_windows_share_the_overlap() {
        let text = "a\nb\nc\nd\ne\nf\ng\n";
        assert_eq!(
            windows(text, 4, 2, 100),
            vec![(0, 3, "a\nb\nc\nd\n".into()), (2, 5, "c\nd\ne\nf\n".into()), (4, 6, "e\nf\ng\n".into())]
        );
    }

    #[test]
    fn byte_budget_ends_a_window_early_and_halves_the_overlap() {
        let text = "aaaa\nbbbb\ncccc\ndddd\n";
        // 10 bytes hold two lines; an overlap of 3 shrinks to one line.
        assert_eq!(
            windows(text, 10, 3, 10),
            vec![(0, 1, "aaaa\nbbbb\n".into()), (1, 2, "bbbb\ncccc\n".into()), (2, 3, "cccc\ndddd\n".into())]
        );
    }

    #[test]
    fn an_over_long_line_is_cut_at_character_boundaries() {
        let text = "ééééé\nx";
        let got = windows(text, 10, 2, 4);
        assert_eq!(got, vec![(0, 0, "éé".into()), (0, 0, "éé".into()), (0, 1, "é\nx".into())]);
    }

    #[test]
    fn whitespace_only_windows_are_skipped() {
        let text = "a\n\n\n\n\n\n\nb";
        assert_eq!(windows(text, 2, 0, 100), vec![(0, 1, "a\n\n".into()), (6, 7, "\nb".into())]);
    }
}
