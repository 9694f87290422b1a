//! The `KvNamespace` binding: the operations of a Workers KV namespace, their options and results.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One KV namespace (e.g. `sessions`, `embedding-cache`): string keys to byte values, each with
/// optional JSON metadata and an optional expiration.
///
/// Every driver validates a call in full against its [`KvLimits`](crate::KvLimits) before touching
/// storage, so a rejected call changes nothing. An expired key reads as absent and is not listed.
/// Last write wins; there are no atomic read-modify-write operations.
#[async_trait::async_trait]
pub trait KvNamespace: Send + Sync + fmt::Debug {
    /// The value of `key`, or `None` if it is absent or expired.
    async fn get(&self, key: &str, options: GetOptions) -> Result<Option<Bytes>>;

    /// The value of `key` with its metadata (`None` if it was put without any), or `None` if the
    /// key is absent or expired. The platform's `{value: null, metadata: null}` is `None` here.
    async fn get_with_metadata(&self, key: &str, options: GetOptions) -> Result<Option<ValueWithMetadata>>;

    /// The value of `key` as a stream of byte chunks, or `None` if it is absent or expired.
    async fn get_stream(&self, key: &str, options: GetOptions) -> Result<Option<ValueStream>>;

    /// The values of up to [`KvLimits::max_bulk_get_keys`](crate::KvLimits) keys (100 by default)
    /// at once: every requested key is in the map, with `None` if it is absent or expired.
    async fn get_many(&self, keys: &[&str], options: GetOptions) -> Result<BTreeMap<String, Option<Bytes>>>;

    /// Stores `value` under `key`, replacing any previous value, metadata and expiration.
    async fn put(&self, key: &str, value: Bytes, options: PutOptions) -> Result<()>;

    /// Removes `key`. Removing an absent key succeeds.
    async fn delete(&self, key: &str) -> Result<()>;

    /// One page of the live keys, in UTF-8 byte order, with their expiration and metadata.
    async fn list(&self, options: ListOptions) -> Result<ListResult>;
}

/// Options of the read operations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetOptions {
    /// How long, in seconds, an edge location may cache the value (at least 60). Validated, then
    /// ignored by every ledge driver: there is no cache layer in front of the storage, and one
    /// would break read-your-writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_ttl: Option<u64>,
}

/// Options of [`KvNamespace::put`].
///
/// Giving both `expiration` and `expiration_ttl` is rejected (the platform lets the TTL win).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PutOptions {
    /// When the key expires, in seconds since the Unix epoch; at least 60 s ahead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<u64>,
    /// How long the key lives, in seconds from now; at least 60.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_ttl: Option<u64>,
    /// Arbitrary JSON kept with the key and returned by `get_with_metadata` and `list`; at most
    /// 1024 bytes serialized. `Some(Value::Null)` is the same as `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

/// Options of [`KvNamespace::list`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListOptions {
    /// Only keys starting with this prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Most keys in the page, 1 to 1000; 1000 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Where to continue, from a previous page's `cursor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// A value with its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueWithMetadata {
    pub value: Bytes,
    /// `None` when the key was put without metadata.
    pub metadata: Option<serde_json::Value>,
}

/// One page of [`KvNamespace::list`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListResult {
    /// Keys in UTF-8 byte order.
    pub keys: Vec<ListedKey>,
    /// Authoritative: `true` exactly when no key follows this page. A page may be empty while
    /// this is `false`; keep following `cursor` until it is `true`.
    pub list_complete: bool,
    /// Pass as [`ListOptions::cursor`] to get the next page; `None` when `list_complete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// A key as [`KvNamespace::list`] reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListedKey {
    pub name: String,
    /// When the key expires, in seconds since the Unix epoch (also for keys put with a TTL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

/// A value read as a stream of byte chunks, with its total size known up front.
pub struct ValueStream {
    size: u64,
    chunks: Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>,
}

impl ValueStream {
    /// A stream of `size` bytes in total, delivered as `chunks`.
    pub fn new(size: u64, chunks: impl Stream<Item = Result<Bytes>> + Send + 'static) -> ValueStream {
        ValueStream { size, chunks: Box::pin(chunks) }
    }

    /// The value's total size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl fmt::Debug for ValueStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValueStream").field("size", &self.size).finish_non_exhaustive()
    }
}

impl Stream for ValueStream {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.chunks.as_mut().poll_next(cx)
    }
}

/// Typed reads on any [`KvNamespace`] (generic, so kept off the object-safe trait): the
/// platform's `get(key, {type: "text" | "json"})`.
pub trait KvNamespaceExt: KvNamespace {
    /// The value of `key` as UTF-8 text; [`Error::Decode`] if it is not UTF-8.
    fn get_text(
        &self,
        key: &str,
        options: GetOptions,
    ) -> impl Future<Output = Result<Option<String>>> + Send {
        async move {
            let Some(bytes) = self.get(key, options).await? else { return Ok(None) };
            String::from_utf8(bytes.to_vec()).map(Some).map_err(|e| Error::Decode {
                key: key.to_owned(),
                expected: "UTF-8 text",
                message: e.to_string(),
            })
        }
    }

    /// The value of `key` parsed as JSON into `T`; [`Error::Decode`] if it does not parse.
    fn get_json<T: DeserializeOwned>(
        &self,
        key: &str,
        options: GetOptions,
    ) -> impl Future<Output = Result<Option<T>>> + Send {
        async move {
            let Some(bytes) = self.get(key, options).await? else { return Ok(None) };
            serde_json::from_slice(&bytes).map(Some).map_err(|e| Error::Decode {
                key: key.to_owned(),
                expected: "the expected JSON",
                message: e.to_string(),
            })
        }
    }
}

impl<N: KvNamespace + ?Sized> KvNamespaceExt for N {}
