//! Integration tests of ledge-durable: the conformance suite on the SQLite driver, then what is
//! specific to the embedded host and driver.

mod conformance;
mod host;
mod sqlite;
