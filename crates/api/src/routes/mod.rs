//! The route modules, one file each.

pub mod health;
pub mod metrics;
pub mod pending;
pub mod repositories;
pub mod search;
pub mod webhooks;
