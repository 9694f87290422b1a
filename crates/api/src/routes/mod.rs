//! The route modules, one file each.

pub mod api_keys;
pub mod auth;
pub mod billing;
pub mod health;
pub mod metrics;
pub mod notifications;
pub mod openapi;
pub mod organizations;
pub mod pending;
pub mod repositories;
pub mod search;
pub mod webhooks;
