//! Extraction of definitions from a tree-sitter syntax tree: the grammar table, the walk shared by all
//! languages, and leading-comment handling. Each language module only says what a node *is*
//! ([`NodeRole`]); this module does the rest.

mod c_family;
mod ecmascript;
mod go;
mod java;
mod python;
mod ruby;
mod rust;

use tree_sitter::Node;

use crate::chunk::{Symbol, SymbolKind};
use crate::doc;
use crate::language::Language;

/// A tree-sitter grammar ledge ships. Several [`Language`]s could share one; today it is one to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grammar {
    Rust,
    Python,
    JavaScript,
    TypeScript,
    Tsx,
    Go,
    Java,
    C,
    Cpp,
    Ruby,
}

impl Grammar {
    pub const COUNT: usize = 10;

    pub fn for_language(language: Language) -> Option<Self> {
        Some(match language {
            Language::Rust => Self::Rust,
            Language::Python => Self::Python,
            Language::JavaScript => Self::JavaScript,
            Language::TypeScript => Self::TypeScript,
            Language::Tsx => Self::Tsx,
            Language::Go => Self::Go,
            Language::Java => Self::Java,
            Language::C => Self::C,
            Language::Cpp => Self::Cpp,
            Language::Ruby => Self::Ruby,
            _ => return None,
        })
    }

    /// Dense index for per-grammar tables.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The grammar's parse tables (static data in the grammar crate; this only wraps a pointer).
    pub fn tree_sitter_language(self) -> tree_sitter::Language {
        match self {
            Self::Rust => tree_sitter_rust::LANGUAGE.into(),
            Self::Python => tree_sitter_python::LANGUAGE.into(),
            Self::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Self::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Self::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Self::Go => tree_sitter_go::LANGUAGE.into(),
            Self::Java => tree_sitter_java::LANGUAGE.into(),
            Self::C => tree_sitter_c::LANGUAGE.into(),
            Self::Cpp => tree_sitter_cpp::LANGUAGE.into(),
            Self::Ruby => tree_sitter_ruby::LANGUAGE.into(),
        }
    }

    fn classify<'t>(self, node: Node<'t>, src: &str, scope: &Scope) -> NodeRole<'t> {
        match self {
            Self::Rust => rust::classify(node, src, scope),
            Self::Python => python::classify(node, src, scope),
            Self::JavaScript | Self::TypeScript | Self::Tsx => ecmascript::classify(node, src, scope),
            Self::Go => go::classify(node, src, scope),
            Self::Java => java::classify(node, src, scope),
            Self::C | Self::Cpp => c_family::classify(node, src, scope),
            Self::Ruby => ruby::classify(node, src, scope),
        }
    }
}

