//! [`VectorLimits`]: the contract's limits as configuration, and the validation every driver runs
//! before it touches storage (so a rejected call changes nothing).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::types::{IndexConfig, QueryOptions, ReturnMetadata, Vector};

/// Limits of a vector index. `VectorLimits::default()` holds the contract's numbers; exceeding a
/// limit is a typed error ([`Error::TooLarge`] or [`Error::InvalidInput`]), never a truncation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VectorLimits {
    /// Most dimensions an index may be created with (1536).
    pub max_dimensions: usize,
    /// Longest vector id, in bytes (64).
    pub max_id_bytes: usize,
    /// Longest namespace, in bytes (64).
    pub max_namespace_bytes: usize,
    /// Largest metadata, in bytes of compact JSON (10 KiB).
    pub max_metadata_bytes: usize,
    /// Most vectors per `insert`/`upsert`, and ids per `get_by_ids`/`delete_by_ids` (1000).
    pub max_vectors_per_call: usize,
    /// Largest `top_k` (100).
    pub max_top_k: usize,
    /// Largest `top_k` when values or all metadata are returned (20).
    pub max_top_k_with_values_or_all_metadata: usize,
    /// Largest filter, in bytes of compact JSON (2047: the contract says "less than 2048 B").
    pub max_filter_bytes: usize,
    /// Longest filter key or metadata-index property, in bytes (512).
    pub max_filter_key_bytes: usize,
    /// Most metadata indexes per index (10).
    pub max_metadata_indexes: usize,
    /// Leading bytes of a string that a metadata index compares (64), cut on a UTF-8 boundary.
    pub indexed_string_prefix_bytes: usize,
}

impl Default for VectorLimits {
    fn default() -> Self {
        VectorLimits {
            max_dimensions: 1536,
            max_id_bytes: 64,
            max_namespace_bytes: 64,
            max_metadata_bytes: 10 * 1024,
            max_vectors_per_call: 1000,
            max_top_k: 100,
            max_top_k_with_values_or_all_metadata: 20,
            max_filter_bytes: 2047,
            max_filter_key_bytes: 512,
            max_metadata_indexes: 10,
            indexed_string_prefix_bytes: 64,
        }
    }
}

impl VectorLimits {
    /// Checks the configuration an index is created or opened with.
    pub fn check_config(&self, config: &IndexConfig) -> Result<()> {
        if config.dimensions == 0 {
            return Err(Error::invalid("dimensions", "an index needs at least 1 dimension"));
        }
        if config.dimensions > self.max_dimensions {
            return Err(Error::TooLarge {
                field: "dimensions",
                size: config.dimensions,
                limit: self.max_dimensions,
            });
        }
        Ok(())
    }

    /// Checks a whole `insert`/`upsert` call and returns each vector's metadata as compact JSON
    /// (what drivers store), so that it is serialised once.
    pub fn check_vectors(&self, vectors: &[Vector], dimensions: usize) -> Result<Vec<Option<String>>> {
        if vectors.is_empty() {
            return Err(Error::invalid("vectors", "at least one vector is required"));
        }
        if vectors.len() > self.max_vectors_per_call {
            return Err(Error::TooLarge {
                field: "vectors",
                size: vectors.len(),
                limit: self.max_vectors_per_call,
            });
        }
        vectors
            .iter()
            .map(|v| {
                self.check_id(&v.id)?;
                self.check_values(&v.values, dimensions)?;
                if let Some(ns) = &v.namespace {
                    self.check_namespace(ns)?;
                }
                v.metadata.as_ref().map(|m| self.encode_metadata(m)).transpose()
            })
            .collect()
    }

    /// Checks a vector id: non-empty, at most `max_id_bytes`.
    pub fn check_id(&self, id: &str) -> Result<()> {
        if id.is_empty() {
            return Err(Error::invalid("id", "a vector id cannot be empty"));
        }
        if id.len() > self.max_id_bytes {
            return Err(Error::TooLarge { field: "id", size: id.len(), limit: self.max_id_bytes });
        }
        Ok(())
    }

    /// Checks a namespace: non-empty, at most `max_namespace_bytes`.
    pub fn check_namespace(&self, namespace: &str) -> Result<()> {
        if namespace.is_empty() {
            return Err(Error::invalid("namespace", "a namespace cannot be empty (omit it instead)"));
        }
        if namespace.len() > self.max_namespace_bytes {
            return Err(Error::TooLarge {
                field: "namespace",
                size: namespace.len(),
                limit: self.max_namespace_bytes,
            });
        }
        Ok(())
    }

