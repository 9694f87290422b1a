//! The quantized search of the embedded driver: exact scores after the quantized pass, search rows
//! written by upserts alone, and databases from before the search rows (migrated when opened).

use std::path::Path;

use ledge_sqlite::rusqlite;
use ledge_vector::{
    EmbeddedOptions, EmbeddedVectorIndex, IndexConfig, MetadataIndexType, Metric, QueryOptions, Rescore,
    Vector, VectorIndex, VectorLimits,
};
use serde_json::json;

/// A deterministic pseudo-random sequence in [-0.5, 0.5).
fn noise(seed: u64, n: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((x >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect()
}

/// Vector `i` of 40 clusters: a centre plus noise, so that neighbours are close together.
fn clustered(i: u64, d: usize) -> Vec<f32> {
    let centre = noise(1_000_000 + i % 40, d);
    centre.iter().zip(noise(i, d)).map(|(c, n)| c + 0.5 * n).collect()
}

fn unit(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    v.iter().map(|x| (f64::from(*x) / norm) as f32).collect()
}

/// The exact cosine ranking (score, id) of `rows` for `query`, best first, ties to the smaller id.
fn exact_cosine<'a>(query: &[f32], rows: impl Iterator<Item = (&'a str, &'a [f32])>) -> Vec<(f32, String)> {
    let q = unit(query);
    let mut scored: Vec<(f32, String)> =
        rows.map(|(id, v)| (ledge_vector::distance::dot(&q, &unit(v)), id.to_owned())).collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    scored
}

async fn open_with(path: &Path, config: IndexConfig, rescore: Rescore) -> EmbeddedVectorIndex {
    EmbeddedVectorIndex::open(path, config, EmbeddedOptions { rescore, ..EmbeddedOptions::default() })
        .await
        .expect("open")
}

#[tokio::test]
async fn quantized_ranking_returns_the_exact_scores_and_order() {
    const D: usize = 48;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.db");
    let config = IndexConfig { dimensions: D, metric: Metric::Cosine };
    let index = open_with(&path, config, Rescore::default()).await;
    index.create_metadata_index("group", MetadataIndexType::Number).await.unwrap();
    let rows: Vec<(String, Vec<f32>, u64)> =
        (0..3000).map(|i| (format!("v{i:05}"), clustered(i, D), i % 3)).collect();
    for batch in rows.chunks(1000) {
        let vectors = batch
            .iter()
            .map(|(id, v, group)| Vector::new(id.clone(), v.clone()).with_metadata(json!({"group": group})))
            .collect();
        index.upsert(vectors).await.unwrap();
    }
    let bare = open_with(&path, config, Rescore { factor: 1, min: 1 }).await;
    for q in 0..20u64 {
        let query = clustered(50_000 + q, D);
        let group = q % 3;
        let exact = exact_cosine(
            &query,
            rows.iter().filter(|r| r.2 == group).map(|(id, v, _)| (id.as_str(), v.as_slice())),
        );
        let options =
            QueryOptions { top_k: 10, filter: Some(json!({"group": group})), ..QueryOptions::default() };
        let got = index.query(&query, options.clone()).await.unwrap();
        let got: Vec<(f32, String)> = got.matches.into_iter().map(|m| (m.score, m.id)).collect();
        assert_eq!(
            got,
            exact[..10].to_vec(),
            "query {q}: the rescored top 10 is the exact one, scores included"
        );

        // Without rescoring candidates the ranking may differ, but every score is still exact.
        for m in bare.query(&query, options).await.unwrap().matches {
            let (score, _) = exact.iter().find(|(_, id)| *id == m.id).expect("a vector of the group");
            assert_eq!(m.score, *score, "query {q}: {} scores exactly", m.id);
        }
    }
}

#[tokio::test]
async fn upserts_without_a_query_are_searchable_after_reopening() {
    const D: usize = 16;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.db");
    let config = IndexConfig { dimensions: D, metric: Metric::Euclidean };
    let vectors: Vec<Vector> = (0..200u64)
        .map(|i| {
            Vector::new(format!("v{i}"), noise(i, D))
                .in_namespace(if i % 2 == 0 { "even" } else { "odd" })
                .with_metadata(json!({"lang": if i % 4 < 2 { "rust" } else { "go" }}))
        })
        .collect();
    {
        let index = open_with(&path, config, Rescore::default()).await;
        index.create_metadata_index("lang", MetadataIndexType::String).await.unwrap();
        index.insert(vectors[..150].to_vec()).await.unwrap();
        index.upsert(vectors[100..].to_vec()).await.unwrap();
        index.delete_by_ids(&["v0".into(), "v2".into()]).await.unwrap();
        assert_eq!(index.resident_vectors().await, None, "no mutation loaded the search structure");
        index.close();
    }
    let index = open_with(&path, config, Rescore::default()).await;
    let query = noise(9_999, D);
    let options = QueryOptions {
        top_k: 100,
        namespace: Some("even".into()),
        filter: Some(json!({"lang": "rust"})),
        ..QueryOptions::default()
    };
    let got: Vec<String> =
        index.query(&query, options).await.unwrap().matches.into_iter().map(|m| m.id).collect();
    let distance = |v: &[f32]| query.iter().zip(v).map(|(a, b)| (a - b) * (a - b)).sum::<f32>();
    let mut expected: Vec<(f32, &str)> = vectors
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == 0 && i % 4 < 2 && *i != 0 && *i != 2)
        .map(|(_, v)| (distance(&v.values), v.id.as_str()))
        .collect();
    expected.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    let expected: Vec<&str> = expected.into_iter().map(|e| e.1).collect();
    assert_eq!(got, expected);
    assert_eq!(index.resident_vectors().await, Some(198));
}

