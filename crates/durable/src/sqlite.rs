//! The embedded storage driver: durable-object storage in SQLite through `ledge-sqlite`.
//!
//! Tables: `durable_kv (namespace, object_id, key, value)` with keys stored as BLOBs so that SQLite
//! compares them as bytes (UTF-8 byte order, as the contract wants), and `durable_alarm (namespace,
//! object_id, due_ms, retry_count)`. A commit is one job of the database's group-commit writer, so it
//! is atomic and durable when it returns.

use std::path::Path;

use async_trait::async_trait;
use ledge_sqlite::rusqlite::types::Value;
use ledge_sqlite::rusqlite::{self, OptionalExtension, params, params_from_iter};
use ledge_sqlite::{Database, Options};

use crate::backend::{AlarmRecord, AlarmWrite, DurableStorage, ObjectAddress, WriteBatch};
use crate::{BackendError, ListOptions, ObjectId};

/// The driver's tables; idempotent.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS durable_kv (
    namespace TEXT NOT NULL,
    object_id BLOB NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (namespace, object_id, key)
);
CREATE TABLE IF NOT EXISTS durable_alarm (
    namespace TEXT NOT NULL,
    object_id BLOB NOT NULL,
    due_ms INTEGER NOT NULL,
    retry_count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (namespace, object_id)
);
";

/// Durable-object storage in a SQLite database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqliteStorage {
    db: Database,
}

impl SqliteStorage {
    /// Opens (creating if needed) a database of its own at `path`.
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<SqliteStorage, BackendError> {
        Ok(SqliteStorage { db: Database::open(path, SCHEMA, options)? })
    }

    /// Uses an already open database (shared with other drivers), creating the tables if needed.
    pub async fn with_database(db: Database) -> Result<SqliteStorage, BackendError> {
        db.write(|txn| -> Result<(), ledge_sqlite::Error> { Ok(txn.execute_batch(SCHEMA)?) }).await?;
        Ok(SqliteStorage { db })
    }

    /// The underlying database.
    pub fn database(&self) -> &Database {
        &self.db
    }
}

/// The smallest byte string greater than every string that starts with `prefix`, if any.
fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut bound = prefix.to_vec();
    while let Some(last) = bound.pop() {
        if last < u8::MAX {
            bound.push(last + 1);
            return Some(bound);
        }
    }
    None
}

fn key_from_blob(bytes: Vec<u8>) -> Result<String, BackendError> {
    String::from_utf8(bytes).map_err(|e| BackendError::new("stored key is not UTF-8", e))
}

#[async_trait]
impl DurableStorage for SqliteStorage {
    async fn get(
        &self,
        object: &ObjectAddress,
        keys: Vec<String>,
    ) -> Result<Vec<Option<Vec<u8>>>, BackendError> {
        let object = object.clone();
        self.db
            .read(move |conn| -> Result<_, BackendError> {
                let mut stmt = conn.prepare_cached(
                    "SELECT value FROM durable_kv WHERE namespace = ?1 AND object_id = ?2 AND key = ?3",
                )?;
                let mut values = Vec::with_capacity(keys.len());
                for key in &keys {
                    let value: Option<Vec<u8>> = stmt
                        .query_row(
                            params![&*object.namespace, &object.id.as_bytes()[..], key.as_bytes()],
                            |r| r.get(0),
                        )
                        .optional()?;
                    values.push(value);
                }
                Ok(values)
            })
            .await
    }

