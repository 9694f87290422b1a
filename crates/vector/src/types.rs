//! The vocabulary of the binding: vectors, index configuration, query options and results.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;

/// How closeness is scored. Fixed when the index is created.
///
/// | metric | score | closer is |
/// |---|---|---|
/// | `cosine` | cosine similarity, in [-1, 1] | higher (results in descending order) |
/// | `euclidean` | L2 distance, ≥ 0 | lower (ascending) |
/// | `dot-product` | the *negated* dot product | lower (ascending) |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    Cosine,
    Euclidean,
    DotProduct,
}

impl Metric {
    /// The name used in configuration and storage: `cosine`, `euclidean`, `dot-product`.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::Euclidean => "euclidean",
            Metric::DotProduct => "dot-product",
        }
    }

    /// Whether a higher score means closer (cosine) rather than a lower one.
    pub fn higher_is_closer(self) -> bool {
        matches!(self, Metric::Cosine)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Metric {
    type Err = Error;

    fn from_str(s: &str) -> Result<Metric, Error> {
        match s {
            "cosine" => Ok(Metric::Cosine),
            "euclidean" => Ok(Metric::Euclidean),
            "dot-product" => Ok(Metric::DotProduct),
            other => Err(Error::invalid(
                "metric",
                format!("{other:?} is not one of cosine, euclidean, dot-product"),
            )),
        }
    }
}

/// What an index is created with and can never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexConfig {
    /// Length of every vector (1 ..= `VectorLimits::max_dimensions`, 1536 by default).
    pub dimensions: usize,
    pub metric: Metric,
}

/// What `describe` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexDescription {
    pub dimensions: usize,
    pub metric: Metric,
    /// Vectors stored, across all namespaces.
    pub count: usize,
}

/// A vector as stored: `id` ≤ 64 B, `values` of the index's length, an optional `namespace`
/// ≤ 64 B and optional `metadata` (a JSON object ≤ 10 KiB, compact).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vector {
    pub id: String,
    pub values: Vec<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

impl Vector {
    /// A vector with no namespace and no metadata.
    pub fn new(id: impl Into<String>, values: impl Into<Vec<f32>>) -> Vector {
        Vector { id: id.into(), values: values.into(), namespace: None, metadata: None }
    }

    /// The same vector in `namespace`.
    pub fn in_namespace(mut self, namespace: impl Into<String>) -> Vector {
        self.namespace = Some(namespace.into());
        self
    }

    /// The same vector with `metadata` (must be a JSON object to be accepted).
    pub fn with_metadata(mut self, metadata: Value) -> Vector {
        self.metadata = Some(metadata);
        self
    }
}

/// Which metadata a query returns with each match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReturnMetadata {
    /// No metadata (the default).
    #[default]
    None,
    /// Only the properties that have a metadata index.
    Indexed,
    /// All of it (caps `top_k` at 20).
    All,
}

/// Options of `query` and `query_by_id`. `QueryOptions::default()` is the contract's default:
/// top 5, no values, no metadata, every namespace, no filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QueryOptions {
    /// How many matches to return: 1 ..= 100, or ..= 20 with `return_values` or `ReturnMetadata::All`.
    pub top_k: usize,
    pub return_values: bool,
    pub return_metadata: ReturnMetadata,
    /// Search only this namespace (applied before the filter).
    pub namespace: Option<String>,
    /// A metadata filter, `{ "key": value | { "$op": operand, … }, … }`, see [`crate::filter`].
    pub filter: Option<Value>,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            top_k: 5,
            return_values: false,
            return_metadata: ReturnMetadata::None,
            namespace: None,
            filter: None,
        }
    }
}

/// One match of a query, closest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorMatch {
    pub id: String,
    /// The metric's score (see [`Metric`] for its direction).
    pub score: f32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Present only with `return_values`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<f32>>,
    /// Present only with `return_metadata` other than `None`, and when the vector has metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

/// What `query` answers: `count == matches.len()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryResult {
    pub count: usize,
    pub matches: Vec<VectorMatch>,
}

/// What a mutation did. `insert`: `applied` vectors inserted, `skipped` because their id existed
/// (or repeated an id earlier in the call). `upsert`: every vector applied. `delete_by_ids`:
/// `applied` ids deleted, `skipped` ids absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MutationCounts {
    pub applied: usize,
    pub skipped: usize,
}

/// The type a metadata index compares its property as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetadataIndexType {
    String,
    Number,
    Boolean,
}

impl MetadataIndexType {
    /// `string`, `number` or `boolean`.
    pub fn as_str(self) -> &'static str {
        match self {
            MetadataIndexType::String => "string",
            MetadataIndexType::Number => "number",
            MetadataIndexType::Boolean => "boolean",
        }
    }
}

impl fmt::Display for MetadataIndexType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MetadataIndexType {
    type Err = Error;

    fn from_str(s: &str) -> Result<MetadataIndexType, Error> {
        match s {
            "string" => Ok(MetadataIndexType::String),
            "number" => Ok(MetadataIndexType::Number),
            "boolean" => Ok(MetadataIndexType::Boolean),
            other => Err(Error::invalid("type", format!("{other:?} is not one of string, number, boolean"))),
        }
    }
}

/// A metadata index: filters may only name indexed properties. A dotted property (`a.b`)
/// indexes the nested field `{"a": {"b": …}}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MetadataIndex {
    pub property: String,
    #[serde(rename = "type")]
    pub index_type: MetadataIndexType,
}
