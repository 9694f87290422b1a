//! The repository records: connect, list, show, update, disconnect, re-index. The records are
//! `ledge-platform`'s; the indexing jobs go on the `repository-indexing` queue as
//! [`RepositoryJob`](ledge_indexing::RepositoryJob)s for the organization's slug and the repository's key.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use ledge_auth::{Role, Scope};
use ledge_indexing::RepositoryTask;
use ledge_platform::{
    Access, Limit, Need, NewRepository, Page, PageRequest, PlatformError, Principal, Repository,
    RepositoryChange,
};
use utoipa::OpenApi;

use crate::AppState;
use crate::platform::{JsonObject, RepositoryRoutes, once, queue_repository_job};
use crate::problem::{ApiError, ErrorCode};
use crate::schemas::{ConnectRepositoryRequest, UpdateRepositoryRequest};

#[derive(OpenApi)]
#[openapi(paths(
    connect,
    list,
    show,
    update,
    disconnect,
    reindex,
    super::index_status,
    super::index_status_stream
))]
struct Doc;

/// The repository routes' part of the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    Doc::openapi()
}

/// `POST /repositories`' answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Connected {
    repository: Repository,
    /// Whether its first index was queued (if not, a re-index retries it).
    index_queued: bool,
}

/// `DELETE /repositories/{id}`'s answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Disconnected {
    removed: Repository,
    index_removal_queued: bool,
}

/// `POST /repositories/{id}/reindex`'s answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Reindexing {
    queued: bool,
    repository: Repository,
}

/// The query parameters [`ListQuery`] reads, for the OpenAPI document.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ListParams {
    /// The organization's slug or id; an API key's own organization when absent.
    org: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Items per page; default 50.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
}

type Caller = crate::platform::Caller<RepositoryRoutes>;

/// Members read; keys need `repos:read`.
pub const READ_REPOS: Need = Need::new(Role::Member, Some(Scope::ReposRead));
/// Admins and owners connect, change, remove and re-index; keys need `repos:write`.
pub const WRITE_REPOS: Need = Need::new(Role::Admin, Some(Scope::ReposWrite));

/// The caller's access to organization `org` (a slug or an id; for an API key, its own by
/// default), if it allows `need`.
async fn org_access(caller: &Caller, org: Option<&str>, need: Need) -> Result<Access, ApiError> {
    let org = org.map(str::trim).filter(|o| !o.is_empty());
    let not_found = || ApiError::new(ErrorCode::NotFound, "no such organization").field("org");
    let access = match (&caller.principal, org) {
        (Principal::ApiKey(key), None) => caller.platform.access(&caller.principal, &key.org_id).await?,
        (_, Some(org)) => {
            match caller.platform.access_by_slug(&caller.principal, &org.to_ascii_lowercase()).await {
                Ok(access) => access,
                Err(PlatformError::NotFound(_)) => {
                    caller.platform.access(&caller.principal, org).await.map_err(|error| match error {
                        PlatformError::NotFound(_) => not_found(),
                        other => other.into(),
                    })?
                }
                Err(other) => return Err(other.into()),
            }
        }
        (Principal::User { .. }, None) => {
            return Err(ApiError::new(
                ErrorCode::InvalidField,
                "org is required (the organization's slug or id)",
            )
            .field("org"));
        }
    };
    access.require(need)?;
    Ok(access)
}

/// The repository `id` and the caller's access to its organization, if it allows `need`.
async fn repository(caller: &Caller, id: &str, need: Need) -> Result<(Access, Repository), ApiError> {
    let (access, repository) = caller.platform.repository_access(&caller.principal, id).await?;
    access.require(need)?;
    Ok((access, repository))
}

