//! `POST /auth/signup`, `POST /auth/login`, `POST /auth/refresh`, `POST /auth/logout`,
//! `GET /auth/me`: accounts and sessions (`ledge-platform`).
//!
//! Sign-up answers 202 whether or not the address already had an account (no user enumeration);
//! login answers a 5-minute access token and a refresh token, or 401 `invalid_credentials` alike
//! for an unknown address and a wrong password, or 429 with `Retry-After` when the account or the
//! client address has made too many attempts.

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ledge_platform::{PageRequest, Principal};
use utoipa::OpenApi;

use crate::AppState;
use crate::platform::{AuthRoutes, JsonObject, Visitor};
use crate::problem::ApiError;
use crate::schemas::{LoginRequest, Me, MeKey, RefreshRequest, SignupAccepted, SignupRequest};

type Caller = crate::platform::Caller<AuthRoutes>;
type Anyone = Visitor<AuthRoutes>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/signup", post(signup))
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh))
        .route("/auth/logout", post(logout))
        .route("/auth/me", get(me))
}

#[derive(OpenApi)]
#[openapi(paths(signup, login, refresh, logout, me))]
struct Doc;

pub fn openapi() -> utoipa::openapi::OpenApi {
    Doc::openapi()
}

/// Creates an account (no answer says whether the address had one).
#[utoipa::path(post, path = "/auth/signup", tag = "auth", operation_id = "signup",
    request_body = SignupRequest,
    responses(
        (status = 202, description = "If the address had no account, it has one now.", body = SignupAccepted),
        (status = 429, description = "Too many sign-ups from this address (`rate_limited`)."),
    ))]
async fn signup(visitor: Anyone, body: JsonObject) -> Result<Response, ApiError> {
    body.only_fields_of::<SignupRequest>()?;
    let (email, password) = (body.string("email")?, body.string("password")?);
    visitor.platform.signup(email, password, body.optional_string("name")?, &visitor.ip).await?;
    let answer = SignupAccepted {
        status: "accepted",
        detail: "if this address had no account, it has one now; log in to continue",
    };
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

/// Logs in: a 5-minute access token and a refresh token.
#[utoipa::path(post, path = "/auth/login", tag = "auth", operation_id = "login",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in.", body = ledge_platform::LoginTokens),
        (status = 401, description = "Unknown address or wrong password, alike (`invalid_credentials`)."),
        (status = 429, description = "Too many attempts for this account or address (`rate_limited`, `Retry-After`)."),
    ))]
async fn login(visitor: Anyone, body: JsonObject) -> Result<Response, ApiError> {
    body.only_fields_of::<LoginRequest>()?;
    let tokens = visitor.platform.login(body.string("email")?, body.string("password")?, &visitor.ip).await?;
    Ok(Json(tokens).into_response())
}

/// Trades a refresh token (used once) for new tokens.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", operation_id = "refresh",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens.", body = ledge_platform::LoginTokens),
        (status = 401, description = "Unknown, used or expired refresh token (`unauthenticated`)."),
        (status = 429, description = "Too many attempts from this address (`rate_limited`)."),
    ))]
async fn refresh(visitor: Anyone, body: JsonObject) -> Result<Response, ApiError> {
    body.only_fields_of::<RefreshRequest>()?;
    let tokens = visitor.platform.refresh(body.string("refresh_token")?, &visitor.ip).await?;
    Ok(Json(tokens).into_response())
}

/// Ends the caller's session (its refresh tokens too).
#[utoipa::path(post, path = "/auth/logout", tag = "auth", operation_id = "logout",
    security(("access_token" = [])),
    responses(
        (status = 204, description = "Logged out."),
        (status = 403, description = "An API key has no session (`forbidden`)."),
    ))]
async fn logout(caller: Caller) -> Result<StatusCode, ApiError> {
    caller.platform.logout(&caller.principal).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who the credential is: the user and their organizations, or the API key.
#[utoipa::path(get, path = "/auth/me", tag = "auth", operation_id = "me",
    security(("access_token" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The caller.", body = MeAnswer),
    ))]
async fn me(caller: Caller) -> Result<Response, ApiError> {
    let answer = match &caller.principal {
        Principal::User { user, .. } => {
            let organizations = caller.platform.organizations_of(user, &PageRequest::first(100)).await?;
            MeAnswer::User(Me { user: user.clone(), organizations: organizations.items })
        }
        Principal::ApiKey(key) => MeAnswer::ApiKey(MeKey { api_key: key.clone() }),
    };
    Ok(Json(answer).into_response())
}

/// `GET /auth/me`'s answer: a user's, or an API key's.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
enum MeAnswer {
    User(Me),
    ApiKey(MeKey),
}
