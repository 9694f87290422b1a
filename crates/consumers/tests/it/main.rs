//! Integration tests of `ledge-consumers`: the consumers built from a real env of embedded bindings
//! in a temporary data directory, run until the test stops them.

mod email;
mod notifications;
mod repository_accounts;
mod support;
