//! What the platform route modules (auth, organizations, api-keys, notifications) share: the one [`Platform`] of
//! the process (built on the first request to any of them, from the relational store, the
//! `sessions` KV namespace and `LEDGE_JWT_KEYS`), the [`Caller`] (which also applies the
//! per-caller request limit) and [`Visitor`] extractors, the
//! mapping of [`PlatformError`] to problem+json, and [`JsonObject`], a request body read field by
//! field so that every bad field is named.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Query, Request};
use axum::http::header;
use axum::http::request::Parts;
use ledge_env::{KvBinding, QueueBinding};
use ledge_indexing::{MESSAGE_VERSION, RepoRef, RepositoryJob, RepositoryTask};
use ledge_platform::{
    Access, IndexRemoval, Need, PageRequest, Platform, PlatformError, PlatformOptions, Principal,
    RemovedRepository,
};
use ledge_queue::{MessageBody, SendOptions};
use serde_json::{Map, Value};

use crate::modules::LazyModule;
use crate::problem::{ApiError, ErrorCode};
use crate::{AppState, Modules};

/// The state of each platform route module: the process's one [`Platform`].
pub struct PlatformModule {
    pub platform: Arc<Platform>,
}

/// Which route module a [`Caller`] or [`Visitor`] builds (so `/health/modules` tells them apart).
pub trait PlatformRoutes: Send + Sync + 'static {
    fn module(modules: &Modules) -> &LazyModule<PlatformModule>;
}

pub struct AuthRoutes;
pub struct OrganizationRoutes;
pub struct ApiKeyRoutes;
pub struct RepositoryRoutes;
pub struct BillingRoutes;

impl PlatformRoutes for BillingRoutes {
    fn module(modules: &Modules) -> &LazyModule<PlatformModule> {
        &modules.billing
    }
}
pub struct NotificationRoutes;

impl PlatformRoutes for AuthRoutes {
    fn module(modules: &Modules) -> &LazyModule<PlatformModule> {
        &modules.auth
    }
}

impl PlatformRoutes for OrganizationRoutes {
    fn module(modules: &Modules) -> &LazyModule<PlatformModule> {
        &modules.organizations
    }
}

impl PlatformRoutes for RepositoryRoutes {
    fn module(modules: &Modules) -> &LazyModule<PlatformModule> {
        &modules.repository_records
    }
}

impl PlatformRoutes for NotificationRoutes {
    fn module(modules: &Modules) -> &LazyModule<PlatformModule> {
        &modules.notifications
    }
}

impl PlatformRoutes for ApiKeyRoutes {
    fn module(modules: &Modules) -> &LazyModule<PlatformModule> {
        &modules.api_keys
    }
}

/// The process's platform, built once.
async fn shared(state: &AppState) -> Result<Arc<Platform>, ApiError> {
    state
        .platform
        .get_or_try_init(|| async {
            let keys = state.env.secrets().jwt_keys().ok_or_else(|| {
                ApiError::new(
                    ErrorCode::NotConfigured,
                    "accounts are disabled: set LEDGE_JWT_KEYS to kid:secret pairs (secrets of 32 bytes or more)",
                )
            })?;
            let keys = ledge_auth::JwtKeys::parse_list(keys.expose())
                .map_err(|e| ApiError::new(ErrorCode::NotConfigured, format!("LEDGE_JWT_KEYS: {e}")))?;
            let sealing_keys = match state.env.secrets().encryption_key() {
                Some(keys) => Some(ledge_auth::SealingKeys::parse_list(keys.expose()).map_err(|e| {
                    ApiError::new(ErrorCode::NotConfigured, format!("LEDGE_ENCRYPTION_KEY: {e}"))
                })?),
                None => None,
            };
            let db = state.env.db().await.map_err(|e| ApiError::internal("cannot open the database", &e))?;
            let sessions = state
                .env
                .kv(KvBinding::Sessions)
                .await
                .map_err(|e| ApiError::internal("cannot open the sessions namespace", &e))?;
            let index_removal: Arc<dyn IndexRemoval> = Arc::new(QueuedIndexRemoval { env: state.env.clone() });
            let plans = crate::routes::billing::plans(&state.env);
            let options = PlatformOptions {
                sealing_keys,
                index_removal: Some(index_removal),
                plans,
                repository_changes: state.repository_changes.clone(),
                cache_records: state.env.is_sole_process(),
                ..PlatformOptions::default()
            };
            Ok(Arc::new(Platform::new(db, sessions, keys, options)))
        })
        .await
        .cloned()
}