/// What a syntax node is, as far as chunking cares.
pub(crate) enum NodeRole<'t> {
    /// Not a definition: it stays in the surrounding code.
    Skip,
    /// Not a definition itself, but definitions may sit among this node's named children (error nodes,
    /// `#ifdef` blocks, `extern "C" { }`, grouped Go type specs).
    Transparent(Node<'t>),
    /// Wraps a definition (`export`, decorators, `template <…>`): the wrapper's extent and leading comments
    /// belong to the inner definition.
    Wrapper(Node<'t>),
    Definition(Definition<'t>),
}

/// A definition as a language module describes it.
pub(crate) struct Definition<'t> {
    pub kind: SymbolKind,
    /// The qualified name (see [`Symbol::name`]).
    pub name: String,
    /// The node whose named children may hold nested definitions (class bodies, impl blocks, namespaces).
    pub body: Option<Node<'t>>,
    /// The prefix nested definitions are qualified with, when it differs from `name` (Rust trait impls).
    pub child_scope: Option<String>,
    /// A docstring found inside the definition (Python); otherwise leading comments are used.
    pub docstring: Option<String>,
}

impl<'t> Definition<'t> {
    pub fn new(kind: SymbolKind, name: String) -> Self {
        Self { kind, name, body: None, child_scope: None, docstring: None }
    }

    pub fn with_body(mut self, body: Option<Node<'t>>) -> Self {
        self.body = body;
        self
    }
}

/// Where a node sits: the qualified name and kind of the enclosing definition.
#[derive(Debug, Default, Clone)]
pub(crate) struct Scope {
    pub prefix: Option<String>,
    pub container: Option<SymbolKind>,
}

impl Scope {
    /// `name` qualified with the enclosing definition's name, joined by `separator`.
    pub fn qualify(&self, separator: &str, name: &str) -> String {
        match &self.prefix {
            Some(prefix) => format!("{prefix}{separator}{name}"),
            None => name.to_owned(),
        }
    }

    /// Whether a function here is a member of a type.
    pub fn in_type(&self) -> bool {
        self.container.is_some_and(SymbolKind::is_type)
    }

    pub fn function_kind(&self) -> SymbolKind {
        if self.in_type() { SymbolKind::Method } else { SymbolKind::Function }
    }
}

/// A definition found in the tree, with what chunking needs: its rows including leading comments and
/// attributes, and the definitions nested in it.
#[derive(Debug)]
pub(crate) struct Item {
    pub symbol: Symbol,
    /// 0-based first row of the item's chunk: leading doc comments and attributes included.
    pub first_row: usize,
    /// 0-based last row (inclusive).
    pub last_row: usize,
    pub children: Vec<Item>,
}

impl Item {
    /// This item's name followed by the names of all nested items, outer first.
    pub fn push_names(&self, names: &mut Vec<String>) {
        names.push(self.symbol.name.clone());
        for child in &self.children {
            child.push_names(names);
        }
    }

    fn push_symbols(&self, symbols: &mut Vec<Symbol>) {
        symbols.push(self.symbol.clone());
        for child in &self.children {
            child.push_symbols(symbols);
        }
    }
}

/// All symbols of `items`, in document order, outer before inner.
pub(crate) fn flatten_symbols(items: &[Item]) -> Vec<Symbol> {
    let mut symbols = Vec::new();
    for item in items {
        item.push_symbols(&mut symbols);
    }
    symbols
}

/// Byte offsets of the start of every line; row `r` spans `starts[r]..starts[r + 1]` (or to the end).
#[derive(Debug)]
pub(crate) struct LineTable {
    starts: Vec<usize>,
    len: usize,
}

impl LineTable {
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.bytes().enumerate().filter(|&(i, b)| b == b'\n' && i + 1 < text.len()).map(|(i, _)| i + 1),
        );
        Self { starts, len: text.len() }
    }

    pub fn last_row(&self) -> usize {
        self.starts.len() - 1
    }

    pub fn row_start(&self, row: usize) -> usize {
        self.starts.get(row).copied().unwrap_or(self.len)
    }

    /// The byte just past row `row`, its newline included.
    pub fn row_end(&self, row: usize) -> usize {
        self.starts.get(row + 1).copied().unwrap_or(self.len)
    }
}

/// How deep the walk descends through nested containers and wrappers; deeper definitions stay inside their
/// enclosing chunk. Bounds recursion on adversarial input.
const MAX_DEPTH: usize = 48;

/// Walks a syntax tree and returns its top-level items with their nested items.
pub(crate) fn extract(grammar: Grammar, root: Node<'_>, src: &str, lines: &LineTable) -> Vec<Item> {
    let extractor = Extractor { grammar, src, lines };
    let mut items = Vec::new();
    extractor.collect(root, &Scope::default(), 0, &mut items);
    items
}

struct Extractor<'s> {
    grammar: Grammar,
    src: &'s str,
    lines: &'s LineTable,
}

