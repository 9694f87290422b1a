//! Route modules whose state is built on first use.
//!
//! Each route module (`routes/*.rs`) has a `routes()` registered at start, which costs nothing;
//! what a module needs to answer — parsers, engines, open bindings — is its *module state*, built
//! the first time one of its routes is called and kept for the life of the process. `/health`
//! reports which modules have been built, so a test can see that answering `/health` and webhooks
//! never builds the heavy modules.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::problem::ApiError;

/// How much a module weighs when built: the heavy ones hold engines (search index, embedding
/// model, LLM client) and must only be built by a request that needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Weight {
    Light,
    Heavy,
}

/// The state of one route module, built at most once, on first use.
pub struct LazyModule<T> {
    name: &'static str,
    weight: Weight,
    cell: OnceCell<Arc<T>>,
}

impl<T> LazyModule<T> {
    pub const fn new(name: &'static str, weight: Weight) -> LazyModule<T> {
        LazyModule { name, weight, cell: OnceCell::const_new() }
    }

    /// The module's state, building it with `build` if this is the first use. Concurrent first
    /// uses build once; a failed build is not kept, so the next request tries again.
    pub async fn get_or_build<F, Fut>(&self, build: F) -> Result<Arc<T>, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        if let Some(ready) = self.cell.get() {
            return Ok(ready.clone());
        }
        self.cell
            .get_or_try_init(|| async {
                let started = std::time::Instant::now();
                let module = build().await?;
                tracing::info!(
                    module = self.name,
                    elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                    "built module"
                );
                Ok(Arc::new(module))
            })
            .await
            .cloned()
    }

    pub fn status(&self) -> ModuleStatus {
        ModuleStatus { name: self.name, weight: self.weight, loaded: self.cell.initialized() }
    }
}

/// Whether a module has been built, as `/health` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ModuleStatus {
    pub name: &'static str,
    pub weight: Weight,
    pub loaded: bool,
}
