//! The conformance suite every [`VectorIndex`] driver passes (feature `conformance`): one public
//! async function per behaviour of the contract (bindings.md §5 and the vector-index rows of §7),
//! each taking a factory that opens a fresh, empty index for a given configuration.
//!
//! Instantiate it for a driver with [`vector_index_conformance_tests!`](crate::vector_index_conformance_tests),
//! which expands to one `#[tokio::test]` per case (the calling crate depends on `tokio`):
//!
//! ```text
//! ledge_vector::vector_index_conformance_tests!(|config: ledge_vector::IndexConfig| async move {
//!     let dir = tempfile::tempdir().unwrap();
//!     let index = EmbeddedVectorIndex::open(dir.path().join("v.db"), config, Default::default()).await.unwrap();
//!     ledge_vector::conformance::FreshIndex::keeping(std::sync::Arc::new(index), dir)
//! });
//! ```

use std::any::Any;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::error::Error;
use crate::index::VectorIndex;
use crate::types::{
    IndexConfig, MetadataIndex, MetadataIndexType, Metric, MutationCounts, QueryOptions, ReturnMetadata,
    Vector,
};

/// A fresh, empty index for one case, with whatever must live as long as it (a temporary
/// directory, a database schema to drop…).
pub struct FreshIndex {
    index: Arc<dyn VectorIndex>,
    _keep_alive: Option<Box<dyn Any + Send + Sync>>,
}

impl FreshIndex {
    pub fn new(index: Arc<dyn VectorIndex>) -> FreshIndex {
        FreshIndex { index, _keep_alive: None }
    }

    /// An index that needs `keep_alive` (e.g. a `tempfile::TempDir`) until the case ends.
    pub fn keeping(index: Arc<dyn VectorIndex>, keep_alive: impl Any + Send + Sync) -> FreshIndex {
        FreshIndex { index, _keep_alive: Some(Box::new(keep_alive)) }
    }

    /// The index itself, shareable with spawned tasks.
    pub fn shared(&self) -> Arc<dyn VectorIndex> {
        self.index.clone()
    }
}

impl Deref for FreshIndex {
    type Target = dyn VectorIndex;

    fn deref(&self) -> &Self::Target {
        &*self.index
    }
}

/// What a case receives: something that opens a fresh, empty index with a configuration.
pub trait OpenIndex {
    fn open(self, config: IndexConfig) -> impl Future<Output = FreshIndex>;
}

impl<F, Fut> OpenIndex for F
where
    F: FnOnce(IndexConfig) -> Fut,
    Fut: Future<Output = FreshIndex>,
{
    fn open(self, config: IndexConfig) -> impl Future<Output = FreshIndex> {
        self(config)
    }
}

