//! The integration tests of ledge-queue, in one test binary: the conformance suite run against the
//! embedded SQLite driver, and what is particular to that driver.

mod conformance;
mod embedded;
mod inbox;
