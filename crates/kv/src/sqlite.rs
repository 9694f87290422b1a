//! The embedded KV driver: every namespace in one SQLite database, the namespace being a column.
//!
//! Writes go through `ledge_sqlite`'s group-committing writer and return once committed; reads use
//! its reader pool, which sees every committed write, so the driver is read-your-writes consistent.
//! Keys are stored as BLOBs of their UTF-8 bytes so that SQLite's `memcmp` ordering is the
//! contract's UTF-8 byte order and prefix ranges can be expressed as plain comparisons.
//!
//! Expiry: reads and lists filter out keys whose `expires_at_ms` has passed (by the configured
//! [`Clock`]); every `put` and `delete` also deletes up to `purge_batch` expired rows in the same
//! transaction, so expired rows are reclaimed at least as fast as writes can create them.
//!
//! Streaming: `get_stream` reads the value's BLOB incrementally, in `stream_chunk_bytes` chunks, from
//! a read transaction held until the stream ends or is dropped. The stream yields the value as it
//! was when opened, whatever writers do meanwhile; while it is open it holds a blocking thread and
//! a read connection and keeps the WAL from being checkpointed past its snapshot, so drop streams
//! that are no longer read.

use std::collections::BTreeMap;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use ledge_sqlite::Database;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::limits::{KvLimits, encode_cursor};
use crate::namespace::{
    GetOptions, KvNamespace, ListOptions, ListResult, ListedKey, PutOptions, ValueStream, ValueWithMetadata,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv_entries (
    namespace     TEXT    NOT NULL,
    key           BLOB    NOT NULL,  -- the key's UTF-8 bytes: memcmp order is the contract's order
    expires_at_ms INTEGER,           -- NULL: never expires
    metadata      TEXT,              -- JSON; NULL when unset
    value         BLOB    NOT NULL,  -- last, so listing never reads a large value's overflow pages
    UNIQUE (namespace, key)
);
CREATE INDEX IF NOT EXISTS kv_entries_by_expiry ON kv_entries (expires_at_ms)
    WHERE expires_at_ms IS NOT NULL;
";

/// Completes a query's `WHERE` with the filter that keeps live entries only (`?3` is now, in ms).
macro_rules! live {
    ($query:literal) => {
        concat!($query, " AND (expires_at_ms IS NULL OR expires_at_ms > ?3)")
    };
}

const SELECT_VALUE: &str = live!("SELECT value FROM kv_entries WHERE namespace = ?1 AND key = ?2");
const SELECT_VALUE_AND_METADATA: &str =
    live!("SELECT value, metadata FROM kv_entries WHERE namespace = ?1 AND key = ?2");
const SELECT_ROWID_AND_SIZE: &str =
    live!("SELECT rowid, length(value) FROM kv_entries WHERE namespace = ?1 AND key = ?2");
/// A page of keys from `?2` (inclusive) below `?4`, at most `?5` of them.
const LIST_FROM: &str = concat!(
    live!(
        "SELECT key, expires_at_ms, metadata FROM kv_entries WHERE namespace = ?1 AND key >= ?2 AND key < ?4"
    ),
    " ORDER BY key LIMIT ?5"
);
/// A page of keys after `?2` (exclusive) below `?4`, at most `?5` of them.
const LIST_AFTER: &str = concat!(
    live!(
        "SELECT key, expires_at_ms, metadata FROM kv_entries WHERE namespace = ?1 AND key > ?2 AND key < ?4"
    ),
    " ORDER BY key LIMIT ?5"
);
const UPSERT: &str = "INSERT INTO kv_entries (namespace, key, expires_at_ms, metadata, value)
    VALUES (?1, ?2, ?3, ?4, ?5)
    ON CONFLICT (namespace, key) DO UPDATE SET
        expires_at_ms = excluded.expires_at_ms,
        metadata = excluded.metadata,
        value = excluded.value";
const DELETE: &str = "DELETE FROM kv_entries WHERE namespace = ?1 AND key = ?2";
/// Deletes up to `?2` entries expired at `?1`.
const PURGE_EXPIRED: &str = "DELETE FROM kv_entries WHERE rowid IN
    (SELECT rowid FROM kv_entries WHERE expires_at_ms <= ?1 LIMIT ?2)";

/// Options for [`SqliteKv::open`].
#[derive(Debug, Clone)]
pub struct SqliteKvOptions {
    /// The SQLite layer's options (durability, readers, group size).
    pub database: ledge_sqlite::Options,
    pub limits: KvLimits,
    /// Where "now" comes from, for validating and applying expirations.
    pub clock: Arc<dyn Clock>,
    /// Most expired rows each `put` or `delete` deletes along the way (at least 1; default 64).
    pub purge_batch: usize,
    /// Size of the chunks `get_stream` reads and yields (at least 1; default 64 KiB).
    pub stream_chunk_bytes: usize,
}

impl Default for SqliteKvOptions {
    fn default() -> Self {
        SqliteKvOptions {
            database: ledge_sqlite::Options::default(),
            limits: KvLimits::default(),
            clock: Arc::new(SystemClock),
            purge_batch: 64,
            stream_chunk_bytes: 64 * 1024,
        }
    }
}

/// The embedded KV store: one SQLite database holding every namespace. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqliteKv {
    store: Arc<Store>,
}

