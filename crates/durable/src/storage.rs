//! An object's view of its storage during one event: typed reads and writes, transactions and the
//! alarm. Writes are buffered in the event's write set (reads see them) and committed by the host in
//! one [`DurableStorage::commit`] when the event ends, before its reply is released.
//!
//! Values are encoded as JSON (`serde_json`), so stored data stays readable with any SQLite client
//! and a type can gain optional fields without a migration. A value `serde_json` cannot encode (a
//! map whose keys are neither strings nor numbers) is refused with [`Error::Codec`].

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::backend::{AlarmRecord, AlarmWrite, DurableStorage, ObjectAddress, WriteBatch};
use crate::{Error, Result};

/// Limits on storage calls. The defaults are the contract's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageLimits {
    /// Most keys (or entries) in one `get_many`, `put_many` or `delete_many`. Default 128.
    pub max_batch_keys: usize,
    /// Most bytes of key plus encoded value in one entry. Default 2 MB (2 000 000 bytes).
    pub max_entry_bytes: usize,
}

impl Default for StorageLimits {
    fn default() -> Self {
        StorageLimits { max_batch_keys: 128, max_entry_bytes: 2_000_000 }
    }
}

/// Which keys [`Storage::list`] returns: byte order of keys, `start` inclusive, `end` exclusive.
/// All given bounds apply together.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListOptions {
    /// First key included (cannot be combined with `start_after`).
    pub start: Option<String>,
    /// Only keys strictly after this one.
    pub start_after: Option<String>,
    /// Only keys strictly before this one.
    pub end: Option<String>,
    /// Only keys starting with this prefix.
    pub prefix: Option<String>,
    /// Descending order (the bounds keep their meaning; `limit` takes from the high end).
    pub reverse: bool,
    /// At most this many entries (at least 1); all matching entries when unset.
    pub limit: Option<usize>,
}