/// Expands to one `#[tokio::test]` per conformance case, each opening its index with `$open`
/// (an expression of a type implementing [`conformance::OpenIndex`](crate::conformance::OpenIndex),
/// typically an async closure `|config: IndexConfig| async move { … FreshIndex … }`).
#[macro_export]
macro_rules! vector_index_conformance_tests {
    ($open:expr) => {
        $crate::__vector_index_conformance_cases!($open;
            describe_reports_config_and_count,
            wrong_length_is_an_error,
            invalid_vectors_reject_the_whole_call,
            insert_skips_existing_ids,
            upsert_replaces_vectors_in_full,
            mutations_are_visible_to_the_next_query,
            query_defaults_to_top_5_without_values_or_metadata,
            query_caps_top_k_at_100_or_20,
            cosine_scores_descend,
            euclidean_scores_ascend,
            dot_product_scores_ascend,
            namespace_isolates_vectors,
            namespace_narrows_before_top_k,
            filter_eq_matches_equal_values,
            filter_ne_matches_other_and_absent_values,
            filter_in_matches_any_listed_value,
            filter_nin_matches_no_listed_value,
            filter_lt_matches_smaller_values,
            filter_lte_matches_smaller_or_equal_values,
            filter_gt_matches_greater_values,
            filter_gte_matches_greater_or_equal_values,
            filter_keys_are_anded,
            filter_dotted_keys_reach_nested_fields,
            filter_applies_before_top_k,
            filter_with_unknown_operator_is_an_error,
            filter_too_large_is_an_error,
            filter_with_bad_operand_type_is_an_error,
            filter_on_unindexed_property_is_an_error,
            malformed_filters_are_errors,
            indexed_strings_match_on_their_first_64_bytes,
            metadata_indexes_are_created_listed_and_deleted,
            metadata_indexes_are_limited_to_10,
            metadata_index_applies_to_vectors_already_stored,
            return_metadata_indexed_returns_indexed_properties_only,
            get_by_ids_returns_values_and_metadata,
            deletes_are_visible_to_the_next_query,
            query_by_id_searches_with_the_stored_vector,
            concurrent_upserts_and_queries_lose_nothing,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __vector_index_conformance_cases {
    ($open:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                $crate::conformance::$case($open).await;
            }
        )+
    };
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn config(dimensions: usize, metric: Metric) -> IndexConfig {
    IndexConfig { dimensions, metric }
}

fn v(id: &str, values: &[f32]) -> Vector {
    Vector::new(id, values)
}

fn opts(top_k: usize) -> QueryOptions {
    QueryOptions { top_k, ..QueryOptions::default() }
}

fn filtered(filter: Value) -> QueryOptions {
    QueryOptions { top_k: 100, filter: Some(filter), ..QueryOptions::default() }
}

async fn ids_of(index: &dyn VectorIndex, query: &[f32], options: QueryOptions) -> Vec<String> {
    let result =
        index.query(query, options.clone()).await.unwrap_or_else(|e| panic!("query {options:?}: {e}"));
    assert_eq!(result.count, result.matches.len(), "count is the number of matches");
    result.matches.into_iter().map(|m| m.id).collect()
}

async fn scores_of(index: &dyn VectorIndex, query: &[f32]) -> Vec<(String, f32)> {
    let result = index.query(query, opts(100)).await.expect("query");
    result.matches.into_iter().map(|m| (m.id, m.score)).collect()
}

fn assert_scores(got: &[(String, f32)], expected: &[(&str, f32)]) {
    let ids: Vec<&str> = got.iter().map(|(id, _)| id.as_str()).collect();
    let want: Vec<&str> = expected.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, want, "order of matches (scores {got:?})");
    for ((id, score), (_, want)) in got.iter().zip(expected) {
        assert!((score - want).abs() < 1e-5, "score of {id}: {score}, expected {want}");
    }
}

#[track_caller]
fn assert_filter_error(result: Result<Vec<String>, Error>, key: &str, mentions: &str) {
    match result {
        Err(Error::InvalidFilter { key: k, message }) => {
            assert_eq!(k, key, "the error names the key at fault ({message})");
            assert!(message.contains(mentions), "{message:?} should mention {mentions:?}");
        }
        other => panic!("expected InvalidFilter at {key:?}, got {other:?}"),
    }
}

async fn try_ids(
    index: &dyn VectorIndex,
    query: &[f32],
    options: QueryOptions,
) -> Result<Vec<String>, Error> {
    Ok(index.query(query, options).await?.matches.into_iter().map(|m| m.id).collect())
}

/// Five vectors `v1`..`v5` at `[i, 0]` (so a query at the origin under euclidean returns them in
/// order), with metadata indexed as `lang` (string), `size` (number), `public` (boolean) and
/// `owner.name` (string).
async fn catalogue(index: &dyn VectorIndex) {
    for (property, index_type) in [
        ("lang", MetadataIndexType::String),
        ("size", MetadataIndexType::Number),
        ("public", MetadataIndexType::Boolean),
        ("owner.name", MetadataIndexType::String),
    ] {
        index.create_metadata_index(property, index_type).await.expect("create metadata index");
    }
    index
        .upsert(vec![
            v("v1", &[1.0, 0.0])
                .with_metadata(json!({"lang": "rust", "size": 10, "public": true, "owner": {"name": "ann"}})),
            v("v2", &[2.0, 0.0])
                .with_metadata(json!({"lang": "go", "size": 20, "public": false, "owner": {"name": "bob"}})),
            v("v3", &[3.0, 0.0]).with_metadata(
                json!({"lang": "rust", "size": 30.0, "public": false, "owner": {"name": "cat"}}),
            ),
            v("v4", &[4.0, 0.0]).with_metadata(json!({"lang": "python", "size": 40, "owner": "flat-string"})),
            v("v5", &[5.0, 0.0]),
        ])
        .await
        .expect("upsert catalogue");
}

const ORIGIN: [f32; 2] = [0.0, 0.0];

async fn catalogue_index(open: impl OpenIndex) -> FreshIndex {
    let index = open.open(config(2, Metric::Euclidean)).await;
    catalogue(&*index).await;
    index
}

async fn expect_filter(index: &dyn VectorIndex, filter: Value, expected: &[&str]) {
    let got = ids_of(index, &ORIGIN, filtered(filter.clone())).await;
    assert_eq!(got, expected, "filter {filter}");
}

// ---------------------------------------------------------------------------------------------
// Cases

/// `describe` reports the dimensions and metric the index was created with, and how many vectors
/// it holds.
pub async fn describe_reports_config_and_count(open: impl OpenIndex) {
    let index = open.open(config(3, Metric::DotProduct)).await;
    let d = index.describe().await.expect("describe");
    assert_eq!((d.dimensions, d.metric, d.count), (3, Metric::DotProduct, 0));
    index.insert(vec![v("a", &[1.0, 2.0, 3.0]), v("b", &[0.0, 0.0, 1.0])]).await.expect("insert");
    assert_eq!(index.describe().await.expect("describe").count, 2);
}

/// A vector or query of the wrong length is a `DimensionMismatch`, and a batch holding one writes
/// nothing.
pub async fn wrong_length_is_an_error(open: impl OpenIndex) {
    let index = open.open(config(4, Metric::Cosine)).await;
    let short = index.insert(vec![v("a", &[1.0, 2.0, 3.0])]).await;
    assert!(matches!(short, Err(Error::DimensionMismatch { expected: 4, actual: 3 })), "{short:?}");
    let mixed = index.upsert(vec![v("ok", &[1.0, 2.0, 3.0, 4.0]), v("long", &[1.0; 5])]).await;
    assert!(matches!(mixed, Err(Error::DimensionMismatch { expected: 4, actual: 5 })), "{mixed:?}");
    assert_eq!(index.describe().await.expect("describe").count, 0, "a rejected batch writes nothing");
    let query = index.query(&[1.0, 2.0], QueryOptions::default()).await;
    assert!(matches!(query, Err(Error::DimensionMismatch { expected: 4, actual: 2 })), "{query:?}");
}

/// Ids, namespaces, metadata, values and batch sizes outside the contract reject the whole call:
/// id ≤ 64 B, namespace ≤ 64 B, metadata a JSON object ≤ 10 KiB, finite values, ≤ 1000 vectors.
pub async fn invalid_vectors_reject_the_whole_call(open: impl OpenIndex) {
    let index = open.open(config(2, Metric::Cosine)).await;
    let ok = || v("ok", &[1.0, 0.0]);
    let max_meta = json!({"k": "x".repeat(10 * 1024 - 8)}); // {"k":"…"} is 10 KiB exactly
    assert_eq!(serde_json::to_string(&max_meta).expect("json").len(), 10 * 1024);
    let over_meta = json!({"k": "x".repeat(10 * 1024 - 7)});
    let cases: Vec<(Vector, &str)> = vec![
        (v("", &[1.0, 0.0]), "id"),
        (v(&"i".repeat(65), &[1.0, 0.0]), "id"),
        (v("a", &[1.0, 0.0]).in_namespace("n".repeat(65)), "namespace"),
        (v("a", &[1.0, 0.0]).in_namespace(""), "namespace"),
        (v("a", &[1.0, 0.0]).with_metadata(json!(["not", "an", "object"])), "metadata"),
        (v("a", &[1.0, 0.0]).with_metadata(json!("text")), "metadata"),
        (v("a", &[1.0, 0.0]).with_metadata(over_meta), "metadata"),
        (v("a", &[f32::NAN, 0.0]), "values"),
        (v("a", &[f32::INFINITY, 0.0]), "values"),
    ];
    for (bad, field) in cases {
        let described = format!("{bad:?}").chars().take(120).collect::<String>();
        let result = index.upsert(vec![ok(), bad]).await;
        match result {
            Err(e) => assert_eq!(e.field(), Some(field), "{described}: {e}"),
            Ok(r) => panic!("{described} was accepted: {r:?}"),
        }
    }
    let too_many: Vec<Vector> = (0..1001).map(|i| v(&i.to_string(), &[1.0, 0.0])).collect();
    let result = index.insert(too_many).await;
    assert!(
        matches!(result, Err(Error::TooLarge { field: "vectors", size: 1001, limit: 1000 })),
        "{result:?}"
    );
    assert!(matches!(index.insert(Vec::new()).await, Err(Error::InvalidInput { field: "vectors", .. })));
    assert_eq!(index.describe().await.expect("describe").count, 0, "rejected calls write nothing");

    // The limits themselves are allowed.
    let at_limits = vec![
        v(&"i".repeat(64), &[1.0, 0.0]).in_namespace("n".repeat(64)).with_metadata(max_meta),
        v("edge", &[f32::MAX, f32::MIN_POSITIVE]),
    ];
    assert_eq!(
        index.upsert(at_limits).await.expect("at the limits"),
        MutationCounts { applied: 2, skipped: 0 }
    );
    let thousand: Vec<Vector> = (0..1000).map(|i| v(&i.to_string(), &[1.0, 0.0])).collect();
    assert_eq!(index.insert(thousand).await.expect("1000 vectors").applied, 1000);
}

/// `insert` stores only ids not stored yet; existing ids (and repeats within the call) keep their
/// values and metadata.
pub async fn insert_skips_existing_ids(open: impl OpenIndex) {
    let index = open.open(config(2, Metric::Euclidean)).await;
    let first = v("a", &[1.0, 1.0]).with_metadata(json!({"version": 1}));
    assert_eq!(
        index.insert(vec![first.clone()]).await.expect("insert"),
        MutationCounts { applied: 1, skipped: 0 }
    );
    let _ = ids_of(&*index, &[0.0, 0.0], opts(5)).await; // searched once: in-memory state is live
    let counts = index
        .insert(vec![
            v("a", &[9.0, 9.0]).with_metadata(json!({"version": 2})),
            v("b", &[2.0, 2.0]),
            v("b", &[7.0, 7.0]),
        ])
        .await
        .expect("insert");
    assert_eq!(counts, MutationCounts { applied: 1, skipped: 2 });
    let stored = index.get_by_ids(&["a".into(), "b".into()]).await.expect("get");
    assert_eq!(stored, vec![first, v("b", &[2.0, 2.0])], "skipped vectors changed nothing");
    assert_scores(&scores_of(&*index, &[1.0, 1.0]).await, &[("a", 0.0), ("b", std::f32::consts::SQRT_2)]);
}

/// `upsert` replaces a vector in full: values, namespace and metadata (absent metadata removes it).
pub async fn upsert_replaces_vectors_in_full(open: impl OpenIndex) {
    let index = open.open(config(2, Metric::Euclidean)).await;
    index.create_metadata_index("lang", MetadataIndexType::String).await.expect("index");
    index
        .upsert(vec![
            v("a", &[1.0, 0.0]).in_namespace("x").with_metadata(json!({"lang": "rust", "extra": 1})),
        ])
        .await
        .expect("upsert");
    assert_eq!(ids_of(&*index, &ORIGIN, filtered(json!({"lang": "rust"}))).await, ["a"]);
    let counts = index.upsert(vec![v("a", &[3.0, 4.0]), v("b", &[1.0, 0.0])]).await.expect("upsert");
    assert_eq!(counts, MutationCounts { applied: 2, skipped: 0 });
    assert_eq!(index.get_by_ids(&["a".into()]).await.expect("get"), vec![v("a", &[3.0, 4.0])]);
    assert!(
        ids_of(&*index, &ORIGIN, filtered(json!({"lang": "rust"}))).await.is_empty(),
        "old metadata is gone"
    );
    let in_x = QueryOptions { namespace: Some("x".into()), ..opts(10) };
    assert!(ids_of(&*index, &ORIGIN, in_x).await.is_empty(), "old namespace is gone");
    assert_scores(&scores_of(&*index, &ORIGIN).await, &[("b", 1.0), ("a", 5.0)]);

    // Within one call, the last vector of an id wins.
    index.upsert(vec![v("c", &[1.0, 1.0]), v("c", &[0.0, 2.0])]).await.expect("upsert");
    assert_eq!(index.get_by_ids(&["c".into()]).await.expect("get")[0].values, [0.0, 2.0]);
    assert_eq!(index.describe().await.expect("describe").count, 3);
}

/// Stricter than Vectorize: a completed insert or upsert is visible to the very next query.
pub async fn mutations_are_visible_to_the_next_query(open: impl OpenIndex) {
    let index = open.open(config(2, Metric::Cosine)).await;
    assert!(ids_of(&*index, &[1.0, 0.0], opts(5)).await.is_empty());
    index.insert(vec![v("far", &[0.0, 1.0])]).await.expect("insert");
    assert_eq!(ids_of(&*index, &[1.0, 0.0], opts(5)).await, ["far"]);
    index.upsert(vec![v("near", &[1.0, 0.1])]).await.expect("upsert");
    assert_eq!(ids_of(&*index, &[1.0, 0.0], opts(5)).await, ["near", "far"]);
    index.upsert(vec![v("far", &[1.0, 0.0])]).await.expect("upsert");
    assert_eq!(ids_of(&*index, &[1.0, 0.0], opts(5)).await, ["far", "near"]);
}

/// By default a query returns the 5 closest matches, without values or metadata.
pub async fn query_defaults_to_top_5_without_values_or_metadata(open: impl OpenIndex) {
    let index = open.open(config(2, Metric::Euclidean)).await;
    let vectors =
        (1..=7).map(|i| v(&format!("v{i}"), &[i as f32, 0.0]).with_metadata(json!({"i": i}))).collect();
    index.insert(vectors).await.expect("insert");
    let result = index.query(&ORIGIN, QueryOptions::default()).await.expect("query");
    assert_eq!(result.count, 5);
    let ids: Vec<&str> = result.matches.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["v1", "v2", "v3", "v4", "v5"]);
    for m in &result.matches {
        assert!(m.values.is_none() && m.metadata.is_none(), "{m:?}");
    }
    let everything = index.query(&ORIGIN, opts(50)).await.expect("query");
    assert_eq!(everything.count, 7, "top_k beyond the count returns every vector");
}