#[derive(Debug)]
struct Store {
    db: Database,
    limits: KvLimits,
    clock: Arc<dyn Clock>,
    purge_batch: i64,
    stream_chunk_bytes: usize,
}

impl SqliteKv {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: impl AsRef<Path>, options: SqliteKvOptions) -> Result<SqliteKv> {
        let db = Database::open(path, SCHEMA, options.database)?;
        Ok(SqliteKv {
            store: Arc::new(Store {
                db,
                limits: options.limits,
                clock: options.clock,
                purge_batch: i64::try_from(options.purge_batch.max(1)).unwrap_or(i64::MAX),
                stream_chunk_bytes: options.stream_chunk_bytes.max(1),
            }),
        })
    }

    /// The namespace called `name` (e.g. `sessions`); namespaces never see each other's keys.
    pub fn namespace(&self, name: &str) -> Arc<dyn KvNamespace> {
        Arc::new(SqliteNamespace { store: self.store.clone(), name: Arc::from(name) })
    }
}

#[derive(Debug)]
struct SqliteNamespace {
    store: Arc<Store>,
    name: Arc<str>,
}

impl SqliteNamespace {
    /// Runs `f` on a pooled read connection with the namespace, the key's bytes and now.
    async fn read_key<R, F>(&self, key: &str, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection, &str, &[u8], i64) -> Result<R> + Send + 'static,
    {
        let (name, key, now) = (self.name.clone(), key.as_bytes().to_vec(), self.store.clock.now_ms());
        self.store.db.read(move |conn| f(conn, &name, &key, now)).await
    }

    /// Runs `f` in the writer's next group commit, then purges a batch of expired rows.
    async fn write<F>(&self, f: F) -> Result<()>
    where
        F: FnOnce(&rusqlite::Transaction<'_>, &str) -> Result<()> + Send + 'static,
    {
        let (name, now, batch) = (self.name.clone(), self.store.clock.now_ms(), self.store.purge_batch);
        self.store
            .db
            .write(move |txn| {
                f(txn, &name)?;
                txn.prepare_cached(PURGE_EXPIRED)?.execute(params![now, batch])?;
                Ok(())
            })
            .await
    }
}

fn parse_metadata(json: Option<String>) -> Result<Option<serde_json::Value>> {
    json.map(|json| serde_json::from_str(&json).map_err(Error::backend)).transpose()
}

fn key_string(bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(Error::backend)
}

#[async_trait::async_trait]
impl KvNamespace for SqliteNamespace {
    async fn get(&self, key: &str, options: GetOptions) -> Result<Option<Bytes>> {
        self.store.limits.check_get(key, &options)?;
        self.read_key(key, |conn, name, key, now| {
            let value: Option<Vec<u8>> = conn
                .prepare_cached(SELECT_VALUE)?
                .query_row(params![name, key, now], |row| row.get(0))
                .optional()?;
            Ok(value.map(Bytes::from))
        })
        .await
    }

