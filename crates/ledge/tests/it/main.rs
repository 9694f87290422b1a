//! End-to-end tests: the real `ledge` binary, started as a child process on a fresh data
//! directory and driven over HTTP.

mod cli;
mod credentials;
mod harness;
mod indexing;
mod search;
mod serve;
