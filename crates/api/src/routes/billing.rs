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
use ledge_platform::{BillingOverview, Need, Plan, Plans, StripeOutcome, Subscription};
use utoipa::OpenApi;

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

#[derive(OpenApi)]
#[openapi(paths(plans_list, overview, stripe))]
struct Doc;

pub fn openapi() -> utoipa::openapi::OpenApi {
    Doc::openapi()
}

/// `GET /billing/plans`.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct PlansAnswer {
    plans: Vec<Plan>,
}

/// What became of a Stripe event: `received`, and one of `applied`, `duplicate`, `stale`, `ignored`.
#[derive(Default, serde::Serialize, utoipa::ToSchema)]
struct StripeAnswer {
    received: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    applied: Option<bool>,
    /// The event id was applied before: nothing changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicate: Option<bool>,
    /// Older than the last event applied: nothing changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    stale: Option<bool>,
    /// A type ledge does not act on.
    #[serde(skip_serializing_if = "Option::is_none")]
    ignored: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    org_id: Option<String>,
    /// The organization's subscription after an applied event.
    #[serde(skip_serializing_if = "Option::is_none")]
    subscription: Option<Subscription>,
}

/// The plans of the configuration (`[plans.*]`).
pub(crate) fn plans(env: &ledge_env::Env) -> Plans {
    Plans::configured(&env.config().plans)
}

fn json_response(status: StatusCode, value: &impl serde::Serialize) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value).map_err(|e| ApiError::internal("cannot encode the answer", &e))?;
    Ok((status, [(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The configured plans and their limits (`null`: no limit).
#[utoipa::path(get, path = "/billing/plans", tag = "billing", operation_id = "list_plans",
    responses((status = 200, description = "The plans.", body = PlansAnswer)))]
async fn plans_list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let plans = plans(&state.env);
    json_response(StatusCode::OK, &PlansAnswer { plans: plans.all().to_vec() })
}

/// The organization's subscription, the plan that applies and today's usage.
#[utoipa::path(get, path = "/organizations/{org}/billing", tag = "billing", operation_id = "billing_overview",
    params(("org" = String, Path, description = "The organization's id.")),
    security(("access_token" = []), ("api_key" = ["admin"])),
    responses(
        (status = 200, description = "The overview.", body = BillingOverview),
        (status = 403, description = "Not an admin, or a key without `admin` (`forbidden`)."),
        (status = 404, description = "No such organization, or the caller is not in it (`not_found`)."),
    ))]
async fn overview(caller: Caller, Path(org): Path<String>) -> Result<Response, ApiError> {
    let access = caller.access(&org, READ_BILLING).await?;
    let overview: BillingOverview = caller.platform.billing(&access).await?;
    json_response(StatusCode::OK, &overview)
}

/// Stripe's events (signed with `LEDGE_STRIPE_WEBHOOK_SECRET`): subscriptions created, changed, ended.
#[utoipa::path(post, path = "/webhooks/stripe", tag = "webhooks", operation_id = "stripe_webhook",
    params(("Stripe-Signature" = String, Header, description = "`t=<timestamp>,v1=<HMAC-SHA256 of t.payload>`.")),
    request_body(content = Object, description = "A Stripe event.", content_type = "application/json"),
    responses(
        (status = 200, description = "Received: applied, a duplicate, stale or ignored.", body = StripeAnswer),
        (status = 401, description = "Missing, malformed, wrong or stale signature (`invalid_signature`)."),
        (status = 404, description = "The event names an unknown organization or subscription (`not_found`); nothing recorded."),
    ))]
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
    let received = StripeAnswer { received: true, ..StripeAnswer::default() };
    let answer = match platform.apply_stripe_event(&body).await? {
        StripeOutcome::Applied { org_id, subscription } => StripeAnswer {
            applied: Some(true),
            org_id: Some(org_id),
            subscription: Some(subscription),
            ..received
        },
        StripeOutcome::Duplicate => StripeAnswer { duplicate: Some(true), ..received },
        StripeOutcome::Stale { org_id } => {
            StripeAnswer { stale: Some(true), org_id: Some(org_id), ..received }
        }
        StripeOutcome::Ignored => StripeAnswer { ignored: Some(true), ..received },
    };
    json_response(StatusCode::OK, &answer)
}
