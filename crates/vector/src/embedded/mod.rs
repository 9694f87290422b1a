//! The embedded driver: vectors and metadata persisted in SQLite (through `ledge-sqlite`), searched
//! exactly in an in-memory [`flat`] structure loaded on the first query.
//!
//! Tables: `index_config` (one row: dimensions, metric), `vectors` (id, namespace, values as
//! little-endian f32 BLOB, metadata as compact JSON), `metadata_indexes` (property, type).
//!
//! Consistency: every mutation commits to SQLite and updates the in-memory structure while holding
//! its write lock, in a task of its own (so a caller that stops waiting cannot leave the two
//! apart); a query holds the read lock from scoring to reading the matches' values and metadata.
//! A completed mutation is therefore visible to the next query, and a query sees one state.

mod flat;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use ledge_sqlite::rusqlite::{self, OptionalExtension, Transaction};
use ledge_sqlite::{Database, now_ms};
use serde_json::Value;
use tokio::sync::{RwLock, RwLockReadGuard};

use self::flat::FlatStore;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::index::VectorIndex;
use crate::limits::VectorLimits;
use crate::metadata::project_indexed;
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
";

/// Options of [`EmbeddedVectorIndex::open`].
#[derive(Debug, Clone, Default)]
pub struct EmbeddedOptions {
    pub limits: VectorLimits,
    pub sqlite: ledge_sqlite::Options,
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
        Ok(EmbeddedVectorIndex {
            inner: Arc::new(Inner { db, config, limits: options.limits, memory: RwLock::new(None) }),
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
        A: FnOnce(&mut Option<FlatStore>, &R) + Send + 'static,
    {
        let inner = self.inner.clone();
        let task = tokio::spawn(async move {
            let mut memory = inner.memory.write().await;
            let outcome = inner.db.write(job).await?;
            apply(&mut memory, &outcome);
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

/// A row read back for a match or `get_by_ids`.
struct StoredDetails {
    values: Vec<f32>,
    metadata: Option<Value>,
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
        let values = match query {
            QueryVector::Values(values) => values,
            QueryVector::StoredId(id) => match store.row_of(&id) {
                Some(row) => row.to_vec(),
                None => return Err(Error::NotFound { what: "vector", name: id }),
            },
        };
        let hits = store.search(&values, options.namespace.as_deref(), filter.as_ref(), options.top_k);
        let details = if options.return_values || options.return_metadata != ReturnMetadata::None {
            let ids: Vec<&str> = hits.iter().map(|h| store.id(h.slot)).collect();
            self.db.read_blocking(|conn| -> Result<Vec<Option<StoredDetails>>> {
                ids.iter().map(|id| read_details(conn, id, self.config.dimensions)).collect()
            })?
        } else {
            Vec::new()
        };
        let mut matches = Vec::with_capacity(hits.len());
        for (i, hit) in hits.iter().enumerate() {
            let mut found = VectorMatch {
                id: store.id(hit.slot).to_owned(),
                score: crate::distance::score(self.config.metric, hit.similarity),
                namespace: store.namespace(hit.slot).map(str::to_owned),
                values: None,
                metadata: None,
            };
            if let Some(Some(stored)) = details.get(i) {
                if options.return_values {
                    found.values = Some(stored.values.clone());
                }
                found.metadata = match (options.return_metadata, &stored.metadata) {
                    (ReturnMetadata::All, Some(m)) => Some(m.clone()),
                    (ReturnMetadata::Indexed, Some(m)) => Some(project_indexed(m, store.indexes())),
                    _ => None,
                };
            }
            matches.push(found);
        }
        Ok(QueryResult { count: matches.len(), matches })
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
            let needs_metadata = !indexes.is_empty();
            let mut store = FlatStore::new(self.config, indexes, self.limits.indexed_string_prefix_bytes);
            let count: i64 = conn.query_row("SELECT count(*) FROM vectors", [], |r| r.get(0))?;
            store.reserve_exact(usize::try_from(count).unwrap_or(0));
            let mut statement = conn.prepare("SELECT id, namespace, vector_values, metadata FROM vectors")?;
            let mut rows = statement.query([])?;
            let mut values = Vec::with_capacity(self.config.dimensions);
            while let Some(row) = rows.next()? {
                let id: String = row.get(0)?;
                let namespace: Option<String> = row.get(1)?;
                decode_values(
                    row.get_ref(2)?.as_blob().map_err(Error::backend)?,
                    self.config.dimensions,
                    &mut values,
                )?;
                let metadata = if needs_metadata { parse_metadata(row.get(3)?)? } else { None };
                store.upsert(&id, &values, namespace.as_deref(), metadata.as_ref());
            }
            Ok(store)
        })
    }
}

fn read_details(conn: &rusqlite::Connection, id: &str, dimensions: usize) -> Result<Option<StoredDetails>> {
    let mut statement = conn.prepare_cached("SELECT vector_values, metadata FROM vectors WHERE id = ?1")?;
    let row: Option<(Vec<u8>, Option<String>)> =
        statement.query_row([id], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
    row.map(|(blob, metadata)| {
        let mut values = Vec::with_capacity(dimensions);
        decode_values(&blob, dimensions, &mut values)?;
        Ok(StoredDetails { values, metadata: parse_metadata(metadata)? })
    })
    .transpose()
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

/// A validated vector ready for SQLite: the vector itself (for the in-memory update) and its
/// encoded values and metadata.
struct EncodedVector {
    vector: Vector,
    blob: Vec<u8>,
    metadata_json: Option<String>,
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
        let inserted = self
            .mutate(
                move |txn| -> Result<Vec<bool>> {
                    let mut statement = txn.prepare_cached(
                        "INSERT INTO vectors (id, namespace, vector_values, metadata, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO NOTHING",
                    )?;
                    let now = now_ms();
                    encoded
                        .iter()
                        .map(|e| {
                            let v = &e.vector;
                            Ok(statement.execute((&v.id, &v.namespace, &e.blob, &e.metadata_json, now))? == 1)
                        })
                        .collect()
                },
                move |memory, inserted| {
                    if let Some(store) = memory.as_mut() {
                        for (e, _) in for_memory.iter().zip(inserted).filter(|(_, inserted)| **inserted) {
                            let v = &e.vector;
                            store.upsert(&v.id, &v.values, v.namespace.as_deref(), v.metadata.as_ref());
                        }
                    }
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
        self.mutate(
            move |txn| -> Result<()> {
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
                }
                Ok(())
            },
            move |memory, _| {
                if let Some(store) = memory.as_mut() {
                    for e in for_memory.iter() {
                        let v = &e.vector;
                        store.upsert(&v.id, &v.values, v.namespace.as_deref(), v.metadata.as_ref());
                    }
                }
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
                    ids.iter().map(|id| Ok(statement.execute([id])? == 1)).collect()
                },
                move |memory, deleted| {
                    if let Some(store) = memory.as_mut() {
                        for (id, _) in for_memory.iter().zip(deleted).filter(|(_, deleted)| **deleted) {
                            store.remove(id);
                        }
                    }
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
                Ok(true)
            },
            |memory, created| {
                if *created {
                    // The new column is built from SQLite on the next query.
                    *memory = None;
                }
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
                },
            )
            .await?;
        if !deleted {
            return Err(Error::NotFound { what: "metadata index", name: property.to_owned() });
        }
        Ok(())
    }
}
