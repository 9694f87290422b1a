//! Organizations, their members, invitations and audit log (`ledge-platform`):
//!
//! * `POST /organizations` (a signed-in user, who becomes the owner), `GET /organizations` (the
//!   caller's), `GET|PATCH|DELETE /organizations/{org}`, `POST /organizations/{org}/restore`;
//! * `GET /organizations/{org}/members`, `PATCH|DELETE /organizations/{org}/members/{user}`;
//! * `POST|GET /organizations/{org}/invitations`, `DELETE /organizations/{org}/invitations/{id}`,
//!   `POST /invitations/accept`;
//! * `GET /organizations/{org}/audit-log`.
//!
//! Each route states its [`Need`]; an organization the caller is not in answers 404, a role or
//! scope short of the need 403. Lists take `?cursor=&limit=`.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use ledge_auth::{Role, Scope};
use ledge_platform::{Need, Page};
use serde_json::json;

use crate::AppState;
use crate::platform::{JsonObject, OrganizationRoutes, Paging};
use crate::problem::{ApiError, ErrorCode};

type Caller = crate::platform::Caller<OrganizationRoutes>;

/// Any member, or any key of the organization.
pub const READ: Need = Need::new(Role::Member, None);
/// Members read the member list; keys need `admin`.
pub const READ_MEMBERS: Need = Need::new(Role::Member, Some(Scope::Admin));
/// Admins and owners, or keys with `admin`.
pub const ADMINISTER: Need = Need::new(Role::Admin, Some(Scope::Admin));
/// Owners only (never a key).
pub const OWN: Need = Need::new(Role::Owner, Some(Scope::Admin));
/// Leaving is for every member; removing someone else is checked further by the platform.
pub const REMOVE_MEMBER: Need = Need::new(Role::Member, Some(Scope::Admin));

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/organizations", post(create).get(list))
        .route("/organizations/{org}", get(read).patch(update).delete(delete))
        .route("/organizations/{org}/restore", post(restore))
        .route("/organizations/{org}/members", get(members))
        .route("/organizations/{org}/members/{user}", patch(change_role).delete(remove_member))
        .route("/organizations/{org}/invitations", post(invite).get(invitations))
        .route("/organizations/{org}/invitations/{id}", axum::routing::delete(revoke_invitation))
        .route("/invitations/accept", post(accept))
        .route("/organizations/{org}/audit-log", get(audit_log))
}

fn role(body: &JsonObject, name: &str) -> Result<Role, ApiError> {
    let text = body.string(name)?;
    Role::parse(text).ok_or_else(|| {
        ApiError::new(ErrorCode::InvalidField, format!("{name} must be owner, admin or member, not {text:?}"))
            .field(name)
    })
}

fn page<T: serde::Serialize>(page: Page<T>) -> Response {
    Json(page).into_response()
}

async fn create(caller: Caller, body: JsonObject) -> Result<Response, ApiError> {
    body.only(&["name", "slug"])?;
    let user = caller.user()?;
    let created = caller
        .platform
        .create_organization(user, body.string("name")?, body.optional_string("slug")?)
        .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn list(caller: Caller, Paging(paging): Paging) -> Result<Response, ApiError> {
    let user = caller.user()?;
    Ok(page(caller.platform.organizations_of(user, &paging).await?))
}

async fn read(caller: Caller, Path(org): Path<String>) -> Result<Response, ApiError> {
    let access = caller.access(&org, READ).await?;
    Ok(Json(json!({ "organization": access.org, "role": access.role.map(Role::as_str) })).into_response())
}

async fn update(caller: Caller, Path(org): Path<String>, body: JsonObject) -> Result<Response, ApiError> {
    body.only(&["name"])?;
    let access = caller.access(&org, ADMINISTER).await?;
    Ok(Json(caller.platform.update_organization(&access, body.string("name")?).await?).into_response())
}

async fn delete(caller: Caller, Path(org): Path<String>) -> Result<StatusCode, ApiError> {
    let access = caller.access(&org, OWN).await?;
    caller.platform.delete_organization(&access).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn restore(caller: Caller, Path(org): Path<String>) -> Result<Response, ApiError> {
    let user = caller.user()?;
    Ok(Json(caller.platform.restore_organization(user, &org).await?).into_response())
}

async fn members(
    caller: Caller,
    Path(org): Path<String>,
    Paging(paging): Paging,
) -> Result<Response, ApiError> {
    let access = caller.access(&org, READ_MEMBERS).await?;
    Ok(page(caller.platform.members(&access, &paging).await?))
}

async fn change_role(
    caller: Caller,
    Path((org, user)): Path<(String, String)>,
    body: JsonObject,
) -> Result<Response, ApiError> {
    body.only(&["role"])?;
    let role = role(&body, "role")?;
    let access = caller.access(&org, ADMINISTER).await?;
    Ok(Json(caller.platform.change_role(&access, &user, role).await?).into_response())
}

async fn remove_member(
    caller: Caller,
    Path((org, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let access = caller.access(&org, REMOVE_MEMBER).await?;
    caller.platform.remove_member(&access, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn invite(caller: Caller, Path(org): Path<String>, body: JsonObject) -> Result<Response, ApiError> {
    body.only(&["email", "role", "expires_in_hours"])?;
    let role = role(&body, "role")?;
    let hours = body.optional_integer("expires_in_hours")?;
    let ttl = match hours {
        None => None,
        Some(hours @ 1..=720) => Some(Duration::from_secs(hours.unsigned_abs() * 3600)),
        Some(_) => {
            return Err(ApiError::new(ErrorCode::InvalidField, "expires_in_hours must be 1 to 720")
                .field("expires_in_hours"));
        }
    };
    let access = caller.access(&org, ADMINISTER).await?;
    let (invitation, token) =
        caller.platform.create_invitation(&access, body.string("email")?, role, ttl).await?;
    Ok((StatusCode::CREATED, Json(json!({ "invitation": invitation, "token": token }))).into_response())
}

async fn invitations(
    caller: Caller,
    Path(org): Path<String>,
    Paging(paging): Paging,
) -> Result<Response, ApiError> {
    let access = caller.access(&org, ADMINISTER).await?;
    Ok(page(caller.platform.invitations(&access, &paging).await?))
}

async fn revoke_invitation(
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let access = caller.access(&org, ADMINISTER).await?;
    caller.platform.revoke_invitation(&access, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn accept(caller: Caller, body: JsonObject) -> Result<Response, ApiError> {
    body.only(&["token"])?;
    let user = caller.user()?;
    Ok(Json(caller.platform.accept_invitation(user, body.string("token")?).await?).into_response())
}

async fn audit_log(
    caller: Caller,
    Path(org): Path<String>,
    Paging(paging): Paging,
) -> Result<Response, ApiError> {
    let access = caller.access(&org, ADMINISTER).await?;
    Ok(page(caller.platform.audit_log(&access, &paging).await?))
}
