//! `application/problem+json` (RFC 9457) errors with a stable, machine-readable code.
//!
//! Every error a client can see is an [`ApiError`]; [`ErrorCode`] is the one table that maps each
//! kind to its HTTP status and stable code string. Internals never reach the client: a 5xx says
//! what failed in general terms and carries the request id to find the details in the logs.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Declares [`ErrorCode`] from one table of `Variant => (status, stable code, title)` rows, so the
/// enum, its [`ErrorCode::spec`] and [`ErrorCode::ALL`] cannot drift apart.
macro_rules! error_codes {
    ($($variant:ident => ($status:ident, $code:literal, $title:literal),)+) => {
        /// The stable error codes of the HTTP API. Adding one is adding a row to the table below.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode {
            $($variant,)+
        }

        impl ErrorCode {
            /// (status, stable code, title).
            pub const fn spec(self) -> (StatusCode, &'static str, &'static str) {
                match self {
                    $(ErrorCode::$variant => (StatusCode::$status, $code, $title),)+
                }
            }

            /// Every code, in table order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];
        }
    };
}

error_codes! {
    BadRequest => (BAD_REQUEST, "bad_request", "Bad request"),
    InvalidField => (BAD_REQUEST, "invalid_field", "A field is invalid"),
    InvalidJson => (BAD_REQUEST, "invalid_json", "The body is not valid JSON"),
    InvalidRepositoryId => (BAD_REQUEST, "invalid_repository_id", "Not a repository id"),
    InvalidQuery => (BAD_REQUEST, "invalid_query", "The search query is invalid"),
    Unauthenticated => (UNAUTHORIZED, "unauthenticated", "Authentication required"),
    InvalidCredentials => (UNAUTHORIZED, "invalid_credentials", "The email address or the password is wrong"),
    Forbidden => (FORBIDDEN, "forbidden", "Not allowed"),
    InvalidSignature => (UNAUTHORIZED, "invalid_signature", "Signature verification failed"),
    NotFound => (NOT_FOUND, "not_found", "Not found"),
    RepositoryNotFound => (NOT_FOUND, "repository_not_found", "No such repository"),
    Conflict => (CONFLICT, "conflict", "Conflicts with an existing record"),
    LastOwner => (CONFLICT, "last_owner", "An organization must keep an owner"),
    Gone => (GONE, "gone", "No longer valid"),
    PlanLimit => (PAYMENT_REQUIRED, "plan_limit", "The plan's limit is reached"),
    MethodNotAllowed => (METHOD_NOT_ALLOWED, "method_not_allowed", "Method not allowed"),
    PayloadTooLarge => (PAYLOAD_TOO_LARGE, "payload_too_large", "The body is too large"),
    UnsupportedMediaType => (UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "Unsupported media type"),
    RateLimited => (TOO_MANY_REQUESTS, "rate_limited", "Too many requests"),
    QuotaExceeded => (TOO_MANY_REQUESTS, "quota_exceeded", "The plan's daily quota is used up"),
    Timeout => (SERVICE_UNAVAILABLE, "timeout", "The request took too long"),
    NotImplemented => (NOT_IMPLEMENTED, "not_implemented", "Not implemented yet"),
    NotConfigured => (SERVICE_UNAVAILABLE, "not_configured", "Not configured"),
    Unavailable => (SERVICE_UNAVAILABLE, "unavailable", "Temporarily unavailable"),
    Internal => (INTERNAL_SERVER_ERROR, "internal", "Internal error"),
}

/// An error answered to the client as `application/problem+json`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    /// Human-readable explanation specific to this occurrence.
    pub detail: String,
    /// The request field (header, query parameter, JSON pointer) at fault, if one is.
    pub field: Option<String>,
    /// Seconds after which a retry may succeed (`Retry-After`), for 429 and 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> ApiError {
        ApiError { code, detail: detail.into(), field: None, retry_after: None }
    }

    pub fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds.max(1));
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    /// A 5xx whose cause is logged (with the request id) but not shown.
    pub fn internal(context: &str, error: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(%error, "{context}");
        ApiError::new(ErrorCode::Internal, format!("{context}; see the server log for this request id"))
    }
}

/// An error answer (RFC 9457 problem details), as every 4xx and 5xx of the API is.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
pub(crate) struct ProblemBody<'a> {
    /// `https://ledge.dev/problems/<code>`.
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    /// The HTTP status.
    status: u16,
    /// The stable, machine-readable error code.
    #[schema(value_type = ProblemCode)]
    code: &'a str,
    /// What went wrong in this request.
    detail: &'a str,
    /// The request field (header, query parameter, body field) at fault, if one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

/// The schema of [`ProblemBody::code`]: the codes of [`ErrorCode::ALL`].
pub(crate) struct ProblemCode;

impl utoipa::PartialSchema for ProblemCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(ErrorCode::ALL.iter().map(|code| code.spec().1)))
            .into()
    }
}

impl utoipa::ToSchema for ProblemCode {}

pub const PROBLEM_JSON: &str = "application/problem+json";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, title) = self.code.spec();
        let body = ProblemBody {
            kind: format!("https://ledge.dev/problems/{code}"),
            title,
            status: status.as_u16(),
            code,
            detail: &self.detail,
            field: self.field.as_deref(),
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (status, bytes).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.code == ErrorCode::Unauthenticated || self.code == ErrorCode::InvalidCredentials {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_unique_and_its_status_matches_its_class() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let (status, name, _) = code.spec();
            assert!(seen.insert(name), "duplicate code {name}");
            assert!(status.is_client_error() || status.is_server_error(), "{name}");
        }
    }
}