/// `top_k` is 1..=100, and at most 20 when values or all metadata are returned.
pub async fn query_caps_top_k_at_100_or_20(open: impl OpenIndex) {
    let index = open.open(config(2, Metric::Cosine)).await;
    index.insert(vec![v("a", &[1.0, 0.0]).with_metadata(json!({"k": 1}))]).await.expect("insert");
    let q = [1.0, 0.0];
    let with = |top_k, return_values, return_metadata| QueryOptions {
        top_k,
        return_values,
        return_metadata,
        ..QueryOptions::default()
    };
    for ok in [
        with(100, false, ReturnMetadata::None),
        with(100, false, ReturnMetadata::Indexed),
        with(20, true, ReturnMetadata::None),
        with(20, false, ReturnMetadata::All),
        with(20, true, ReturnMetadata::All),
    ] {
        assert_eq!(index.query(&q, ok.clone()).await.map(|r| r.count).ok(), Some(1), "{ok:?}");
    }
    for (bad, limit) in [
        (with(101, false, ReturnMetadata::None), 100),
        (with(101, false, ReturnMetadata::Indexed), 100),
        (with(21, true, ReturnMetadata::None), 20),
        (with(21, false, ReturnMetadata::All), 20),
    ] {
        let result = index.query(&q, bad.clone()).await;
        assert!(
            matches!(result, Err(Error::TooLarge { field: "top_k", limit: l, .. }) if l == limit),
            "{bad:?}: {result:?}"
        );
    }
    let zero = index.query(&q, opts(0)).await;
    assert!(matches!(zero, Err(Error::InvalidInput { field: "top_k", .. })), "{zero:?}");
    let by_id = index.query_by_id("a", with(21, true, ReturnMetadata::None)).await;
    assert!(matches!(by_id, Err(Error::TooLarge { field: "top_k", .. })), "{by_id:?}");
}

