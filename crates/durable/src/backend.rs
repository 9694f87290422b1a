//! The storage backend trait every durable-object storage driver implements, and the values that
//! cross it. The host talks to storage only through [`DurableStorage`]; drivers know nothing of
//! objects, events or gates.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{BackendError, ListOptions, ObjectId};

/// Which object's storage an operation is about: its namespace and id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectAddress {
    pub namespace: Arc<str>,
    pub id: ObjectId,
}

/// A stored alarm: when it is due and how many times it has already been retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmRecord {
    /// Due time, epoch milliseconds.
    pub due_ms: i64,
    /// 0 for an alarm set by the object; `n` for the `n`-th retry of a failed alarm handler.
    pub retry_count: u32,
}

/// What a commit does to the object's alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AlarmWrite {
    /// Leave it as it is.
    #[default]
    Keep,
    /// Set (or replace) it.
    Set(AlarmRecord),
    /// Remove it (removing no alarm is fine).
    Delete,
}

/// The writes of one event, committed all-or-nothing by [`DurableStorage::commit`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    /// Delete every key of the object first (the alarm is kept).
    pub delete_all: bool,
    /// Then, in key order: `Some(value)` puts, `None` deletes. Each key at most once.
    pub entries: Vec<(String, Option<Vec<u8>>)>,
    /// Then this change to the alarm.
    pub alarm: AlarmWrite,
}

impl WriteBatch {
    /// True when committing would change nothing.
    pub fn is_empty(&self) -> bool {
        !self.delete_all && self.entries.is_empty() && self.alarm == AlarmWrite::Keep
    }
}

/// Storage for durable objects: per-object key-value pairs and one alarm per object.
///
/// Keys are compared as bytes (their UTF-8 encoding); values are opaque bytes. Every method sees
/// every commit that returned `Ok` before it was called.
#[async_trait]
pub trait DurableStorage: Send + Sync + 'static {
    /// The values of `keys`, in the same order (`None` for a missing key).
    async fn get(
        &self,
        object: &ObjectAddress,
        keys: Vec<String>,
    ) -> Result<Vec<Option<Vec<u8>>>, BackendError>;

    /// The entries selected by `options` (already validated), in byte order of keys, descending if
    /// `options.reverse`, at most `options.limit` of them.
    async fn list(
        &self,
        object: &ObjectAddress,
        options: &ListOptions,
    ) -> Result<Vec<(String, Vec<u8>)>, BackendError>;

    /// The object's alarm, if one is set.
    async fn get_alarm(&self, object: &ObjectAddress) -> Result<Option<AlarmRecord>, BackendError>;

    /// Applies `batch` atomically and durably: when this returns `Ok`, all of it is stored; when it
    /// returns an error, none of it is.
    async fn commit(&self, object: &ObjectAddress, batch: WriteBatch) -> Result<(), BackendError>;

    /// Every alarm stored for objects of `namespace`, for the host's scheduler to load at start.
    async fn pending_alarms(&self, namespace: &str) -> Result<Vec<(ObjectId, AlarmRecord)>, BackendError>;
}
