//! `GET|PUT /organizations/{org}/notifications`: the caller's own notification preferences in an
//! organization (`ledge-platform`): channels (`email`, `webhook_url`, `slack_webhook_url`) and
//! `events`. Any member reads and replaces their own; an API key has no preferences (403); another
//! organization answers 404. Target URLs are checked (`http`/`https`, a public host unless
//! `notifications.allow_private_targets`), each bad field named. Email is stored but not sent
//! (`"email_delivery": "not_configured"`: ledge has no SMTP setting).

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ledge_auth::Role;
use ledge_platform::{Need, NewPreferences, NotificationEvent, NotificationPreferences, TargetPolicy};
use utoipa::OpenApi;

use crate::AppState;
use crate::platform::{JsonObject, NotificationRoutes};
use crate::problem::{ApiError, ErrorCode};
use crate::schemas::{NotificationPreferencesRequest, PreferencesAnswer};

type Caller = crate::platform::Caller<NotificationRoutes>;

/// Any member, for their own preferences.
pub const OWN_PREFERENCES: Need = Need::new(Role::Member, None);

pub fn routes() -> Router<AppState> {
    Router::new().route("/organizations/{org}/notifications", get(read).put(replace))
}

#[derive(OpenApi)]
#[openapi(paths(read, replace))]
struct Doc;

pub fn openapi() -> utoipa::openapi::OpenApi {
    Doc::openapi()
}

/// The targets policy of the configuration.
fn policy(state: &AppState) -> TargetPolicy {
    TargetPolicy { allow_private: state.env.config().notifications.allow_private_targets }
}

fn answer(preferences: NotificationPreferences) -> Response {
    Json(PreferencesAnswer {
        preferences,
        email_delivery: "not_configured",
        known_events: NotificationEvent::ALL.to_vec(),
    })
    .into_response()
}

/// The caller's notification preferences in the organization.
#[utoipa::path(get, path = "/organizations/{org}/notifications", tag = "notifications", operation_id = "read_notification_preferences",
    params(("org" = String, Path, description = "The organization's id.")),
    security(("access_token" = [])),
    responses(
        (status = 200, description = "The preferences (none saved yet: no channels, no events).", body = PreferencesAnswer),
        (status = 403, description = "An API key has no preferences (`forbidden`)."),
        (status = 404, description = "No such organization, or the caller is not in it (`not_found`)."),
    ))]
async fn read(caller: Caller, Path(org): Path<String>) -> Result<Response, ApiError> {
    let access = caller.access(&org, OWN_PREFERENCES).await?;
    let user = caller.user()?;
    Ok(answer(caller.platform.notification_preferences(&access, &user.id).await?))
}

/// Replaces the caller's notification preferences in the organization.
#[utoipa::path(put, path = "/organizations/{org}/notifications", tag = "notifications", operation_id = "replace_notification_preferences",
    params(("org" = String, Path, description = "The organization's id.")),
    security(("access_token" = [])),
    request_body = NotificationPreferencesRequest,
    responses(
        (status = 200, description = "The saved preferences.", body = PreferencesAnswer),
        (status = 403, description = "An API key has no preferences (`forbidden`)."),
        (status = 404, description = "No such organization, or the caller is not in it (`not_found`)."),
    ))]
async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    body: JsonObject,
) -> Result<Response, ApiError> {
    body.only_fields_of::<NotificationPreferencesRequest>()?;
    let mut events = Vec::new();
    for text in body.strings("events")? {
        let event = NotificationEvent::parse(text).ok_or_else(|| {
            let known: Vec<&str> = NotificationEvent::ALL.iter().map(|e| e.as_str()).collect();
            ApiError::new(
                ErrorCode::InvalidField,
                format!("events: unknown event {text:?}; known: {}", known.join(", ")),
            )
            .field("events")
        })?;
        events.push(event);
    }
    let new = NewPreferences {
        email: body.optional_string("email")?,
        webhook_url: body.optional_string("webhook_url")?,
        slack_webhook_url: body.optional_string("slack_webhook_url")?,
        events,
    };
    let access = caller.access(&org, OWN_PREFERENCES).await?;
    let user = caller.user()?;
    let saved = caller.platform.set_notification_preferences(&access, &user.id, &new, policy(&state)).await?;
    Ok(answer(saved))
}