/// Cosine scores are cosine similarities, closest (highest) first.
pub async fn cosine_scores_descend(open: impl OpenIndex) {
    let index = open.open(config(2, Metric::Cosine)).await;
    index
        .insert(vec![
            v("opposite", &[-1.0, 0.0]),
            v("orthogonal", &[0.0, 1.0]),
            v("diagonal", &[1.0, 1.0]),
            v("same", &[2.0, 0.0]),
            v("three-four", &[3.0, 4.0]),
        ])
        .await
        .expect("insert");
    // cos(q, x) = q·x / (|q||x|) with q = (1, 0): 1, 1/√2, 3/5, 0, -1. Magnitude does not count.
    assert_scores(
        &scores_of(&*index, &[1.0, 0.0]).await,
        &[
            ("same", 1.0),
            ("diagonal", std::f32::consts::FRAC_1_SQRT_2),
            ("three-four", 0.6),
            ("orthogonal", 0.0),
            ("opposite", -1.0),
        ],
    );
}

/// Euclidean scores are L2 distances, closest (lowest) first.
pub async fn euclidean_scores_ascend(open: impl OpenIndex) {
    let index = open.open(config(2, Metric::Euclidean)).await;
    index
        .insert(vec![
            v("five", &[4.0, 5.0]),
            v("three", &[1.0, -2.0]),
            v("zero", &[1.0, 1.0]),
            v("two", &[1.0, 3.0]),
            v("one", &[2.0, 1.0]),
        ])
        .await
        .expect("insert");
    // |q - x| with q = (1, 1): (3, 4) → 5, (0, -3) → 3, 0, (0, 2) → 2, (1, 0) → 1.
    assert_scores(
        &scores_of(&*index, &[1.0, 1.0]).await,
        &[("zero", 0.0), ("one", 1.0), ("two", 2.0), ("three", 3.0), ("five", 5.0)],
    );
}

/// Dot-product scores are negated dot products, closest (lowest, i.e. largest product) first.
pub async fn dot_product_scores_ascend(open: impl OpenIndex) {
    let index = open.open(config(3, Metric::DotProduct)).await;
    index
        .insert(vec![
            v("x", &[1.0, 0.0, 0.0]),
            v("z", &[0.0, 0.0, 1.0]),
            v("ones", &[1.0, 1.0, 1.0]),
            v("minus-ones", &[-1.0, -1.0, -1.0]),
            v("zero", &[0.0, 0.0, 0.0]),
            v("ten-x", &[10.0, 0.0, 0.0]),
        ])
        .await
        .expect("insert");
    // q·x with q = (1, 2, 3): 1, 3, 6, -6, 0, 10 → scores -1, -3, -6, 6, 0, -10. Magnitude counts.
    assert_scores(
        &scores_of(&*index, &[1.0, 2.0, 3.0]).await,
        &[("ten-x", -10.0), ("ones", -6.0), ("z", -3.0), ("x", -1.0), ("zero", 0.0), ("minus-ones", 6.0)],
    );
}

/// A query in a namespace sees only that namespace's vectors; without one it sees them all.
pub async fn namespace_isolates_vectors(open: impl OpenIndex) {
    let index = open.open(config(2, Metric::Euclidean)).await;
    index
        .insert(vec![
            v("a1", &[1.0, 0.0]).in_namespace("org-a"),
            v("a2", &[2.0, 0.0]).in_namespace("org-a"),
            v("b1", &[1.5, 0.0]).in_namespace("org-b"),
            v("none", &[0.5, 0.0]),
        ])
        .await
        .expect("insert");
    let in_ns = |ns: &str| QueryOptions { namespace: Some(ns.into()), ..opts(10) };
    assert_eq!(ids_of(&*index, &ORIGIN, in_ns("org-a")).await, ["a1", "a2"]);
    assert_eq!(ids_of(&*index, &ORIGIN, in_ns("org-b")).await, ["b1"]);
    assert!(ids_of(&*index, &ORIGIN, in_ns("org-c")).await.is_empty());
    assert_eq!(ids_of(&*index, &ORIGIN, opts(10)).await, ["none", "a1", "b1", "a2"]);
    let result = index.query(&ORIGIN, in_ns("org-b")).await.expect("query");
    assert_eq!(result.matches[0].namespace.as_deref(), Some("org-b"), "matches carry their namespace");
    let moved = index.upsert(vec![v("b1", &[1.5, 0.0]).in_namespace("org-a")]).await;
    assert!(moved.is_ok());
    assert!(ids_of(&*index, &ORIGIN, in_ns("org-b")).await.is_empty(), "an upsert moves a vector");
    assert_eq!(ids_of(&*index, &ORIGIN, in_ns("org-a")).await, ["a1", "b1", "a2"]);
}

