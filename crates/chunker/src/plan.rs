//! The size rule: turning a file's definitions into chunk ranges that tile the file.
//!
//! 1. **Units.** The file (or a definition being split) is cut into units that tile its lines: one per
//!    definition (leading doc comments and attributes included) and one per run of code between definitions.
//!    Definitions sharing a line share a unit. A run of blank lines joins the unit before it (the one after,
//!    at the start).
//! 2. **Pieces.** A unit within `max_lines` and `max_bytes` is one piece. A larger unit holding one definition
//!    with nested definitions (class, impl, module, namespace) is cut again into units over its lines: its
//!    header, members and tail; the header and tail keep the container's name. Any other large unit is split
//!    into overlapping line windows that keep the definition's name and number the parts.
//! 3. **Merging.** Consecutive whole pieces shorter than `merge_below_lines` are merged while the merged chunk
//!    stays within `merge_max_lines` and `max_bytes`; the merged chunk lists every symbol of its pieces.

use crate::ChunkerConfig;
use crate::chunk::{ChunkKind, ChunkPart};
use crate::syntax::{Item, LineTable};
use crate::windows::LineWindows;

/// A chunk's range and metadata, before its text and id are materialised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlannedChunk {
    pub first_row: usize,
    pub last_row: usize,
    pub start_byte: usize,
    pub end_byte: usize,
    pub kind: ChunkKind,
    pub symbol: Option<String>,
    pub symbols: Vec<String>,
    pub doc: Option<String>,
    pub part: Option<ChunkPart>,
}

/// Chunk ranges for a parsed file with top-level `items`.
pub(crate) fn plan(
    text: &str,
    lines: &LineTable,
    items: &[Item],
    config: &ChunkerConfig,
) -> Vec<PlannedChunk> {
    let planner = Planner { text, lines, config };
    let mut pieces = Vec::new();
    for unit in planner.units(0, lines.last_row(), items, None) {
        planner.pieces(unit, 0, &mut pieces);
    }
    planner.merge(pieces)
}

/// Rows `first..=last`, holding `items` (none for code between definitions), inside `owner`.
struct Unit<'i> {
    first: usize,
    last: usize,
    items: Vec<&'i Item>,
    owner: Option<&'i Item>,
}

enum Piece {
    /// A whole unit: may be merged with its neighbours.
    Whole(PlannedChunk),
    /// A window of a split unit: never merged.
    Window(PlannedChunk),
}

/// How many times a definition is cut into its members before the rest is windowed.
const MAX_NESTING: usize = 16;

struct Planner<'a> {
    text: &'a str,
    lines: &'a LineTable,
    config: &'a ChunkerConfig,
}

