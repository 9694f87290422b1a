//! The request bodies of the routes, as schemas of the OpenAPI document (`GET /openapi.json`), and
//! the answers that no domain crate owns.
//!
//! A body read with [`JsonObject`](crate::platform::JsonObject) is checked with
//! [`JsonObject::only_fields_of`](crate::platform::JsonObject::only_fields_of), which accepts exactly
//! the properties of its schema here: a field added to a handler but not to its schema (or the
//! reverse) is refused by the handler, so the document and the code cannot disagree on which
//! fields exist.

use std::borrow::Cow;

use ledge_platform::openapi::{RoleName, ScopeName};
use ledge_platform::{NotificationEvent, NotificationPreferences};
use ledge_search::{Fusion, Mode};
use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{PartialSchema, ToSchema};

/// The property names of `T`'s schema (an object schema, or the objects it is made of).
pub(crate) fn fields_of<T: PartialSchema>() -> Vec<String> {
    fn collect(schema: &RefOr<Schema>, into: &mut Vec<String>) {
        match schema {
            RefOr::T(Schema::Object(object)) => into.extend(object.properties.keys().cloned()),
            RefOr::T(Schema::AllOf(all)) => all.items.iter().for_each(|item| collect(item, into)),
            _ => {}
        }
    }
    let mut fields = Vec::new();
    collect(&T::schema(), &mut fields);
    fields
}

/// `POST /auth/signup`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct SignupRequest {
    /// The account's address (at most 254 bytes).
    #[schema(format = Email, example = "ada@example.com")]
    email: String,
    /// At least 12 characters, not a common password, not containing the address's name.
    #[schema(format = Password, min_length = 12)]
    password: String,
    /// A display name, at most 100 characters.
    #[schema(max_length = 100)]
    name: Option<String>,
}

/// `POST /auth/login`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct LoginRequest {
    #[schema(format = Email)]
    email: String,
    #[schema(format = Password)]
    password: String,
}

/// `POST /auth/refresh`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct RefreshRequest {
    /// The refresh token of the last login or refresh (each is used once).
    refresh_token: String,
}

/// `POST /organizations`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct CreateOrganizationRequest {
    /// 1 to 100 printable characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    name: String,
    /// Lower-case `[a-z0-9-]`; made from the name when absent.
    #[schema(min_length = 2, max_length = 40, pattern = "^[a-z0-9][a-z0-9-]*[a-z0-9]$")]
    slug: Option<String>,
}

/// `PATCH /organizations/{org}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct UpdateOrganizationRequest {
    /// 1 to 100 printable characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    name: String,
}

/// `PATCH /organizations/{org}/members/{user}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ChangeRoleRequest {
    role: RoleName,
}

/// `POST /organizations/{org}/invitations`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct CreateInvitationRequest {
    #[schema(format = Email)]
    email: String,
    role: RoleName,
    /// How long the invitation stays valid; default 7 days.
    #[schema(minimum = 1, maximum = 720)]
    expires_in_hours: Option<i64>,
}

/// `POST /invitations/accept`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct AcceptInvitationRequest {
    /// The token the invitation's creator was given.
    token: String,
}

/// `POST /organizations/{org}/api-keys`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct CreateApiKeyRequest {
    /// 1 to 100 printable characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    name: String,
    #[schema(min_items = 1)]
    scopes: Vec<ScopeName>,
    /// When the key stops working, epoch milliseconds; never when absent.
    expires_at: Option<i64>,
}

/// `POST /repositories`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ConnectRepositoryRequest {
    /// The organization's slug or id; an API key's own organization when absent.
    org: Option<String>,
    /// `https://…` (or a local path where the server allows it).
    #[schema(example = "https://github.com/octo/hello")]
    git_url: String,
    /// The repository key `<owner>/<name>`; taken from the URL when absent.
    name: Option<String>,
    /// Default: `main`.
    default_branch: Option<String>,
    /// Sealed at rest, never shown again.
    webhook_secret: Option<String>,
    /// Sealed at rest, never shown again.
    access_token: Option<String>,
}

