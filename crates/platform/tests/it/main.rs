//! Integration tests of `ledge-platform` against the real embedded stores: the relational store on
//! SQLite and the `sessions` KV namespace, both in a temporary directory, on one manual clock.

mod accounts;
mod api_keys;
mod billing;
mod cursors;
mod ledger;
mod notifications;
mod organizations;
mod repositories;
mod support;
