//! The embedded driver: the conformance suite, persistence across reopen, configuration checks,
//! lazy loading, and the in-memory structure staying equal to SQLite through mixed mutations.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::task::Poll;

use ledge_vector::conformance::FreshIndex;
use ledge_vector::{
    EmbeddedOptions, EmbeddedVectorIndex, Error, IndexConfig, MetadataIndex, MetadataIndexType, Metric,
    QueryOptions, ReturnMetadata, Vector, VectorIndex, VectorLimits,
};
use serde_json::json;

mod conformance {
    use super::*;

    ledge_vector::vector_index_conformance_tests!(|config: IndexConfig| async move {
        let dir = tempfile::tempdir().expect("temp dir");
        let index =
            EmbeddedVectorIndex::open(dir.path().join("index.db"), config, EmbeddedOptions::default())
                .await
                .expect("open");
        FreshIndex::keeping(Arc::new(index), dir)
    });
}

async fn open(path: &Path, config: IndexConfig) -> Result<EmbeddedVectorIndex, Error> {
    EmbeddedVectorIndex::open(path, config, EmbeddedOptions::default()).await
}

const COSINE_3: IndexConfig = IndexConfig { dimensions: 3, metric: Metric::Cosine };

fn top(k: usize) -> QueryOptions {
    QueryOptions { top_k: k, ..QueryOptions::default() }
}

#[tokio::test]
async fn vectors_metadata_and_indexes_persist_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("code.db");
    let stored = vec![
        Vector::new("a", [1.0, 0.0, 0.0]).in_namespace("org-1").with_metadata(json!({"lang": "rust"})),
        Vector::new("b", [0.0, 1.0, 0.0]).with_metadata(json!({"lang": "go", "deep": {"x": 1}})),
        Vector::new("c", [0.3, 0.3, 0.9]),
    ];
    {
        let index = open(&path, COSINE_3).await.unwrap();
        index.create_metadata_index("lang", MetadataIndexType::String).await.unwrap();
        index.insert(stored.clone()).await.unwrap();
        index.delete_by_ids(&["c".into()]).await.unwrap();
        index.close();
    }
    let index = open(&path, COSINE_3).await.unwrap();
    assert_eq!(index.describe().await.unwrap().count, 2);
    let ids: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
    assert_eq!(index.get_by_ids(&ids).await.unwrap(), stored[..2].to_vec());
    assert_eq!(
        index.list_metadata_indexes().await.unwrap(),
        vec![MetadataIndex { property: "lang".into(), index_type: MetadataIndexType::String }]
    );
    let options = QueryOptions {
        filter: Some(json!({"lang": "rust"})),
        namespace: Some("org-1".into()),
        return_metadata: ReturnMetadata::All,
        ..top(5)
    };
    let result = index.query(&[1.0, 0.1, 0.0], options).await.unwrap();
    assert_eq!(result.count, 1);
    assert_eq!(result.matches[0].id, "a");
    assert_eq!(result.matches[0].metadata, Some(json!({"lang": "rust"})));
}

#[tokio::test]
async fn reopening_with_another_configuration_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.db");
    drop(open(&path, COSINE_3).await.unwrap());
    let other_dimensions = open(&path, IndexConfig { dimensions: 4, metric: Metric::Cosine }).await;
    assert!(
        matches!(&other_dimensions, Err(Error::ConfigMismatch { stored, requested })
            if *stored == COSINE_3 && requested.dimensions == 4),
        "{other_dimensions:?}"
    );
    let other_metric = open(&path, IndexConfig { dimensions: 3, metric: Metric::Euclidean }).await;
    let message = other_metric.unwrap_err().to_string();
    assert_eq!(
        message,
        "the index was created with 3 dimensions and metric cosine, but opened with 3 dimensions and metric euclidean"
    );
    assert!(open(&path, COSINE_3).await.is_ok(), "the stored configuration still opens");
}

