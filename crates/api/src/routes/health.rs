//! `GET /health` (liveness, the peer contract's exact body) and `GET /health/modules` (which route
//! modules are built, process uptime and resident memory).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::AppState;
use crate::modules::ModuleStatus;

pub fn routes() -> Router<AppState> {
    Router::new().route("/health", get(health)).route("/health/modules", get(modules))
}

async fn health() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], r#"{"status":"ok"}"#)
}

#[derive(serde::Serialize)]
struct ModulesReport {
    status: &'static str,
    version: &'static str,
    uptime_seconds: f64,
    resident_bytes: Option<u64>,
    modules: Vec<ModuleStatus>,
}

async fn modules(State(state): State<AppState>) -> Json<ModulesReport> {
    Json(ModulesReport {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started.elapsed().as_secs_f64(),
        resident_bytes: crate::metrics::resident_bytes(),
        modules: state.modules.statuses(),
    })
}