/// The namespace narrows before top-k is taken: closer vectors elsewhere do not crowd it out.
pub async fn namespace_narrows_before_top_k(open: impl OpenIndex) {
    let index = open.open(config(2, Metric::Euclidean)).await;
    let mut vectors: Vec<Vector> =
        (0..50).map(|i| v(&format!("near{i:02}"), &[0.01 * i as f32, 0.0])).collect();
    vectors.push(v("far1", &[100.0, 0.0]).in_namespace("rare"));
    vectors.push(v("far2", &[200.0, 0.0]).in_namespace("rare"));
    index.insert(vectors).await.expect("insert");
    let rare = QueryOptions { namespace: Some("rare".into()), ..opts(2) };
    assert_eq!(ids_of(&*index, &ORIGIN, rare).await, ["far1", "far2"]);
}

/// `$eq`, explicit or implicit, matches equal values of the index's type; `null` matches absent.
pub async fn filter_eq_matches_equal_values(open: impl OpenIndex) {
    let index = catalogue_index(open).await;
    expect_filter(&*index, json!({"lang": "rust"}), &["v1", "v3"]).await;
    expect_filter(&*index, json!({"lang": {"$eq": "rust"}}), &["v1", "v3"]).await;
    expect_filter(&*index, json!({"size": 30}), &["v3"]).await;
    expect_filter(&*index, json!({"size": {"$eq": 20.0}}), &["v2"]).await;
    expect_filter(&*index, json!({"public": true}), &["v1"]).await;
    expect_filter(&*index, json!({"public": {"$eq": false}}), &["v2", "v3"]).await;
    expect_filter(&*index, json!({"public": null}), &["v4", "v5"]).await;
    expect_filter(&*index, json!({"lang": "RUST"}), &[]).await;
}

/// `$ne` matches every other value, including vectors without the property.
pub async fn filter_ne_matches_other_and_absent_values(open: impl OpenIndex) {
    let index = catalogue_index(open).await;
    expect_filter(&*index, json!({"lang": {"$ne": "rust"}}), &["v2", "v4", "v5"]).await;
    expect_filter(&*index, json!({"public": {"$ne": true}}), &["v2", "v3", "v4", "v5"]).await;
    expect_filter(&*index, json!({"size": {"$ne": 10}}), &["v2", "v3", "v4", "v5"]).await;
    expect_filter(&*index, json!({"public": {"$ne": null}}), &["v1", "v2", "v3"]).await;
}

/// `$in` matches values equal to one of its operands.
pub async fn filter_in_matches_any_listed_value(open: impl OpenIndex) {
    let index = catalogue_index(open).await;
    expect_filter(&*index, json!({"lang": {"$in": ["go", "python"]}}), &["v2", "v4"]).await;
    expect_filter(&*index, json!({"size": {"$in": [10, 40, 99]}}), &["v1", "v4"]).await;
    expect_filter(&*index, json!({"public": {"$in": [true, null]}}), &["v1", "v4", "v5"]).await;
    expect_filter(&*index, json!({"lang": {"$in": []}}), &[]).await;
}

/// `$nin` matches values equal to none of its operands, including absent ones.
pub async fn filter_nin_matches_no_listed_value(open: impl OpenIndex) {
    let index = catalogue_index(open).await;
    expect_filter(&*index, json!({"lang": {"$nin": ["rust", "go"]}}), &["v4", "v5"]).await;
    expect_filter(&*index, json!({"size": {"$nin": [10, 20]}}), &["v3", "v4", "v5"]).await;
    expect_filter(&*index, json!({"public": {"$nin": [false, null]}}), &["v1"]).await;
}

/// `$lt` matches smaller numbers, and strings earlier in byte order; absent values never.
pub async fn filter_lt_matches_smaller_values(open: impl OpenIndex) {
    let index = catalogue_index(open).await;
    expect_filter(&*index, json!({"size": {"$lt": 30}}), &["v1", "v2"]).await;
    expect_filter(&*index, json!({"size": {"$lt": 10}}), &[]).await;
    expect_filter(&*index, json!({"lang": {"$lt": "python"}}), &["v2"]).await;
}

/// `$lte` also matches the bound itself.
pub async fn filter_lte_matches_smaller_or_equal_values(open: impl OpenIndex) {
    let index = catalogue_index(open).await;
    expect_filter(&*index, json!({"size": {"$lte": 30}}), &["v1", "v2", "v3"]).await;
    expect_filter(&*index, json!({"lang": {"$lte": "python"}}), &["v2", "v4"]).await;
}

/// `$gt` matches greater numbers and later strings.
pub async fn filter_gt_matches_greater_values(open: impl OpenIndex) {
    let index = catalogue_index(open).await;
    expect_filter(&*index, json!({"size": {"$gt": 20}}), &["v3", "v4"]).await;
    expect_filter(&*index, json!({"size": {"$gt": 19.5}}), &["v2", "v3", "v4"]).await;
    expect_filter(&*index, json!({"lang": {"$gt": "python"}}), &["v1", "v3"]).await;
}

/// `$gte` also matches the bound, and pairs with an upper bound into a range (a string range
/// makes a prefix search).
pub async fn filter_gte_matches_greater_or_equal_values(open: impl OpenIndex) {
    let index = catalogue_index(open).await;
    expect_filter(&*index, json!({"size": {"$gte": 20}}), &["v2", "v3", "v4"]).await;
    expect_filter(&*index, json!({"size": {"$gte": 20, "$lt": 40}}), &["v2", "v3"]).await;
    expect_filter(&*index, json!({"size": {"$gt": 10, "$lte": 40}}), &["v2", "v3", "v4"]).await;
    expect_filter(&*index, json!({"lang": {"$gte": "py", "$lt": "pz"}}), &["v4"]).await;
}

/// Keys are ANDed.
pub async fn filter_keys_are_anded(open: impl OpenIndex) {
    let index = catalogue_index(open).await;
    expect_filter(&*index, json!({"lang": "rust", "size": {"$gt": 10}}), &["v3"]).await;
    expect_filter(&*index, json!({"lang": "rust", "public": true}), &["v1"]).await;
    expect_filter(&*index, json!({"lang": "rust", "public": true, "size": 30}), &[]).await;
}

/// A dotted key reaches a nested field; a non-object on the way means the field is absent.
pub async fn filter_dotted_keys_reach_nested_fields(open: impl OpenIndex) {
    let index = catalogue_index(open).await;
    expect_filter(&*index, json!({"owner.name": "bob"}), &["v2"]).await;
    expect_filter(&*index, json!({"owner.name": {"$in": ["ann", "cat"]}}), &["v1", "v3"]).await;
    expect_filter(&*index, json!({"owner.name": null}), &["v4", "v5"]).await;
}

