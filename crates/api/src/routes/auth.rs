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
use serde_json::json;

use crate::AppState;
use crate::platform::{AuthRoutes, JsonObject, Visitor};
use crate::problem::ApiError;

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

async fn signup(visitor: Anyone, body: JsonObject) -> Result<Response, ApiError> {
    body.only(&["email", "password", "name"])?;
    let (email, password) = (body.string("email")?, body.string("password")?);
    visitor.platform.signup(email, password, body.optional_string("name")?, &visitor.ip).await?;
    let answer = json!({
        "status": "accepted",
        "detail": "if this address had no account, it has one now; log in to continue",
    });
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

async fn login(visitor: Anyone, body: JsonObject) -> Result<Response, ApiError> {
    body.only(&["email", "password"])?;
    let tokens = visitor.platform.login(body.string("email")?, body.string("password")?, &visitor.ip).await?;
    Ok(Json(tokens).into_response())
}

async fn refresh(visitor: Anyone, body: JsonObject) -> Result<Response, ApiError> {
    body.only(&["refresh_token"])?;
    let tokens = visitor.platform.refresh(body.string("refresh_token")?, &visitor.ip).await?;
    Ok(Json(tokens).into_response())
}

async fn logout(caller: Caller) -> Result<StatusCode, ApiError> {
    caller.platform.logout(&caller.principal).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(caller: Caller) -> Result<Response, ApiError> {
    let answer = match &caller.principal {
        Principal::User { user, .. } => {
            let organizations = caller.platform.organizations_of(user, &PageRequest::first(100)).await?;
            json!({ "user": user, "organizations": organizations.items })
        }
        Principal::ApiKey(key) => json!({ "api_key": key }),
    };
    Ok(Json(answer).into_response())
}
