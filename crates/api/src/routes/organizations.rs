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
use ledge_platform::openapi::RoleName;
use ledge_platform::{AuditEntry, Invitation, Member, Need, Organization, OrganizationWithRole, Page};
use utoipa::OpenApi;

use crate::AppState;
use crate::platform::{JsonObject, OrganizationRoutes, PageParams, Paging};
use crate::problem::{ApiError, ErrorCode};
use crate::schemas::{
    AcceptInvitationRequest, ChangeRoleRequest, CreateInvitationRequest, CreateOrganizationRequest,
    UpdateOrganizationRequest,
};

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

#[derive(OpenApi)]
#[openapi(paths(
    create,
    list,
    read,
    update,
    delete,
    restore,
    members,
    change_role,
    remove_member,
    invite,
    invitations,
    revoke_invitation,
    accept,
    audit_log
))]
struct Doc;

pub fn openapi() -> utoipa::openapi::OpenApi {
    Doc::openapi()
}

/// `GET /organizations/{org}`: the organization and the caller's role (none for an API key).
#[derive(serde::Serialize, utoipa::ToSchema)]
struct OrganizationAnswer {
    organization: Organization,
    #[schema(value_type = Option<RoleName>)]
    role: Option<&'static str>,
}

/// A new invitation and its token, shown this once (to send to the invitee).
#[derive(serde::Serialize, utoipa::ToSchema)]
struct CreatedInvitation {
    invitation: Invitation,
    token: String,
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

/// Creates an organization; the signed-in user becomes its owner.
#[utoipa::path(post, path = "/organizations", tag = "organizations", operation_id = "create_organization",
    security(("access_token" = [])),
    request_body = CreateOrganizationRequest,
    responses(
        (status = 201, description = "Created.", body = OrganizationWithRole),
        (status = 403, description = "An API key cannot create organizations (`forbidden`)."),
        (status = 409, description = "The slug is taken (`conflict`, field `slug`)."),
    ))]
async fn create(caller: Caller, body: JsonObject) -> Result<Response, ApiError> {
    body.only_fields_of::<CreateOrganizationRequest>()?;
    let user = caller.user()?;
    let created = caller
        .platform
        .create_organization(user, body.string("name")?, body.optional_string("slug")?)
        .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// The signed-in user's organizations.
#[utoipa::path(get, path = "/organizations", tag = "organizations", operation_id = "list_organizations",
    params(PageParams),
    security(("access_token" = [])),
    responses(
        (status = 200, description = "A page of organizations with the caller's role.", body = Page<OrganizationWithRole>),
        (status = 400, description = "A bad `cursor` or `limit`, or an unknown parameter (`invalid_field`)."),
        (status = 403, description = "An API key has no organizations list (`forbidden`)."),
    ))]
async fn list(caller: Caller, Paging(paging): Paging) -> Result<Response, ApiError> {
    let user = caller.user()?;
    Ok(page(caller.platform.organizations_of(user, &paging).await?))
}

/// One organization, with the caller's role in it.
#[utoipa::path(get, path = "/organizations/{org}", tag = "organizations", operation_id = "read_organization",
    params(("org" = String, Path, description = "The organization's id.")),
    security(("access_token" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The organization.", body = OrganizationAnswer),
        (status = 404, description = "No such organization, or the caller is not in it (`not_found`)."),
    ))]
async fn read(caller: Caller, Path(org): Path<String>) -> Result<Response, ApiError> {
    let access = caller.access(&org, READ).await?;
    Ok(Json(OrganizationAnswer { organization: access.org, role: access.role.map(Role::as_str) })
        .into_response())
}

/// Renames an organization.
#[utoipa::path(patch, path = "/organizations/{org}", tag = "organizations", operation_id = "update_organization",
    params(("org" = String, Path, description = "The organization's id.")),
    security(("access_token" = []), ("api_key" = ["admin"])),
    request_body = UpdateOrganizationRequest,
    responses(
        (status = 200, description = "The organization.", body = Organization),
        (status = 403, description = "Not an admin, or a key without `admin` (`forbidden`)."),
        (status = 404, description = "No such organization, or the caller is not in it (`not_found`)."),
    ))]
async fn update(caller: Caller, Path(org): Path<String>, body: JsonObject) -> Result<Response, ApiError> {
    body.only_fields_of::<UpdateOrganizationRequest>()?;
    let access = caller.access(&org, ADMINISTER).await?;
    Ok(Json(caller.platform.update_organization(&access, body.string("name")?).await?).into_response())
}

