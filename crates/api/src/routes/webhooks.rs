//! `POST /webhooks/github`: GitHub deliveries, verified, deduplicated and queued on `github-events`.
//!
//! The module state (the intake with its queue producer and archive bucket, and the webhook keys)
//! is built on the first delivery. Answers: 202 `{"queued":true,"delivery":…}`; 200
//! `{"duplicate":true,…}` for a redelivery; 401 for a missing or wrong signature; 400 for missing
//! headers or a body that is not one JSON object; 413 over the webhook body limit; 503 when no
//! secret is configured.
//!
//! A delivery for a repository connected with its own webhook secret is verified with that secret
//! only; the others with `LEDGE_GITHUB_WEBHOOK_SECRET` ([`WebhookKeys`]). The repository is the one
//! the delivery is indexed under: the record named `full_name` in the organization whose slug is its
//! owner's login ([`org_of_owner`]). The stored secrets are read once and kept in memory
//! ([`KeysCache`]), reloaded when this process changed a repository record
//! ([`RepositoryChanges`]) and at least every [`KEYS_MAX_AGE`] (another node's change).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ledge_env::{BucketBinding, QueueBinding};
use ledge_github::{Accepted, DeliveryHeaders, IntakeError, WebhookIntake, WebhookKeys, WebhookVerifier};
use ledge_indexing::org_of_owner;
use ledge_platform::{RepositoryChanges, RepositoryLedger};

use crate::AppState;
use crate::problem::{ApiError, ErrorCode};

/// The webhooks module's state.
pub struct WebhooksModule {
    intake: WebhookIntake,
    keys: KeysCache,
}

/// How long the repositories' webhook secrets are kept before they are read again, for changes
/// made on another node.
pub const KEYS_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(10);

/// The webhook keys as last read: the server's secret and each repository's own.
pub struct KeysCache {
    server: Option<WebhookVerifier>,
    ledger: RepositoryLedger,
    changes: RepositoryChanges,
    current: std::sync::RwLock<Arc<KeysSnapshot>>,
    reload: tokio::sync::Mutex<()>,
}

struct KeysSnapshot {
    keys: WebhookKeys,
    /// [`RepositoryChanges::current`] when read; `None`: never read.
    generation: Option<u64>,
    read_at: std::time::Instant,
}

impl KeysCache {
    /// The keys, read again first if a repository changed since, or they are older than
    /// [`KEYS_MAX_AGE`]. A failed periodic re-read keeps the last keys (and logs).
    async fn keys(&self) -> Result<Arc<KeysSnapshot>, ApiError> {
        let fresh = |s: &KeysSnapshot| {
            s.generation == Some(self.changes.current()) && s.read_at.elapsed() < KEYS_MAX_AGE
        };
        let snapshot = self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        if fresh(&snapshot) {
            return Ok(snapshot);
        }
        let _reloading = self.reload.lock().await;
        let snapshot = self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        if fresh(&snapshot) {
            return Ok(snapshot);
        }
        let generation = self.changes.current();
        let stored = match self.ledger.webhook_secrets().await {
            Ok(stored) => stored,
            Err(error) if snapshot.generation.is_some() && snapshot.read_at.elapsed() < 6 * KEYS_MAX_AGE => {
                tracing::warn!(%error, "cannot read the repositories' webhook secrets; keeping the last ones");
                return Ok(snapshot);
            }
            Err(error) => {
                return Err(ApiError::internal("cannot read the repositories' webhook secrets", &error));
            }
        };
        let mut keys = WebhookKeys::new(self.server.clone());
        for ((org_slug, name), stored) in &stored {
            let owner = name.split_once('/').map_or(name.as_str(), |(owner, _)| owner);
            // Only the record its deliveries are indexed under decides the key.
            if org_of_owner(owner) == *org_slug {
                keys.add_repository(name, stored.secret.as_deref().map(str::as_bytes));
            }
        }
        let snapshot =
            Arc::new(KeysSnapshot { keys, generation: Some(generation), read_at: std::time::Instant::now() });
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = snapshot.clone();
        Ok(snapshot)
    }
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/webhooks/github", post(github))
}

fn not_configured() -> ApiError {
    ApiError::new(
        ErrorCode::NotConfigured,
        "GitHub webhooks are disabled: set LEDGE_GITHUB_WEBHOOK_SECRET to the webhook's secret \
         (or connect a repository with its own webhook_secret)",
    )
}

