//! `GET /search?q=&org=&repo=&lang=&path=&mode=&limit=&cursor=&fusion=` and `POST /search` (a JSON object
//! with the same fields): code search of one organization (`ledge-search`), for an authenticated
//! caller: a member of the organization `org` names (by slug), or an API key with `search:read`
//! (its own organization; `org` may be left out). Another organization answers 404.
//!
//! `repo` and `lang` may repeat (`repo=a/b&repo=c/d`) or hold a comma-separated list (in the body: a
//! string or an array of strings). Every bad input answers 400 problem+json naming the field (`q`,
//! `org`, `repo`, `lang`, `path`, `mode`, `limit`, `cursor`, `fusion`, or an unknown parameter); a
//! `repo` the organization does not have finds nothing. The module (keyword index, vector index,
//! embedding model) is heavy: it is built by the first search, never by `/health` or webhooks.
//!
//! Each search counts against the organization's `searches_per_day` (its plan); once used up,
//! 429 `quota_exceeded` naming `searches_per_day`, with `Retry-After` until the next UTC midnight.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ledge_search::{SearchError, SearchOptions, SearchRequest, Searcher};
use serde_json::Value;

use ledge_auth::{Role, Scope};
use ledge_platform::{Access, Need, Principal, Quota};

use crate::AppState;
use crate::platform::{AuthRoutes, once};
use crate::problem::{ApiError, ErrorCode};
use crate::schemas::SearchRequestBody;

/// The search module's state.
pub struct SearchModule {
    searcher: Searcher,
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/search", get(search_get).post(search_post))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(search_get, search_post))]
struct Doc;

pub fn openapi() -> utoipa::openapi::OpenApi {
    <Doc as utoipa::OpenApi>::openapi()
}

/// The query parameters of `GET /search`, for the OpenAPI document.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct SearchParams {
    /// The query: words, `"phrases"`, `-negation`, filters `repo:`, `lang:`, `path:`, `sym:`, `mode:`.
    q: String,
    /// The organization's slug; an API key's own organization when absent.
    org: Option<String>,
    /// Only these repositories (`owner/name`); repeat it or separate with commas.
    repo: Option<Vec<String>>,
    /// Only these languages; repeat it or separate with commas.
    lang: Option<Vec<String>>,
    /// Only paths starting with this.
    path: Option<String>,
    mode: Option<ledge_search::Mode>,
    /// Hits per page; default 20.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page of the same query.
    cursor: Option<String>,
    fusion: Option<ledge_search::Fusion>,
}

/// A signed-in member, or an API key with `search:read`.
pub const SEARCH: Need = Need::new(Role::Member, Some(Scope::SearchRead));

type Caller = crate::platform::Caller<AuthRoutes>;

/// The organization the caller searches, by slug (the organization of every indexed document).
///
/// An API key searches its own organization (`org`, if given, must name it); a signed-in user names
/// one of its organizations with `org`. Any other organization answers 404 like a missing one.
async fn caller_org(caller: &Caller, org: Option<String>) -> Result<Access, ApiError> {
    let org = org.map(|o| o.trim().to_ascii_lowercase()).filter(|o| !o.is_empty());
    let access = match (&caller.principal, org) {
        (Principal::ApiKey(key), org) => {
            let access = caller.platform.access(&caller.principal, &key.org_id).await?;
            if org.is_some_and(|org| org != access.org.slug) {
                return Err(ApiError::new(ErrorCode::NotFound, "no such organization").field("org"));
            }
            access
        }
        (Principal::User { .. }, Some(org)) => {
            caller.platform.access_by_slug(&caller.principal, &org).await?
        }
        (Principal::User { .. }, None) => {
            return Err(ApiError::new(
                ErrorCode::InvalidField,
                "org is required (the organization to search)",
            )
            .field("org"));
        }
    };
    access.require(SEARCH)?;
    Ok(access)
}

