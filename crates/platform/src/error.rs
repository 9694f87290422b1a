//! What can go wrong with a platform record, as one matchable kind per case the API answers
//! differently.

use std::time::Duration;

/// Errors of the platform records.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// A field of the request is invalid; `reason` is shown to the user.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// Login failed. Deliberately the same for an unknown account and a wrong password.
    #[error("the email address or the password is wrong")]
    InvalidCredentials,
    /// No valid credential: a missing, malformed, expired or revoked token, or an ended session.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Too many attempts; try again after `retry_after`.
    #[error("too many attempts; retry in {} s", retry_after.as_secs())]
    Throttled { retry_after: Duration },
    /// The record does not exist, or belongs to an organization the caller is not in (which must
    /// read the same).
    #[error("no such {0}")]
    NotFound(&'static str),
    /// The caller is in the organization but its role or scopes do not allow this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The request conflicts with a record (a taken slug, an existing member).
    #[error("{detail}")]
    Conflict { field: Option<&'static str>, detail: String },
    /// The change would leave an organization without an owner.
    #[error("an organization must keep at least one owner")]
    LastOwner,
    /// The token (invitation) is past its expiry or already used.
    #[error("the {0} has expired or has already been used")]
    Expired(&'static str),
    /// The request needs something the server is not configured with (e.g. the sealing key).
    #[error("{detail}")]
    NotConfigured { field: &'static str, detail: &'static str },
    /// The organization's plan allows no more of `limit` (e.g. `repositories`).
    #[error("the {plan} plan allows {allowed} {limit}; upgrade the plan for more")]
    PlanLimit { limit: &'static str, allowed: u64, plan: String },
    /// The organization used up today's `quota` (e.g. `searches_per_day`); it renews after
    /// `retry_after`, at the next UTC midnight.
    #[error("the {plan} plan allows {allowed} {quota}; used up for today")]
    QuotaExceeded { quota: &'static str, allowed: u64, plan: String, retry_after: Duration },
    /// Something failed inside; the detail is in the log.
    #[error("{0}")]
    Internal(&'static str),
    #[error("database: {0}")]
    Db(#[from] ledge_db::sqlx::Error),
    #[error("database: {0}")]
    Store(#[from] ledge_db::DbError),
    #[error("sessions: {0}")]
    Sessions(#[from] ledge_kv::Error),
}

impl PlatformError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> PlatformError {
        PlatformError::Invalid { field, reason: reason.into() }
    }
}

pub type Result<T, E = PlatformError> = std::result::Result<T, E>;
