//! `GET /health` (liveness, the peer contract's exact body) and `GET /health/modules` (which route
//! modules are built, process uptime and resident memory).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use utoipa::OpenApi;

use crate::AppState;
use crate::modules::ModuleStatus;

pub fn routes() -> Router<AppState> {
    Router::new().route("/health", get(health)).route("/health/modules", get(modules))
}

#[derive(OpenApi)]
#[openapi(paths(health, modules))]
struct Doc;

pub fn openapi() -> utoipa::openapi::OpenApi {
    Doc::openapi()
}

/// `GET /health`'s body, `{"status":"ok"}` (written as bytes by the handler).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct Health {
    #[schema(example = "ok")]
    status: String,
}

/// Liveness: answers as long as the process serves requests.
#[utoipa::path(get, path = "/health", tag = "meta", operation_id = "health",
    responses((status = 200, description = "Alive.", body = Health)))]
async fn health() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], r#"{"status":"ok"}"#)
}

/// Which route modules are built, with the process's uptime and memory.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct ModulesReport {
    status: &'static str,
    version: &'static str,
    uptime_seconds: f64,
    /// Resident memory, where the platform tells it.
    resident_bytes: Option<u64>,
    modules: Vec<ModuleStatus>,
}

/// Which route modules are built, process uptime and resident memory.
#[utoipa::path(get, path = "/health/modules", tag = "meta", operation_id = "health_modules",
    responses((status = 200, description = "The modules.", body = ModulesReport)))]
async fn modules(State(state): State<AppState>) -> Json<ModulesReport> {
    Json(ModulesReport {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started.elapsed().as_secs_f64(),
        resident_bytes: crate::metrics::resident_bytes(),
        modules: state.modules.statuses(),
    })
}