async fn build(state: &AppState) -> Result<WebhooksModule, ApiError> {
    let server =
        state.env.secrets().github_webhook_secret().map(|s| WebhookVerifier::new(s.expose().as_bytes()));
    let sealing_keys = match state.env.secrets().encryption_key() {
        Some(keys) => {
            Some(Arc::new(ledge_auth::SealingKeys::parse_list(keys.expose()).map_err(|e| {
                ApiError::new(ErrorCode::NotConfigured, format!("LEDGE_ENCRYPTION_KEY: {e}"))
            })?))
        }
        None => None,
    };
    let unavailable = |e: ledge_env::EnvError| ApiError::internal("cannot open a binding for webhooks", &e);
    let db = state.env.db().await.map_err(unavailable)?;
    let ledger = RepositoryLedger::new(db, sealing_keys, crate::routes::billing::plans(&state.env));
    let events = state.env.queue(QueueBinding::GithubEvents).await.map_err(unavailable)?;
    let archives = state.env.bucket(BucketBinding::Archives).await.map_err(unavailable)?;
    let never_read =
        KeysSnapshot { keys: WebhookKeys::default(), generation: None, read_at: std::time::Instant::now() };
    let keys = KeysCache {
        server,
        ledger,
        changes: state.repository_changes.clone(),
        current: std::sync::RwLock::new(Arc::new(never_read)),
        reload: tokio::sync::Mutex::new(()),
    };
    Ok(WebhooksModule { intake: WebhookIntake::new(events, archives), keys })
}

/// GitHub's deliveries: verified, de-duplicated by `X-GitHub-Delivery`, queued on `github-events`.
#[utoipa::path(post, path = "/webhooks/github", tag = "webhooks", operation_id = "github_webhook",
    params(
        ("X-Hub-Signature-256" = String, Header, description = "`sha256=<hex HMAC-SHA256 of the body>` with the webhook's secret."),
        ("X-GitHub-Event" = String, Header, description = "The event's name (`push`, `installation`, …)."),
        ("X-GitHub-Delivery" = String, Header, description = "The delivery's unique id."),
    ),
    request_body(content = Object, description = "The event's payload, one JSON object (up to 25 MiB).", content_type = "application/json"),
    responses(
        (status = 202, description = "Queued.", body = crate::schemas::GithubQueued),
        (status = 200, description = "A redelivery: queued before.", body = crate::schemas::GithubDuplicate),
        (status = 401, description = "Missing or wrong signature (`invalid_signature`)."),
    ))]
async fn github(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let module = state.modules.webhooks.get_or_build(|| build(&state)).await?;
    let keys = module.keys.keys().await?;
    if keys.keys.is_empty() {
        return Err(not_configured());
    }
    let (parts, body) = request.into_parts();
    let body = read_body(body, state.limits.webhook_body).await?;
    let headers = delivery_headers(&parts.headers);
    match module.intake.accept(&keys.keys, headers, body).await {
        Ok(Accepted::Queued { delivery }) => Ok(json(
            StatusCode::ACCEPTED,
            &serde_json::json!({
                "queued": true, "delivery": delivery
            }),
        )),
        Ok(Accepted::Duplicate { delivery }) => Ok(json(
            StatusCode::OK,
            &serde_json::json!({
                "duplicate": true, "delivery": delivery
            }),
        )),
        Err(e) => Err(intake_error(e)),
    }
}

fn delivery_headers(headers: &HeaderMap) -> DeliveryHeaders<'_> {
    let get = |name: &str| headers.get(name).map(|v| v.as_bytes());
    DeliveryHeaders {
        signature: get("x-hub-signature-256"),
        event: get("x-github-event"),
        delivery: get("x-github-delivery"),
    }
}

fn intake_error(error: IntakeError) -> ApiError {
    match error {
        IntakeError::Signature(e) => {
            ApiError::new(ErrorCode::InvalidSignature, e.to_string()).field("X-Hub-Signature-256")
        }
        IntakeError::Envelope(e) => {
            use ledge_github::EnvelopeError::*;
            let field = match &e {
                MissingHeader { header } | InvalidHeader { header, .. } => *header,
                InvalidJson(_) | NotAnObject => "body",
            };
            let code = if field == "body" { ErrorCode::InvalidJson } else { ErrorCode::BadRequest };
            ApiError::new(code, e.to_string()).field(field)
        }
        IntakeError::Queue(e) => ApiError::internal("cannot queue the delivery", &e),
        IntakeError::Archive(e) => ApiError::internal("cannot archive the delivery's payload", &e),
    }
}

/// Reads the whole body, refusing with 413 as soon as it passes `limit` bytes (also when the
/// declared `Content-Length` already does).
pub(crate) async fn read_body(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body is over the {limit}-byte limit of this route"),
        )
        .field("body")
    };
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(err) = source {
            if err.is::<http_body_util::LengthLimitError>() {
                return too_large();
            }
            source = err.source();
        }
        ApiError::new(ErrorCode::BadRequest, format!("cannot read the body: {e}")).field("body")
    })
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(github))]
struct Doc;

pub fn openapi() -> utoipa::openapi::OpenApi {
    <Doc as utoipa::OpenApi>::openapi()
}