/// Queues `task` for the repository on `repository-indexing`.
async fn queue(
    state: &AppState,
    access: &Access,
    repository: &Repository,
    task: RepositoryTask,
) -> Result<(), ApiError> {
    queue_repository_job(&state.env, &access.org.slug, &repository.name, task).await.map_err(|error| {
        tracing::error!(%error, repo = %repository.name, org = %access.org.slug, "cannot queue a repository job");
        ApiError::new(ErrorCode::Unavailable, "the indexing queue did not take the job; retry in a moment")
    })
}

fn index_task(repository: &Repository) -> RepositoryTask {
    RepositoryTask::Index { clone_url: repository.git_url.clone(), commit: None, before: None }
}

/// `?org=&cursor=&limit=`, unknown parameters refused by name.
pub struct ListQuery {
    org: Option<String>,
    page: PageRequest,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ListQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Query(params) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|_| ApiError::new(ErrorCode::BadRequest, "the query string is malformed"))?;
        let (mut org, mut cursor, mut limit) = (None, None, None);
        for (key, value) in params {
            match key.as_str() {
                "org" => once(&mut org, "org", value)?,
                "cursor" => once(&mut cursor, "cursor", value)?,
                "limit" => once(&mut limit, "limit", value)?,
                other => {
                    return Err(ApiError::new(
                        ErrorCode::InvalidField,
                        format!("{other} is not a parameter here; parameters: org, cursor, limit"),
                    )
                    .field(other));
                }
            }
        }
        Ok(ListQuery { org, page: PageRequest::parse(cursor.as_deref(), limit.as_deref())? })
    }
}

/// Connects a repository to an organization and queues its first index.
#[utoipa::path(post, path = "/repositories", tag = "repositories", operation_id = "connect_repository",
    security(("access_token" = []), ("api_key" = ["repos:write"])),
    request_body = ConnectRepositoryRequest,
    responses(
        (status = 201, description = "Connected.", body = Connected),
        (status = 402, description = "The plan's `repositories` limit is reached (`plan_limit`)."),
        (status = 403, description = "Not an admin, or a key without `repos:write` (`forbidden`)."),
        (status = 404, description = "No such organization, or the caller is not in it (`not_found`, field `org`)."),
        (status = 409, description = "The organization already has a repository of this name (`conflict`)."),
    ))]
pub async fn connect(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonObject,
) -> Result<Response, ApiError> {
    body.only_fields_of::<ConnectRepositoryRequest>()?;
    let new = NewRepository {
        git_url: body.string("git_url")?,
        name: body.optional_string("name")?,
        default_branch: body.optional_string("default_branch")?,
        webhook_secret: body.optional_string("webhook_secret")?,
        access_token: body.optional_string("access_token")?,
    };
    let access = org_access(&caller, body.optional_string("org")?, WRITE_REPOS).await?;
    let repository = caller.platform.connect_repository(&access, &new).await?;
    // The record stands even if the first index cannot be queued: a re-index retries it.
    let index_queued = queue(&state, &access, &repository, index_task(&repository)).await.is_ok();
    Ok((StatusCode::CREATED, Json(Connected { repository, index_queued })).into_response())
}

/// The organization's repositories, oldest first.
#[utoipa::path(get, path = "/repositories", tag = "repositories", operation_id = "list_repositories",
    params(ListParams),
    security(("access_token" = []), ("api_key" = ["repos:read"])),
    responses(
        (status = 200, description = "A page of repositories.", body = Page<Repository>),
        (status = 400, description = "`org` missing for a user, a bad `cursor` or `limit`, or an unknown parameter (`invalid_field`)."),
        (status = 403, description = "A key without `repos:read` (`forbidden`)."),
        (status = 404, description = "No such organization, or the caller is not in it (`not_found`, field `org`)."),
    ))]
pub async fn list(caller: Caller, query: ListQuery) -> Result<Response, ApiError> {
    let access = org_access(&caller, query.org.as_deref(), READ_REPOS).await?;
    Ok(Json(caller.platform.repositories(&access, &query.page).await?).into_response())
}