/// The schema before search rows existed, as that version of the driver wrote it.
const OLD_SCHEMA: &str = "
CREATE TABLE index_config (
    singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
    dimensions INTEGER NOT NULL,
    metric     TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE vectors (
    id            TEXT PRIMARY KEY,
    namespace     TEXT,
    vector_values BLOB NOT NULL,
    metadata      TEXT,
    updated_at    INTEGER NOT NULL
);
CREATE TABLE metadata_indexes (
    property   TEXT PRIMARY KEY,
    index_type TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
INSERT INTO index_config VALUES (1, 3, 'cosine', 0);
INSERT INTO metadata_indexes VALUES ('lang', 'string', 0), ('size', 'number', 1);
";

fn blob(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[tokio::test]
async fn a_database_of_the_old_schema_is_migrated_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(OLD_SCHEMA).unwrap();
        let rows = [
            ("a", Some("org"), [1.0f32, 0.0, 0.0], Some(r#"{"lang":"rust","size":3}"#)),
            ("b", Some("org"), [0.8, 0.6, 0.0], Some(r#"{"lang":"go","size":10}"#)),
            ("c", None, [0.0, 0.0, 2.0], None),
            ("d", Some("org"), [0.6, 0.8, 0.0], Some(r#"{"lang":"rust","size":12}"#)),
        ];
        for (id, namespace, values, metadata) in rows {
            conn.execute(
                "INSERT INTO vectors (id, namespace, vector_values, metadata, updated_at) VALUES (?1, ?2, ?3, ?4, 0)",
                (id, namespace, blob(&values), metadata),
            )
            .unwrap();
        }
    }
    let config = IndexConfig { dimensions: 3, metric: Metric::Cosine };
    let index = open_with(&path, config, Rescore::default()).await;
    let options = QueryOptions {
        top_k: 10,
        namespace: Some("org".into()),
        filter: Some(json!({"lang": "rust", "size": {"$gte": 3}})),
        ..QueryOptions::default()
    };
    let got: Vec<(String, f32)> = index
        .query(&[1.0, 0.0, 0.0], options)
        .await
        .unwrap()
        .matches
        .into_iter()
        .map(|m| (m.id, m.score))
        .collect();
    assert_eq!(got, [("a".to_owned(), 1.0), ("d".to_owned(), 0.6)]);
    let all: Vec<String> = index
        .query(&[0.0, 0.0, 1.0], QueryOptions { top_k: 10, ..QueryOptions::default() })
        .await
        .unwrap()
        .matches
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(all[0], "c", "vectors without namespace or metadata are migrated too");
    assert_eq!(all.len(), 4);
    index.close();
    drop(index);

    // Migrated once: the state records it, and the rows are all there.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (rows, state): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM search_rows), (SELECT row_count FROM search_state)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((rows, state), (4, 4));
}

#[tokio::test]
async fn a_new_string_prefix_limit_rebuilds_the_indexed_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.db");
    let config = IndexConfig { dimensions: 2, metric: Metric::DotProduct };
    {
        let index = open_with(&path, config, Rescore::default()).await;
        index.create_metadata_index("path", MetadataIndexType::String).await.unwrap();
        index
            .upsert(vec![
                Vector::new("a", [1.0, 0.0]).with_metadata(json!({"path": "src/alpha.rs"})),
                Vector::new("b", [1.0, 1.0]).with_metadata(json!({"path": "src/beta.rs"})),
            ])
            .await
            .unwrap();
        index.close();
    }
    let limits = VectorLimits { indexed_string_prefix_bytes: 4, ..VectorLimits::default() };
    let options = EmbeddedOptions { limits, ..EmbeddedOptions::default() };
    let index = EmbeddedVectorIndex::open(&path, config, options).await.unwrap();
    // Both paths are "src/" to an index that keeps 4 bytes, and so is the operand.
    let filter =
        QueryOptions { top_k: 5, filter: Some(json!({"path": "src/gamma.rs"})), ..QueryOptions::default() };
    let got: Vec<String> =
        index.query(&[1.0, 1.0], filter).await.unwrap().matches.into_iter().map(|m| m.id).collect();
    assert_eq!(got, ["b", "a"]);
}

#[tokio::test]
async fn a_metadata_index_created_later_is_persisted_for_the_next_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.db");
    let config = IndexConfig { dimensions: 2, metric: Metric::Cosine };
    {
        let index = open_with(&path, config, Rescore::default()).await;
        index
            .upsert(vec![
                Vector::new("a", [1.0, 0.0]).with_metadata(json!({"repo": "x", "big": true})),
                Vector::new("b", [0.0, 1.0]).with_metadata(json!({"repo": "y", "big": false})),
            ])
            .await
            .unwrap();
        index.create_metadata_index("repo", MetadataIndexType::String).await.unwrap();
        index.create_metadata_index("big", MetadataIndexType::Boolean).await.unwrap();
        index.delete_metadata_index("repo").await.unwrap();
        index.create_metadata_index("repo", MetadataIndexType::String).await.unwrap();
        index.close();
    }
    let index = open_with(&path, config, Rescore::default()).await;
    let query = |filter| QueryOptions { top_k: 5, filter: Some(filter), ..QueryOptions::default() };
    let ids = |r: ledge_vector::QueryResult| r.matches.into_iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(ids(index.query(&[1.0, 1.0], query(json!({"repo": "y"}))).await.unwrap()), ["b"]);
    assert_eq!(ids(index.query(&[1.0, 1.0], query(json!({"big": true}))).await.unwrap()), ["a"]);
}
