//! `POST /webhooks/github`: GitHub deliveries, verified, deduplicated and queued on `github-events`.
//!
//! The module state (the intake with its verifier, queue producer and archive bucket) is built on
//! the first delivery. Answers: 202 `{"queued":true,"delivery":…}`; 200 `{"duplicate":true,…}` for
//! a redelivery; 401 for a missing or wrong signature; 400 for missing headers or a body that is
//! not one JSON object; 413 over the webhook body limit; 503 when no secret is configured.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ledge_env::{BucketBinding, QueueBinding};
use ledge_github::{Accepted, DeliveryHeaders, IntakeError, WebhookIntake, WebhookVerifier};

use crate::AppState;
use crate::problem::{ApiError, ErrorCode};

/// The webhooks module's state.
pub struct WebhooksModule {
    intake: WebhookIntake,
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/webhooks/github", post(github))
}

async fn build(state: &AppState) -> Result<WebhooksModule, ApiError> {
    let secret = state.env.secrets().github_webhook_secret().ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotConfigured,
            "GitHub webhooks are disabled: set LEDGE_GITHUB_WEBHOOK_SECRET to the webhook's secret",
        )
    })?;
    let verifier = WebhookVerifier::new(secret.expose().as_bytes());
    let unavailable = |e: ledge_env::EnvError| ApiError::internal("cannot open a binding for webhooks", &e);
    let events = state.env.queue(QueueBinding::GithubEvents).await.map_err(unavailable)?;
    let archives = state.env.bucket(BucketBinding::Archives).await.map_err(unavailable)?;
    Ok(WebhooksModule { intake: WebhookIntake::new(verifier, events, archives) })
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
    let (parts, body) = request.into_parts();
    let body = read_body(body, state.limits.webhook_body).await?;
    let headers = delivery_headers(&parts.headers);
    match module.intake.accept(headers, body).await {
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