/// One repository (whether it has secrets, never them).
#[utoipa::path(get, path = "/repositories/{id}", tag = "repositories", operation_id = "read_repository",
    params(("id" = String, Path, description = "The repository's record id.")),
    security(("access_token" = []), ("api_key" = ["repos:read"])),
    responses(
        (status = 200, description = "The repository.", body = Repository),
        (status = 403, description = "A key without `repos:read` (`forbidden`)."),
        (status = 404, description = "No such repository, or another organization's (`repository_not_found`)."),
    ))]
pub async fn show(caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    let (_, repository) = repository(&caller, &id, READ_REPOS).await?;
    Ok(Json(repository).into_response())
}

/// Changes a repository's URL, default branch or secrets.
#[utoipa::path(patch, path = "/repositories/{id}", tag = "repositories", operation_id = "update_repository",
    params(("id" = String, Path, description = "The repository's record id.")),
    security(("access_token" = []), ("api_key" = ["repos:write"])),
    request_body = UpdateRepositoryRequest,
    responses(
        (status = 200, description = "The repository.", body = Repository),
        (status = 403, description = "Not an admin, or a key without `repos:write` (`forbidden`)."),
        (status = 404, description = "No such repository, or another organization's (`repository_not_found`)."),
    ))]
pub async fn update(caller: Caller, Path(id): Path<String>, body: JsonObject) -> Result<Response, ApiError> {
    body.only_fields_of::<UpdateRepositoryRequest>()?;
    let change = RepositoryChange {
        git_url: body.optional_string("git_url")?,
        default_branch: body.optional_string("default_branch")?,
        webhook_secret: body.nullable_string("webhook_secret")?,
        access_token: body.nullable_string("access_token")?,
    };
    let (access, _) = repository(&caller, &id, WRITE_REPOS).await?;
    Ok(Json(caller.platform.update_repository(&access, &id, &change).await?).into_response())
}

/// Queues the removal of the repository's index, then drops the record: if the queue refuses the
/// job, the repository stays connected and the caller can retry.
/// Queues the removal of a repository's index, then drops its record.
#[utoipa::path(delete, path = "/repositories/{id}", tag = "repositories", operation_id = "disconnect_repository",
    params(("id" = String, Path, description = "The repository's record id.")),
    security(("access_token" = []), ("api_key" = ["repos:write"])),
    responses(
        (status = 202, description = "Disconnected; the index removal is queued.", body = Disconnected),
        (status = 403, description = "Not an admin, or a key without `repos:write` (`forbidden`)."),
        (status = 404, description = "No such repository, or another organization's (`repository_not_found`)."),
    ))]
pub async fn disconnect(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (access, repository) = repository(&caller, &id, WRITE_REPOS).await?;
    queue(&state, &access, &repository, RepositoryTask::Remove).await?;
    let removed = caller.platform.disconnect_repository(&access, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(Disconnected { removed, index_removal_queued: true })).into_response())
}

/// Queues an index of the head of the repository's default branch.
#[utoipa::path(post, path = "/repositories/{id}/reindex", tag = "repositories", operation_id = "reindex_repository",
    params(("id" = String, Path, description = "The repository's record id.")),
    security(("access_token" = []), ("api_key" = ["repos:write"])),
    responses(
        (status = 202, description = "Queued.", body = Reindexing),
        (status = 402, description = "The organization is past its plan's `indexed_files` limit (`plan_limit`)."),
        (status = 403, description = "Not an admin, or a key without `repos:write` (`forbidden`)."),
        (status = 404, description = "No such repository, or another organization's (`repository_not_found`)."),
    ))]
pub async fn reindex(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (access, repository) = repository(&caller, &id, WRITE_REPOS).await?;
    // An organization already over its plan's indexed files (a downgrade) is told now, not by a job.
    caller.platform.check_limit(&access.org.id, Limit::IndexedFiles, 0).await?;
    queue(&state, &access, &repository, index_task(&repository)).await?;
    Ok((StatusCode::ACCEPTED, Json(Reindexing { queued: true, repository })).into_response())
}