impl Extractor<'_> {
    fn collect(&self, container: Node<'_>, scope: &Scope, depth: usize, out: &mut Vec<Item>) {
        let mut cursor = container.walk();
        for child in container.named_children(&mut cursor) {
            if !is_comment(child.kind()) {
                self.visit(child, child, scope, depth, out);
            }
        }
    }

    fn visit(&self, node: Node<'_>, anchor: Node<'_>, scope: &Scope, depth: usize, out: &mut Vec<Item>) {
        if depth > MAX_DEPTH {
            return;
        }
        match self.grammar.classify(node, self.src, scope) {
            NodeRole::Skip => {}
            NodeRole::Transparent(inner) => self.collect(inner, scope, depth + 1, out),
            NodeRole::Wrapper(inner) => self.visit(inner, anchor, scope, depth + 1, out),
            NodeRole::Definition(definition) => out.push(self.item(definition, anchor, depth)),
        }
    }

    fn item(&self, definition: Definition<'_>, anchor: Node<'_>, depth: usize) -> Item {
        let Definition { kind, name, body, child_scope, docstring } = definition;
        let mut children = Vec::new();
        if let Some(body) = body {
            let inner =
                Scope { prefix: Some(child_scope.unwrap_or_else(|| name.clone())), container: Some(kind) };
            self.collect(body, &inner, depth + 1, &mut children);
        }
        let start_row = anchor.start_position().row.min(self.lines.last_row());
        let last_row = last_row(anchor).clamp(start_row, self.lines.last_row());
        let (first_row, comments) = self.leading(anchor, start_row);
        let doc = docstring.or_else(|| doc::from_comments(comments.iter().rev().copied()));
        Item {
            symbol: Symbol {
                name,
                kind,
                doc,
                start_line: start_row + 1,
                end_line: last_row + 1,
                start_byte: anchor.start_byte(),
                end_byte: anchor.end_byte(),
            },
            first_row,
            last_row,
            children,
        }
    }

    /// The first row of the comments and attributes directly above `anchor` (no blank line between, each
    /// starting its own line), and the comments' texts, nearest first.
    fn leading(&self, anchor: Node<'_>, start_row: usize) -> (usize, Vec<&str>) {
        let mut first_row = start_row;
        let mut comments = Vec::new();
        let mut sibling = anchor.prev_sibling();
        while let Some(node) = sibling {
            let kind = node.kind();
            let comment = is_comment(kind);
            if !(comment || is_attribute(kind)) {
                break;
            }
            let text = self.text(node);
            if comment && doc::is_inner_doc(text) {
                break;
            }
            let row = node.start_position().row;
            if last_row(node) + 1 < first_row || !self.starts_its_line(node, row) {
                break;
            }
            first_row = row.min(first_row);
            if comment {
                comments.push(text);
            }
            sibling = node.prev_sibling();
        }
        (first_row, comments)
    }

    fn starts_its_line(&self, node: Node<'_>, row: usize) -> bool {
        self.src
            .get(self.lines.row_start(row)..node.start_byte())
            .is_some_and(|before| before.trim().is_empty())
    }

    fn text(&self, node: Node<'_>) -> &str {
        text(node, self.src)
    }
}

/// The last row a node occupies: a node ending right after a newline ends on the previous row.
pub(crate) fn last_row(node: Node<'_>) -> usize {
    let (start, end) = (node.start_position(), node.end_position());
    if end.column == 0 && end.row > start.row { end.row - 1 } else { end.row }
}

fn is_comment(kind: &str) -> bool {
    kind.ends_with("comment")
}

/// Annotations written as siblings before a definition: Rust `#[…]`, C++ `[[…]]`, TypeScript decorators on
/// class members.
fn is_attribute(kind: &str) -> bool {
    matches!(kind, "attribute_item" | "attribute_declaration" | "decorator")
}

/// The source text of a node ("" if its range is not on character boundaries, which tree-sitter avoids).
pub(crate) fn text<'s>(node: Node<'_>, src: &'s str) -> &'s str {
    src.get(node.byte_range()).unwrap_or_default()
}

/// The text of a node's field, with runs of whitespace collapsed to one space.
pub(crate) fn field_text(node: Node<'_>, field: &str, src: &str) -> Option<String> {
    let child = node.child_by_field_name(field)?;
    let name = compact(text(child, src));
    (!name.is_empty()).then_some(name)
}

/// Collapses runs of whitespace (names spanning lines, `operator ==`) to single spaces.
pub(crate) fn compact(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first named child that is not a comment.
pub(crate) fn first_named_non_comment(node: Node<'_>) -> Option<Node<'_>> {
    let mut cursor = node.walk();
    node.named_children(&mut cursor).find(|child| !is_comment(child.kind()))
}
