//! KV namespaces: the `KvNamespace` binding modelled on Workers KV, and its embedded SQLite driver.
//!
//! Layout:
//!
//! * [`namespace`] — the object-safe [`KvNamespace`] trait every driver implements, its options
//!   ([`GetOptions`], [`PutOptions`], [`ListOptions`]) and results ([`ValueWithMetadata`],
//!   [`ValueStream`], [`ListResult`]), and [`KvNamespaceExt`] for typed reads (`get_text`, `get_json`).
//! * [`limits`] — [`KvLimits`]: the contract's limits as configuration, and the validation every
//!   driver runs before it touches storage.
//! * [`clock`] — [`Clock`], where drivers read "now" from ([`SystemClock`]; [`ManualClock`] for tests).
//! * [`error`] — [`Error`], one matchable kind per failure, naming the offending field.
//! * [`sqlite`] — [`SqliteKv`], the embedded driver: every namespace in one SQLite database.
//! * `conformance` (feature `conformance`) — the suite every driver passes, and
//!   [`kv_conformance_tests!`](crate::kv_conformance_tests) to instantiate it.
//!
//! Invariant: a call is validated in full before any storage is touched, so a rejected call changes
//! nothing; and an expired key is indistinguishable from an absent one (never returned, never
//! listed), whether or not it has been purged yet.
//!
//! Where ledge is stricter than the platform: a completed `put` or `delete` is visible to the next
//! read on every namespace handle (read-your-writes, no eventual-consistency window), and giving both
//! `expiration` and `expiration_ttl` is rejected rather than one silently winning.

pub mod clock;
pub mod error;
pub mod limits;
pub mod namespace;
pub mod sqlite;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, Result};
pub use limits::KvLimits;
pub use namespace::{
    GetOptions, KvNamespace, KvNamespaceExt, ListOptions, ListResult, ListedKey, PutOptions, ValueStream,
    ValueWithMetadata,
};
pub use sqlite::{SqliteKv, SqliteKvOptions};