/// Queues `task` for repository `name` of the organization `org_slug` on `repository-indexing`;
/// the error says what failed.
pub(crate) async fn queue_repository_job(
    env: &ledge_env::Env,
    org_slug: &str,
    name: &str,
    task: RepositoryTask,
) -> Result<(), String> {
    let repo = RepoRef::new(org_slug, name).map_err(|e| format!("the repository has no valid key: {e}"))?;
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let job = RepositoryJob {
        v: MESSAGE_VERSION,
        org: repo.org().to_owned(),
        repo: repo.key(),
        task,
        order: i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
        delivery: None,
    };
    let body = MessageBody::json_from(&job).map_err(|e| format!("cannot encode the job: {e}"))?;
    let producer = env
        .queue(QueueBinding::RepositoryIndexing)
        .await
        .map_err(|e| format!("cannot open the repository-indexing queue: {e}"))?;
    producer.send(body, SendOptions::default()).await.map_err(|e| format!("cannot queue the job: {e}"))?;
    Ok(())
}

/// Removes the index of a purged organization's repositories by queueing `remove` jobs.
#[derive(Debug)]
struct QueuedIndexRemoval {
    env: Arc<ledge_env::Env>,
}

impl IndexRemoval for QueuedIndexRemoval {
    fn remove<'a>(
        &'a self,
        repositories: &'a [RemovedRepository],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            for repository in repositories {
                queue_repository_job(
                    &self.env,
                    &repository.org_slug,
                    &repository.name,
                    RepositoryTask::Remove,
                )
                .await
                .map_err(|e| format!("{}/{}: {e}", repository.org_slug, repository.name))?;
            }
            Ok(())
        })
    }
}

pub(crate) async fn module<M: PlatformRoutes>(state: &AppState) -> Result<Arc<Platform>, ApiError> {
    let module = M::module(&state.modules)
        .get_or_build(|| async { Ok(PlatformModule { platform: shared(state).await? }) })
        .await?;
    Ok(module.platform.clone())
}

/// The client's address, for throttling: the peer of the connection (ledge does not trust
/// `X-Forwarded-For`; behind a proxy, the proxy is the client).
fn client_ip(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |ConnectInfo(addr)| addr.ip().to_string())
}

/// A request to a platform route that needs no credential (sign-up, login, refresh).
pub struct Visitor<M> {
    pub platform: Arc<Platform>,
    pub ip: String,
    _module: PhantomData<M>,
}

impl<M: PlatformRoutes> FromRequestParts<AppState> for Visitor<M> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Visitor { platform: module::<M>(state).await?, ip: client_ip(parts), _module: PhantomData })
    }
}

/// The authenticated caller: `Authorization: Bearer` with an access token or an API key.
pub struct Caller<M> {
    pub platform: Arc<Platform>,
    pub principal: Principal,
    _module: PhantomData<M>,
}

impl<M: PlatformRoutes> FromRequestParts<AppState> for Caller<M> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let platform = module::<M>(state).await?;
        let header = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            ApiError::new(ErrorCode::Unauthenticated, "send Authorization: Bearer <access token or API key>")
                .field("authorization")
        })?;
        let principal = platform
            .authenticate(header.as_bytes())
            .await
            .map_err(|e| ApiError::from(e).field("authorization"))?;
        let (who, bucket) = match &principal {
            Principal::User { user, .. } => ("user", format!("user:{}", user.id)),
            Principal::ApiKey(key) => ("API key", format!("key:{}", key.id)),
        };
        if let Err(wait) = state.caller_requests.take(&bucket, std::time::Instant::now()) {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return Err(ApiError::new(
                ErrorCode::RateLimited,
                format!("too many requests for this {who}; slow down"),
            )
            .retry_after(seconds));
        }
        Ok(Caller { platform, principal, _module: PhantomData })
    }
}

impl<M> Caller<M> {
    /// What the caller may do in `org`, if it allows `need`: 404 outside the organization, 403
    /// inside it without the role or scope.
    pub async fn access(&self, org: &str, need: Need) -> Result<Access, ApiError> {
        let access = self.platform.access(&self.principal, org).await?;
        access.require(need)?;
        Ok(access)
    }

    /// The signed-in user, for the routes an API key cannot use.
    pub fn user(&self) -> Result<&ledge_platform::User, ApiError> {
        match &self.principal {
            Principal::User { user, .. } => Ok(user),
            Principal::ApiKey(_) => {
                Err(ApiError::new(ErrorCode::Forbidden, "this route needs a signed-in user, not an API key"))
            }
        }
    }
}

