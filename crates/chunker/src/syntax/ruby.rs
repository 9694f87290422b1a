//! Ruby: classes and modules (named `Outer::Inner`), instance methods (`Class#method`) and singleton methods
//! (`Class.method`, including those in `class << self`).

use tree_sitter::Node;

use super::{Definition, NodeRole, Scope, field_text};
use crate::chunk::SymbolKind;

pub(super) fn classify<'t>(node: Node<'t>, src: &str, scope: &Scope) -> NodeRole<'t> {
    match node.kind() {
        "class" | "module" => {
            let kind = if node.kind() == "class" { SymbolKind::Class } else { SymbolKind::Module };
            match field_text(node, "name", src) {
                Some(name) => NodeRole::Definition(
                    Definition::new(kind, scope.qualify("::", &name))
                        .with_body(node.child_by_field_name("body")),
                ),
                None => NodeRole::Skip,
            }
        }
        "method" => {
            let Some(name) = field_text(node, "name", src) else {
                return NodeRole::Skip;
            };
            if scope.prefix.is_none() {
                return NodeRole::Definition(Definition::new(SymbolKind::Function, name));
            }
            let separator = if in_singleton_class(node) { "." } else { "#" };
            NodeRole::Definition(Definition::new(SymbolKind::Method, scope.qualify(separator, &name)))
        }
        "singleton_method" => {
            let Some(name) = field_text(node, "name", src) else {
                return NodeRole::Skip;
            };
            let name = match field_text(node, "object", src) {
                Some(object) if object != "self" => format!("{object}.{name}"),
                _ => scope.qualify(".", &name),
            };
            NodeRole::Definition(Definition::new(SymbolKind::Method, name))
        }
        "singleton_class" => node.child_by_field_name("body").map_or(NodeRole::Skip, NodeRole::Transparent),
        "ERROR" => NodeRole::Transparent(node),
        _ => NodeRole::Skip,
    }
}

/// Whether a `def` sits directly in a `class << self` block.
fn in_singleton_class(node: Node<'_>) -> bool {
    let parent = node.parent();
    let parent = match parent {
        Some(p) if p.kind() == "body_statement" => p.parent(),
        other => other,
    };
    parent.is_some_and(|p| p.kind() == "singleton_class")
}
