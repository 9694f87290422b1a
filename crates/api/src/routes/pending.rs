//! The route groups that later work fills (repositories (all but the index status, see
//! `repositories.rs`), chat, bug-analysis, analytics-enrichment): wired now so
//! that the lazy-module machinery, metrics and errors cover them, answering `501` problem+json
//! after building their (still empty) module state.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::any;

use crate::AppState;
use crate::modules::LazyModule;
use crate::problem::{ApiError, ErrorCode};

/// The state of a module whose routes are not written yet.
#[derive(Debug)]
pub struct Pending;

type Pick = fn(&crate::Modules) -> &LazyModule<Pending>;

/// The pending groups: (URL prefix, which module state it builds).
const GROUPS: &[(&str, Pick)] = &[
    ("/chat", |m| &m.chat),
    ("/bug-reports", |m| &m.bug_analysis),
    ("/analytics", |m| &m.analytics_enrichment),
];

pub fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for (prefix, pick) in GROUPS {
        let pick = *pick;
        let handler = move |State(state): State<AppState>| async move { answer(&state, pick).await };
        router = router.route(prefix, any(handler));
        router = router.route(&format!("{prefix}/{{*rest}}"), any(handler));
    }
    router
}

async fn answer(state: &AppState, pick: Pick) -> Result<Response, ApiError> {
    let module = pick(&state.modules);
    module.get_or_build(|| async { Ok(Pending) }).await?;
    Err(ApiError::new(
        ErrorCode::NotImplemented,
        format!("the {} module is not available in this version of ledge", module.status().name),
    ))
}