/// Deletes an organization (owners only); it can be restored during the grace period.
#[utoipa::path(delete, path = "/organizations/{org}", tag = "organizations", operation_id = "delete_organization",
    params(("org" = String, Path, description = "The organization's id.")),
    security(("access_token" = [])),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, description = "Not the owner, or an API key (`forbidden`)."),
        (status = 404, description = "No such organization, or the caller is not in it (`not_found`)."),
    ))]
async fn delete(caller: Caller, Path(org): Path<String>) -> Result<StatusCode, ApiError> {
    let access = caller.access(&org, OWN).await?;
    caller.platform.delete_organization(&access).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Restores a deleted organization during its grace period (its owners).
#[utoipa::path(post, path = "/organizations/{org}/restore", tag = "organizations", operation_id = "restore_organization",
    params(("org" = String, Path, description = "The organization's id.")),
    security(("access_token" = [])),
    responses(
        (status = 200, description = "Restored.", body = Organization),
        (status = 403, description = "An API key, or not the owner (`forbidden`)."),
        (status = 404, description = "No deleted organization the caller owns, or its grace period is over (`not_found`)."),
    ))]
async fn restore(caller: Caller, Path(org): Path<String>) -> Result<Response, ApiError> {
    let user = caller.user()?;
    Ok(Json(caller.platform.restore_organization(user, &org).await?).into_response())
}

/// The organization's members.
#[utoipa::path(get, path = "/organizations/{org}/members", tag = "organizations", operation_id = "list_members",
    params(("org" = String, Path, description = "The organization's id."), PageParams),
    security(("access_token" = []), ("api_key" = ["admin"])),
    responses(
        (status = 200, description = "A page of members.", body = Page<Member>),
        (status = 400, description = "A bad `cursor` or `limit`, or an unknown parameter (`invalid_field`)."),
        (status = 403, description = "A key without `admin` (`forbidden`)."),
        (status = 404, description = "No such organization, or the caller is not in it (`not_found`)."),
    ))]
async fn members(
    caller: Caller,
    Path(org): Path<String>,
    Paging(paging): Paging,
) -> Result<Response, ApiError> {
    let access = caller.access(&org, READ_MEMBERS).await?;
    Ok(page(caller.platform.members(&access, &paging).await?))
}

/// Changes a member's role.
#[utoipa::path(patch, path = "/organizations/{org}/members/{user}", tag = "organizations", operation_id = "change_role",
    params(("org" = String, Path, description = "The organization's id."), ("user" = String, Path, description = "The member's user id.")),
    security(("access_token" = []), ("api_key" = ["admin"])),
    request_body = ChangeRoleRequest,
    responses(
        (status = 200, description = "The member.", body = Member),
        (status = 403, description = "Not an admin, a key without `admin`, or only an owner may grant or take ownership (`forbidden`)."),
        (status = 404, description = "No such organization or member (`not_found`)."),
        (status = 409, description = "The organization would have no owner (`last_owner`)."),
    ))]
async fn change_role(
    caller: Caller,
    Path((org, user)): Path<(String, String)>,
    body: JsonObject,
) -> Result<Response, ApiError> {
    body.only_fields_of::<ChangeRoleRequest>()?;
    let role = role(&body, "role")?;
    let access = caller.access(&org, ADMINISTER).await?;
    Ok(Json(caller.platform.change_role(&access, &user, role).await?).into_response())
}

/// Removes a member (or the caller leaves).
#[utoipa::path(delete, path = "/organizations/{org}/members/{user}", tag = "organizations", operation_id = "remove_member",
    params(("org" = String, Path, description = "The organization's id."), ("user" = String, Path, description = "The member's user id.")),
    security(("access_token" = []), ("api_key" = ["admin"])),
    responses(
        (status = 204, description = "Removed."),
        (status = 403, description = "Removing someone else needs an admin (or a key with `admin`) (`forbidden`)."),
        (status = 404, description = "No such organization or member (`not_found`)."),
        (status = 409, description = "The organization would have no owner (`last_owner`)."),
    ))]
