//! Repositories of an organization (`ledge-platform`) and their indexing:
//!
//! * `POST /repositories` connects one (`org`, `git_url`, optional `name` `<owner>/<name>`,
//!   `default_branch`, `webhook_secret`, `access_token` — the secrets sealed at rest with
//!   `LEDGE_ENCRYPTION_KEY`, never shown again) and queues its first index;
//!   `GET /repositories?org=` lists them (`cursor`, `limit`);
//! * `GET|PATCH|DELETE /repositories/{id}`: one repository by its record id; deleting queues a
//!   `remove` job on `repository-indexing` (its chunks, vectors, artifacts and keyword documents)
//!   and then drops the record;
//! * `POST /repositories/{id}/reindex` queues an `index` job for the head of its default branch
//!   (402 `plan_limit` naming `indexed_files` when the organization already holds more indexed
//!   files than its plan allows);
//! * `GET /repositories/{id}/index-status` (a repository's indexing: progress, failures, skips,
//!   queue backlog and dead letters, embeddings mode) and `GET /repositories/{id}/index-status/stream`
//!   (the same as Server-Sent Events while it changes, then `done`).
//!
//! Members (and keys with `repos:read`) read; admins and owners (and keys with `repos:write`)
//! connect, change, remove and re-index. `org` is the organization's slug or id; an API key's
//! organization is the default. A repository of an organization the caller is not in answers 404
//! `repository_not_found`, like one that does not exist.
//!
//! For the index-status routes `{id}` is the record id or the repository key `<owner>/<name>`,
//! percent-encoded as one path segment (`octo%2Fhello`, read in the organization whose slug is the
//! owner's login). Their module state is the process's indexing [`Pipeline`] — the one the queue
//! consumers run, so that one durable-object host serves each coordinator — handed over with
//! [`AppState::provide_pipeline`] once the consumers are built.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::Stream;
use ledge_auth::{Role, Scope};
use ledge_indexing::{IndexStatus, Pipeline, RepoRef, org_of_owner};
use ledge_platform::Need;
use tokio::sync::watch;

use crate::AppState;

pub(crate) mod records;
use crate::platform::AuthRoutes;
use crate::problem::{ApiError, ErrorCode};

/// The repositories module's state.
pub struct RepositoriesModule {
    pipeline: Arc<Pipeline>,
}

/// How often the stream reads the coordinator for changes.
const POLL: Duration = Duration::from_millis(250);

/// How long a first request waits for the consumers (which own the pipeline) to be built.
const PIPELINE_WAIT: Duration = Duration::from_secs(10);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/repositories", post(records::connect).get(records::list))
        .route("/repositories/{id}", get(records::show).patch(records::update).delete(records::disconnect))
        .route("/repositories/{id}/reindex", post(records::reindex))
        .route("/repositories/{id}/index-status", get(index_status))
        .route("/repositories/{id}/index-status/stream", get(index_status_stream))
}

/// Members read index status; keys need `repos:read`.
pub const READ_STATUS: Need = Need::new(Role::Member, Some(Scope::ReposRead));

type Caller = crate::platform::Caller<AuthRoutes>;

/// Checks that the caller may read the repositories of the organization owning `owner`'s
/// repositories, and answers that organization.
///
/// A repository belongs to the organization whose slug is its owner's login, lower-cased
/// ([`org_of_owner`]), the organization every indexed record carries. Another organization's
/// repository answers 404 like an unknown one.
async fn caller_org(caller: &Caller, owner: &str) -> Result<String, ApiError> {
    let slug = org_of_owner(owner);
    let access =
        caller.platform.access_by_slug(&caller.principal, &slug).await.map_err(|error| match error {
            ledge_platform::PlatformError::NotFound(_) => {
                ApiError::new(ErrorCode::RepositoryNotFound, "no such repository").field("id")
            }
            other => ApiError::from(other),
        })?;
    access.require(READ_STATUS)?;
    Ok(access.org.slug)
}

async fn build(state: &AppState) -> Result<RepositoriesModule, ApiError> {
    // The pipeline is the consumers', and they start once the queues are open.
    state.env.queue_backend().await.map_err(|e| ApiError::internal("cannot open the queues", &e))?;
    let mut provided = state.pipeline.subscribe();
    let waited = tokio::time::timeout(PIPELINE_WAIT, provided.wait_for(Option::is_some)).await;
    match waited {
        Ok(Ok(pipeline)) => match pipeline.as_ref() {
            Some(pipeline) => Ok(RepositoriesModule { pipeline: pipeline.clone() }),
            None => Err(starting()),
        },
        _ => Err(starting()),
    }
}

fn starting() -> ApiError {
    ApiError::new(ErrorCode::Unavailable, "the indexing pipeline is not running yet; retry in a moment")
}

