//! The embedded driver: vectors and metadata persisted in SQLite (through `ledge-sqlite`), searched
//! in an in-memory [`flat`] structure of `i8`-quantized rows loaded on the first query, the best
//! candidates rescored exactly with their `f32` values from SQLite.
//!
//! Tables: `index_config` (one row: dimensions, metric), `vectors` (id, namespace, values as
//! little-endian f32 BLOB, metadata as compact JSON), `metadata_indexes` (property, type), and
//! what the search structure is loaded from: `search_rows` (per vector: id, namespace, the
//! quantized row — scale then codes, see [`quantize`] — and the values of the metadata indexes,
//! see [`encode_indexed`]; ≈ 0.35 KiB for 256 dimensions against ≈ 1.3 KiB in `vectors`) and
//! `search_state` (the quantization format and indexed-string prefix those rows were written
//! with, and their count and id bytes, kept by triggers so that loading allocates once). A database without `search_state` (written before it existed), or written with another
//! format or prefix, has its `search_rows` rebuilt from `vectors` when it is opened; creating a
//! metadata index refreshes the indexed values of every row in the same transaction.
//!
//! Search: the namespace and filter are applied exactly to every vector, the quantized pass
//! (integer dot products, see [`crate::distance::dot_i16_i8`]) keeps the best
//! `max(rescore.min, rescore.factor · top_k)` candidates, and those are scored exactly with their
//! `f32` values read from SQLite: returned scores are exact, and the ranking is exact unless a
//! true top-k vector was quantized out of the candidates (recall@10 measured by the `vector_index`
//! bench).
//!
//! Memory (see [`flat`]): ≈ 0.37 KiB per 256-dimension vector with a 64-byte id and 3 string
//! metadata indexes, against ≈ 1.2 KiB for `f32` rows.
//!
//! Consistency: every mutation commits to SQLite and updates the in-memory structure while holding
//! its write lock, in a task of its own (so a caller that stops waiting cannot leave the two
//! apart); a query holds the read lock from scoring to reading the matches' values and metadata.
//! A completed mutation is therefore visible to the next query, and a query sees one state.

mod flat;
mod quantize;
mod strings;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use ledge_sqlite::rusqlite::{self, OptionalExtension, Transaction};
use ledge_sqlite::{Database, now_ms};
use serde_json::Value;
use tokio::sync::{RwLock, RwLockReadGuard};