    async fn list(
        &self,
        object: &ObjectAddress,
        options: &ListOptions,
    ) -> Result<Vec<(String, Vec<u8>)>, BackendError> {
        let mut sql = String::from("SELECT key, value FROM durable_kv WHERE namespace = ? AND object_id = ?");
        let mut args: Vec<Value> =
            vec![Value::Text(object.namespace.to_string()), Value::Blob(object.id.as_bytes().to_vec())];
        let mut bound = |sql: &mut String, op: &str, key: Vec<u8>| {
            sql.push_str(&format!(" AND key {op} ?"));
            args.push(Value::Blob(key));
        };
        if let Some(start) = &options.start {
            bound(&mut sql, ">=", start.as_bytes().to_vec());
        }
        if let Some(after) = &options.start_after {
            bound(&mut sql, ">", after.as_bytes().to_vec());
        }
        if let Some(end) = &options.end {
            bound(&mut sql, "<", end.as_bytes().to_vec());
        }
        if let Some(prefix) = options.prefix.as_deref().filter(|p| !p.is_empty()) {
            bound(&mut sql, ">=", prefix.as_bytes().to_vec());
            if let Some(successor) = prefix_successor(prefix.as_bytes()) {
                bound(&mut sql, "<", successor);
            }
        }
        sql.push_str(if options.reverse { " ORDER BY key DESC" } else { " ORDER BY key ASC" });
        sql.push_str(" LIMIT ?");
        args.push(Value::Integer(options.limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX))));
        self.db
            .read(move |conn| -> Result<_, BackendError> {
                let mut stmt = conn.prepare_cached(&sql)?;
                let rows = stmt
                    .query_map(params_from_iter(args), |r| {
                        Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows.into_iter().map(|(key, value)| Ok((key_from_blob(key)?, value))).collect()
            })
            .await
    }

    async fn get_alarm(&self, object: &ObjectAddress) -> Result<Option<AlarmRecord>, BackendError> {
        let object = object.clone();
        self.db
            .read(move |conn| -> Result<_, BackendError> {
                let mut stmt = conn.prepare_cached(
                    "SELECT due_ms, retry_count FROM durable_alarm WHERE namespace = ?1 AND object_id = ?2",
                )?;
                Ok(stmt
                    .query_row(params![&*object.namespace, &object.id.as_bytes()[..]], |r| {
                        Ok(AlarmRecord { due_ms: r.get(0)?, retry_count: r.get(1)? })
                    })
                    .optional()?)
            })
            .await
    }

    async fn commit(&self, object: &ObjectAddress, batch: WriteBatch) -> Result<(), BackendError> {
        let object = object.clone();
        self.db
            .write(move |txn| -> Result<(), BackendError> {
                let namespace = &*object.namespace;
                let id = &object.id.as_bytes()[..];
                if batch.delete_all {
                    txn.execute(
                        "DELETE FROM durable_kv WHERE namespace = ?1 AND object_id = ?2",
                        params![namespace, id],
                    )?;
                }
                let mut put = txn.prepare_cached(
                    "INSERT INTO durable_kv (namespace, object_id, key, value) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (namespace, object_id, key) DO UPDATE SET value = excluded.value",
                )?;
                let mut delete = txn.prepare_cached(
                    "DELETE FROM durable_kv WHERE namespace = ?1 AND object_id = ?2 AND key = ?3",
                )?;
                for (key, value) in &batch.entries {
                    match value {
                        Some(value) => put.execute(params![namespace, id, key.as_bytes(), value])?,
                        None => delete.execute(params![namespace, id, key.as_bytes()])?,
                    };
                }
                match batch.alarm {
                    AlarmWrite::Keep => {}
                    AlarmWrite::Set(record) => {
                        txn.execute(
                            "INSERT INTO durable_alarm (namespace, object_id, due_ms, retry_count)
                             VALUES (?1, ?2, ?3, ?4)
                             ON CONFLICT (namespace, object_id)
                             DO UPDATE SET due_ms = excluded.due_ms, retry_count = excluded.retry_count",
                            params![namespace, id, record.due_ms, record.retry_count],
                        )?;
                    }
                    AlarmWrite::Delete => {
                        txn.execute(
                            "DELETE FROM durable_alarm WHERE namespace = ?1 AND object_id = ?2",
                            params![namespace, id],
                        )?;
                    }
                }
                Ok(())
            })
            .await
    }

    async fn pending_alarms(&self, namespace: &str) -> Result<Vec<(ObjectId, AlarmRecord)>, BackendError> {
        let namespace = namespace.to_string();
        self.db
            .read(move |conn| -> Result<_, BackendError> {
                let mut stmt = conn.prepare_cached(
                    "SELECT object_id, due_ms, retry_count FROM durable_alarm WHERE namespace = ?1 ORDER BY due_ms",
                )?;
                let rows = stmt
                    .query_map(params![namespace], |r| {
                        Ok((r.get::<_, Vec<u8>>(0)?, AlarmRecord { due_ms: r.get(1)?, retry_count: r.get(2)? }))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows.into_iter()
                    .map(|(id, record)| {
                        let bytes: [u8; 32] = id
                            .try_into()
                            .map_err(|_| BackendError::msg("stored object id is not 32 bytes"))?;
                        Ok((ObjectId::from_bytes(bytes), record))
                    })
                    .collect()
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_successor;

    #[test]
    fn the_prefix_successor_bounds_every_extension() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[b'a', 0xff]), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(&[0xff, 0xff]), None);
    }
}
