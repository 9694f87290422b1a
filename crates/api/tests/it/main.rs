//! HTTP API tests: the router driven in-process (`oneshot`, no socket) over a real env of embedded
//! bindings in a temporary data directory.

mod accounts;
mod billing;
mod harness;
mod health;
mod matrix;
mod notifications;
mod openapi;
mod repositories;
mod routing;
mod search;
mod tenants;
mod webhooks;