/// The repository named by `{id}` (a record id, or a repository key), in the caller's organization.
async fn repository(caller: &Caller, id: &str) -> Result<RepoRef, ApiError> {
    if !id.contains('/') {
        let (access, record) = caller.platform.repository_access(&caller.principal, id).await?;
        access.require(READ_STATUS)?;
        return RepoRef::new(&access.org.slug, &record.name)
            .map_err(|e| ApiError::internal("a stored repository has no valid key", &e));
    }
    let invalid = |reason: String| {
        ApiError::new(
            ErrorCode::InvalidRepositoryId,
            format!("{reason}; expected the repository key <owner>/<name>, percent-encoded (octo%2Fhello)"),
        )
        .field("id")
    };
    let owner =
        id.split_once('/').map(|(owner, _)| owner).ok_or_else(|| invalid(format!("{id:?} has no '/'")))?;
    // Validate the key before asking the store about it.
    RepoRef::new(&org_of_owner(owner), id).map_err(|e| invalid(e.to_string()))?;
    RepoRef::new(&caller_org(caller, owner).await?, id).map_err(|e| invalid(e.to_string()))
}

async fn status_of(module: &RepositoriesModule, repo: &RepoRef) -> Result<IndexStatus, ApiError> {
    let status = module
        .pipeline
        .index_status(repo)
        .await
        .map_err(|e| ApiError::internal("cannot read the index status", &e))?;
    if !status.known {
        return Err(ApiError::new(
            ErrorCode::RepositoryNotFound,
            format!("no indexing of {} is known", repo.key()),
        )
        .field("id"));
    }
    Ok(status)
}

/// A repository's indexing: progress, failures, skips, queue backlog and dead letters.
#[utoipa::path(get, path = "/repositories/{id}/index-status", tag = "repositories", operation_id = "index_status",
    params(("id" = String, Path, description = "The repository's record id, or its key `<owner>/<name>` percent-encoded as one segment (`octo%2Fhello`).")),
    security(("access_token" = []), ("api_key" = ["repos:read"])),
    responses(
        (status = 200, description = "The status.", body = ledge_indexing::IndexStatus),
        (status = 400, description = "Not a repository key (`invalid_repository_id`)."),
        (status = 403, description = "A key without `repos:read` (`forbidden`)."),
        (status = 404, description = "No such repository, no indexing of it known, or another organization's (`repository_not_found`)."),
    ))]
async fn index_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let repo = repository(&caller, &id).await?;
    let module = state.modules.repositories.get_or_build(|| build(&state)).await?;
    let status = status_of(&module, &repo).await?;
    let body = serde_json::to_vec(&status).map_err(|e| ApiError::internal("cannot encode the status", &e))?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The index status as Server-Sent Events: `status` whenever it changes, then `done` (or `error`).
#[utoipa::path(get, path = "/repositories/{id}/index-status/stream", tag = "repositories", operation_id = "index_status_stream",
    params(("id" = String, Path, description = "The repository's record id, or its key `<owner>/<name>` percent-encoded as one segment (`octo%2Fhello`).")),
    security(("access_token" = []), ("api_key" = ["repos:read"])),
    responses(
        (status = 200, description = "Events whose data is the status JSON (`IndexStatus`).", content_type = "text/event-stream", body = crate::schemas::IndexStatusEvent),
        (status = 400, description = "Not a repository key (`invalid_repository_id`)."),
        (status = 403, description = "A key without `repos:read` (`forbidden`)."),
        (status = 404, description = "No such repository, no indexing of it known, or another organization's (`repository_not_found`)."),
    ))]
async fn index_status_stream(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let repo = repository(&caller, &id).await?;
    let module = state.modules.repositories.get_or_build(|| build(&state)).await?;
    // Unknown repositories are refused before the stream starts, with a status code.
    status_of(&module, &repo).await?;
    let stream = progress_events(module, repo, state.closing.subscribe());
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}

/// Where a stream of one repository's progress is.
struct Watcher {
    module: Arc<RepositoriesModule>,
    repo: RepoRef,
    closing: watch::Receiver<bool>,
    last: Option<String>,
    first: bool,
    over: bool,
}

/// `status` events with the status JSON whenever it changes, then one `done` event when the job is
/// finished (or an `error` event if the status cannot be read), then the end. Ends early, without an
/// event, when the server shuts down.
fn progress_events(
    module: Arc<RepositoriesModule>,
    repo: RepoRef,
    closing: watch::Receiver<bool>,
) -> impl Stream<Item = Result<Event, std::convert::Infallible>> + Send + 'static {
    let watcher = Watcher { module, repo, closing, last: None, first: true, over: false };
    futures::stream::unfold(watcher, |mut w| async move {
        if w.over {
            return None;
        }
        loop {
            if *w.closing.borrow() {
                return None;
            }
            if !w.first {
                let mut closing = w.closing.clone();
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = async move { let _ = closing.wait_for(|c| *c).await; } => return None,
                }
            }
            w.first = false;
            let status = match w.module.pipeline.index_status(&w.repo).await {
                Ok(status) => status,
                Err(error) => {
                    tracing::error!(%error, repo = %w.repo, "index-status stream: cannot read the status");
                    w.over = true;
                    let event = Event::default().event("error").data("cannot read the index status");
                    return Some((Ok(event), w));
                }
            };
            let json = match serde_json::to_string(&status) {
                Ok(json) => json,
                Err(error) => {
                    tracing::error!(%error, "index-status stream: cannot encode the status");
                    return None;
                }
            };
            if status.finished {
                w.over = true;
                return Some((Ok(Event::default().event("done").data(json)), w));
            }
            if w.last.as_deref() != Some(json.as_str()) {
                w.last = Some(json.clone());
                return Some((Ok(Event::default().event("status").data(json)), w));
            }
        }
    })
}