    async fn get_with_metadata(&self, key: &str, options: GetOptions) -> Result<Option<ValueWithMetadata>> {
        self.store.limits.check_get(key, &options)?;
        self.read_key(key, |conn, name, key, now| {
            let row: Option<(Vec<u8>, Option<String>)> = conn
                .prepare_cached(SELECT_VALUE_AND_METADATA)?
                .query_row(params![name, key, now], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            row.map(|(value, metadata)| {
                Ok(ValueWithMetadata { value: Bytes::from(value), metadata: parse_metadata(metadata)? })
            })
            .transpose()
        })
        .await
    }

    async fn get_stream(&self, key: &str, options: GetOptions) -> Result<Option<ValueStream>> {
        self.store.limits.check_get(key, &options)?;
        let (size_tx, size_rx) = oneshot::channel();
        // Capacity 1: at most a couple of chunks are in memory, whatever the value's size.
        let (chunk_tx, chunk_rx) = mpsc::channel(1);
        let (db, name, key) = (self.store.db.clone(), self.name.clone(), key.as_bytes().to_vec());
        let (now, chunk_bytes) = (self.store.clock.now_ms(), self.store.stream_chunk_bytes);
        tokio::task::spawn_blocking(move || {
            let mut size_tx = Some(size_tx);
            let streamed = db.read_blocking(|conn| {
                stream_value(conn, (&name, &key, now), chunk_bytes, &mut size_tx, &chunk_tx)
            });
            if let Err(e) = streamed {
                match size_tx.take() {
                    Some(size_tx) => drop(size_tx.send(Err(e))),
                    None => drop(chunk_tx.blocking_send(Err(e))),
                }
            }
        });
        match size_rx.await {
            Ok(Ok(Some(size))) => Ok(Some(ValueStream::new(
                size,
                Chunks { rx: chunk_rx, expected: size, received: 0, done: false },
            ))),
            Ok(Ok(None)) => Ok(None),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::backend("the value reader stopped before answering")),
        }
    }

    async fn get_many(&self, keys: &[&str], options: GetOptions) -> Result<BTreeMap<String, Option<Bytes>>> {
        self.store.limits.check_get_many(keys, &options)?;
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        let (name, now) = (self.name.clone(), self.store.clock.now_ms());
        self.store
            .db
            .read(move |conn| {
                // One read transaction: every value comes from the same snapshot.
                let txn = conn.unchecked_transaction()?;
                let mut select = txn.prepare_cached(SELECT_VALUE)?;
                let mut values = BTreeMap::new();
                for key in keys {
                    let value: Option<Vec<u8>> =
                        select.query_row(params![name, key.as_bytes(), now], |row| row.get(0)).optional()?;
                    values.insert(key, value.map(Bytes::from));
                }
                Ok(values)
            })
            .await
    }