impl ListOptions {
    pub fn new() -> ListOptions {
        ListOptions::default()
    }
    pub fn start(mut self, key: impl Into<String>) -> Self {
        self.start = Some(key.into());
        self
    }
    pub fn start_after(mut self, key: impl Into<String>) -> Self {
        self.start_after = Some(key.into());
        self
    }
    pub fn end(mut self, key: impl Into<String>) -> Self {
        self.end = Some(key.into());
        self
    }
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }
    pub fn reverse(mut self) -> Self {
        self.reverse = true;
        self
    }
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Whether `key` lies within the bounds and prefix (ignoring `limit`).
    pub fn contains(&self, key: &str) -> bool {
        self.start.as_deref().is_none_or(|s| key >= s)
            && self.start_after.as_deref().is_none_or(|s| key > s)
            && self.end.as_deref().is_none_or(|e| key < e)
            && self.prefix.as_deref().is_none_or(|p| key.starts_with(p))
    }

    fn validate(&self) -> Result<()> {
        if self.start.is_some() && self.start_after.is_some() {
            return Err(Error::InvalidInput {
                field: "list options",
                message: "start and start_after cannot be combined".into(),
            });
        }
        if self.limit == Some(0) {
            return Err(Error::InvalidInput {
                field: "list options",
                message: "limit must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// A future returned by a [`Storage::transaction`] closure.
pub type TxnFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A change to the alarm made during an event, not yet committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AlarmChange {
    Set(i64),
    Delete,
}

/// One layer of buffered writes: the event's, or a transaction's on top of it.
#[derive(Debug, Clone, Default)]
struct WriteSet {
    cleared: bool,
    entries: BTreeMap<String, Option<Vec<u8>>>,
    alarm: Option<AlarmChange>,
}

impl WriteSet {
    /// Folds `upper` (a later layer) into `self`.
    fn absorb(&mut self, upper: WriteSet) {
        if upper.cleared {
            self.cleared = true;
            self.entries = upper.entries;
        } else {
            self.entries.extend(upper.entries);
        }
        if upper.alarm.is_some() {
            self.alarm = upper.alarm;
        }
    }
}

/// What an event leaves behind for the host to commit.
#[derive(Debug)]
pub(crate) struct EventWrites {
    pub batch: WriteBatch,
    pub alarm_change: Option<AlarmChange>,
    /// The stored alarm as read during the event, if it was read (`Some(None)`: no alarm).
    pub stored_alarm: Option<Option<AlarmRecord>>,
}

/// An object's storage during one event. See the module docs for when writes become durable.
pub struct Storage {
    backend: Arc<dyn DurableStorage>,
    object: ObjectAddress,
    limits: StorageLimits,
    /// Never empty: the event's layer, then one per open transaction.
    layers: Vec<WriteSet>,
    /// The committed alarm, once read (`Some(None)`: none).
    stored_alarm: Option<Option<AlarmRecord>>,
    /// During an alarm event the running alarm reads as absent, as on the edge platform.
    alarm_running: bool,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").field("object", &self.object).finish_non_exhaustive()
    }
}

impl Storage {
    pub(crate) fn new(
        backend: Arc<dyn DurableStorage>,
        object: ObjectAddress,
        limits: StorageLimits,
        stored_alarm: Option<Option<AlarmRecord>>,
        alarm_running: bool,
    ) -> Storage {
        Storage { backend, object, limits, layers: vec![WriteSet::default()], stored_alarm, alarm_running }
    }

    pub(crate) fn finish(mut self) -> EventWrites {
        // Any layer above the event's belongs to a transaction whose future was dropped unfinished.
        self.layers.truncate(1);
        let event = self.layers.pop().unwrap_or_default();
        let batch = WriteBatch {
            delete_all: event.cleared,
            entries: event.entries.into_iter().collect(),
            alarm: AlarmWrite::Keep,
        };
        EventWrites { batch, alarm_change: event.alarm, stored_alarm: self.stored_alarm }
    }

    /// The value of `key`, decoded as `T`; `None` if absent.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let raw = match self.buffered(key) {
            Some(value) => value.clone(),
            None => self.backend.get(&self.object, vec![key.to_string()]).await?.pop().flatten(),
        };
        raw.map(|bytes| decode(key, &bytes)).transpose()
    }

    /// The values of up to `max_batch_keys` keys; absent keys are left out of the map.
    pub async fn get_many<K, T>(&self, keys: impl IntoIterator<Item = K>) -> Result<BTreeMap<String, T>>
    where
        K: Into<String>,
        T: DeserializeOwned,
    {
        let keys: Vec<String> = keys.into_iter().map(Into::into).collect();
        self.check_batch(keys.len())?;
        let raw = self.read_many(keys).await?;
        let mut out = BTreeMap::new();
        for (key, value) in raw {
            if let Some(bytes) = value {
                let decoded = decode(&key, &bytes)?;
                out.insert(key, decoded);
            }
        }
        Ok(out)
    }

    /// Stores `value` under `key`. Fails without writing if key + encoded value exceed the limit.
    pub fn put<T: Serialize + ?Sized>(&mut self, key: impl Into<String>, value: &T) -> Result<()> {
        let key = key.into();
        let bytes = self.encode_entry(&key, value)?;
        self.top().entries.insert(key, Some(bytes));
        Ok(())
    }

    /// Stores up to `max_batch_keys` entries; all or none of them (every entry is checked first).
    pub fn put_many<K, T>(&mut self, entries: impl IntoIterator<Item = (K, T)>) -> Result<()>
    where
        K: Into<String>,
        T: Serialize,
    {
        let entries: Vec<(String, T)> = entries.into_iter().map(|(k, v)| (k.into(), v)).collect();
        self.check_batch(entries.len())?;
        let mut encoded = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let bytes = self.encode_entry(&key, &value)?;
            encoded.push((key, bytes));
        }
        let top = self.top();
        for (key, bytes) in encoded {
            top.entries.insert(key, Some(bytes));
        }
        Ok(())
    }

    /// Deletes `key`; true if it existed.
    pub async fn delete(&mut self, key: &str) -> Result<bool> {
        let existed = match self.buffered(key) {
            Some(value) => value.is_some(),
            None => self.backend.get(&self.object, vec![key.to_string()]).await?.pop().flatten().is_some(),
        };
        self.top().entries.insert(key.to_string(), None);
        Ok(existed)
    }

    /// Deletes up to `max_batch_keys` keys; the number of them that existed.
    pub async fn delete_many<K: Into<String>>(&mut self, keys: impl IntoIterator<Item = K>) -> Result<usize> {
        let keys: Vec<String> = keys.into_iter().map(Into::into).collect();
        self.check_batch(keys.len())?;
        let mut unique = keys;
        unique.sort();
        unique.dedup();
        let existing = self.read_many(unique).await?;
        let mut count = 0;
        let top = self.top();
        for (key, value) in existing {
            count += usize::from(value.is_some());
            top.entries.insert(key, None);
        }
        Ok(count)
    }

    /// The entries selected by `options`, decoded as `T`, in byte order of keys (or reversed).
    pub async fn list<T: DeserializeOwned>(&self, options: ListOptions) -> Result<Vec<(String, T)>> {
        options.validate()?;
        let mut overlay = WriteSet::default();
        for layer in &self.layers {
            overlay.absorb(layer.clone());
        }
        let in_range: Vec<(&String, &Option<Vec<u8>>)> =
            overlay.entries.iter().filter(|(k, _)| options.contains(k)).collect();
        let mut merged: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        if !overlay.cleared {
            // Every buffered delete may hide one stored entry: ask for that many more.
            let deletes = in_range.iter().filter(|(_, v)| v.is_none()).count();
            let mut stored_options = options.clone();
            stored_options.limit = options.limit.map(|l| l.saturating_add(deletes));
            for (key, value) in self.backend.list(&self.object, &stored_options).await? {
                if !overlay.entries.contains_key(&key) {
                    merged.insert(key, value);
                }
            }
        }
        for (key, value) in in_range {
            if let Some(value) = value {
                merged.insert(key.clone(), value.clone());
            }
        }
        let limit = options.limit.unwrap_or(usize::MAX);
        let ordered: Box<dyn Iterator<Item = (String, Vec<u8>)>> =
            if options.reverse { Box::new(merged.into_iter().rev()) } else { Box::new(merged.into_iter()) };
        ordered.take(limit).map(|(key, bytes)| decode(&key, &bytes).map(|value| (key, value))).collect()
    }

    /// Deletes every key of the object. The alarm is kept.
    pub fn delete_all(&mut self) {
        let top = self.top();
        top.cleared = true;
        top.entries.clear();
    }

    /// Runs `f` with a nested view of storage: its writes (and alarm changes) are kept if it returns
    /// `Ok` and discarded if it returns `Err`. Reads inside see its own writes.
    ///
    /// ```
    /// use ledge_durable::{ObjectError, Storage};
    ///
    /// /// Takes the next ticket, unless all are gone; then nothing is written.
    /// async fn take_ticket(storage: &mut Storage) -> Result<u64, ObjectError> {
    ///     storage
    ///         .transaction(|txn| {
    ///             Box::pin(async move {
    ///                 let taken: u64 = txn.get("taken").await?.unwrap_or(0);
    ///                 txn.put("taken", &(taken + 1))?;
    ///                 if taken >= 100 {
    ///                     return Err(ObjectError::conflict("sold out"));
    ///                 }
    ///                 Ok(taken + 1)
    ///             })
    ///         })
    ///         .await
    /// }
    /// ```
    pub async fn transaction<R, E, F>(&mut self, f: F) -> Result<R, E>
    where
        F: for<'a> FnOnce(&'a mut Storage) -> TxnFuture<'a, Result<R, E>>,
    {
        self.layers.push(WriteSet::default());
        let depth = self.layers.len();
        let outcome = f(self).await;
        // Layers above ours belong to inner transactions whose futures were dropped unfinished.
        self.layers.truncate(depth);
        let layer = self.layers.pop();
        if let (Ok(_), Some(layer)) = (&outcome, layer) {
            self.top().absorb(layer);
        }
        outcome
    }

    /// Sets the object's alarm to `at` (replacing any other). A time in the past fires at once.
    /// Times are kept to the millisecond.
    pub fn set_alarm(&mut self, at: SystemTime) {
        self.top().alarm = Some(AlarmChange::Set(epoch_ms(at)));
    }

    /// Removes the object's alarm, if any.
    pub fn delete_alarm(&mut self) {
        self.top().alarm = Some(AlarmChange::Delete);
    }

    /// When the alarm is due, if one is set. Inside the alarm handler the running alarm reads as
    /// absent (unless the handler sets a new one).
    pub async fn get_alarm(&mut self) -> Result<Option<SystemTime>> {
        if let Some(change) = self.layers.iter().rev().find_map(|l| l.alarm) {
            return Ok(match change {
                AlarmChange::Set(ms) => Some(from_epoch_ms(ms)),
                AlarmChange::Delete => None,
            });
        }
        if self.alarm_running {
            return Ok(None);
        }
        let stored = match self.stored_alarm {
            Some(stored) => stored,
            None => {
                let stored = self.backend.get_alarm(&self.object).await?;
                self.stored_alarm = Some(stored);
                stored
            }
        };
        Ok(stored.map(|r| from_epoch_ms(r.due_ms)))
    }

    fn top(&mut self) -> &mut WriteSet {
        if self.layers.is_empty() {
            self.layers.push(WriteSet::default());
        }
        let last = self.layers.len() - 1;
        &mut self.layers[last]
    }

    /// The buffered state of `key`: `Some(Some(v))` written, `Some(None)` deleted, `None` unbuffered.
    fn buffered(&self, key: &str) -> Option<&Option<Vec<u8>>> {
        const DELETED: &Option<Vec<u8>> = &None;
        for layer in self.layers.iter().rev() {
            if let Some(value) = layer.entries.get(key) {
                return Some(value);
            }
            if layer.cleared {
                return Some(DELETED);
            }
        }
        None
    }

    async fn read_many(&self, keys: Vec<String>) -> Result<Vec<(String, Option<Vec<u8>>)>> {
        let mut out: Vec<(String, Option<Vec<u8>>)> = Vec::with_capacity(keys.len());
        let mut missing = Vec::new();
        for key in keys {
            match self.buffered(&key) {
                Some(value) => out.push((key, value.clone())),
                None => missing.push(key),
            }
        }
        if !missing.is_empty() {
            let values = self.backend.get(&self.object, missing.clone()).await?;
            out.extend(missing.into_iter().zip(values));
        }
        Ok(out)
    }

    fn check_batch(&self, len: usize) -> Result<()> {
        if len > self.limits.max_batch_keys {
            return Err(Error::TooLarge {
                what: "keys in one call",
                limit: self.limits.max_batch_keys,
                actual: len,
            });
        }
        Ok(())
    }

    fn encode_entry<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<Vec<u8>> {
        let bytes =
            serde_json::to_vec(value).map_err(|source| Error::Codec { key: key.to_string(), source })?;
        let size = key.len() + bytes.len();
        if size > self.limits.max_entry_bytes {
            return Err(Error::TooLarge {
                what: "key + value bytes",
                limit: self.limits.max_entry_bytes,
                actual: size,
            });
        }
        Ok(bytes)
    }
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| Error::Codec { key: key.to_string(), source })
}

/// Milliseconds since the Unix epoch (negative before it).
pub(crate) fn epoch_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

pub(crate) fn from_epoch_ms(ms: i64) -> SystemTime {
    let offset = Duration::from_millis(ms.unsigned_abs());
    let time = if ms >= 0 { UNIX_EPOCH.checked_add(offset) } else { UNIX_EPOCH.checked_sub(offset) };
    time.unwrap_or(UNIX_EPOCH) // out of the platform's range: not reachable from `epoch_ms`
}