async fn build(state: &AppState) -> Result<SearchModule, ApiError> {
    let env = &state.env;
    // The three engines load at once (each on blocking threads): the first query waits for the
    // slowest, not for their sum. The vector index builds its in-memory rows here too.
    let (keyword, vectors, embedder) = tokio::try_join!(
        async {
            env.keyword_index().await.map_err(|e| ApiError::internal("cannot open the keyword index", &e))
        },
        async {
            let vectors = env
                .vector_index()
                .await
                .map_err(|e| ApiError::internal("cannot open the vector index", &e))?;
            vectors.warm().await.map_err(|e| ApiError::internal("cannot load the vector index", &e))?;
            Ok(vectors)
        },
        async { env.embedder().await.map_err(|e| ApiError::internal("cannot load the embedding model", &e)) },
    )?;
    let mut searcher = Searcher::new(keyword, vectors, embedder, SearchOptions::default());
    if let Some(cache) = ledge_indexing::EmbeddingCache::for_queries(env)
        .await
        .map_err(|e| ApiError::internal("cannot open the embedding cache", &e))?
    {
        searcher = searcher.with_query_cache(cache);
    }
    Ok(SearchModule { searcher })
}

fn invalid(field: &str, detail: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidField, detail).field(field)
}

/// Splits a comma-separated list, dropping empty items.
fn list(value: &str) -> impl Iterator<Item = String> + '_ {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// The request of the query string; the org is taken apart for [`caller_org`].
fn from_params(params: Vec<(String, String)>) -> Result<(SearchRequest, Option<String>), ApiError> {
    let mut request = SearchRequest::default();
    let mut org = None;
    let mut q = None;
    let (mut mode, mut limit, mut fusion) = (None, None, None);
    for (key, value) in params {
        match key.as_str() {
            "q" => once(&mut q, "q", value)?,
            "org" => once(&mut org, "org", value)?,
            "repo" => request.repos.extend(list(&value)),
            "lang" => request.languages.extend(list(&value)),
            "path" => once(&mut request.path, "path", value)?,
            "mode" => once(&mut mode, "mode", value)?,
            "limit" => once(&mut limit, "limit", value)?,
            "cursor" => once(&mut request.cursor, "cursor", value)?,
            "fusion" => once(&mut fusion, "fusion", value)?,
            other => return Err(invalid(other, format!("unknown parameter {other:?}"))),
        }
    }
    if let Some(value) = mode {
        request.mode = Some(value.parse().map_err(|e: SearchError| invalid("mode", e.reason()))?);
    }
    if let Some(value) = limit {
        request.limit = Some(parse_limit(&value)?);
    }
    if let Some(value) = fusion {
        request.fusion = Some(value.parse().map_err(|e: SearchError| invalid("fusion", e.reason()))?);
    }
    request.q = q.ok_or_else(|| invalid("q", "q is required (the search query)"))?;
    Ok((request, org))
}

fn parse_limit(value: &str) -> Result<usize, ApiError> {
    value.trim().parse().map_err(|_| invalid("limit", format!("{value:?} is not a number from 1 to 100")))
}

/// A string or an array of strings, as a list.
fn strings(field: &str, value: &Value) -> Result<Vec<String>, ApiError> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(list(s).collect()),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                _ => Err(invalid(field, format!("{field} must be a string or an array of strings"))),
            })
            .collect(),
        _ => Err(invalid(field, format!("{field} must be a string or an array of strings"))),
    }
}

fn string(field: &str, value: &Value) -> Result<Option<String>, ApiError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(invalid(field, format!("{field} must be a string"))),
    }
}

