//! The embedded vector index at the size of a code-search deployment: 100,000 × 256-d cosine
//! vectors with chunk-like 64-byte ids, one namespace per org and metadata indexes on repo,
//! language and path. Reports the write time, the open (and migration) time, the first query's
//! load time and the resident memory it adds (VmRSS delta, and the structure's own count), query
//! latency p50/p95, and recall@10 of the quantized pass against an exact brute-force scan.
//!
//! Data: 2,000 random cluster centres, each vector a centre plus noise of the same scale (so
//! neighbourhoods are dense and quantization errors matter), unit-normalised by the index.
//!
//! usage: `cargo bench -p ledge-vector --bench vector_index` (`VECTORS=20000` for a smaller run).

use std::time::{Duration, Instant};

use ledge_vector::{
    EmbeddedOptions, EmbeddedVectorIndex, IndexConfig, MetadataIndexType, Metric, QueryOptions, Rescore,
    Vector, VectorIndex,
};
use serde_json::{Value, json};

const D: usize = 256;
const CLUSTERS: u64 = 2000;
const LANGUAGES: [&str; 6] = ["rust", "rust", "python", "go", "typescript", "java"];
const QUERIES: usize = 200;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// `n` roughly Gaussian values (sum of uniforms) from `seed`.
fn gaussian(seed: u64, n: usize) -> Vec<f32> {
    (0..n as u64)
        .map(|i| {
            let r = splitmix(seed.wrapping_mul(1_000_003).wrapping_add(i));
            let parts = [r & 0xFFFF, (r >> 16) & 0xFFFF, (r >> 32) & 0xFFFF, r >> 48];
            parts.iter().map(|p| *p as f32 / 65536.0).sum::<f32>() - 2.0
        })
        .collect()
}

struct Generated {
    id: String,
    values: Vec<f32>,
    namespace: &'static str,
    metadata: Value,
}

fn cluster_of(i: u64) -> u64 {
    splitmix(i ^ 0xC1) % CLUSTERS
}

fn generate(i: u64) -> Generated {
    let cluster = cluster_of(i);
    let centre = gaussian(cluster + 1_000_000, D);
    let noise = gaussian(i, D);
    let values: Vec<f32> = centre.iter().zip(&noise).map(|(c, n)| c + n).collect();
    let id: String = (0..4).map(|k| format!("{:016x}", splitmix(i * 4 + k))).collect();
    // Six chunks per file; a file has one repo, language and path.
    let file = i / 6;
    let repo = splitmix(file ^ 0x5E) % 97;
    let language = LANGUAGES[(splitmix(file ^ 0x1A) % LANGUAGES.len() as u64) as usize];
    let org = if repo.is_multiple_of(5) { "org-1" } else { "org-0" };
    Generated {
        id,
        values,
        namespace: org,
        metadata: json!({
            "org": org,
            "repo": format!("{org}/repo-{repo}"),
            "commit": format!("{:040x}", u128::from(splitmix(repo))),
            "path": format!("src/module_{}/file_{file}.{language}", file % 50),
            "language": language,
            "symbol": format!("function_{i}"),
            "start_line": (i % 6) * 40,
            "end_line": (i % 6) * 40 + 39,
        }),
    }
}

fn query_vector(q: u64) -> Vec<f32> {
    let cluster = splitmix(q ^ 0xAB) % CLUSTERS;
    let centre = gaussian(cluster + 1_000_000, D);
    let noise = gaussian(q + 10_000_000_000, D);
    centre.iter().zip(&noise).map(|(c, n)| c + n).collect()
}

/// `VmRSS` of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

/// CPU time of this process (user + system, every thread), from `/proc/self/stat` (10 ms ticks):
/// on a machine shared with other work, it tells what a measurement cost apart from waiting.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name come the state (field 3) … utime (field 14) and stime (field 15).
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    Duration::from_millis((field(14) + field(15)) * 10)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn unit(values: &[f32]) -> Vec<f32> {
    let norm = values.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
    values.iter().map(|v| (f64::from(*v) / norm) as f32).collect()
}

