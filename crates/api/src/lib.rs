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
pub mod platform;
pub mod problem;
mod routes;
mod schemas;

pub use routes::openapi::document as openapi_document;

use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio::sync::watch;

pub use modules::{LazyModule, ModuleStatus, Weight};
pub use platform::PlatformModule;
pub use problem::{ApiError, ErrorCode};
use routes::openapi::OpenApiModule;
use routes::pending::Pending;
pub use routes::repositories::RepositoriesModule;
pub use routes::search::SearchModule;
pub use routes::webhooks::WebhooksModule;

/// Request limits, from the `[server]` section of the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Default body limit of every route.
    pub body: usize,
    /// Body limit of `POST /webhooks/github` (GitHub sends at most 25 MiB).
    pub webhook_body: usize,
    pub request_timeout: Duration,
    /// Requests an authenticated caller (a user or an API key) may make at once before being
    /// limited to one per `caller_refill` (429 with `Retry-After`).
    pub caller_burst: u32,
    pub caller_refill: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body: 1 << 20,
            webhook_body: 25 << 20,
            request_timeout: Duration::from_secs(30),
            caller_burst: 300,
            caller_refill: Duration::from_millis(100),
        }
    }
}

/// Declares [`Modules`] from one table of `field: State = (name, weight)` rows, so the struct, its
/// constructor and what `/health/modules` reports cannot drift apart.
macro_rules! route_modules {
    ($($field:ident: $state:ty = ($name:literal, $weight:ident),)+) => {
        /// The route modules' lazily built states, one per module of the design.
        pub struct Modules {
            $(pub $field: LazyModule<$state>,)+
        }

        impl Modules {
            pub fn new() -> Modules {
                Modules { $($field: LazyModule::new($name, Weight::$weight),)+ }
            }

            /// Every route module with whether it is built; `health` and `metrics` always are.
            pub fn statuses(&self) -> Vec<ModuleStatus> {
                let always = |name| ModuleStatus { name, weight: Weight::Light, loaded: true };
                vec![always("health"), always("metrics"), $(self.$field.status(),)+]
            }
        }
    };
}

route_modules! {
    webhooks: WebhooksModule = ("webhooks", Light),
    auth: PlatformModule = ("auth", Light),
    organizations: PlatformModule = ("organizations", Light),
    repositories: RepositoriesModule = ("repositories", Light),
    repository_records: PlatformModule = ("repository-records", Light),
    api_keys: PlatformModule = ("api-keys", Light),
    notifications: PlatformModule = ("notifications", Light),
    billing: PlatformModule = ("billing", Light),
    search: SearchModule = ("search", Heavy),
    chat: Pending = ("chat", Heavy),
    bug_analysis: Pending = ("bug-analysis", Heavy),
    analytics_enrichment: Pending = ("analytics-enrichment", Heavy),
    openapi: OpenApiModule = ("openapi", Light),
}

impl Default for Modules {
    fn default() -> Self {
        Modules::new()
    }
}

/// Everything a handler can reach. Cheap to clone: one `Arc` of a handle on the [`Shared`] state.
/// Each HTTP thread serves a router over a handle of its own ([`AppState::for_thread`]).
#[derive(Clone)]
pub struct AppState(Arc<Handle>);

/// What [`AppState`] points at: the router clones its state a few times per request, and with one
/// `Arc` for every thread those clones would write its count from every core at once.
struct Handle(Arc<Shared>);

pub struct Shared {
    pub env: Arc<ledge_env::Env>,
    pub modules: Modules,
    pub metrics: metrics::Metrics,
    pub limits: Limits,
    pub started: Instant,
    /// The indexing pipeline of this process, once the queue consumers that own it are built
    /// ([`AppState::provide_pipeline`]).
    pipeline: watch::Sender<Option<Arc<ledge_indexing::Pipeline>>>,
    /// Turns true when the server stops: long-lived answers (event streams) end.
    closing: watch::Sender<bool>,
    /// The platform records the auth, organizations and api-keys modules share, built on the
    /// first request to any of them.
    platform: tokio::sync::OnceCell<std::sync::Arc<ledge_platform::Platform>>,
    /// Requests per authenticated caller (`Limits::caller_burst`), counted in this process.
    caller_requests: ledge_auth::TokenBuckets,
    /// Changes to repository records, so the webhook keys read from them are read again.
    pub repository_changes: ledge_platform::RepositoryChanges,
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0.0
    }
}