/// The request of a JSON body; the org is taken apart for [`caller_org`].
fn from_body(body: &[u8]) -> Result<(SearchRequest, Option<String>), ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::InvalidJson, format!("the body is not valid JSON: {e}")))?;
    let Value::Object(fields) = value else {
        return Err(ApiError::new(ErrorCode::InvalidJson, "the body must be a JSON object").field("body"));
    };
    // The fields the document shows are the ones read below.
    let known = crate::schemas::fields_of::<SearchRequestBody>();
    if let Some(unknown) = fields.keys().find(|key| !known.contains(key)) {
        return Err(invalid(unknown, format!("unknown field {unknown:?}")));
    }
    let mut request = SearchRequest::default();
    let mut org = None;
    let mut q = None;
    for (key, value) in &fields {
        match key.as_str() {
            "q" => q = string("q", value)?,
            "org" => org = string("org", value)?,
            "repo" => request.repos = strings("repo", value)?,
            "lang" => request.languages = strings("lang", value)?,
            "path" => request.path = string("path", value)?,
            "mode" => {
                if let Some(mode) = string("mode", value)? {
                    request.mode = Some(mode.parse().map_err(|e: SearchError| invalid("mode", e.reason()))?);
                }
            }
            "limit" => match value {
                Value::Null => {}
                Value::Number(n) => {
                    let n =
                        n.as_u64().ok_or_else(|| invalid("limit", "limit must be a number from 1 to 100"))?;
                    request.limit = Some(usize::try_from(n).unwrap_or(usize::MAX));
                }
                _ => return Err(invalid("limit", "limit must be a number from 1 to 100")),
            },
            "cursor" => request.cursor = string("cursor", value)?,
            "fusion" => {
                if let Some(fusion) = string("fusion", value)? {
                    request.fusion =
                        Some(fusion.parse().map_err(|e: SearchError| invalid("fusion", e.reason()))?);
                }
            }
            other => return Err(invalid(other, format!("unknown field {other:?}"))),
        }
    }
    request.q = q.ok_or_else(|| invalid("q", "q is required (the search query)"))?;
    Ok((request, org))
}

/// Code search in one organization.
#[utoipa::path(get, path = "/search", tag = "search", operation_id = "search",
    params(SearchParams),
    security(("access_token" = []), ("api_key" = ["search:read"])),
    responses(
        (status = 200, description = "A page of hits.", body = ledge_search::SearchResults),
        (status = 400, description = "A bad query (`invalid_query`, field `q`) or parameter (`invalid_field`, named in `field`)."),
        (status = 403, description = "A key without `search:read` (`forbidden`)."),
        (status = 404, description = "No such organization, or the caller is not in it (`not_found`)."),
        (status = 429, description = "Too many requests (`rate_limited`), or the plan's `searches_per_day` is used up (`quota_exceeded`); `Retry-After`."),
    ))]
async fn search_get(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) =
        params.map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("unreadable query string: {e}")))?;
    let (request, org) = from_params(params)?;
    run(&state, &caller, request, org).await
}

/// Code search in one organization, the request as a JSON body.
#[utoipa::path(post, path = "/search", tag = "search", operation_id = "search_post",
    request_body = SearchRequestBody,
    security(("access_token" = []), ("api_key" = ["search:read"])),
    responses(
        (status = 200, description = "A page of hits.", body = ledge_search::SearchResults),
        (status = 400, description = "A bad query (`invalid_query`, field `q`) or parameter (`invalid_field`, named in `field`)."),
        (status = 403, description = "A key without `search:read` (`forbidden`)."),
        (status = 404, description = "No such organization, or the caller is not in it (`not_found`)."),
        (status = 429, description = "Too many requests (`rate_limited`), or the plan's `searches_per_day` is used up (`quota_exceeded`); `Retry-After`."),
    ))]
async fn search_post(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (request, org) = from_body(&body)?;
    run(&state, &caller, request, org).await
}

async fn run(
    state: &AppState,
    caller: &Caller,
    mut request: SearchRequest,
    org: Option<String>,
) -> Result<Response, ApiError> {
    let access = caller_org(caller, org).await?;
    // Counted before the engines are touched: a used-up quota answers 429 and builds nothing.
    caller.platform.meter(&access.org.id, Quota::Searches).await?;
    request.org = access.org.slug;
    let module = state.modules.search.get_or_build(|| build(state)).await?;
    let results = module.searcher.search(&request).await.map_err(|error| match error {
        SearchError::Invalid { field, reason } => {
            let code = if field == "q" { ErrorCode::InvalidQuery } else { ErrorCode::InvalidField };
            ApiError::new(code, format!("{field} {reason}")).field(field)
        }
        other => ApiError::internal("the search failed", &other),
    })?;
    let body =
        serde_json::to_vec(&results).map_err(|e| ApiError::internal("cannot encode the results", &e))?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response())
}