async fn remove_member(
    caller: Caller,
    Path((org, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let access = caller.access(&org, REMOVE_MEMBER).await?;
    caller.platform.remove_member(&access, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Invites someone by email; the answer holds the invitation's token, shown once.
#[utoipa::path(post, path = "/organizations/{org}/invitations", tag = "organizations", operation_id = "create_invitation",
    params(("org" = String, Path, description = "The organization's id.")),
    security(("access_token" = []), ("api_key" = ["admin"])),
    request_body = CreateInvitationRequest,
    responses(
        (status = 201, description = "The invitation and its token.", body = CreatedInvitation),
        (status = 403, description = "Not an admin, a key without `admin`, or only an owner may invite an owner (`forbidden`)."),
        (status = 404, description = "No such organization, or the caller is not in it (`not_found`)."),
    ))]
async fn invite(caller: Caller, Path(org): Path<String>, body: JsonObject) -> Result<Response, ApiError> {
    body.only_fields_of::<CreateInvitationRequest>()?;
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
    Ok((StatusCode::CREATED, Json(CreatedInvitation { invitation, token })).into_response())
}

/// The organization's invitations.
#[utoipa::path(get, path = "/organizations/{org}/invitations", tag = "organizations", operation_id = "list_invitations",
    params(("org" = String, Path, description = "The organization's id."), PageParams),
    security(("access_token" = []), ("api_key" = ["admin"])),
    responses(
        (status = 200, description = "A page of invitations.", body = Page<Invitation>),
        (status = 400, description = "A bad `cursor` or `limit`, or an unknown parameter (`invalid_field`)."),
        (status = 403, description = "Not an admin, or a key without `admin` (`forbidden`)."),
        (status = 404, description = "No such organization, or the caller is not in it (`not_found`)."),
    ))]
async fn invitations(
    caller: Caller,
    Path(org): Path<String>,
    Paging(paging): Paging,
) -> Result<Response, ApiError> {
    let access = caller.access(&org, ADMINISTER).await?;
    Ok(page(caller.platform.invitations(&access, &paging).await?))
}

/// Revokes an invitation.
#[utoipa::path(delete, path = "/organizations/{org}/invitations/{id}", tag = "organizations", operation_id = "revoke_invitation",
    params(("org" = String, Path, description = "The organization's id."), ("id" = String, Path, description = "The invitation's id.")),
    security(("access_token" = []), ("api_key" = ["admin"])),
    responses(
        (status = 204, description = "Revoked."),
        (status = 403, description = "Not an admin, or a key without `admin` (`forbidden`)."),
        (status = 404, description = "No such organization or invitation (`not_found`)."),
    ))]
async fn revoke_invitation(
    caller: Caller,
    Path((org, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let access = caller.access(&org, ADMINISTER).await?;
    caller.platform.revoke_invitation(&access, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accepts an invitation: the signed-in user joins its organization.
#[utoipa::path(post, path = "/invitations/accept", tag = "organizations", operation_id = "accept_invitation",
    security(("access_token" = [])),
    request_body = AcceptInvitationRequest,
    responses(
        (status = 200, description = "The organization joined, with the role.", body = OrganizationWithRole),
        (status = 403, description = "An API key, or the invitation is for another address (`forbidden`)."),
        (status = 404, description = "No such invitation (`not_found`)."),
        (status = 409, description = "Already a member (`conflict`)."),
        (status = 410, description = "The invitation expired, was revoked or used (`gone`)."),
    ))]
async fn accept(caller: Caller, body: JsonObject) -> Result<Response, ApiError> {
    body.only_fields_of::<AcceptInvitationRequest>()?;
    let user = caller.user()?;
    Ok(Json(caller.platform.accept_invitation(user, body.string("token")?).await?).into_response())
}

/// The organization's audit log, oldest first.
#[utoipa::path(get, path = "/organizations/{org}/audit-log", tag = "organizations", operation_id = "audit_log",
    params(("org" = String, Path, description = "The organization's id."), PageParams),
    security(("access_token" = []), ("api_key" = ["admin"])),
    responses(
        (status = 200, description = "A page of entries.", body = Page<AuditEntry>),
        (status = 400, description = "A bad `cursor` or `limit`, or an unknown parameter (`invalid_field`)."),
        (status = 403, description = "Not an admin, or a key without `admin` (`forbidden`)."),
        (status = 404, description = "No such organization, or the caller is not in it (`not_found`)."),
    ))]
async fn audit_log(
    caller: Caller,
    Path(org): Path<String>,
    Paging(paging): Paging,
) -> Result<Response, ApiError> {
    let access = caller.access(&org, ADMINISTER).await?;
    Ok(page(caller.platform.audit_log(&access, &paging).await?))
}
