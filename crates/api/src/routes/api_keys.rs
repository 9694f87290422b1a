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
use ledge_platform::{ApiKey, Need, Page};
use utoipa::OpenApi;

use crate::AppState;
use crate::platform::{ApiKeyRoutes, JsonObject, PageParams, Paging};
use crate::problem::{ApiError, ErrorCode};
use crate::schemas::CreateApiKeyRequest;

type Caller = crate::platform::Caller<ApiKeyRoutes>;

/// Admins and owners, or keys with `admin`.
pub const MANAGE_KEYS: Need = Need::new(Role::Admin, Some(Scope::Admin));

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/organizations/{org}/api-keys", post(create).get(list))
        .route("/organizations/{org}/api-keys/{id}", delete(revoke))
}

#[derive(OpenApi)]
#[openapi(paths(create, list, revoke))]
struct Doc;

pub fn openapi() -> utoipa::openapi::OpenApi {
    Doc::openapi()
}

/// A new key and its secret, shown this once.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct CreatedKey {
    api_key: ApiKey,
    /// `ledge_<id>_<secret>`: send it as `Authorization: Bearer`.
    secret: String,
}

/// Creates an API key of the organization; its secret is shown only in this answer.
#[utoipa::path(post, path = "/organizations/{org}/api-keys", tag = "api-keys", operation_id = "create_api_key",
    params(("org" = String, Path, description = "The organization's id.")),
    security(("access_token" = []), ("api_key" = ["admin"])),
    request_body = CreateApiKeyRequest,
    responses(
        (status = 201, description = "The key, and its secret (shown once).", body = CreatedKey),
        (status = 403, description = "Not an admin, or a key without `admin` (`forbidden`)."),
        (status = 404, description = "No such organization, or the caller is not in it (`not_found`)."),
    ))]
async fn create(caller: Caller, Path(org): Path<String>, body: JsonObject) -> Result<Response, ApiError> {
    body.only_fields_of::<CreateApiKeyRequest>()?;
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
    Ok((StatusCode::CREATED, Json(CreatedKey { api_key: key, secret })).into_response())
}

/// The organization's API keys (never their secrets), oldest first.
#[utoipa::path(get, path = "/organizations/{org}/api-keys", tag = "api-keys", operation_id = "list_api_keys",
    params(("org" = String, Path, description = "The organization's id."), PageParams),
    security(("access_token" = []), ("api_key" = ["admin"])),
    responses(
        (status = 200, description = "A page of keys.", body = Page<ApiKey>),
        (status = 400, description = "A bad `cursor` or `limit`, or an unknown parameter (`invalid_field`)."),
        (status = 403, description = "Not an admin, or a key without `admin` (`forbidden`)."),
        (status = 404, description = "No such organization, or the caller is not in it (`not_found`)."),
    ))]
async fn list(caller: Caller, Path(org): Path<String>, Paging(paging): Paging) -> Result<Response, ApiError> {
    let access = caller.access(&org, MANAGE_KEYS).await?;
    Ok(Json(caller.platform.api_keys(&access, &paging).await?).into_response())
}

/// Revokes an API key: it stops working at once.
#[utoipa::path(delete, path = "/organizations/{org}/api-keys/{id}", tag = "api-keys", operation_id = "revoke_api_key",
    params(("org" = String, Path, description = "The organization's id."), ("id" = String, Path, description = "The key's id.")),
    security(("access_token" = []), ("api_key" = ["admin"])),
    responses(
        (status = 204, description = "Revoked."),
        (status = 403, description = "Not an admin, or a key without `admin` (`forbidden`)."),
        (status = 404, description = "No such organization or key (`not_found`)."),
    ))]
async fn revoke(caller: Caller, Path((org, id)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
    let access = caller.access(&org, MANAGE_KEYS).await?;
    caller.platform.revoke_api_key(&access, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
