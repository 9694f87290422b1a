//! Python: functions, methods, classes (nested ones included), decorators and docstrings.

use tree_sitter::Node;

use super::{Definition, NodeRole, Scope, field_text, first_named_non_comment, text};
use crate::chunk::SymbolKind;
use crate::doc;

pub(super) fn classify<'t>(node: Node<'t>, src: &str, scope: &Scope) -> NodeRole<'t> {
    let kind = match node.kind() {
        "function_definition" => scope.function_kind(),
        "class_definition" => SymbolKind::Class,
        "decorated_definition" => {
            return node.child_by_field_name("definition").map_or(NodeRole::Skip, NodeRole::Wrapper);
        }
        "ERROR" => return NodeRole::Transparent(node),
        _ => return NodeRole::Skip,
    };
    let Some(name) = field_text(node, "name", src) else {
        return NodeRole::Skip;
    };
    let body = node.child_by_field_name("body");
    let mut definition = Definition::new(kind, scope.qualify(".", &name));
    definition.docstring = body.and_then(|body| docstring(body, src));
    if kind == SymbolKind::Class {
        definition.body = body;
    }
    NodeRole::Definition(definition)
}

/// The docstring: a string literal as the first statement of the body.
fn docstring(body: Node<'_>, src: &str) -> Option<String> {
    let statement = first_named_non_comment(body)?;
    if statement.kind() != "expression_statement" || statement.named_child_count() != 1 {
        return None;
    }
    let literal = statement.named_child(0)?;
    if literal.kind() != "string" {
        return None;
    }
    doc::from_docstring(text(literal, src))
}
