//! Java: classes, interfaces, enums, records, annotation types (nested ones included), methods and
//! constructors, named `Outer.Inner.method`.

use tree_sitter::Node;

use super::{Definition, NodeRole, Scope, field_text};
use crate::chunk::SymbolKind;

pub(super) fn classify<'t>(node: Node<'t>, src: &str, scope: &Scope) -> NodeRole<'t> {
    let kind = match node.kind() {
        "class_declaration" | "record_declaration" => SymbolKind::Class,
        "interface_declaration" | "annotation_type_declaration" => SymbolKind::Interface,
        "enum_declaration" => SymbolKind::Enum,
        "method_declaration" | "constructor_declaration" | "compact_constructor_declaration" => {
            SymbolKind::Method
        }
        "enum_body_declarations" | "ERROR" => return NodeRole::Transparent(node),
        _ => return NodeRole::Skip,
    };
    match field_text(node, "name", src) {
        Some(name) => {
            let body = if kind == SymbolKind::Method { None } else { node.child_by_field_name("body") };
            NodeRole::Definition(Definition::new(kind, scope.qualify(".", &name)).with_body(body))
        }
        None => NodeRole::Skip,
    }
}