impl AppState {
    pub fn new(env: Arc<ledge_env::Env>, limits: Limits) -> AppState {
        AppState(Arc::new(Handle(Arc::new(Shared {
            env,
            modules: Modules::new(),
            metrics: metrics::Metrics::default(),
            limits,
            started: Instant::now(),
            pipeline: watch::Sender::new(None),
            closing: watch::Sender::new(false),
            platform: tokio::sync::OnceCell::new(),
            repository_changes: ledge_platform::RepositoryChanges::default(),
            caller_requests: ledge_auth::TokenBuckets::new(
                limits.caller_burst,
                limits.caller_refill,
                100_000,
            ),
        }))))
    }

    /// The same state through a handle of its own, for a router that one thread serves: the
    /// clones that router makes per request then stay in that thread's cache.
    pub fn for_thread(&self) -> AppState {
        AppState(Arc::new(Handle(self.0.0.clone())))
    }

    /// Hands the routes the indexing pipeline the queue consumers run (its coordinators' host
    /// started on the consumers' runtime): there is one per process, the status routes read the
    /// same coordinators the consumers write.
    pub fn provide_pipeline(&self, pipeline: Arc<ledge_indexing::Pipeline>) {
        self.pipeline.send_replace(Some(pipeline));
    }

    /// Ends the long-lived answers (event streams), so a graceful shutdown does not wait for them.
    pub fn close_streams(&self) {
        self.closing.send_replace(true);
    }
}

/// The whole HTTP API. The routes of a probe and a webhook receiver (`/health`, `/metrics`,
/// `/webhooks/github`) are built now; those of every other route module (the platform API,
/// repositories, search, docs, …) on the first request that is for none of the former
/// ([`LazyRoutes`]), so a ledge that only takes webhooks never builds a router of a hundred routes,
/// and start-up does not wait for one.
pub fn app(state: AppState) -> Router {
    let body_limit = state.limits.body;
    Router::new()
        .merge(routes::health::routes())
        .merge(routes::metrics::routes())
        .merge(routes::webhooks::routes())
        .layer(middleware::AroundRequestLayer::new(state.clone()))
        .layer(DefaultBodyLimit::max(body_limit))
        .fallback_service(LazyRoutes { state: state.clone(), router: Arc::default() })
        .with_state(state)
}

/// Every route but those [`app`] builds at once, with the same middleware: what [`app`] builds on
/// first use (public so that a test can list every route the API serves).
pub fn lazy_routes(state: AppState) -> Router {
    let body_limit = state.limits.body;
    Router::new()
        .merge(routes::auth::routes())
        .merge(routes::organizations::routes())
        .merge(routes::api_keys::routes())
        .merge(routes::notifications::routes())
        .merge(routes::repositories::routes())
        .merge(routes::search::routes())
        .merge(routes::billing::routes())
        .merge(routes::pending::routes())
        .merge(routes::openapi::routes())
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") })
        .layer(middleware::AroundRequestLayer::new(state.clone()))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// [`lazy_routes`], built on the first request that reaches them.
#[derive(Clone)]
struct LazyRoutes {
    state: AppState,
    router: Arc<std::sync::OnceLock<Router>>,
}

impl tower::Service<axum::extract::Request> for LazyRoutes {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = axum::routing::future::RouteFuture<std::convert::Infallible>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), std::convert::Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: axum::extract::Request) -> Self::Future {
        let router = self.router.get_or_init(|| lazy_routes(self.state.clone()));
        tower::Service::call(&mut router.clone(), req)
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting connections and
/// waits for the requests in flight to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The peer address reaches handlers (login throttling per client address).
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