/// The filter applies before top-k: the closest matching vectors are returned even when many
/// closer vectors fail the filter.
pub async fn filter_applies_before_top_k(open: impl OpenIndex) {
    let index = open.open(config(2, Metric::Euclidean)).await;
    index.create_metadata_index("lang", MetadataIndexType::String).await.expect("index");
    let mut vectors: Vec<Vector> = (0..200)
        .map(|i| v(&format!("near{i:03}"), &[0.001 * i as f32, 0.0]).with_metadata(json!({"lang": "rust"})))
        .collect();
    vectors.push(v("far-go", &[50.0, 0.0]).with_metadata(json!({"lang": "go"})));
    vectors.push(v("farther-go", &[60.0, 0.0]).with_metadata(json!({"lang": "go"})).in_namespace("other"));
    vectors.push(v("farthest-go", &[70.0, 0.0]).with_metadata(json!({"lang": "go"})));
    index.insert(vectors).await.expect("insert");
    let go = |top_k| QueryOptions { top_k, filter: Some(json!({"lang": "go"})), ..QueryOptions::default() };
    assert_eq!(ids_of(&*index, &ORIGIN, go(1)).await, ["far-go"]);
    assert_eq!(ids_of(&*index, &ORIGIN, go(5)).await, ["far-go", "farther-go", "farthest-go"]);
    let go_in_other = QueryOptions { namespace: Some("other".into()), ..go(5) };
    assert_eq!(ids_of(&*index, &ORIGIN, go_in_other).await, ["farther-go"]);
}

/// An unknown operator is an `InvalidFilter` naming the key and the operator.
pub async fn filter_with_unknown_operator_is_an_error(open: impl OpenIndex) {
    let index = catalogue_index(open).await;
    let result = try_ids(&*index, &ORIGIN, filtered(json!({"lang": {"$regex": "r.*"}}))).await;
    assert_filter_error(result, "lang", "$regex");
    let result = try_ids(&*index, &ORIGIN, filtered(json!({"size": {"$gt": 1, "$between": [1, 2]}}))).await;
    assert_filter_error(result, "size", "$between");
}

/// A filter whose compact JSON is 2048 bytes or more is `TooLarge`; 2047 bytes is accepted.
pub async fn filter_too_large_is_an_error(open: impl OpenIndex) {
    let index = catalogue_index(open).await;
    // {"lang":"…"} is 11 bytes around the value.
    let at_limit = json!({"lang": "x".repeat(2047 - 11)});
    assert_eq!(serde_json::to_string(&at_limit).expect("json").len(), 2047);
    assert!(try_ids(&*index, &ORIGIN, filtered(at_limit)).await.is_ok());
    let over = json!({"lang": "x".repeat(2048 - 11)});
    let result = try_ids(&*index, &ORIGIN, filtered(over)).await;
    assert!(matches!(result, Err(Error::TooLarge { field: "filter", size: 2048, .. })), "{result:?}");
}

/// Operands of the wrong JSON type for their operator or their index are `InvalidFilter`.
pub async fn filter_with_bad_operand_type_is_an_error(open: impl OpenIndex) {
    let index = catalogue_index(open).await;
    let cases = [
        (json!({"size": {"$in": 5}}), "size", "array"),
        (json!({"size": {"$nin": "x"}}), "size", "array"),
        (json!({"size": {"$lt": true}}), "size", "boolean"),
        (json!({"size": {"$gte": null}}), "size", "null"),
        (json!({"lang": {"$eq": {"nested": 1}}}), "lang", "object"),
        (json!({"lang": {"$ne": ["a"]}}), "lang", "array"),
        (json!({"lang": ["rust", "go"]}), "lang", "$in"),
        (json!({"size": "ten"}), "size", "indexed as number"),
        (json!({"lang": {"$in": ["rust", 1]}}), "lang", "indexed as string"),
        (json!({"public": {"$gt": 0}}), "public", "indexed as boolean"),
        (json!({"size": {"$gt": 1, "$lt": "z"}}), "size", "both numbers or both strings"),
    ];
    for (filter, key, mentions) in cases {
        let result = try_ids(&*index, &ORIGIN, filtered(filter.clone())).await;
        assert_filter_error(result, key, mentions);
    }
}

/// Filtering on a property without a metadata index is an `InvalidFilter` naming it (Vectorize
/// silently matches nothing).
pub async fn filter_on_unindexed_property_is_an_error(open: impl OpenIndex) {
    let index = catalogue_index(open).await;
    let result = try_ids(&*index, &ORIGIN, filtered(json!({"lang": "rust", "colour": "red"}))).await;
    assert_filter_error(result, "colour", "no metadata index");
    let result = try_ids(&*index, &ORIGIN, filtered(json!({"owner": "ann"}))).await;
    assert_filter_error(result, "owner", "no metadata index");
}

/// Filters must be non-empty objects with well-formed keys, and only a lower and an upper bound
/// combine on one key.
pub async fn malformed_filters_are_errors(open: impl OpenIndex) {
    let index = catalogue_index(open).await;
    let cases = [
        (json!({}), "", "at least one key"),
        (json!(["lang"]), "", "JSON object"),
        (json!("lang"), "", "JSON object"),
        (json!({"": 1}), "", "empty"),
        (json!({"$or": [{"lang": "go"}]}), "$or", "'$'"),
        (json!({"owner..name": "x"}), "owner..name", "empty segment"),
        (json!({"lang": {}}), "lang", "operator"),
        (json!({"size": {"$gt": 1, "$gte": 2}}), "size", "cannot be combined"),
        (json!({"size": {"$eq": 1, "$lt": 2}}), "size", "cannot be combined"),
        (json!({"size": {"$in": [1], "$nin": [2]}}), "size", "cannot be combined"),
    ];
    for (filter, key, mentions) in cases {
        let result = try_ids(&*index, &ORIGIN, filtered(filter.clone())).await;
        assert_filter_error(result, key, mentions);
    }
}

