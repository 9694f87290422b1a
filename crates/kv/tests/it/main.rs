//! Integration tests of ledge-kv: the conformance suite on the embedded driver, then what only
//! the embedded SQLite driver promises (persistence, purge of expired rows, configured limits).

mod conformance;
mod sqlite_driver;