    async fn put(&self, key: &str, value: Bytes, options: PutOptions) -> Result<()> {
        let checked = self.store.limits.check_put(key, &value, &options, self.store.clock.now_ms())?;
        let expires_at_ms = checked.expiration.map(|secs| secs * 1000);
        let key = key.as_bytes().to_vec();
        self.write(move |txn, name| {
            txn.prepare_cached(UPSERT)?.execute(params![
                name,
                key,
                expires_at_ms,
                checked.metadata_json,
                &value[..]
            ])?;
            Ok(())
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.store.limits.check_key(key)?;
        let key = key.as_bytes().to_vec();
        self.write(move |txn, name| {
            txn.prepare_cached(DELETE)?.execute(params![name, key])?;
            Ok(())
        })
        .await
    }

    async fn list(&self, options: ListOptions) -> Result<ListResult> {
        let checked = self.store.limits.check_list(&options)?;
        let prefix = checked.prefix.into_bytes();
        // No UTF-8 key contains the byte 0xFF, so every key starting with `prefix` sorts below
        // `prefix + 0xFF` and every other key at or above `prefix` sorts above it.
        let mut end = prefix.clone();
        end.push(0xFF);
        let (start, inclusive) = match checked.start_after.map(String::into_bytes) {
            Some(after) if after >= prefix => (after, false),
            _ => (prefix, true),
        };
        let fetch = i64::try_from(checked.limit).unwrap_or(i64::MAX).saturating_add(1);
        let (name, now) = (self.name.clone(), self.store.clock.now_ms());
        let rows = self
            .store
            .db
            .read(move |conn| {
                let mut select = conn.prepare_cached(if inclusive { LIST_FROM } else { LIST_AFTER })?;
                let rows = select
                    .query_map(params![name, start, now, end, fetch], |row| {
                        Ok((
                            row.get::<_, Vec<u8>>(0)?,
                            row.get::<_, Option<i64>>(1)?,
                            row.get::<_, Option<String>>(2)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok::<_, Error>(rows)
            })
            .await?;
        let list_complete = rows.len() <= checked.limit;
        let keys = rows
            .into_iter()
            .take(checked.limit)
            .map(|(name, expires_at_ms, metadata)| {
                Ok(ListedKey {
                    name: key_string(name)?,
                    expiration: expires_at_ms.and_then(|ms| u64::try_from(ms.div_euclid(1000)).ok()),
                    metadata: parse_metadata(metadata)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let cursor = if list_complete { None } else { keys.last().map(|k| encode_cursor(&k.name)) };
        Ok(ListResult { keys, list_complete, cursor })
    }
}

type SizeReply = oneshot::Sender<Result<Option<u64>>>;

/// Reads one value in chunks from a read transaction (a stable snapshot, whatever writers do
/// meanwhile) and sends them until done or until the receiver is dropped. Answers `size_tx` first:
/// `None` if the key is absent or expired, else the value's size.
fn stream_value(
    conn: &Connection,
    (name, key, now): (&str, &[u8], i64),
    chunk_bytes: usize,
    size_tx: &mut Option<SizeReply>,
    chunk_tx: &mpsc::Sender<Result<Bytes>>,
) -> Result<()> {
    let txn = conn.unchecked_transaction()?;
    let found: Option<(i64, i64)> = txn
        .prepare_cached(SELECT_ROWID_AND_SIZE)?
        .query_row(params![name, key, now], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((rowid, size)) = found else {
        if let Some(size_tx) = size_tx.take() {
            let _ = size_tx.send(Ok(None));
        }
        return Ok(());
    };
    let blob = txn.blob_open(rusqlite::MAIN_DB, c"kv_entries", c"value", rowid, true)?;
    let size = usize::try_from(size).map_err(Error::backend)?;
    let answered = size_tx.take().is_some_and(|size_tx| size_tx.send(Ok(Some(size as u64))).is_ok());
    if !answered {
        return Ok(()); // nobody is waiting any more
    }
    let mut offset = 0;
    while offset < size {
        let mut chunk = vec![0; chunk_bytes.min(size - offset)];
        blob.read_at_exact(&mut chunk, offset)?;
        offset += chunk.len();
        if chunk_tx.blocking_send(Ok(Bytes::from(chunk))).is_err() {
            break; // the stream was dropped
        }
    }
    Ok(())
}

/// The receiving end of [`stream_value`]: turns an early end into an error rather than a
/// silently truncated value.
struct Chunks {
    rx: mpsc::Receiver<Result<Bytes>>,
    expected: u64,
    received: u64,
    done: bool,
}

impl Stream for Chunks {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                self.received += chunk.len() as u64;
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.done = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                self.done = true;
                if self.received < self.expected {
                    Poll::Ready(Some(Err(Error::backend(format!(
                        "the value stream ended after {} of {} bytes",
                        self.received, self.expected
                    )))))
                } else {
                    Poll::Ready(None)
                }
            }
        }
    }
}