use self::flat::FlatStore;
use crate::distance::{normalize, similarity};
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::index::VectorIndex;
use crate::limits::VectorLimits;
use crate::metadata::{IndexedRef, IndexedValue, project_indexed};
use crate::types::{
    IndexConfig, IndexDescription, MetadataIndex, MetadataIndexType, Metric, MutationCounts, QueryOptions,
    QueryResult, ReturnMetadata, Vector, VectorMatch,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS index_config (
    singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
    dimensions INTEGER NOT NULL,
    metric     TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS vectors (
    id            TEXT PRIMARY KEY,
    namespace     TEXT,
    vector_values BLOB NOT NULL,
    metadata      TEXT,
    updated_at    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS metadata_indexes (
    property   TEXT PRIMARY KEY,
    index_type TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS search_rows (
    id        TEXT PRIMARY KEY,
    namespace TEXT,
    codes     BLOB NOT NULL,
    indexed   BLOB
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS search_state (
    singleton           INTEGER PRIMARY KEY CHECK (singleton = 1),
    quantization        INTEGER NOT NULL,
    string_prefix_bytes INTEGER NOT NULL,
    row_count           INTEGER NOT NULL,
    id_bytes            INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS search_row_added AFTER INSERT ON search_rows BEGIN
    UPDATE search_state SET row_count = row_count + 1, id_bytes = id_bytes + length(CAST(NEW.id AS BLOB));
END;
CREATE TRIGGER IF NOT EXISTS search_row_removed AFTER DELETE ON search_rows BEGIN
    UPDATE search_state SET row_count = row_count - 1, id_bytes = id_bytes - length(CAST(OLD.id AS BLOB));
END;
";

/// The layout of `search_rows.codes` (see [`quantize`]); another value rebuilds the rows.
const QUANTIZATION_FORMAT: i64 = 1;

/// Options of [`EmbeddedVectorIndex::open`].
#[derive(Debug, Clone, Default)]
pub struct EmbeddedOptions {
    pub limits: VectorLimits,
    pub sqlite: ledge_sqlite::Options,
    pub rescore: Rescore,
}

/// How many candidates of the quantized pass a query rescores exactly:
/// `max(min, factor · top_k)`. More candidates: better recall, a slower query (each candidate is
/// one SQLite point read, a few microseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rescore {
    pub factor: usize,
    pub min: usize,
}

impl Default for Rescore {
    fn default() -> Self {
        Rescore { factor: 4, min: 64 }
    }
}

impl Rescore {
    /// Candidates rescored for a query of `top_k`.
    pub fn candidates(&self, top_k: usize) -> usize {
        top_k.saturating_mul(self.factor).max(self.min).max(top_k)
    }
}

/// The embedded vector index: one SQLite database file per index. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedVectorIndex {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    config: IndexConfig,
    limits: VectorLimits,
    rescore: Rescore,
    /// `None` until the first query loads it (and again after a metadata index is created).
    memory: RwLock<Option<FlatStore>>,
}

impl std::fmt::Debug for EmbeddedVectorIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedVectorIndex")
            .field("path", &self.inner.db.path())
            .field("config", &self.inner.config)
            .finish()
    }
}

impl EmbeddedVectorIndex {
    /// Opens the index stored at `path` (a SQLite file, created with `config` if new). Opening an
    /// index created with other dimensions or another metric fails with
    /// [`Error::ConfigMismatch`]. Nothing is loaded into memory until the first query.
    pub async fn open(
        path: impl AsRef<Path>,
        config: IndexConfig,
        options: EmbeddedOptions,
    ) -> Result<EmbeddedVectorIndex> {
        options.limits.check_config(&config)?;
        let path = path.as_ref().to_path_buf();
        let sqlite = options.sqlite.clone();
        let db = tokio::task::spawn_blocking(move || Database::open(path, SCHEMA, sqlite))
            .await
            .map_err(|e| Error::backend(format!("opening the index failed: {e}")))??;
        let stored = db
            .write(move |txn| -> Result<IndexConfig> {
                let row: Option<(i64, String)> = txn
                    .query_row("SELECT dimensions, metric FROM index_config", [], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                match row {
                    Some((dimensions, metric)) => Ok(IndexConfig {
                        dimensions: usize::try_from(dimensions)
                            .map_err(|_| Error::backend(format!("stored dimensions {dimensions} are invalid")))?,
                        metric: metric
                            .parse::<Metric>()
                            .map_err(|e| Error::backend(format!("stored metric is invalid: {e}")))?,
                    }),
                    None => {
                        txn.execute(
                            "INSERT INTO index_config (singleton, dimensions, metric, created_at) VALUES (1, ?1, ?2, ?3)",
                            (config.dimensions as i64, config.metric.as_str(), now_ms()),
                        )?;
                        Ok(config)
                    }
                }
            })
            .await?;
        if stored != config {
            return Err(Error::ConfigMismatch { stored, requested: config });
        }
        let prefix = options.limits.indexed_string_prefix_bytes;
        db.write(move |txn| -> Result<()> {
            let state: Option<(i64, i64)> = txn
                .query_row("SELECT quantization, string_prefix_bytes FROM search_state", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            if state != Some((QUANTIZATION_FORMAT, prefix as i64)) {
                // The triggers keep the counts from here on.
                txn.execute("DELETE FROM search_rows", [])?;
                txn.execute(
                    "INSERT INTO search_state (singleton, quantization, string_prefix_bytes, row_count, id_bytes)
                     VALUES (1, ?1, ?2, 0, 0)
                     ON CONFLICT (singleton) DO UPDATE SET quantization = excluded.quantization,
                         string_prefix_bytes = excluded.string_prefix_bytes, row_count = 0, id_bytes = 0",
                    (QUANTIZATION_FORMAT, prefix as i64),
                )?;
                rebuild_search_rows(txn, config, prefix, true)?;
            }
            Ok(())
        })
        .await?;
        Ok(EmbeddedVectorIndex {
            inner: Arc::new(Inner {
                db,
                config,
                limits: options.limits,
                rescore: options.rescore,
                memory: RwLock::new(None),
            }),
        })
    }

    /// The configuration the index was created with.
    pub fn config(&self) -> IndexConfig {
        self.inner.config
    }

    /// The limits this index enforces.
    pub fn limits(&self) -> &VectorLimits {
        &self.inner.limits
    }

    /// How many vectors the in-memory search structure holds, or `None` while it is not loaded.
    pub async fn resident_vectors(&self) -> Option<usize> {
        self.inner.memory.read().await.as_ref().map(FlatStore::len)
    }

    /// Loads the in-memory search structure now, as the first query would (a no-op once loaded):
    /// a server can warm up before it takes traffic.
    pub async fn load(&self) -> Result<()> {
        let inner = self.inner.clone();
        match tokio::task::spawn_blocking(move || inner.loaded_memory().map(drop)).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(Error::Closed),
        }
    }

    /// Heap bytes the in-memory search structure holds, or `None` while it is not loaded.
    pub async fn resident_bytes(&self) -> Option<usize> {
        self.inner.memory.read().await.as_ref().map(FlatStore::heap_bytes)
    }

    /// Stops accepting mutations (they fail with [`Error::Closed`]); queries keep working.
    pub fn close(&self) {
        self.inner.db.close();
    }

    /// Commits `job` to SQLite, then `apply`s its outcome to the in-memory structure, both under
    /// the memory write lock, in a task that runs to the end even if the caller stops waiting.
    async fn mutate<R, J, A>(&self, job: J, apply: A) -> Result<R>
    where
        R: Send + 'static,
        J: FnOnce(&Transaction<'_>) -> Result<R> + Send + 'static,
        A: FnOnce(&mut Option<FlatStore>, &R) -> Result<()> + Send + 'static,
    {
        let inner = self.inner.clone();
        let task = tokio::spawn(async move {
            let mut memory = inner.memory.write().await;
            let outcome = inner.db.write(job).await?;
            if apply(&mut memory, &outcome).is_err() {
                // Committed, but the structure could not follow: rebuild it from SQLite on the
                // next query rather than answer from a stale one.
                *memory = None;
            }
            Ok(outcome)
        });
        match task.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(Error::Closed),
        }
    }

    /// Runs a query on a blocking thread (scoring is CPU-bound).
    async fn search(&self, query: QueryVector, options: QueryOptions) -> Result<QueryResult> {
        self.inner.limits.check_query_options(&options)?;
        let filter = options.filter.as_ref().map(|f| Filter::parse(f, &self.inner.limits)).transpose()?;
        let inner = self.inner.clone();
        match tokio::task::spawn_blocking(move || inner.search_blocking(query, &options, filter)).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(Error::Closed),
        }
    }
}

/// What a query searches with.
enum QueryVector {
    Values(Vec<f32>),
    StoredId(String),
}

impl Inner {
    fn search_blocking(
        &self,
        query: QueryVector,
        options: &QueryOptions,
        filter: Option<Filter>,
    ) -> Result<QueryResult> {
        let memory = self.loaded_memory()?;
        let Some(store) = memory.as_ref() else {
            return Err(Error::backend("the in-memory index vanished while loaded"));
        };
        let filter = filter
            .map(|f| f.compile(store.indexes(), self.limits.indexed_string_prefix_bytes))
            .transpose()?;
        let dimensions = self.config.dimensions;
        let metric = self.config.metric;
        self.db.read_blocking(|conn| -> Result<QueryResult> {
            let mut query = match query {
                QueryVector::Values(values) => values,
                QueryVector::StoredId(id) => match read_values(conn, &id, dimensions)? {
                    Some(values) => values,
                    None => return Err(Error::NotFound { what: "vector", name: id }),
                },
            };
            if metric == Metric::Cosine {
                normalize(&mut query);
            }
            let candidates = self.rescore.candidates(options.top_k);
            let hits = store.search(&query, options.namespace.as_deref(), filter.as_ref(), candidates);
            // Rescore exactly, as the f32 flat scan did: the same normalisation and arithmetic.
            let mut scored = Vec::with_capacity(hits.len());
            let mut row = Vec::with_capacity(dimensions);
            for slot in hits {
                let id = store.id(slot);
                let Some(values) = read_values(conn, id, dimensions)? else {
                    return Err(Error::backend(format!("vector {id:?} is searchable but not stored")));
                };
                row.clear();
                row.extend_from_slice(&values);
                if metric == Metric::Cosine {
                    normalize(&mut row);
                }
                let mut closeness = similarity(metric, &query, &row);
                if closeness.is_nan() {
                    // Only reachable through overflow (e.g. inf - inf): rank it last, never first.
                    closeness = f32::NEG_INFINITY;
                }
                scored.push((closeness, slot, values));
            }
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| store.id(a.1).cmp(store.id(b.1))));
            scored.truncate(options.top_k);
            let mut matches = Vec::with_capacity(scored.len());
            for (closeness, slot, values) in scored {
                let id = store.id(slot);
                let metadata = match options.return_metadata {
                    ReturnMetadata::None => None,
                    ReturnMetadata::All => read_metadata(conn, id)?,
                    ReturnMetadata::Indexed => {
                        read_metadata(conn, id)?.map(|m| project_indexed(&m, store.indexes()))
                    }
                };
                matches.push(VectorMatch {
                    id: id.to_owned(),
                    score: crate::distance::score(metric, closeness),
                    namespace: store.namespace(slot).map(str::to_owned),
                    values: options.return_values.then_some(values),
                    metadata,
                });
            }
            Ok(QueryResult { count: matches.len(), matches })
        })
    }

    /// The in-memory structure, loading it from SQLite first if needed. Loading holds the write
    /// lock, which mutations also hold while they commit, so the snapshot misses none of them.
    fn loaded_memory(&self) -> Result<RwLockReadGuard<'_, Option<FlatStore>>> {
        let memory = self.memory.blocking_read();
        if memory.is_some() {
            return Ok(memory);
        }
        drop(memory);
        let mut memory = self.memory.blocking_write();
        if memory.is_none() {
            *memory = Some(self.load()?);
        }
        Ok(memory.downgrade())
    }

    fn load(&self) -> Result<FlatStore> {
        self.db.read_blocking(|conn| -> Result<FlatStore> {
            let indexes = read_metadata_indexes(conn)?;
            // Kept by triggers, so that the structure is allocated once, exactly.
            let (count, id_bytes): (i64, i64) =
                conn.query_row("SELECT row_count, id_bytes FROM search_state", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            let mut store = FlatStore::new(self.config, indexes);
            store.reserve_exact(usize::try_from(count).unwrap_or(0), usize::try_from(id_bytes).unwrap_or(0));
            let properties: Vec<String> = store.indexes().iter().map(|i| i.property.clone()).collect();
            let mut statement = conn.prepare("SELECT id, namespace, codes, indexed FROM search_rows")?;
            let mut rows = statement.query([])?;
            while let Some(row) = rows.next()? {
                let id = row.get_ref(0)?.as_str().map_err(Error::backend)?;
                let namespace = row.get_ref(1)?.as_str_or_null().map_err(Error::backend)?;
                let blob = row.get_ref(2)?.as_blob().map_err(Error::backend)?;
                let (scale, codes) = quantize::decode_row(blob, self.config.dimensions)?;
                let encoded = row.get_ref(3)?.as_blob_or_null().map_err(Error::backend)?;
                let mut indexed = vec![IndexedRef::Missing; properties.len()];
                decode_indexed(encoded.unwrap_or_default(), &properties, &mut indexed)?;
                store.push_new(id, scale, codes, namespace, &indexed);
            }
            Ok(store)
        })
    }
}