struct Case {
    name: &'static str,
    namespace: Option<&'static str>,
    filter: Option<Value>,
    keep: fn(&Generated) -> bool,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "namespace org-0 + language = rust",
            namespace: Some("org-0"),
            filter: Some(json!({"language": "rust"})),
            keep: |g| g.namespace == "org-0" && g.metadata["language"] == "rust",
        },
        Case {
            name: "namespace org-0 + path prefix src/module_1",
            namespace: Some("org-0"),
            filter: Some(json!({"path": {"$gte": "src/module_1/", "$lt": "src/module_10"}})),
            keep: |g| {
                let path = g.metadata["path"].as_str().unwrap_or_default();
                g.namespace == "org-0" && ("src/module_1/".."src/module_10").contains(&path)
            },
        },
        Case {
            name: "no namespace, no filter (every vector scored)",
            namespace: None,
            filter: None,
            keep: |_| true,
        },
    ]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: u64 = std::env::var("VECTORS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("code.db");
    let config = IndexConfig { dimensions: D, metric: Metric::Cosine };
    println!("{n} vectors × {D} dimensions, cosine, 3 string metadata indexes (repo, language, path)");

    {
        let index = EmbeddedVectorIndex::open(&path, config, EmbeddedOptions::default()).await.expect("open");
        for property in ["repo", "language", "path"] {
            index.create_metadata_index(property, MetadataIndexType::String).await.expect("index");
        }
        let started = Instant::now();
        let mut i = 0;
        while i < n {
            let batch: Vec<Vector> = (i..(i + 1000).min(n))
                .map(|i| {
                    let g = generate(i);
                    Vector::new(g.id, g.values).in_namespace(g.namespace).with_metadata(g.metadata)
                })
                .collect();
            index.upsert(batch).await.expect("upsert");
            i += 1000;
        }
        println!("write: {:?} (batches of 1000 upserts, generation included)", started.elapsed());
        assert_eq!(index.resident_vectors().await, None, "upserts do not load the structure");
        index.close();
    }
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!("database file: {:.1} MB", size as f64 / 1e6);

    // A cold start: open, then the first query loads the structure.
    let started = Instant::now();
    let index = EmbeddedVectorIndex::open(&path, config, EmbeddedOptions::default()).await.expect("open");
    println!("open: {:?}", started.elapsed());
    let before = rss_kib();
    let cpu = cpu_time();
    let started = Instant::now();
    index.load().await.expect("load");
    let load = started.elapsed();
    let load_cpu = cpu_time() - cpu;
    let after_load = rss_kib();
    let case = &cases()[0];
    let options = QueryOptions {
        top_k: 10,
        namespace: case.namespace.map(str::to_owned),
        filter: case.filter.clone(),
        ..QueryOptions::default()
    };
    let started = Instant::now();
    index.query(&query_vector(0), options).await.expect("query");
    let first = started.elapsed();
    println!(
        "load: {load:?} (process CPU {load_cpu:?}); first search after it: {first:?} (load + first search: {:?})",
        load + first
    );
    println!(
        "resident: VmRSS +{:.1} MB over the load; the structure counts {:.1} MB of heap ({} vectors)",
        (after_load.saturating_sub(before)) as f64 / 1024.0,
        index.resident_bytes().await.unwrap_or(0) as f64 / 1e6,
        index.resident_vectors().await.unwrap_or(0),
    );

    // Latency.
    for case in cases() {
        let options = QueryOptions {
            top_k: 10,
            namespace: case.namespace.map(str::to_owned),
            filter: case.filter.clone(),
            ..QueryOptions::default()
        };
        let mut times = Vec::with_capacity(QUERIES);
        let cpu = cpu_time();
        for q in 0..QUERIES as u64 {
            let query = query_vector(q);
            let started = Instant::now();
            let result = index.query(&query, options.clone()).await.expect("query");
            times.push(started.elapsed());
            assert_eq!(result.count, 10);
        }
        let cpu = (cpu_time() - cpu) / QUERIES as u32;
        times.sort();
        println!(
            "query top-10, {}: p50 {:?}, p95 {:?}, max {:?}; mean process CPU per query {cpu:?}",
            case.name,
            percentile(&times, 0.5),
            percentile(&times, 0.95),
            times[times.len() - 1]
        );
    }

    // Fewer candidates: each is one SQLite point read outside the small page cache.
    let fewer = Rescore { factor: 4, min: 32 };
    let light =
        EmbeddedVectorIndex::open(&path, config, EmbeddedOptions { rescore: fewer, ..Default::default() })
            .await
            .expect("open");
    light.load().await.expect("load");
    for case in cases() {
        let options = QueryOptions {
            top_k: 10,
            namespace: case.namespace.map(str::to_owned),
            filter: case.filter.clone(),
            ..QueryOptions::default()
        };
        let mut times = Vec::with_capacity(QUERIES);
        for q in 0..QUERIES as u64 {
            let query = query_vector(q);
            let started = Instant::now();
            light.query(&query, options.clone()).await.expect("query");
            times.push(started.elapsed());
        }
        times.sort();
        println!(
            "query top-10 with {fewer:?}, {}: p50 {:?}, p95 {:?}",
            case.name,
            percentile(&times, 0.5),
            percentile(&times, 0.95)
        );
    }

    // Recall@10 against an exact scan, with the default rescoring and with none (the quantized
    // ranking alone: the 10 best quantized scores, rescored only for their score).
    let none = Rescore { factor: 1, min: 1 };
    let bare =
        EmbeddedVectorIndex::open(&path, config, EmbeddedOptions { rescore: none, ..Default::default() })
            .await
            .expect("open");
    let all: Vec<Generated> = (0..n).map(generate).collect();
    let rows: Vec<Vec<f32>> = all.iter().map(|g| unit(&g.values)).collect();
    for case in cases() {
        let options = QueryOptions {
            top_k: 10,
            namespace: case.namespace.map(str::to_owned),
            filter: case.filter.clone(),
            ..QueryOptions::default()
        };
        let (mut found_default, mut found_bare, mut found_light, mut total, mut exact_scores) =
            (0, 0, 0, 0, true);
        for q in 0..50u64 {
            let query = unit(&query_vector(q));
            let mut exact: Vec<(f32, &str)> = all
                .iter()
                .zip(&rows)
                .filter(|(g, _)| (case.keep)(g))
                .map(|(g, row)| (ledge_vector::distance::dot(&query, row), g.id.as_str()))
                .collect();
            exact.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
            exact.truncate(10);
            let truth: Vec<&str> = exact.iter().map(|e| e.1).collect();
            let got = index.query(&query, options.clone()).await.expect("query");
            let got_bare = bare.query(&query, options.clone()).await.expect("query");
            found_default += got.matches.iter().filter(|m| truth.contains(&m.id.as_str())).count();
            found_bare += got_bare.matches.iter().filter(|m| truth.contains(&m.id.as_str())).count();
            let got_light = light.query(&query, options.clone()).await.expect("query");
            found_light += got_light.matches.iter().filter(|m| truth.contains(&m.id.as_str())).count();
            total += truth.len();
            for m in &got.matches {
                if let Some((score, _)) = exact.iter().find(|e| e.1 == m.id) {
                    exact_scores &= (score - m.score).abs() < 1e-5;
                }
            }
        }
        println!(
            "recall@10, {}: {:.4} with rescoring ({:?}), {:.4} with {fewer:?}, {:.4} quantized ranking alone; \
             scores exact: {exact_scores}",
            case.name,
            found_default as f64 / total as f64,
            Rescore::default(),
            found_light as f64 / total as f64,
            found_bare as f64 / total as f64,
        );
    }
    drop(bare);
    drop(light);
    index.close();
    drop(index);

    // Migration: the same database as one written before the search rows existed.
    {
        let conn = ledge_sqlite::rusqlite::Connection::open(&path).expect("sqlite");
        conn.execute_batch("DROP TABLE search_rows; DROP TABLE search_state; VACUUM;").expect("old schema");
    }
    let (started, cpu) = (Instant::now(), cpu_time());
    let index = EmbeddedVectorIndex::open(&path, config, EmbeddedOptions::default()).await.expect("open");
    println!(
        "open of an old-schema database (rebuilds the search rows): {:?} (process CPU {:?})",
        started.elapsed(),
        cpu_time() - cpu
    );
    let (started, cpu) = (Instant::now(), cpu_time());
    index.load().await.expect("load");
    println!("load after the migration: {:?} (process CPU {:?})", started.elapsed(), cpu_time() - cpu);
}