#[tokio::test]
async fn dimensions_are_limited_to_1536_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let too_many =
        open(&dir.path().join("a.db"), IndexConfig { dimensions: 1537, metric: Metric::Cosine }).await;
    assert!(matches!(too_many, Err(Error::TooLarge { field: "dimensions", size: 1537, limit: 1536 })));
    let zero = open(&dir.path().join("b.db"), IndexConfig { dimensions: 0, metric: Metric::Cosine }).await;
    assert!(matches!(zero, Err(Error::InvalidInput { field: "dimensions", .. })));
    let max = open(&dir.path().join("c.db"), IndexConfig { dimensions: 1536, metric: Metric::Cosine }).await;
    let max = max.unwrap();
    max.insert(vec![Vector::new("x", vec![0.5; 1536])]).await.unwrap();
    assert_eq!(max.query(&vec![0.5; 1536], top(1)).await.unwrap().matches[0].id, "x");
}

#[tokio::test]
async fn limits_are_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let limits =
        VectorLimits { max_top_k: 3, max_vectors_per_call: 2, max_id_bytes: 4, ..VectorLimits::default() };
    let options = EmbeddedOptions { limits, ..EmbeddedOptions::default() };
    let index = EmbeddedVectorIndex::open(dir.path().join("v.db"), COSINE_3, options).await.unwrap();
    let three = vec![Vector::new("a", [1.0, 0.0, 0.0]); 3];
    assert!(matches!(index.upsert(three).await, Err(Error::TooLarge { field: "vectors", limit: 2, .. })));
    let long_id = vec![Vector::new("abcde", [1.0, 0.0, 0.0])];
    assert!(matches!(index.upsert(long_id).await, Err(Error::TooLarge { field: "id", limit: 4, .. })));
    assert!(matches!(
        index.query(&[1.0, 0.0, 0.0], top(4)).await,
        Err(Error::TooLarge { field: "top_k", .. })
    ));
    assert!(index.query(&[1.0, 0.0, 0.0], top(3)).await.is_ok());
}

#[tokio::test]
async fn nothing_is_resident_until_the_first_query() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(&dir.path().join("v.db"), COSINE_3).await.unwrap();
    index.insert(vec![Vector::new("a", [1.0, 0.0, 0.0]), Vector::new("b", [0.0, 1.0, 0.0])]).await.unwrap();
    index.get_by_ids(&["a".into()]).await.unwrap();
    index.describe().await.unwrap();
    assert_eq!(
        index.resident_vectors().await,
        None,
        "writes and reads by id do not load the search structure"
    );
    index.query(&[1.0, 0.0, 0.0], top(1)).await.unwrap();
    assert_eq!(index.resident_vectors().await, Some(2));
    index.upsert(vec![Vector::new("c", [0.0, 0.0, 1.0])]).await.unwrap();
    index.delete_by_ids(&["a".into()]).await.unwrap();
    assert_eq!(index.resident_vectors().await, Some(2), "mutations update the loaded structure in place");
    index.create_metadata_index("lang", MetadataIndexType::String).await.unwrap();
    assert_eq!(index.resident_vectors().await, None, "a new metadata index is built on the next query");
    index.query_by_id("b", top(1)).await.unwrap();
    assert_eq!(index.resident_vectors().await, Some(2));
}

#[tokio::test]
async fn mutations_after_close_fail_with_closed_and_queries_still_answer() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(&dir.path().join("v.db"), COSINE_3).await.unwrap();
    index.insert(vec![Vector::new("a", [1.0, 0.0, 0.0])]).await.unwrap();
    index.close();
    let result = index.upsert(vec![Vector::new("b", [0.0, 1.0, 0.0])]).await;
    assert!(matches!(result, Err(Error::Closed)), "{result:?}");
    assert_eq!(index.query(&[1.0, 0.0, 0.0], top(5)).await.unwrap().count, 1);
}