/// The stored `f32` values of `id`, if stored.
fn read_values(conn: &rusqlite::Connection, id: &str, dimensions: usize) -> Result<Option<Vec<f32>>> {
    let mut statement = conn.prepare_cached("SELECT vector_values FROM vectors WHERE id = ?1")?;
    let mut rows = statement.query([id])?;
    let Some(row) = rows.next()? else { return Ok(None) };
    let mut values = Vec::with_capacity(dimensions);
    decode_values(row.get_ref(0)?.as_blob().map_err(Error::backend)?, dimensions, &mut values)?;
    Ok(Some(values))
}

/// The stored metadata of `id`, if any.
fn read_metadata(conn: &rusqlite::Connection, id: &str) -> Result<Option<Value>> {
    let mut statement = conn.prepare_cached("SELECT metadata FROM vectors WHERE id = ?1")?;
    let metadata: Option<Option<String>> = statement.query_row([id], |r| r.get(0)).optional()?;
    parse_metadata(metadata.flatten())
}

/// Writes `search_rows` from `vectors`: every row (`with_codes`, into an empty table when
/// migrating), or only the indexed values of the rows (after a metadata index is created).
fn rebuild_search_rows(
    txn: &Transaction<'_>,
    config: IndexConfig,
    prefix: usize,
    with_codes: bool,
) -> Result<()> {
    let indexes = read_metadata_indexes(txn)?;
    let mut select = txn.prepare("SELECT id, namespace, vector_values, metadata FROM vectors")?;
    let mut insert = txn.prepare(
        "INSERT INTO search_rows (id, namespace, codes, indexed) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET namespace = excluded.namespace, codes = excluded.codes,
             indexed = excluded.indexed",
    )?;
    let mut update = txn.prepare("UPDATE search_rows SET indexed = ?2 WHERE id = ?1")?;
    let mut rows = select.query([])?;
    let mut values = Vec::with_capacity(config.dimensions);
    while let Some(row) = rows.next()? {
        let id = row.get_ref(0)?.as_str().map_err(Error::backend)?;
        let metadata = match row.get_ref(3)?.as_str_or_null().map_err(Error::backend)? {
            Some(json) if !indexes.is_empty() => parse_metadata(Some(json.to_owned()))?,
            _ => None,
        };
        let indexed = encode_indexed(metadata.as_ref(), &indexes, prefix);
        if with_codes {
            let namespace = row.get_ref(1)?.as_str_or_null().map_err(Error::backend)?;
            decode_values(
                row.get_ref(2)?.as_blob().map_err(Error::backend)?,
                config.dimensions,
                &mut values,
            )?;
            let codes = quantize::encode_row(&values, config.metric);
            insert.execute((id, namespace, codes, indexed))?;
        } else {
            update.execute((id, indexed))?;
        }
    }
    Ok(())
}

