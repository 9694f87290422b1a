//! Rust: functions, methods, structs, enums, unions, traits, impls, modules, type aliases and `macro_rules!`.

use tree_sitter::Node;

use super::{Definition, NodeRole, Scope, compact, field_text, text};
use crate::chunk::SymbolKind;

pub(super) fn classify<'t>(node: Node<'t>, src: &str, scope: &Scope) -> NodeRole<'t> {
    let named = |kind: SymbolKind| match field_text(node, "name", src) {
        Some(name) => NodeRole::Definition(
            Definition::new(kind, scope.qualify("::", &name)).with_body(node.child_by_field_name("body")),
        ),
        None => NodeRole::Skip,
    };
    match node.kind() {
        "function_item" | "function_signature_item" => named(scope.function_kind()),
        "struct_item" => named(SymbolKind::Struct),
        "enum_item" => named(SymbolKind::Enum),
        "union_item" => named(SymbolKind::Union),
        "trait_item" => named(SymbolKind::Trait),
        "type_item" => named(SymbolKind::TypeAlias),
        "mod_item" => named(SymbolKind::Module),
        "macro_definition" => named(SymbolKind::Macro),
        "impl_item" => implementation(node, src, scope),
        "foreign_mod_item" => node.child_by_field_name("body").map_or(NodeRole::Skip, NodeRole::Transparent),
        "ERROR" => NodeRole::Transparent(node),
        _ => NodeRole::Skip,
    }
}

/// `impl Type` is named `Type`; `impl Trait for Type` is named `<Type as Trait>`. Methods of both are
/// `Type::method`.
fn implementation<'t>(node: Node<'t>, src: &str, scope: &Scope) -> NodeRole<'t> {
    let Some(self_type) = node.child_by_field_name("type") else {
        return NodeRole::Skip;
    };
    let self_type = scope.qualify("::", &without_generics(text(self_type, src)));
    let name = match node.child_by_field_name("trait") {
        Some(trait_node) => format!("<{self_type} as {}>", compact(text(trait_node, src))),
        None => self_type.clone(),
    };
    let mut definition = Definition::new(SymbolKind::Impl, name).with_body(node.child_by_field_name("body"));
    definition.child_scope = Some(self_type);
    NodeRole::Definition(definition)
}

/// `LruCache<V>` → `LruCache`; keeps the text when nothing precedes the generics.
fn without_generics(type_text: &str) -> String {
    let base = type_text.split('<').next().unwrap_or(type_text).trim();
    compact(if base.is_empty() { type_text } else { base })
}