/// A deterministic pseudo-random sequence in [-0.5, 0.5).
fn noise(seed: u64, n: usize) -> Vec<f32> {
    let mut x = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((x >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect()
}

fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// The in-memory structure (updated in place, slots moved by deletes) answers exactly what a
/// brute-force scan of the expected contents answers, before and after a cold reload.
#[tokio::test]
async fn the_search_structure_follows_mixed_mutations() {
    const D: usize = 19;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.db");
    let config = IndexConfig { dimensions: D, metric: Metric::Euclidean };
    let index = open(&path, config).await.unwrap();
    index.create_metadata_index("bucket", MetadataIndexType::Number).await.unwrap();
    let mut model: BTreeMap<String, (Vec<f32>, i64)> = BTreeMap::new();
    let vector = |id: &str, seed: u64| {
        let bucket = (seed % 3) as i64;
        (Vector::new(id, noise(seed, D)).with_metadata(json!({"bucket": bucket})), bucket)
    };
    let initial: Vec<Vector> = (0..120)
        .map(|i| {
            let (v, bucket) = vector(&format!("v{i:03}"), i);
            model.insert(v.id.clone(), (v.values.clone(), bucket));
            v
        })
        .collect();
    index.insert(initial).await.unwrap();
    index.query(&noise(1, D), top(1)).await.unwrap(); // load, so that what follows updates in place

    for round in 0..6u64 {
        let doomed: Vec<String> = model.keys().skip(round as usize).step_by(7).cloned().collect();
        index.delete_by_ids(&doomed).await.unwrap();
        for id in &doomed {
            model.remove(id);
        }
        let upserts: Vec<Vector> = (0..15u64)
            .map(|i| {
                let id = format!("v{:03}", (round * 37 + i * 11) % 160);
                let (v, bucket) = vector(&id, 1000 + round * 100 + i);
                model.insert(id, (v.values.clone(), bucket));
                v
            })
            .collect();
        index.upsert(upserts).await.unwrap();
    }

    let query = noise(424242, D);
    let expected = |bucket: Option<i64>| -> Vec<String> {
        let mut scored: Vec<(f32, &String)> = model
            .iter()
            .filter(|(_, (_, b))| bucket.is_none_or(|want| *b == want))
            .map(|(id, (values, _))| (squared_distance(&query, values), id))
            .collect();
        scored.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1)));
        scored.into_iter().take(100).map(|(_, id)| id.clone()).collect()
    };
    let answer = |index: EmbeddedVectorIndex, filter: Option<serde_json::Value>| {
        let query = query.clone();
        async move {
            let options = QueryOptions { filter, ..top(100) };
            let result = index.query(&query, options).await.unwrap();
            result.matches.into_iter().map(|m| m.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(index.describe().await.unwrap().count, model.len());
    assert_eq!(answer(index.clone(), None).await, expected(None), "warm, unfiltered");
    assert_eq!(answer(index.clone(), Some(json!({"bucket": 1}))).await, expected(Some(1)), "warm, filtered");

    index.close();
    drop(index);
    let reopened = open(&path, config).await.unwrap();
    assert_eq!(answer(reopened.clone(), None).await, expected(None), "cold, unfiltered");
    assert_eq!(answer(reopened, Some(json!({"bucket": 2}))).await, expected(Some(2)), "cold, filtered");
}

/// A caller that stops waiting for an upsert (a dropped future, a timed-out request) does not leave
/// SQLite and the search structure apart: the upsert completes, and queries see it.
#[tokio::test]
async fn an_abandoned_upsert_still_reaches_the_search_structure() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(&dir.path().join("v.db"), COSINE_3).await.unwrap();
    index.insert(vec![Vector::new("old", [0.0, 1.0, 0.0])]).await.unwrap();
    index.query(&[1.0, 0.0, 0.0], top(5)).await.unwrap(); // loaded: later writes update it in place
    let mut upsert = Box::pin(index.upsert(vec![Vector::new("new", [1.0, 0.0, 0.0])]));
    let first_poll = std::future::poll_fn(|cx| Poll::Ready(upsert.as_mut().poll(cx))).await;
    assert!(first_poll.is_pending(), "the upsert cannot complete within one poll");
    drop(upsert);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while index.get_by_ids(&["new".into()]).await.unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the abandoned upsert never committed");
        tokio::task::yield_now().await;
    }
    let ids: Vec<String> =
        index.query(&[1.0, 0.0, 0.0], top(5)).await.unwrap().matches.into_iter().map(|m| m.id).collect();
    assert_eq!(ids, ["new", "old"]);
}