    /// Checks values (stored or queried): exactly `dimensions` of them, all finite.
    pub fn check_values(&self, values: &[f32], dimensions: usize) -> Result<()> {
        if values.len() != dimensions {
            return Err(Error::DimensionMismatch { expected: dimensions, actual: values.len() });
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "values",
                format!("values[{i}] is {}, not a finite number", values[i]),
            ));
        }
        Ok(())
    }

    /// Checks metadata (a JSON object within `max_metadata_bytes`) and returns it as compact JSON.
    pub fn encode_metadata(&self, metadata: &Value) -> Result<String> {
        if !metadata.is_object() {
            return Err(Error::invalid("metadata", "metadata must be a JSON object"));
        }
        let json = serde_json::to_string(metadata).map_err(|e| Error::invalid("metadata", e.to_string()))?;
        if json.len() > self.max_metadata_bytes {
            return Err(Error::TooLarge {
                field: "metadata",
                size: json.len(),
                limit: self.max_metadata_bytes,
            });
        }
        Ok(json)
    }

    /// Checks query options other than the filter (parsed by [`crate::Filter::parse`]).
    pub fn check_query_options(&self, options: &QueryOptions) -> Result<()> {
        if options.top_k == 0 {
            return Err(Error::invalid("top_k", "top_k must be at least 1"));
        }
        let heavy = options.return_values || options.return_metadata == ReturnMetadata::All;
        let limit = if heavy { self.max_top_k_with_values_or_all_metadata } else { self.max_top_k };
        if options.top_k > limit {
            return Err(Error::TooLarge { field: "top_k", size: options.top_k, limit });
        }
        if let Some(ns) = &options.namespace {
            self.check_namespace(ns)?;
        }
        Ok(())
    }

    /// Checks the ids of `get_by_ids`/`delete_by_ids`: at most `max_vectors_per_call`.
    pub fn check_ids(&self, ids: &[String]) -> Result<()> {
        if ids.len() > self.max_vectors_per_call {
            return Err(Error::TooLarge { field: "ids", size: ids.len(), limit: self.max_vectors_per_call });
        }
        Ok(())
    }

    /// Checks a metadata-index property (the same rules as a filter key): dot-separated segments,
    /// none empty, no `"`, not starting with `$`, at most `max_filter_key_bytes`.
    pub fn check_property(&self, property: &str) -> Result<()> {
        self.property_problem(property).map_or(Ok(()), |message| Err(Error::invalid("property", message)))
    }

    /// What is wrong with a filter key or metadata-index property, if anything.
    pub(crate) fn property_problem(&self, key: &str) -> Option<String> {
        if key.is_empty() {
            Some("the key is empty".into())
        } else if key.len() > self.max_filter_key_bytes {
            Some(format!("the key is {} bytes, over the limit of {}", key.len(), self.max_filter_key_bytes))
        } else if key.starts_with('$') {
            Some(format!("{key:?} starts with '$' (operators go inside the key's object)"))
        } else if key.contains('"') {
            Some(format!("{key:?} contains '\"'"))
        } else if key.split('.').any(str::is_empty) {
            Some(format!("{key:?} has an empty segment ('.' separates nested fields)"))
        } else {
            None
        }
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a UTF-8 boundary.
pub(crate) fn utf8_prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_utf8_prefix_never_splits_a_character() {
        assert_eq!(utf8_prefix("héllo", 2), "h"); // 'é' is 2 bytes: 1..3
        assert_eq!(utf8_prefix("héllo", 3), "hé");
        assert_eq!(utf8_prefix("abc", 64), "abc");
    }

    #[test]
    fn properties_follow_the_filter_key_rules() {
        let limits = VectorLimits::default();
        for ok in ["repo", "pandas.nice", "a.b.c", "with space"] {
            assert!(limits.check_property(ok).is_ok(), "{ok}");
        }
        for bad in ["", "$repo", "a..b", ".a", "a.", "qu\"ote"] {
            assert!(
                matches!(limits.check_property(bad), Err(Error::InvalidInput { field: "property", .. })),
                "{bad}"
            );
        }
        assert!(limits.check_property(&"k".repeat(513)).is_err());
    }
}
