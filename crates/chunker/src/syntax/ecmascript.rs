//! JavaScript, TypeScript and TSX: functions (declared or bound to a `const`), classes and their methods,
//! interfaces, type aliases, enums and namespaces, through `export` and `declare` wrappers.

use tree_sitter::Node;

use super::{Definition, NodeRole, Scope, field_text, first_named_non_comment, text};
use crate::chunk::SymbolKind;

pub(super) fn classify<'t>(node: Node<'t>, src: &str, scope: &Scope) -> NodeRole<'t> {
    let named = |kind: SymbolKind, body: Option<Node<'t>>| match field_text(node, "name", src) {
        Some(name) => NodeRole::Definition(Definition::new(kind, scope.qualify(".", &name)).with_body(body)),
        None => NodeRole::Skip,
    };
    match node.kind() {
        "function_declaration" | "generator_function_declaration" | "function_signature" => {
            named(SymbolKind::Function, None)
        }
        "class_declaration" | "abstract_class_declaration" => {
            named(SymbolKind::Class, node.child_by_field_name("body"))
        }
        "method_definition" | "method_signature" | "abstract_method_signature" if scope.in_type() => {
            named(SymbolKind::Method, None)
        }
        "public_field_definition" | "field_definition" if scope.in_type() => {
            match node.child_by_field_name("value").map(|value| value.kind()) {
                Some("arrow_function" | "function_expression" | "function") => {
                    let name =
                        node.child_by_field_name("name").or_else(|| node.child_by_field_name("property"));
                    match name {
                        Some(name) => NodeRole::Definition(Definition::new(
                            SymbolKind::Method,
                            scope.qualify(".", text(name, src)),
                        )),
                        None => NodeRole::Skip,
                    }
                }
                _ => NodeRole::Skip,
            }
        }
        "interface_declaration" => named(SymbolKind::Interface, None),
        "type_alias_declaration" => named(SymbolKind::TypeAlias, None),
        "enum_declaration" => named(SymbolKind::Enum, None),
        "internal_module" | "module" => match field_text(node, "name", src) {
            Some(name) => {
                let name = name.trim_matches(['"', '\'']).to_owned();
                NodeRole::Definition(
                    Definition::new(SymbolKind::Module, scope.qualify(".", &name))
                        .with_body(node.child_by_field_name("body")),
                )
            }
            None => NodeRole::Skip,
        },
        "lexical_declaration" | "variable_declaration" if !scope.in_type() => {
            bound_function(node, src, scope)
        }
        "export_statement" => {
            node.child_by_field_name("declaration").map_or(NodeRole::Skip, NodeRole::Wrapper)
        }
        "ambient_declaration" => first_named_non_comment(node).map_or(NodeRole::Skip, NodeRole::Wrapper),
        "expression_statement" => match first_named_non_comment(node) {
            Some(inner) if matches!(inner.kind(), "internal_module" | "module") => NodeRole::Wrapper(inner),
            _ => NodeRole::Skip,
        },
        "ERROR" => NodeRole::Transparent(node),
        _ => NodeRole::Skip,
    }
}

/// `const name = (…) => …`, `let name = function …`, `const Name = class …`: the first declarator decides.
fn bound_function<'t>(node: Node<'t>, src: &str, scope: &Scope) -> NodeRole<'t> {
    let mut cursor = node.walk();
    let Some(declarator) =
        node.named_children(&mut cursor).find(|child| child.kind() == "variable_declarator")
    else {
        return NodeRole::Skip;
    };
    let (Some(name), Some(value)) =
        (declarator.child_by_field_name("name"), declarator.child_by_field_name("value"))
    else {
        return NodeRole::Skip;
    };
    if name.kind() != "identifier" {
        return NodeRole::Skip;
    }
    let kind = match value.kind() {
        "arrow_function" | "function_expression" | "function" | "generator_function" => SymbolKind::Function,
        "class" => SymbolKind::Class,
        _ => return NodeRole::Skip,
    };
    let body = if kind == SymbolKind::Class { value.child_by_field_name("body") } else { None };
    NodeRole::Definition(Definition::new(kind, scope.qualify(".", text(name, src))).with_body(body))
}