impl Planner<'_> {
    fn units<'i>(
        &self,
        first: usize,
        last: usize,
        items: &'i [Item],
        owner: Option<&'i Item>,
    ) -> Vec<Unit<'i>> {
        let mut units: Vec<Unit<'i>> = Vec::new();
        let mut cursor = first;
        for item in items {
            let (item_first, item_last) = (item.first_row.max(first), item.last_row.min(last));
            if item_first > item_last {
                continue;
            }
            if item_first < cursor
                && let Some(previous) = units.last_mut()
            {
                previous.last = previous.last.max(item_last);
                previous.items.push(item);
                cursor = previous.last + 1;
                continue;
            }
            if item_first > cursor {
                units.push(Unit { first: cursor, last: item_first - 1, items: Vec::new(), owner });
            }
            units.push(Unit { first: item_first.max(cursor), last: item_last, items: vec![item], owner });
            cursor = item_last + 1;
        }
        if cursor <= last {
            units.push(Unit { first: cursor, last, items: Vec::new(), owner });
        }
        self.absorb_blank_units(units)
    }

    /// Blank lines at the start of a code unit join the unit before it; a unit of blank lines only at the
    /// start of the region joins the unit after it.
    fn absorb_blank_units<'i>(&self, units: Vec<Unit<'i>>) -> Vec<Unit<'i>> {
        let mut kept: Vec<Unit<'i>> = Vec::with_capacity(units.len());
        let mut leading_blank: Option<usize> = None;
        for mut unit in units {
            if unit.items.is_empty() {
                if let Some(previous) = kept.last_mut() {
                    while unit.first <= unit.last && self.is_blank(unit.first, unit.first) {
                        previous.last = unit.first;
                        unit.first += 1;
                    }
                    if unit.first > unit.last {
                        continue;
                    }
                } else if self.is_blank(unit.first, unit.last) {
                    leading_blank = leading_blank.or(Some(unit.first));
                    continue;
                }
            }
            if let Some(first) = leading_blank.take() {
                unit.first = first;
            }
            kept.push(unit);
        }
        kept
    }

    fn is_blank(&self, first: usize, last: usize) -> bool {
        self.text
            .get(self.lines.row_start(first)..self.lines.row_end(last))
            .is_none_or(|rows| rows.trim().is_empty())
    }

    fn pieces(&self, unit: Unit<'_>, depth: usize, out: &mut Vec<Piece>) {
        let (start, end) = (self.lines.row_start(unit.first), self.lines.row_end(unit.last));
        let line_count = unit.last - unit.first + 1;
        if line_count <= self.config.max_lines && end - start <= self.config.max_bytes {
            out.push(Piece::Whole(self.whole(&unit, start, end)));
            return;
        }
        if let [item] = unit.items.as_slice()
            && !item.children.is_empty()
            && depth < MAX_NESTING
        {
            for member in self.units(unit.first, unit.last, &item.children, Some(item)) {
                self.pieces(member, depth + 1, out);
            }
            return;
        }
        self.windows(&unit, start, end, out);
    }

    fn whole(&self, unit: &Unit<'_>, start: usize, end: usize) -> PlannedChunk {
        let mut chunk = PlannedChunk {
            first_row: unit.first,
            last_row: unit.last,
            start_byte: start,
            end_byte: end,
            kind: ChunkKind::Code,
            symbol: None,
            symbols: Vec::new(),
            doc: None,
            part: None,
        };
        match (unit.items.as_slice(), unit.owner) {
            ([], None) => {}
            ([], Some(owner)) => describe(&mut chunk, owner, vec![owner.symbol.name.clone()]),
            ([item], _) => {
                let mut names = Vec::new();
                item.push_names(&mut names);
                describe(&mut chunk, item, names);
            }
            (items, _) => {
                chunk.kind = ChunkKind::Definitions;
                for item in items {
                    item.push_names(&mut chunk.symbols);
                }
            }
        }
        chunk
    }

    fn windows(&self, unit: &Unit<'_>, start: usize, end: usize, out: &mut Vec<Piece>) {
        let config = self.config;
        let mut walk = LineWindows::new(
            start,
            end,
            unit.first,
            config.window_lines,
            config.window_overlap_lines,
            config.max_bytes,
        );
        let windows: Vec<_> = std::iter::from_fn(|| walk.next_window(self.text)).collect();
        let count = windows.len();
        for (index, window) in windows.into_iter().enumerate() {
            let mut chunk = PlannedChunk {
                first_row: window.first_row,
                last_row: window.last_row,
                start_byte: window.start_byte,
                end_byte: window.end_byte,
                kind: ChunkKind::Code,
                symbol: None,
                symbols: Vec::new(),
                doc: None,
                part: (count > 1).then_some(ChunkPart { index: index + 1, count }),
            };
            let range = (window.start_byte, window.end_byte);
            match (unit.items.as_slice(), unit.owner) {
                ([], None) => {}
                ([], Some(owner)) => describe(&mut chunk, owner, vec![owner.symbol.name.clone()]),
                ([item], _) => {
                    let mut names = vec![item.symbol.name.clone()];
                    for child in &item.children {
                        push_names_within(child, range, &mut names);
                    }
                    describe(&mut chunk, item, names);
                }
                (items, _) => {
                    chunk.kind = ChunkKind::Definitions;
                    for item in items {
                        push_names_within(item, range, &mut chunk.symbols);
                    }
                }
            }
            out.push(Piece::Window(chunk));
        }
    }

    fn merge(&self, pieces: Vec<Piece>) -> Vec<PlannedChunk> {
        let config = self.config;
        let mut chunks = Vec::with_capacity(pieces.len());
        let mut group: Vec<PlannedChunk> = Vec::new();
        for piece in pieces {
            match piece {
                Piece::Window(chunk) => {
                    flush(&mut group, &mut chunks);
                    chunks.push(chunk);
                }
                Piece::Whole(chunk) => {
                    if chunk.last_row - chunk.first_row + 1 >= config.merge_below_lines {
                        flush(&mut group, &mut chunks);
                        chunks.push(chunk);
                        continue;
                    }
                    if let Some(first) = group.first() {
                        let span_lines = chunk.last_row - first.first_row + 1;
                        let span_bytes = chunk.end_byte - first.start_byte;
                        if span_lines > config.merge_max_lines || span_bytes > config.max_bytes {
                            flush(&mut group, &mut chunks);
                        }
                    }
                    group.push(chunk);
                }
            }
        }
        flush(&mut group, &mut chunks);
        chunks
    }
}

fn describe(chunk: &mut PlannedChunk, item: &Item, symbols: Vec<String>) {
    chunk.kind = item.symbol.kind.into();
    chunk.symbol = Some(item.symbol.name.clone());
    chunk.doc = item.symbol.doc.clone();
    chunk.symbols = symbols;
}

/// Names of `item` and its nested items whose definitions overlap the byte range.
fn push_names_within(item: &Item, (start, end): (usize, usize), names: &mut Vec<String>) {
    if item.symbol.start_byte < end && item.symbol.end_byte > start {
        names.push(item.symbol.name.clone());
    }
    for child in &item.children {
        push_names_within(child, (start, end), names);
    }
}

/// Emits the group of small pieces as one chunk (or as itself when alone).
fn flush(group: &mut Vec<PlannedChunk>, chunks: &mut Vec<PlannedChunk>) {
    let (Some(first), Some(last)) = (group.first(), group.last()) else {
        return;
    };
    if group.len() == 1 {
        chunks.append(group);
        return;
    }
    let mut merged = PlannedChunk {
        first_row: first.first_row,
        last_row: last.last_row,
        start_byte: first.start_byte,
        end_byte: last.end_byte,
        kind: ChunkKind::Code,
        symbol: None,
        symbols: Vec::new(),
        doc: None,
        part: None,
    };
    let mut named = group.iter().filter(|piece| piece.symbol.is_some());
    if let Some(described) = named.next() {
        if named.all(|piece| piece.symbol == described.symbol) {
            merged.kind = described.kind;
            merged.symbol = described.symbol.clone();
            merged.doc = described.doc.clone();
        } else {
            merged.kind = ChunkKind::Definitions;
        }
    }
    for piece in group.drain(..) {
        for name in piece.symbols {
            if !merged.symbols.contains(&name) {
                merged.symbols.push(name);
            }
        }
    }
    chunks.push(merged);
}
