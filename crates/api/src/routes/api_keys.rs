//! `POST|GET /organizations/{org}/api-keys` and `DELETE /organizations/{org}/api-keys/{id}`: API
//! keys of an organization (`ledge-platform`). Creating one answers its secret, the only time it
//! is shown; lists show the visible prefix, scopes, expiry and last use.

use axum::Json;
use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use ledge_auth::{Role, Scope, Scopes};
use ledge_platform::Need;
use serde_json::json;

use crate::AppState;
use crate::platform::{ApiKeyRoutes, JsonObject, Paging};
use crate::problem::{ApiError, ErrorCode};

type Caller = crate::platform::Caller<ApiKeyRoutes>;

/// Admins and owners, or keys with `admin`.
pub const MANAGE_KEYS: Need = Need::new(Role::Admin, Some(Scope::Admin));

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/organizations/{org}/api-keys", post(create).get(list))
        .route("/organizations/{org}/api-keys/{id}", delete(revoke))
}

async fn create(caller: Caller, Path(org): Path<String>, body: JsonObject) -> Result<Response, ApiError> {
    body.only(&["name", "scopes", "expires_at"])?;
    let name = body.string("name")?;
    let mut scopes = Scopes::empty();
    for text in body.strings("scopes")? {
        let scope = Scope::parse(text).ok_or_else(|| {
            let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::new(
                ErrorCode::InvalidField,
                format!("scopes: unknown scope {text:?}; known: {}", known.join(", ")),
            )
            .field("scopes")
        })?;
        scopes = Scopes::of(&scopes.iter().chain([scope]).collect::<Vec<_>>());
    }
    let expires_at = body.optional_integer("expires_at")?;
    let access = caller.access(&org, MANAGE_KEYS).await?;
    let (key, secret) = caller.platform.create_api_key(&access, name, scopes, expires_at).await?;
    Ok((StatusCode::CREATED, Json(json!({ "api_key": key, "secret": secret }))).into_response())
}

async fn list(caller: Caller, Path(org): Path<String>, Paging(paging): Paging) -> Result<Response, ApiError> {
    let access = caller.access(&org, MANAGE_KEYS).await?;
    Ok(Json(caller.platform.api_keys(&access, &paging).await?).into_response())
}

async fn revoke(caller: Caller, Path((org, id)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
    let access = caller.access(&org, MANAGE_KEYS).await?;
    caller.platform.revoke_api_key(&access, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
