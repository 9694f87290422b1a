//! C and C++: functions and prototypes, structs, unions, enums, classes (with methods), typedefs and `using`
//! aliases, namespaces and templates, looking through `#if`/`#ifdef` blocks and `extern "C"`.

use tree_sitter::Node;

use super::{Definition, NodeRole, Scope, compact, field_text, first_named_non_comment, text};
use crate::chunk::SymbolKind;

pub(super) fn classify<'t>(node: Node<'t>, src: &str, scope: &Scope) -> NodeRole<'t> {
    match node.kind() {
        "function_definition" => {
            match node.child_by_field_name("declarator").and_then(|d| declarator_name(d, src)) {
                Some(name) => NodeRole::Definition(Definition::new(
                    function_kind(&name, scope),
                    scope.qualify("::", &name),
                )),
                None => NodeRole::Skip,
            }
        }
        "declaration" | "field_declaration" => {
            if let Some(aggregate) = aggregate_with_body(node) {
                return NodeRole::Wrapper(aggregate);
            }
            let prototype = node
                .child_by_field_name("declarator")
                .filter(|declarator| is_function_declarator(*declarator))
                .and_then(|declarator| declarator_name(declarator, src));
            match prototype {
                Some(name) => NodeRole::Definition(Definition::new(
                    function_kind(&name, scope),
                    scope.qualify("::", &name),
                )),
                None => NodeRole::Skip,
            }
        }
        "type_definition" => type_definition(node, src, scope),
        "struct_specifier" | "union_specifier" | "enum_specifier" | "class_specifier" => {
            let body = node.child_by_field_name("body");
            match (body, field_text(node, "name", src)) {
                (Some(body), Some(name)) => NodeRole::Definition(
                    Definition::new(aggregate_kind(node.kind()), scope.qualify("::", &name))
                        .with_body(Some(body)),
                ),
                _ => NodeRole::Skip,
            }
        }
        "namespace_definition" => {
            let body = node.child_by_field_name("body");
            match field_text(node, "name", src) {
                Some(name) => NodeRole::Definition(
                    Definition::new(SymbolKind::Module, scope.qualify("::", &name)).with_body(body),
                ),
                // An anonymous namespace adds no name.
                None => body.map_or(NodeRole::Skip, NodeRole::Transparent),
            }
        }
        "alias_declaration" => match field_text(node, "name", src) {
            Some(name) => {
                NodeRole::Definition(Definition::new(SymbolKind::TypeAlias, scope.qualify("::", &name)))
            }
            None => NodeRole::Skip,
        },
        "template_declaration" => {
            let mut cursor = node.walk();
            let inner = node.named_children(&mut cursor).find(|child| {
                !matches!(child.kind(), "template_parameter_list" | "requires_clause")
                    && !child.kind().ends_with("comment")
            });
            inner.map_or(NodeRole::Skip, NodeRole::Wrapper)
        }
        "linkage_specification" => match node.child_by_field_name("body") {
            Some(body) if body.kind() == "declaration_list" => NodeRole::Transparent(body),
            Some(body) => NodeRole::Wrapper(body),
            None => NodeRole::Skip,
        },
        "preproc_if" | "preproc_ifdef" | "preproc_else" | "preproc_elif" | "preproc_elifdef" | "ERROR" => {
            NodeRole::Transparent(node)
        }
        _ => NodeRole::Skip,
    }
}

/// Functions inside a class body are methods, and so are out-of-line definitions like `Type::method`.
fn function_kind(name: &str, scope: &Scope) -> SymbolKind {
    if scope.in_type() || name.contains("::") { SymbolKind::Method } else { SymbolKind::Function }
}

fn aggregate_kind(node_kind: &str) -> SymbolKind {
    match node_kind {
        "union_specifier" => SymbolKind::Union,
        "enum_specifier" => SymbolKind::Enum,
        "class_specifier" => SymbolKind::Class,
        _ => SymbolKind::Struct,
    }
}

/// The `type` of a declaration when it is a struct/union/enum/class with a body and a name.
fn aggregate_with_body(node: Node<'_>) -> Option<Node<'_>> {
    let specifier = node.child_by_field_name("type")?;
    let is_aggregate = matches!(
        specifier.kind(),
        "struct_specifier" | "union_specifier" | "enum_specifier" | "class_specifier"
    );
    (is_aggregate
        && specifier.child_by_field_name("body").is_some()
        && specifier.child_by_field_name("name").is_some())
    .then_some(specifier)
}

/// `typedef struct { … } ring_t;` is the struct `ring_t`; any other typedef is a type alias.
fn type_definition<'t>(node: Node<'t>, src: &str, scope: &Scope) -> NodeRole<'t> {
    let alias = node.child_by_field_name("declarator").and_then(|d| declarator_name(d, src));
    let specifier = node.child_by_field_name("type");
    let body = specifier.and_then(|s| s.child_by_field_name("body"));
    match (alias, specifier, body) {
        (Some(alias), Some(specifier), Some(body)) => NodeRole::Definition(
            Definition::new(aggregate_kind(specifier.kind()), scope.qualify("::", &alias))
                .with_body(Some(body)),
        ),
        (Some(alias), _, _) => {
            NodeRole::Definition(Definition::new(SymbolKind::TypeAlias, scope.qualify("::", &alias)))
        }
        (None, _, _) => NodeRole::Skip,
    }
}

/// Whether a declarator declares a function (not a variable, and not a pointer to a function).
fn is_function_declarator(mut node: Node<'_>) -> bool {
    for _ in 0..16 {
        match node.kind() {
            "function_declarator" => {
                return node.child_by_field_name("declarator").is_some_and(|inner| is_name(inner.kind()));
            }
            "pointer_declarator" | "reference_declarator" | "attributed_declarator" => {
                match node.child_by_field_name("declarator").or_else(|| first_named_non_comment(node)) {
                    Some(inner) => node = inner,
                    None => return false,
                }
            }
            _ => return false,
        }
    }
    false
}

fn is_name(kind: &str) -> bool {
    matches!(
        kind,
        "identifier"
            | "field_identifier"
            | "type_identifier"
            | "qualified_identifier"
            | "destructor_name"
            | "operator_name"
            | "template_function"
            | "operator_cast"
    )
}

/// The name a declarator declares, looking through pointers, references, arrays, parentheses and
/// function parameter lists.
fn declarator_name(mut node: Node<'_>, src: &str) -> Option<String> {
    for _ in 0..16 {
        if is_name(node.kind()) {
            let name = compact(text(node, src));
            return (!name.is_empty()).then_some(name);
        }
        node = match node.kind() {
            "function_declarator"
            | "pointer_declarator"
            | "reference_declarator"
            | "array_declarator"
            | "attributed_declarator"
            | "init_declarator" => {
                node.child_by_field_name("declarator").or_else(|| first_named_non_comment(node))?
            }
            "parenthesized_declarator" => first_named_non_comment(node)?,
            _ => return None,
        };
    }
    None
}
