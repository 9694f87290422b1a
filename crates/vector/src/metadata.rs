//! Reading metadata through metadata indexes: dotted paths, the typed value an index sees, and the
//! "indexed" projection that `ReturnMetadata::Indexed` returns.

use serde_json::{Map, Value};

use crate::limits::utf8_prefix;
use crate::types::{MetadataIndex, MetadataIndexType};

/// The field at a dotted `path` (`"a.b"` reads `{"a": {"b": …}}`), if present.
pub fn lookup<'a>(metadata: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(metadata, |value, segment| value.as_object()?.get(segment))
}

/// The value a metadata index holds for one vector. A property that is absent, `null`, or not of
/// the index's type is `Missing` (it equals a `null` operand and matches no range).
#[derive(Debug, Clone, PartialEq)]
pub enum IndexedValue {
    Missing,
    Bool(bool),
    Number(f64),
    /// The first `indexed_string_prefix_bytes` of the string.
    String(Box<str>),
}

/// A borrowed [`IndexedValue`]: what the in-memory columns hand to a filter without allocating.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum IndexedRef<'a> {
    Missing,
    Bool(bool),
    Number(f64),
    String(&'a str),
}

impl IndexedValue {
    /// The borrowed view of this value.
    pub fn as_ref(&self) -> IndexedRef<'_> {
        match self {
            IndexedValue::Missing => IndexedRef::Missing,
            IndexedValue::Bool(b) => IndexedRef::Bool(*b),
            IndexedValue::Number(n) => IndexedRef::Number(*n),
            IndexedValue::String(s) => IndexedRef::String(s),
        }
    }

    /// What `index` sees of `metadata` (strings cut to `string_prefix_bytes`).
    pub fn extract(
        metadata: Option<&Value>,
        index: &MetadataIndex,
        string_prefix_bytes: usize,
    ) -> IndexedValue {
        let Some(value) = metadata.and_then(|m| lookup(m, &index.property)) else {
            return IndexedValue::Missing;
        };
        match (index.index_type, value) {
            (MetadataIndexType::String, Value::String(s)) => {
                IndexedValue::String(utf8_prefix(s, string_prefix_bytes).into())
            }
            (MetadataIndexType::Number, Value::Number(n)) => {
                n.as_f64().map_or(IndexedValue::Missing, IndexedValue::Number)
            }
            (MetadataIndexType::Boolean, Value::Bool(b)) => IndexedValue::Bool(*b),
            _ => IndexedValue::Missing,
        }
    }
}

/// The indexed properties of `metadata`, in their nested shape (`a.b` stays `{"a": {"b": …}}`),
/// with their full values.
pub fn project_indexed(metadata: &Value, indexes: &[MetadataIndex]) -> Value {
    let mut out = Value::Object(Map::new());
    for index in indexes {
        if let Some(value) = lookup(metadata, &index.property) {
            insert_at(&mut out, &index.property, value.clone());
        }
    }
    out
}

fn insert_at(root: &mut Value, path: &str, value: Value) {
    let mut node = root;
    let mut segments = path.split('.').peekable();
    while let Some(segment) = segments.next() {
        let Value::Object(map) = node else { return };
        if segments.peek().is_none() {
            map.insert(segment.to_owned(), value);
            return;
        }
        node = map.entry(segment.to_owned()).or_insert_with(|| Value::Object(Map::new()));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn index(property: &str, index_type: MetadataIndexType) -> MetadataIndex {
        MetadataIndex { property: property.into(), index_type }
    }

    #[test]
    fn dotted_paths_reach_nested_fields_only() {
        let m = json!({"pandas": {"nice": 42}, "pandas.nice": "flat", "list": [1]});
        assert_eq!(lookup(&m, "pandas.nice"), Some(&json!(42)));
        assert_eq!(lookup(&m, "pandas"), Some(&json!({"nice": 42})));
        assert_eq!(lookup(&m, "list.0"), None);
        assert_eq!(lookup(&m, "missing.x"), None);
    }

    #[test]
    fn an_index_sees_only_values_of_its_type() {
        let m = json!({"n": 3, "s": "x", "b": true, "z": null});
        use MetadataIndexType::*;
        assert_eq!(IndexedValue::extract(Some(&m), &index("n", Number), 64), IndexedValue::Number(3.0));
        assert_eq!(IndexedValue::extract(Some(&m), &index("n", String), 64), IndexedValue::Missing);
        assert_eq!(IndexedValue::extract(Some(&m), &index("b", Boolean), 64), IndexedValue::Bool(true));
        assert_eq!(IndexedValue::extract(Some(&m), &index("z", String), 64), IndexedValue::Missing);
        assert_eq!(IndexedValue::extract(None, &index("s", String), 64), IndexedValue::Missing);
        assert_eq!(
            IndexedValue::extract(Some(&m), &index("s", String), 64),
            IndexedValue::String("x".into())
        );
    }

    #[test]
    fn the_indexed_projection_keeps_the_nested_shape() {
        let m = json!({"a": {"b": 1, "c": 2}, "d": "x", "e": true});
        let indexes = [index("a.b", MetadataIndexType::Number), index("d", MetadataIndexType::String)];
        assert_eq!(project_indexed(&m, &indexes), json!({"a": {"b": 1}, "d": "x"}));
    }
}
