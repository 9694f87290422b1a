//! HTTP API tests: the router driven in-process (`oneshot`, no socket) over a real env of embedded
//! bindings in a temporary data directory.

mod harness;
mod health;
mod routing;
mod search;
mod webhooks;
