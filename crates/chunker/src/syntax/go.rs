//! Go: functions, methods (named `Receiver.Method`), struct, interface and other type declarations.

use tree_sitter::Node;

use super::{Definition, NodeRole, Scope, field_text, text};
use crate::chunk::SymbolKind;

pub(super) fn classify<'t>(node: Node<'t>, src: &str, _scope: &Scope) -> NodeRole<'t> {
    match node.kind() {
        "function_declaration" => definition(node, src, SymbolKind::Function, None),
        "method_declaration" => definition(node, src, SymbolKind::Method, receiver_type(node, src)),
        "type_declaration" => {
            let mut cursor = node.walk();
            let specs = node
                .named_children(&mut cursor)
                .filter(|child| matches!(child.kind(), "type_spec" | "type_alias"))
                .collect::<Vec<_>>();
            match specs.as_slice() {
                [single] => NodeRole::Wrapper(*single),
                _ => NodeRole::Transparent(node),
            }
        }
        "type_spec" => {
            let kind = match node.child_by_field_name("type").map(|t| t.kind()) {
                Some("struct_type") => SymbolKind::Struct,
                Some("interface_type") => SymbolKind::Interface,
                _ => SymbolKind::TypeAlias,
            };
            definition(node, src, kind, None)
        }
        "type_alias" => definition(node, src, SymbolKind::TypeAlias, None),
        "ERROR" => NodeRole::Transparent(node),
        _ => NodeRole::Skip,
    }
}

fn definition<'t>(node: Node<'t>, src: &str, kind: SymbolKind, receiver: Option<String>) -> NodeRole<'t> {
    match field_text(node, "name", src) {
        Some(name) => NodeRole::Definition(Definition::new(
            kind,
            match receiver {
                Some(receiver) => format!("{receiver}.{name}"),
                None => name,
            },
        )),
        None => NodeRole::Skip,
    }
}

/// `(q *Queue)` → `Queue`; `(l List[T])` → `List`.
fn receiver_type(node: Node<'_>, src: &str) -> Option<String> {
    let receiver = node.child_by_field_name("receiver")?;
    let mut cursor = receiver.walk();
    let parameter = receiver.named_children(&mut cursor).find(|p| p.kind() == "parameter_declaration")?;
    let type_text = text(parameter.child_by_field_name("type")?, src);
    let base = type_text.trim_start_matches(['*', ' ']).split('[').next()?.trim();
    (!base.is_empty()).then(|| base.to_owned())
}