impl From<PlatformError> for ApiError {
    fn from(error: PlatformError) -> ApiError {
        match error {
            PlatformError::Invalid { field, reason } => {
                ApiError::new(ErrorCode::InvalidField, format!("{field} {reason}")).field(field)
            }
            PlatformError::InvalidCredentials => {
                ApiError::new(ErrorCode::InvalidCredentials, error.to_string())
            }
            PlatformError::Unauthenticated(reason) => ApiError::new(ErrorCode::Unauthenticated, reason),
            PlatformError::Throttled { retry_after } => {
                let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                ApiError::new(ErrorCode::RateLimited, error.to_string()).retry_after(seconds)
            }
            PlatformError::NotFound("repository") => {
                ApiError::new(ErrorCode::RepositoryNotFound, error.to_string()).field("id")
            }
            PlatformError::NotFound(_) => ApiError::new(ErrorCode::NotFound, error.to_string()),
            PlatformError::NotConfigured { field, detail } => {
                ApiError::new(ErrorCode::NotConfigured, detail).field(field)
            }
            PlatformError::Forbidden(reason) => ApiError::new(ErrorCode::Forbidden, reason),
            PlatformError::Conflict { field, detail } => {
                let error = ApiError::new(ErrorCode::Conflict, detail);
                match field {
                    Some(field) => error.field(field),
                    None => error,
                }
            }
            PlatformError::LastOwner => ApiError::new(ErrorCode::LastOwner, error.to_string()),
            PlatformError::Expired(_) => ApiError::new(ErrorCode::Gone, error.to_string()),
            PlatformError::PlanLimit { limit, .. } => {
                ApiError::new(ErrorCode::PlanLimit, error.to_string()).field(limit)
            }
            PlatformError::QuotaExceeded { quota, retry_after, .. } => {
                let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                ApiError::new(ErrorCode::QuotaExceeded, error.to_string()).field(quota).retry_after(seconds)
            }
            PlatformError::Internal(_)
            | PlatformError::Db(_)
            | PlatformError::Store(_)
            | PlatformError::Sessions(_) => ApiError::internal("the platform store failed", &error),
        }
    }
}

/// `?cursor=&limit=` of a list, unknown parameters refused by name.
pub struct Paging(pub PageRequest);

/// The query parameters [`Paging`] reads, for the OpenAPI document.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct PageParams {
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Items per page; default 50.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
}

impl<S: Send + Sync> FromRequestParts<S> for Paging {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Query(params) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|_| ApiError::new(ErrorCode::BadRequest, "the query string is malformed"))?;
        let mut cursor = None;
        let mut limit = None;
        for (key, value) in params {
            match key.as_str() {
                "cursor" => once(&mut cursor, "cursor", value)?,
                "limit" => once(&mut limit, "limit", value)?,
                other => return Err(invalid(other, "is not a parameter here; parameters: cursor, limit")),
            }
        }
        Ok(Paging(PageRequest::parse(cursor.as_deref(), limit.as_deref())?))
    }
}

/// Sets a single-valued query parameter, refusing it given twice (`?limit=5&limit=x`): which of
/// the two a server reads is not something a client should have to guess.
pub(crate) fn once(slot: &mut Option<String>, name: &str, value: String) -> Result<(), ApiError> {
    if slot.replace(value).is_some() {
        return Err(invalid(name, "is given more than once"));
    }
    Ok(())
}

/// A JSON object body, read field by field: every error names the field at fault.
pub struct JsonObject(Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(ErrorCode::PayloadTooLarge, "the body is too large")
            } else {
                ApiError::new(ErrorCode::BadRequest, "cannot read the body")
            }
        })?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(JsonObject(map)),
            Ok(_) => {
                Err(ApiError::new(ErrorCode::InvalidJson, "the body must be a JSON object").field("body"))
            }
            Err(e) => {
                Err(ApiError::new(ErrorCode::InvalidJson, format!("the body is not JSON: {e}")).field("body"))
            }
        }
    }
}

fn invalid(field: &str, detail: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidField, format!("{field} {detail}")).field(field)
}

impl JsonObject {
    /// Refuses fields not in `known`, so a typo is an error rather than ignored.
    pub fn only(&self, known: &[&str]) -> Result<&Self, ApiError> {
        match self.0.keys().find(|k| !known.contains(&k.as_str())) {
            Some(unknown) => {
                Err(invalid(unknown, &format!("is not a field here; fields: {}", known.join(", "))))
            }
            None => Ok(self),
        }
    }

    /// Refuses fields that are not properties of `T`, the body's schema in the OpenAPI document
    /// ([`crate::schemas`]): the fields a handler accepts are the ones its document shows.
    pub fn only_fields_of<T: utoipa::PartialSchema>(&self) -> Result<&Self, ApiError> {
        let known = crate::schemas::fields_of::<T>();
        let known: Vec<&str> = known.iter().map(String::as_str).collect();
        self.only(&known)
    }

    pub fn string(&self, name: &str) -> Result<&str, ApiError> {
        self.optional_string(name)?.ok_or_else(|| invalid(name, "is required"))
    }

    pub fn optional_string(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(invalid(name, "must be a string")),
        }
    }

    /// A field that may be absent (`None`), `null` (`Some(None)`) or a string.
    pub fn nullable_string(&self, name: &str) -> Result<Option<Option<&str>>, ApiError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(text)) => Ok(Some(Some(text))),
            Some(_) => Err(invalid(name, "must be a string or null")),
        }
    }

    pub fn optional_integer(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value.as_i64().map(Some).ok_or_else(|| invalid(name, "must be an integer")),
        }
    }

    pub fn strings(&self, name: &str) -> Result<Vec<&str>, ApiError> {
        match self.0.get(name) {
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().ok_or_else(|| invalid(name, "must be an array of strings")))
                .collect(),
            None | Some(Value::Null) => Err(invalid(name, "is required")),
            Some(_) => Err(invalid(name, "must be an array of strings")),
        }
    }
}