/// Tags of [`encode_indexed`].
const TAG_MISSING: u8 = 0;
const TAG_FALSE: u8 = 1;
const TAG_TRUE: u8 = 2;
const TAG_NUMBER: u8 = 3;
const TAG_STRING: u8 = 4;

/// What `indexes` see of `metadata`, for `search_rows.indexed`: per index, the property (`u16`
/// length + bytes), a tag, and for numbers 8 bytes (`f64`), for strings a `u32` length + the
/// first `prefix` bytes (all little-endian). `None` without indexes.
fn encode_indexed(metadata: Option<&Value>, indexes: &[MetadataIndex], prefix: usize) -> Option<Vec<u8>> {
    if indexes.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for index in indexes {
        out.extend_from_slice(&(index.property.len() as u16).to_le_bytes());
        out.extend_from_slice(index.property.as_bytes());
        match IndexedValue::extract(metadata, index, prefix) {
            IndexedValue::Missing => out.push(TAG_MISSING),
            IndexedValue::Bool(b) => out.push(if b { TAG_TRUE } else { TAG_FALSE }),
            IndexedValue::Number(n) => {
                out.push(TAG_NUMBER);
                out.extend_from_slice(&n.to_le_bytes());
            }
            IndexedValue::String(s) => {
                out.push(TAG_STRING);
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
    Some(out)
}

/// Reads [`encode_indexed`]'s bytes into `out`: the value of each of `properties` (`Missing` for
/// a property the row does not carry).
fn decode_indexed<'a>(mut bytes: &'a [u8], properties: &[String], out: &mut [IndexedRef<'a>]) -> Result<()> {
    out.fill(IndexedRef::Missing);
    let corrupt = || Error::backend("a stored row of indexed metadata values is corrupt");
    fn take<'b>(bytes: &mut &'b [u8], n: usize) -> Option<&'b [u8]> {
        let (head, rest) = bytes.split_at_checked(n)?;
        *bytes = rest;
        Some(head)
    }
    while !bytes.is_empty() {
        let len =
            take(&mut bytes, 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize).ok_or_else(corrupt)?;
        let property = take(&mut bytes, len).ok_or_else(corrupt)?;
        let tag = take(&mut bytes, 1).ok_or_else(corrupt)?[0];
        let value = match tag {
            TAG_MISSING => IndexedRef::Missing,
            TAG_FALSE => IndexedRef::Bool(false),
            TAG_TRUE => IndexedRef::Bool(true),
            TAG_NUMBER => {
                let b = take(&mut bytes, 8).ok_or_else(corrupt)?;
                IndexedRef::Number(f64::from_le_bytes(b.try_into().map_err(|_| corrupt())?))
            }
            TAG_STRING => {
                let b = take(&mut bytes, 4).ok_or_else(corrupt)?;
                let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
                let s = take(&mut bytes, len).ok_or_else(corrupt)?;
                IndexedRef::String(std::str::from_utf8(s).map_err(|_| corrupt())?)
            }
            _ => return Err(corrupt()),
        };
        if let Some(position) = properties.iter().position(|p| p.as_bytes() == property) {
            out[position] = value;
        }
    }
    Ok(())
}

fn read_metadata_indexes(conn: &rusqlite::Connection) -> Result<Vec<MetadataIndex>> {
    let mut statement =
        conn.prepare_cached("SELECT property, index_type FROM metadata_indexes ORDER BY rowid")?;
    let rows = statement.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    rows.map(|row| {
        let (property, index_type) = row?;
        let index_type = index_type
            .parse::<MetadataIndexType>()
            .map_err(|e| Error::backend(format!("stored metadata index {property:?}: {e}")))?;
        Ok(MetadataIndex { property, index_type })
    })
    .collect()
}

fn encode_values(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn decode_values(blob: &[u8], dimensions: usize, out: &mut Vec<f32>) -> Result<()> {
    if blob.len() != dimensions * 4 {
        return Err(Error::backend(format!(
            "a stored vector has {} bytes of values, expected {}",
            blob.len(),
            dimensions * 4
        )));
    }
    out.clear();
    out.extend(blob.as_chunks::<4>().0.iter().map(|b| f32::from_le_bytes(*b)));
    Ok(())
}

fn parse_metadata(json: Option<String>) -> Result<Option<Value>> {
    json.map(|j| {
        serde_json::from_str(&j).map_err(|e| Error::backend(format!("stored metadata is not JSON: {e}")))
    })
    .transpose()
}

/// A validated vector ready for SQLite: the vector itself (for the in-memory update), its
/// encoded values, quantized row and metadata.
struct EncodedVector {
    vector: Vector,
    blob: Vec<u8>,
    codes: Vec<u8>,
    metadata_json: Option<String>,
}

impl EncodedVector {
    /// Stores this vector's search row, its indexed values as `indexes` see them.
    fn write_search_row(
        &self,
        txn: &Transaction<'_>,
        indexes: &[MetadataIndex],
        prefix: usize,
    ) -> Result<()> {
        let mut statement = txn.prepare_cached(
            "INSERT INTO search_rows (id, namespace, codes, indexed) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET namespace = excluded.namespace, codes = excluded.codes,
                 indexed = excluded.indexed",
        )?;
        let v = &self.vector;
        let indexed = encode_indexed(v.metadata.as_ref(), indexes, prefix);
        statement.execute((&v.id, &v.namespace, &self.codes, indexed))?;
        Ok(())
    }

    /// Applies this vector to the loaded search structure.
    fn apply(&self, store: &mut FlatStore, prefix: usize) -> Result<()> {
        let v = &self.vector;
        let (scale, codes) = quantize::decode_row(&self.codes, self.vector.values.len())?;
        let values: Vec<IndexedValue> =
            store.indexes().iter().map(|i| IndexedValue::extract(v.metadata.as_ref(), i, prefix)).collect();
        let refs: Vec<IndexedRef<'_>> = values.iter().map(IndexedValue::as_ref).collect();
        store.upsert(&v.id, scale, codes, v.namespace.as_deref(), &refs);
        Ok(())
    }
}

impl EmbeddedVectorIndex {
    fn encode(&self, vectors: Vec<Vector>) -> Result<Arc<Vec<EncodedVector>>> {
        let metadata = self.inner.limits.check_vectors(&vectors, self.inner.config.dimensions)?;
        Ok(Arc::new(
            vectors
                .into_iter()
                .zip(metadata)
                .map(|(vector, metadata_json)| EncodedVector {
                    blob: encode_values(&vector.values),
                    codes: quantize::encode_row(&vector.values, self.inner.config.metric),
                    vector,
                    metadata_json,
                })
                .collect(),
        ))
    }
}

#[async_trait]
impl VectorIndex for EmbeddedVectorIndex {
    async fn describe(&self) -> Result<IndexDescription> {
        let count = self
            .inner
            .db
            .read(|conn| -> Result<i64> {
                Ok(conn.query_row("SELECT count(*) FROM vectors", [], |r| r.get(0))?)
            })
            .await?;
        Ok(IndexDescription {
            dimensions: self.inner.config.dimensions,
            metric: self.inner.config.metric,
            count: usize::try_from(count).unwrap_or(0),
        })
    }

    async fn insert(&self, vectors: Vec<Vector>) -> Result<MutationCounts> {
        let encoded = self.encode(vectors)?;
        let for_memory = encoded.clone();
        let prefix = self.inner.limits.indexed_string_prefix_bytes;
        let inserted = self
            .mutate(
                move |txn| -> Result<Vec<bool>> {
                    let indexes = read_metadata_indexes(txn)?;
                    let mut statement = txn.prepare_cached(
                        "INSERT INTO vectors (id, namespace, vector_values, metadata, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO NOTHING",
                    )?;
                    let now = now_ms();
                    encoded
                        .iter()
                        .map(|e| {
                            let v = &e.vector;
                            let inserted =
                                statement.execute((&v.id, &v.namespace, &e.blob, &e.metadata_json, now))?
                                    == 1;
                            if inserted {
                                e.write_search_row(txn, &indexes, prefix)?;
                            }
                            Ok(inserted)
                        })
                        .collect()
                },
                move |memory, inserted| {
                    if let Some(store) = memory.as_mut() {
                        for (e, _) in for_memory.iter().zip(inserted).filter(|(_, inserted)| **inserted) {
                            e.apply(store, prefix)?;
                        }
                    }
                    Ok(())
                },
            )
            .await?;
        let applied = inserted.iter().filter(|i| **i).count();
        Ok(MutationCounts { applied, skipped: inserted.len() - applied })
    }

    async fn upsert(&self, vectors: Vec<Vector>) -> Result<MutationCounts> {
        let encoded = self.encode(vectors)?;
        let for_memory = encoded.clone();
        let applied = encoded.len();
        let prefix = self.inner.limits.indexed_string_prefix_bytes;
        self.mutate(
            move |txn| -> Result<()> {
                let indexes = read_metadata_indexes(txn)?;
                let mut statement = txn.prepare_cached(
                    "INSERT INTO vectors (id, namespace, vector_values, metadata, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (id) DO UPDATE SET namespace = excluded.namespace,
                         vector_values = excluded.vector_values, metadata = excluded.metadata,
                         updated_at = excluded.updated_at",
                )?;
                let now = now_ms();
                for e in encoded.iter() {
                    let v = &e.vector;
                    statement.execute((&v.id, &v.namespace, &e.blob, &e.metadata_json, now))?;
                    e.write_search_row(txn, &indexes, prefix)?;
                }
                Ok(())
            },
            move |memory, _| {
                if let Some(store) = memory.as_mut() {
                    for e in for_memory.iter() {
                        e.apply(store, prefix)?;
                    }
                }
                Ok(())
            },
        )
        .await?;
        Ok(MutationCounts { applied, skipped: 0 })
    }

    async fn query(&self, values: &[f32], options: QueryOptions) -> Result<QueryResult> {
        self.inner.limits.check_values(values, self.inner.config.dimensions)?;
        self.search(QueryVector::Values(values.to_vec()), options).await
    }

    async fn query_by_id(&self, id: &str, options: QueryOptions) -> Result<QueryResult> {
        self.search(QueryVector::StoredId(id.to_owned()), options).await
    }

    async fn get_by_ids(&self, ids: &[String]) -> Result<Vec<Vector>> {
        self.inner.limits.check_ids(ids)?;
        let mut seen = HashSet::with_capacity(ids.len());
        let unique: Vec<String> = ids.iter().filter(|id| seen.insert(id.as_str())).cloned().collect();
        let dimensions = self.inner.config.dimensions;
        self.inner
            .db
            .read(move |conn| -> Result<Vec<Vector>> {
                let mut statement = conn
                    .prepare_cached("SELECT namespace, vector_values, metadata FROM vectors WHERE id = ?1")?;
                let mut found = Vec::new();
                for id in unique {
                    let row: Option<(Option<String>, Vec<u8>, Option<String>)> =
                        statement.query_row([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional()?;
                    if let Some((namespace, blob, metadata)) = row {
                        let mut values = Vec::with_capacity(dimensions);
                        decode_values(&blob, dimensions, &mut values)?;
                        found.push(Vector { id, values, namespace, metadata: parse_metadata(metadata)? });
                    }
                }
                Ok(found)
            })
            .await
    }

    async fn delete_by_ids(&self, ids: &[String]) -> Result<MutationCounts> {
        self.inner.limits.check_ids(ids)?;
        let ids: Arc<Vec<String>> = Arc::new(ids.to_vec());
        let for_memory = ids.clone();
        let deleted = self
            .mutate(
                move |txn| -> Result<Vec<bool>> {
                    let mut statement = txn.prepare_cached("DELETE FROM vectors WHERE id = ?1")?;
                    let mut search_row = txn.prepare_cached("DELETE FROM search_rows WHERE id = ?1")?;
                    ids.iter()
                        .map(|id| {
                            search_row.execute([id])?;
                            Ok(statement.execute([id])? == 1)
                        })
                        .collect()
                },
                move |memory, deleted| {
                    if let Some(store) = memory.as_mut() {
                        for (id, _) in for_memory.iter().zip(deleted).filter(|(_, deleted)| **deleted) {
                            store.remove(id);
                        }
                    }
                    Ok(())
                },
            )
            .await?;
        let applied = deleted.iter().filter(|d| **d).count();
        Ok(MutationCounts { applied, skipped: deleted.len() - applied })
    }

    async fn create_metadata_index(&self, property: &str, index_type: MetadataIndexType) -> Result<()> {
        self.inner.limits.check_property(property)?;
        let property = property.to_owned();
        let limit = self.inner.limits.max_metadata_indexes;
        let config = self.inner.config;
        let prefix = self.inner.limits.indexed_string_prefix_bytes;
        self.mutate(
            move |txn| -> Result<bool> {
                let existing: Option<String> = txn
                    .query_row("SELECT index_type FROM metadata_indexes WHERE property = ?1", [&property], |r| {
                        r.get(0)
                    })
                    .optional()?;
                if let Some(existing) = existing {
                    if existing == index_type.as_str() {
                        return Ok(false);
                    }
                    return Err(Error::Conflict {
                        message: format!(
                            "{property:?} is already indexed as {existing}; delete that index to index it as {index_type}"
                        ),
                    });
                }
                let count: i64 = txn.query_row("SELECT count(*) FROM metadata_indexes", [], |r| r.get(0))?;
                let count = usize::try_from(count).unwrap_or(0);
                if count >= limit {
                    return Err(Error::TooLarge { field: "metadata_indexes", size: count + 1, limit });
                }
                txn.execute(
                    "INSERT INTO metadata_indexes (property, index_type, created_at) VALUES (?1, ?2, ?3)",
                    (&property, index_type.as_str(), now_ms()),
                )?;
                // Every search row gets the new index's value (O(vectors): parses all metadata).
                rebuild_search_rows(txn, config, prefix, false)?;
                Ok(true)
            },
            |memory, created| {
                if *created {
                    // The new column is built from SQLite on the next query.
                    *memory = None;
                }
                Ok(())
            },
        )
        .await?;
        Ok(())
    }

    async fn list_metadata_indexes(&self) -> Result<Vec<MetadataIndex>> {
        self.inner.db.read(read_metadata_indexes).await
    }

    async fn delete_metadata_index(&self, property: &str) -> Result<()> {
        let owned = property.to_owned();
        let dropped = property.to_owned();
        let deleted = self
            .mutate(
                move |txn| -> Result<bool> {
                    Ok(txn.execute("DELETE FROM metadata_indexes WHERE property = ?1", [&owned])? == 1)
                },
                move |memory, deleted| {
                    if *deleted && let Some(store) = memory.as_mut() {
                        store.drop_index(&dropped);
                    }
                    Ok(())
                },
            )
            .await?;
        if !deleted {
            return Err(Error::NotFound { what: "metadata index", name: property.to_owned() });
        }
        Ok(())
    }

    async fn warm(&self) -> Result<()> {
        self.load().await
    }
}
