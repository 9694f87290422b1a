//! Billing: `GET /billing/plans` (the configured plans and their limits, for anyone),
//! `GET /organizations/{org}/billing` (the subscription, the plan that applies and today's usage;
//! an admin, or an API key with `admin`), and `POST /webhooks/stripe` (Stripe's events).
//!
//! The webhook verifies `Stripe-Signature` with `LEDGE_STRIPE_WEBHOOK_SECRET` (timestamped
//! HMAC-SHA256, 5-minute tolerance, constant-time compare; missing, malformed, wrong or stale: 401
//! `invalid_signature`) before reading the event, then applies it (`ledge-platform`). Answers 200
//! `{"received":true,…}` with `applied`, `duplicate` (an event id applied before: a replay changes
//! nothing), `stale` (older than the last event applied) or `ignored` (a type ledge does not act
//! on); a malformed event 400 naming the field, an unknown organization or subscription 404 (both
//! record nothing, so Stripe's retry can still apply it); no secret configured: 503.
//!
//! The module state is the process's platform (shared with auth, organizations and api-keys).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ledge_auth::{Role, Scope, StripeVerifier};
use ledge_platform::{Need, Plan, PlanLimits, Plans, StripeOutcome};
use serde_json::json;

use crate::AppState;
use crate::platform::{BillingRoutes, module};
use crate::problem::{ApiError, ErrorCode};

/// Reading an organization's billing: an admin, or an API key with `admin`.
pub const READ_BILLING: Need = Need::new(Role::Admin, Some(Scope::Admin));

type Caller = crate::platform::Caller<BillingRoutes>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/billing/plans", get(plans_list))
        .route("/organizations/{org}/billing", get(overview))
        .route("/webhooks/stripe", post(stripe))
}

/// The plans of the configuration (`[plans.*]`).
pub(crate) fn plans(env: &ledge_env::Env) -> Plans {
    Plans::new(
        env.config()
            .plans
            .iter()
            .map(|(name, plan)| Plan {
                name: name.clone(),
                limits: PlanLimits {
                    repositories: plan.repositories,
                    indexed_files: plan.indexed_files,
                    searches_per_day: plan.searches_per_day,
                    chat_messages_per_day: plan.chat_messages_per_day,
                },
                stripe_price: plan.stripe_price.clone(),
            })
            .collect(),
    )
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

async fn plans_list(State(state): State<AppState>) -> Response {
    let plans = plans(&state.env);
    json_response(StatusCode::OK, &json!({ "plans": plans.all() }))
}

async fn overview(caller: Caller, Path(org): Path<String>) -> Result<Response, ApiError> {
    let access = caller.access(&org, READ_BILLING).await?;
    let overview = caller.platform.billing(&access).await?;
    let body =
        serde_json::to_value(&overview).map_err(|e| ApiError::internal("cannot encode billing", &e))?;
    Ok(json_response(StatusCode::OK, &body))
}

async fn stripe(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let secret = state.env.secrets().stripe_webhook_secret().ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotConfigured,
            "Stripe webhooks are disabled: set LEDGE_STRIPE_WEBHOOK_SECRET to the endpoint's signing secret",
        )
    })?;
    let verifier = StripeVerifier::new(secret.expose().as_bytes());
    let platform = module::<BillingRoutes>(&state).await?;
    let now = platform.options().clock.now_ms() / 1000;
    let signature = headers.get("stripe-signature").map(|v| v.as_bytes());
    verifier
        .verify(signature, &body, now)
        .map_err(|e| ApiError::new(ErrorCode::InvalidSignature, e.to_string()).field("Stripe-Signature"))?;
    let answer = match platform.apply_stripe_event(&body).await? {
        StripeOutcome::Applied { org_id, subscription } => {
            json!({ "received": true, "applied": true, "org_id": org_id, "subscription": subscription })
        }
        StripeOutcome::Duplicate => json!({ "received": true, "duplicate": true }),
        StripeOutcome::Stale { org_id } => json!({ "received": true, "stale": true, "org_id": org_id }),
        StripeOutcome::Ignored => json!({ "received": true, "ignored": true }),
    };
    Ok(json_response(StatusCode::OK, &answer))
}
