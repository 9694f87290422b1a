//! ledge's HTTP API: the router, its middleware and its route modules.
//!
//! * [`app`] builds the axum [`Router`] over an [`AppState`]; [`serve`] runs it on a listener until
//!   a shutdown future resolves, then finishes the requests in flight.
//! * [`middleware`]: request id, tracing span, timeout, metrics, problem+json for router errors.
//! * [`problem`]: [`ApiError`] and the one table of stable error codes.
//! * [`modules`]: route-module state built lazily on first use ([`LazyModule`]).
//! * `routes/`: one file per route module, each with `fn routes() -> Router<AppState>`.
//!
//! Invariant: only this crate knows HTTP. Handlers extract, call a domain crate, map its error.

pub mod metrics;
pub mod middleware;
pub mod modules;
pub mod problem;
mod routes;

use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;

pub use modules::{LazyModule, ModuleStatus, Weight};
pub use problem::{ApiError, ErrorCode};
use routes::pending::Pending;
pub use routes::webhooks::WebhooksModule;

/// Request limits, from the `[server]` section of the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Default body limit of every route.
    pub body: usize,
    /// Body limit of `POST /webhooks/github` (GitHub sends at most 25 MiB).
    pub webhook_body: usize,
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { body: 1 << 20, webhook_body: 25 << 20, request_timeout: Duration::from_secs(30) }
    }
}

/// The route modules' lazily built states, one per module of the design.
pub struct Modules {
    pub webhooks: LazyModule<WebhooksModule>,
    pub auth: LazyModule<Pending>,
    pub organizations: LazyModule<Pending>,
    pub repositories: LazyModule<Pending>,
    pub api_keys: LazyModule<Pending>,
    pub notifications: LazyModule<Pending>,
    pub billing: LazyModule<Pending>,
    pub search: LazyModule<Pending>,
    pub chat: LazyModule<Pending>,
    pub bug_analysis: LazyModule<Pending>,
    pub analytics_enrichment: LazyModule<Pending>,
    pub openapi: LazyModule<Pending>,
}

impl Default for Modules {
    fn default() -> Self {
        Modules::new()
    }
}

impl Modules {
    pub fn new() -> Modules {
        use Weight::*;
        Modules {
            webhooks: LazyModule::new("webhooks", Light),
            auth: LazyModule::new("auth", Light),
            organizations: LazyModule::new("organizations", Light),
            repositories: LazyModule::new("repositories", Light),
            api_keys: LazyModule::new("api-keys", Light),
            notifications: LazyModule::new("notifications", Light),
            billing: LazyModule::new("billing", Light),
            search: LazyModule::new("search", Heavy),
            chat: LazyModule::new("chat", Heavy),
            bug_analysis: LazyModule::new("bug-analysis", Heavy),
            analytics_enrichment: LazyModule::new("analytics-enrichment", Heavy),
            openapi: LazyModule::new("openapi", Light),
        }
    }

    /// Every lazily built module with whether it is built; `health` and `metrics` are always.
    pub fn statuses(&self) -> Vec<ModuleStatus> {
        let always = |name| ModuleStatus { name, weight: Weight::Light, loaded: true };
        vec![
            always("health"),
            always("metrics"),
            self.webhooks.status(),
            self.auth.status(),
            self.organizations.status(),
            self.repositories.status(),
            self.api_keys.status(),
            self.notifications.status(),
            self.billing.status(),
            self.search.status(),
            self.chat.status(),
            self.bug_analysis.status(),
            self.analytics_enrichment.status(),
            self.openapi.status(),
        ]
    }
}

/// Everything a handler can reach. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub env: Arc<ledge_env::Env>,
    pub modules: Modules,
    pub metrics: metrics::Metrics,
    pub limits: Limits,
    pub started: Instant,
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(env: Arc<ledge_env::Env>, limits: Limits) -> AppState {
        AppState(Arc::new(Shared {
            env,
            modules: Modules::new(),
            metrics: metrics::Metrics::default(),
            limits,
            started: Instant::now(),
        }))
    }
}

/// The whole HTTP API.
pub fn app(state: AppState) -> Router {
    let body_limit = state.limits.body;
    Router::new()
        .merge(routes::health::routes())
        .merge(routes::metrics::routes())
        .merge(routes::webhooks::routes())
        .merge(routes::pending::routes())
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") })
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::around_request))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting connections and
/// waits for the requests in flight to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