/// A string metadata index compares the first 64 bytes of values and operands, cut on a UTF-8
/// character boundary.
pub async fn indexed_strings_match_on_their_first_64_bytes(open: impl OpenIndex) {
    let index = open.open(config(2, Metric::Euclidean)).await;
    index.create_metadata_index("path", MetadataIndexType::String).await.expect("index");
    let a64 = "a".repeat(64);
    let a63 = "a".repeat(63);
    index
        .insert(vec![
            v("x", &[1.0, 0.0]).with_metadata(json!({"path": format!("{a64}X")})),
            v("y", &[2.0, 0.0]).with_metadata(json!({"path": format!("{a64}Y")})),
            v("short", &[3.0, 0.0]).with_metadata(json!({"path": a63.clone()})),
            v("accent", &[4.0, 0.0]).with_metadata(json!({"path": format!("{a63}é")})), // é straddles byte 64
        ])
        .await
        .expect("insert");
    expect_filter(&*index, json!({"path": format!("{a64}Z")}), &["x", "y"]).await;
    expect_filter(&*index, json!({"path": a64.clone()}), &["x", "y"]).await;
    expect_filter(&*index, json!({"path": a63.clone()}), &["short", "accent"]).await;
    expect_filter(&*index, json!({"path": {"$ne": format!("{a64}anything")}}), &["short", "accent"]).await;
    // Returned metadata is never cut.
    let all =
        QueryOptions { top_k: 20, return_metadata: ReturnMetadata::All, ..filtered(json!({"path": a64})) };
    let result = index.query(&ORIGIN, all).await.expect("query");
    assert_eq!(result.matches[0].metadata, Some(json!({"path": format!("{}X", "a".repeat(64))})));
}

/// Metadata indexes are created (idempotently for the same type), listed in creation order and
/// deleted; a filter on a deleted index is an error.
pub async fn metadata_indexes_are_created_listed_and_deleted(open: impl OpenIndex) {
    let index = catalogue_index(open).await;
    let listed = index.list_metadata_indexes().await.expect("list");
    let expected = |items: &[(&str, MetadataIndexType)]| -> Vec<MetadataIndex> {
        items.iter().map(|(p, t)| MetadataIndex { property: (*p).into(), index_type: *t }).collect()
    };
    use MetadataIndexType as T;
    assert_eq!(
        listed,
        expected(&[
            ("lang", T::String),
            ("size", T::Number),
            ("public", T::Boolean),
            ("owner.name", T::String)
        ])
    );
    index.create_metadata_index("size", T::Number).await.expect("same index again is a no-op");
    let conflict = index.create_metadata_index("size", T::String).await;
    assert!(matches!(conflict, Err(Error::Conflict { .. })), "{conflict:?}");
    for bad in ["", "$size", "a..b"] {
        let result = index.create_metadata_index(bad, T::String).await;
        assert!(matches!(result, Err(Error::InvalidInput { field: "property", .. })), "{bad:?}: {result:?}");
    }
    expect_filter(&*index, json!({"size": 10}), &["v1"]).await;
    index.delete_metadata_index("size").await.expect("delete");
    assert_eq!(
        index.list_metadata_indexes().await.expect("list"),
        expected(&[("lang", T::String), ("public", T::Boolean), ("owner.name", T::String)])
    );
    let result = try_ids(&*index, &ORIGIN, filtered(json!({"size": 10}))).await;
    assert_filter_error(result, "size", "no metadata index");
    expect_filter(&*index, json!({"lang": "go", "public": false}), &["v2"]).await;
    let missing = index.delete_metadata_index("size").await;
    assert!(matches!(missing, Err(Error::NotFound { .. })), "{missing:?}");
    index.create_metadata_index("size", T::String).await.expect("recreate with another type");
    expect_filter(&*index, json!({"size": {"$ne": null}}), &[]).await; // sizes are numbers, not strings
}

/// At most 10 metadata indexes; the 11th is `TooLarge`.
pub async fn metadata_indexes_are_limited_to_10(open: impl OpenIndex) {
    let index = open.open(config(2, Metric::Cosine)).await;
    for i in 0..10 {
        index.create_metadata_index(&format!("p{i}"), MetadataIndexType::Number).await.expect("create");
    }
    let eleventh = index.create_metadata_index("p10", MetadataIndexType::Number).await;
    assert!(
        matches!(eleventh, Err(Error::TooLarge { field: "metadata_indexes", size: 11, limit: 10 })),
        "{eleventh:?}"
    );
    assert_eq!(index.list_metadata_indexes().await.expect("list").len(), 10);
    index.delete_metadata_index("p3").await.expect("delete");
    index.create_metadata_index("p10", MetadataIndexType::Number).await.expect("room again");
}

/// A metadata index created after vectors were stored filters them too (stricter than Vectorize,
/// where only later upserts are indexed).
pub async fn metadata_index_applies_to_vectors_already_stored(open: impl OpenIndex) {
    let index = open.open(config(2, Metric::Euclidean)).await;
    index
        .insert(vec![
            v("a", &[1.0, 0.0]).with_metadata(json!({"repo": "ledge"})),
            v("b", &[2.0, 0.0]).with_metadata(json!({"repo": "other"})),
        ])
        .await
        .expect("insert");
    assert_eq!(ids_of(&*index, &ORIGIN, opts(5)).await, ["a", "b"]);
    index.create_metadata_index("repo", MetadataIndexType::String).await.expect("index");
    expect_filter(&*index, json!({"repo": "other"}), &["b"]).await;
    index.upsert(vec![v("c", &[3.0, 0.0]).with_metadata(json!({"repo": "other"}))]).await.expect("upsert");
    expect_filter(&*index, json!({"repo": "other"}), &["b", "c"]).await;
}

/// `ReturnMetadata::Indexed` returns only the indexed properties (nested ones in their place),
/// `All` returns everything, and values come back only when asked.
pub async fn return_metadata_indexed_returns_indexed_properties_only(open: impl OpenIndex) {
    let index = open.open(config(2, Metric::Euclidean)).await;
    index.create_metadata_index("lang", MetadataIndexType::String).await.expect("index");
    index.create_metadata_index("owner.name", MetadataIndexType::String).await.expect("index");
    let metadata = json!({"lang": "rust", "size": 3, "owner": {"name": "ann", "email": "ann@example.com"}});
    index
        .insert(vec![v("a", &[1.0, 0.0]).with_metadata(metadata.clone()), v("bare", &[2.0, 0.0])])
        .await
        .expect("insert");
    let query = |return_values, return_metadata| QueryOptions {
        top_k: 2,
        return_values,
        return_metadata,
        ..QueryOptions::default()
    };
    let indexed = index.query(&ORIGIN, query(false, ReturnMetadata::Indexed)).await.expect("query");
    assert_eq!(indexed.matches[0].metadata, Some(json!({"lang": "rust", "owner": {"name": "ann"}})));
    assert_eq!(indexed.matches[0].values, None);
    assert_eq!(indexed.matches[1].metadata, None, "a vector without metadata has none to return");
    let all = index.query(&ORIGIN, query(true, ReturnMetadata::All)).await.expect("query");
    assert_eq!(all.matches[0].metadata, Some(metadata));
    assert_eq!(all.matches[0].values.as_deref(), Some(&[1.0, 0.0][..]));
    assert_eq!(all.matches[1].values.as_deref(), Some(&[2.0, 0.0][..]));
}