/// `PATCH /repositories/{id}`: only the fields present change; `null` removes a secret.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct UpdateRepositoryRequest {
    git_url: Option<String>,
    default_branch: Option<String>,
    #[schema(nullable)]
    webhook_secret: Option<String>,
    #[schema(nullable)]
    access_token: Option<String>,
}

/// `PUT /organizations/{org}/notifications`: the caller's preferences, replaced as a whole.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct NotificationPreferencesRequest {
    email: Option<String>,
    /// `http(s)` to a public host.
    webhook_url: Option<String>,
    /// A Slack-compatible incoming webhook, `http(s)` to a public host.
    slack_webhook_url: Option<String>,
    events: Vec<NotificationEvent>,
}

/// A string, or an array of strings (`POST /search`'s `repo` and `lang`).
pub(crate) struct StringOrStrings;

impl PartialSchema for StringOrStrings {
    fn schema() -> RefOr<Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type};
        let text = || ObjectBuilder::new().schema_type(Type::String);
        OneOfBuilder::new()
            .item(text().description(Some("One value, or several separated by commas.")))
            .item(ArrayBuilder::new().items(text()))
            .into()
    }
}

impl ToSchema for StringOrStrings {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("StringOrStrings")
    }
}

/// `POST /search`: the fields of `GET /search`'s query string.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct SearchRequestBody {
    /// The query: words, `"phrases"`, `-negation`, filters `repo:`, `lang:`, `path:`, `sym:`, `mode:`.
    #[schema(example = "parse json")]
    q: String,
    /// The organization's slug; an API key's own organization when absent.
    org: Option<String>,
    /// Only these repositories (`owner/name`).
    repo: Option<StringOrStrings>,
    /// Only these languages.
    lang: Option<StringOrStrings>,
    /// Only paths starting with this.
    path: Option<String>,
    mode: Option<Mode>,
    #[schema(minimum = 1, maximum = 100)]
    limit: Option<u64>,
    /// The `next_cursor` of the previous page of the same query.
    cursor: Option<String>,
    fusion: Option<Fusion>,
}

/// `POST /auth/signup`'s answer (whether or not the address had an account).
#[derive(Serialize, ToSchema)]
pub(crate) struct SignupAccepted {
    pub status: &'static str,
    pub detail: &'static str,
}

/// `GET /auth/me` as a signed-in user.
#[derive(Serialize, ToSchema)]
pub(crate) struct Me {
    pub user: ledge_platform::User,
    pub organizations: Vec<ledge_platform::OrganizationWithRole>,
}

/// `GET /auth/me` with an API key.
#[derive(Serialize, ToSchema)]
pub(crate) struct MeKey {
    pub api_key: ledge_platform::ApiKey,
}

/// A member's notification preferences, with what ledge can deliver.
#[derive(Serialize, ToSchema)]
pub(crate) struct PreferencesAnswer {
    #[serde(flatten)]
    pub preferences: NotificationPreferences,
    /// `not_configured`: email addresses are stored but ledge has no SMTP setting.
    pub email_delivery: &'static str,
    /// Every event one can subscribe to.
    pub known_events: Vec<NotificationEvent>,
}

/// `POST /webhooks/github`'s 202: the delivery is queued. (Documents the handler's `json!` answer.)
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct GithubQueued {
    queued: bool,
    /// `X-GitHub-Delivery`.
    delivery: String,
}

/// `POST /webhooks/github`'s 200: the delivery was queued before. (Documents the handler's `json!` answer.)
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct GithubDuplicate {
    duplicate: bool,
    /// `X-GitHub-Delivery`.
    delivery: String,
}

/// One Server-Sent Event of `GET /repositories/{id}/index-status/stream`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct IndexStatusEvent {
    event: IndexStatusEventKind,
    /// `status` and `done`: the index status JSON (`IndexStatus`); `error`: what failed.
    data: String,
}

/// `status` whenever the status changes, then `done` once the job is finished (or `error`).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum IndexStatusEventKind {
    Status,
    Done,
    Error,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_a_request_are_its_properties() {
        let mut fields = fields_of::<UpdateRepositoryRequest>();
        fields.sort();
        assert_eq!(fields, ["access_token", "default_branch", "git_url", "webhook_secret"]);
    }
}
