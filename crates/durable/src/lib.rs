//! Durable objects for ledge: one logical instance per id, its events serialized, with
//! transactional key-value storage and an alarm — modelled on Cloudflare's Durable Objects
//! (contract: `bindings.md` §4).
//!
//! # Layout
//!
//! * `id` — [`ObjectId`]s: derived from a name, drawn at random, or parsed back (checked).
//! * `object` — the [`DurableObject`] trait a class implements and the [`ObjectContext`] of an event.
//! * `storage` — [`Storage`], an object's typed view of its storage during one event: buffered
//!   writes, reads that see them, [`ListOptions`], transactions, the alarm, [`StorageLimits`].
//! * `backend` — [`DurableStorage`], the object-safe trait storage drivers implement.
//! * [`sqlite`] — the embedded driver, [`SqliteStorage`], on `ledge-sqlite`.
//! * `host` — the embedded [`DurableHost`]: registration of [`Namespace`]s, start, shutdown.
//! * `namespace` — [`Namespace`], [`Stub`], and the actor that runs one live object.
//! * `alarms` — the host's scheduler of stored alarms.
//! * [`conformance`] (feature `conformance`) — the suite every storage driver passes.
//!
//! # Invariant
//!
//! An object's events run one at a time, and an event's writes reach storage in one atomic
//! [`DurableStorage::commit`] that completes before its reply is released. Nothing else writes an
//! object's storage. A failed commit drops the instance, so no in-memory state outlives a write
//! that was lost.
//!
//! # Where ledge differs from the edge platform
//!
//! * Input gate: events of one object never interleave, not even while an event awaits storage
//!   (the platform interleaves events while no storage call is pending). Stricter, never weaker.
//! * Output gate: all writes of an event commit together, after the handler returns; "writes with no
//!   await between them commit atomically" therefore holds for every write of an event.
//! * A handler returning `Err` still has its writes committed, as on the platform; use
//!   [`Storage::transaction`] to undo writes on error.
//! * Values are stored as JSON. Key + value is limited to 2 MB (2 000 000 bytes) by default.
//! * WebSockets (accepting sockets with tags, attachments kept across eviction) are not implemented
//!   yet; they come with the chat sessions.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use ledge_durable::{DurableHost, DurableObject, HostConfig, ObjectContext, ObjectError, SqliteStorage};
//!
//! struct Counter;
//!
//! #[async_trait]
//! impl DurableObject for Counter {
//!     type Request = u64;
//!     type Response = u64;
//!     async fn handle(&mut self, ctx: &mut ObjectContext, add: u64) -> Result<u64, ObjectError> {
//!         let n: u64 = ctx.storage().get("n").await?.unwrap_or(0) + add;
//!         ctx.storage().put("n", &n)?;
//!         Ok(n)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let storage = SqliteStorage::open(dir.path().join("durable.db"), Default::default())?;
//! let host = DurableHost::new(Arc::new(storage), HostConfig::default());
//! let counters = host.namespace("COUNTERS", |_id| Counter)?;
//! let run = host.start(std::future::pending())?;
//! let stub = counters.stub(counters.id_from_name("visits"));
//! assert_eq!(stub.call(2).await?, 2);
//! assert_eq!(stub.call(3).await?, 5);
//! run.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod alarms;
mod backend;
mod error;
mod host;
mod id;
mod namespace;
mod object;
pub mod sqlite;
mod storage;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use backend::{AlarmRecord, AlarmWrite, DurableStorage, ObjectAddress, WriteBatch};
pub use error::{BackendError, Error, ObjectError, ObjectErrorKind, Result};
pub use host::{DurableHost, HostConfig, HostRun};
pub use id::ObjectId;
pub use namespace::{Namespace, Stub};
pub use object::{DurableObject, ObjectContext};
pub use sqlite::SqliteStorage;
pub use storage::{ListOptions, Storage, StorageLimits, TxnFuture};