/// `get_by_ids` returns stored vectors in full (exact values, namespace, metadata), in the order
/// asked, each once, leaving out absent ids.
pub async fn get_by_ids_returns_values_and_metadata(open: impl OpenIndex) {
    let index = open.open(config(3, Metric::Cosine)).await;
    let a = v("a", &[0.1, -2.5, 1e-7])
        .in_namespace("org")
        .with_metadata(json!({"path": "src/lib.rs", "n": [1, 2]}));
    let b = v("b", &[3.0, 4.0, 5.0]);
    index.insert(vec![a.clone(), b.clone()]).await.expect("insert");
    let ids: Vec<String> = ["b", "missing", "a", "b"].iter().map(|s| s.to_string()).collect();
    assert_eq!(index.get_by_ids(&ids).await.expect("get"), vec![b, a], "cosine stores the values as given");
    assert!(index.get_by_ids(&[]).await.expect("get").is_empty());
    let too_many: Vec<String> = (0..1001).map(|i| i.to_string()).collect();
    let result = index.get_by_ids(&too_many).await;
    assert!(matches!(result, Err(Error::TooLarge { field: "ids", .. })), "{result:?}");
}

/// A completed delete is visible to the next query, `get_by_ids`, `query_by_id` and `describe`.
pub async fn deletes_are_visible_to_the_next_query(open: impl OpenIndex) {
    let index = open.open(config(2, Metric::Euclidean)).await;
    index.insert(vec![v("a", &[1.0, 0.0]), v("b", &[2.0, 0.0]), v("c", &[3.0, 0.0])]).await.expect("insert");
    assert_eq!(ids_of(&*index, &ORIGIN, opts(10)).await, ["a", "b", "c"]);
    let counts = index.delete_by_ids(&["a".into(), "missing".into()]).await.expect("delete");
    assert_eq!(counts, MutationCounts { applied: 1, skipped: 1 });
    assert_eq!(ids_of(&*index, &ORIGIN, opts(10)).await, ["b", "c"]);
    assert!(index.get_by_ids(&["a".into()]).await.expect("get").is_empty());
    assert!(matches!(index.query_by_id("a", opts(1)).await, Err(Error::NotFound { .. })));
    assert_eq!(index.describe().await.expect("describe").count, 2);
    assert_eq!(
        index.delete_by_ids(&["a".into()]).await.expect("delete"),
        MutationCounts { applied: 0, skipped: 1 }
    );
    index.delete_by_ids(&["b".into(), "c".into()]).await.expect("delete");
    assert!(ids_of(&*index, &ORIGIN, opts(10)).await.is_empty());
    assert_eq!(
        index.insert(vec![v("a", &[5.0, 0.0])]).await.expect("insert").applied,
        1,
        "a deleted id is free"
    );
    assert_scores(&scores_of(&*index, &ORIGIN).await, &[("a", 5.0)]);
    let too_many: Vec<String> = (0..1001).map(|i| i.to_string()).collect();
    assert!(matches!(index.delete_by_ids(&too_many).await, Err(Error::TooLarge { field: "ids", .. })));
}

/// `query_by_id` searches with a stored vector (which matches itself first) and honours the
/// options; an absent id is `NotFound`.
pub async fn query_by_id_searches_with_the_stored_vector(open: impl OpenIndex) {
    let index = open.open(config(2, Metric::Cosine)).await;
    index
        .insert(vec![
            v("east", &[5.0, 0.0]),
            v("north-east", &[1.0, 1.0]).in_namespace("ns"),
            v("north", &[0.0, 3.0]).in_namespace("ns"),
        ])
        .await
        .expect("insert");
    let result = index.query_by_id("east", opts(3)).await.expect("query");
    let got: Vec<(String, f32)> = result.matches.into_iter().map(|m| (m.id, m.score)).collect();
    assert_scores(&got, &[("east", 1.0), ("north-east", std::f32::consts::FRAC_1_SQRT_2), ("north", 0.0)]);
    let in_ns = QueryOptions { namespace: Some("ns".into()), return_values: true, ..opts(5) };
    let result = index.query_by_id("east", in_ns).await.expect("query");
    assert_eq!(result.matches.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["north-east", "north"]);
    assert_eq!(result.matches[1].values.as_deref(), Some(&[0.0, 3.0][..]), "values are returned as stored");
    let missing = index.query_by_id("nowhere", opts(3)).await;
    assert!(matches!(missing, Err(Error::NotFound { what: "vector", .. })), "{missing:?}");
}

/// Concurrent upserts and queries: every completed upsert is stored and found.
pub async fn concurrent_upserts_and_queries_lose_nothing(open: impl OpenIndex) {
    let fresh = open.open(config(4, Metric::DotProduct)).await;
    let index = fresh.shared();
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let index = index.clone();
        tasks.push(tokio::spawn(async move {
            for batch in 0..5 {
                let vectors = (0..10)
                    .map(|i| {
                        v(&format!("w{writer}-b{batch}-{i}"), &[writer as f32, batch as f32, i as f32, 1.0])
                    })
                    .collect();
                index.upsert(vectors).await.expect("upsert");
                let seen = index.query(&[0.0, 0.0, 0.0, 1.0], opts(100)).await.expect("query");
                assert!(seen.count >= 10 * (batch + 1), "a writer sees its own upserts");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    assert_eq!(index.describe().await.expect("describe").count, 400);
    let all = index.query(&[0.0, 0.0, 0.0, 1.0], opts(100)).await.expect("query");
    assert_eq!(all.count, 100);
    let top = index.query(&[1.0, 0.0, 0.0, 0.0], opts(10)).await.expect("query");
    assert!(top.matches.iter().all(|m| m.id.starts_with("w7-") && m.score == -7.0), "{top:?}");
}
