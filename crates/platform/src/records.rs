//! The platform's records as the API shows them. Times are epoch milliseconds.

use ledge_auth::{Role, Scopes};
use ledge_db::Record;
use serde::{Serialize, Serializer};

use crate::error::Result;
use crate::page::Cursor;

/// An account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub created_at: i64,
}

impl User {
    pub(crate) const COLUMNS: &'static str = "id, email, name, created_at";

    pub(crate) fn from_row(row: &impl Record) -> Result<User> {
        Ok(User {
            id: row.field("id")?,
            email: row.field("email")?,
            name: row.field("name")?,
            created_at: row.field("created_at")?,
        })
    }
}

/// An organization: the tenant every other record belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Organization {
    pub id: String,
    /// Unique, lower-case `[a-z0-9-]`; the organization's name in search and repository keys.
    pub slug: String,
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Set while the organization waits out its grace period before being purged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<i64>,
}

impl Organization {
    pub(crate) const COLUMNS: &'static str = "o.id, o.slug, o.name, o.created_at, o.updated_at, o.deleted_at";

    pub(crate) fn from_row(row: &impl Record) -> Result<Organization> {
        Ok(Organization {
            id: row.field("id")?,
            slug: row.field("slug")?,
            name: row.field("name")?,
            created_at: row.field("created_at")?,
            updated_at: row.field("updated_at")?,
            deleted_at: row.field("deleted_at")?,
        })
    }
}

/// An organization with the caller's role in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrganizationWithRole {
    #[serde(flatten)]
    pub organization: Organization,
    #[serde(serialize_with = "role_text")]
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::RoleName))]
    pub role: Role,
    #[serde(skip)]
    pub joined_at: i64,
}

/// A member of an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    pub user_id: String,
    pub email: String,
    pub name: String,
    #[serde(serialize_with = "role_text")]
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::RoleName))]
    pub role: Role,
    pub joined_at: i64,
}

impl Member {
    pub(crate) fn cursor(&self) -> Cursor {
        Cursor { at: self.joined_at, id: self.user_id.clone() }
    }
}

/// An invitation to join an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Invitation {
    pub id: String,
    pub org_id: String,
    pub email: String,
    #[serde(serialize_with = "role_text")]
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::RoleName))]
    pub role: Role,
    pub invited_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
}

impl Invitation {
    pub(crate) const COLUMNS: &'static str =
        "id, org_id, email, role, invited_by, created_at, expires_at, accepted_at, revoked_at";

    pub(crate) fn from_row(row: &impl Record) -> Result<Invitation> {
        Ok(Invitation {
            id: row.field("id")?,
            org_id: row.field("org_id")?,
            email: row.field("email")?,
            role: role_of(row)?,
            invited_by: row.field("invited_by")?,
            created_at: row.field("created_at")?,
            expires_at: row.field("expires_at")?,
            accepted_at: row.field("accepted_at")?,
            revoked_at: row.field("revoked_at")?,
        })
    }
}

/// An API key's record (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKey {
    pub id: String,
    pub org_id: String,
    pub name: String,
    /// `ledge_<id>`: the visible start of the key, to recognise it.
    pub prefix: String,
    #[serde(serialize_with = "scopes_list")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::openapi::ScopeName>))]
    pub scopes: Scopes,
    pub created_by: String,
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
}

impl ApiKey {
    pub(crate) const COLUMNS: &'static str =
        "id, org_id, name, prefix, scopes, created_by, created_at, expires_at, last_used_at, revoked_at";

    pub(crate) fn from_row(row: &impl Record) -> Result<ApiKey> {
        let scopes: String = row.field("scopes")?;
        Ok(ApiKey {
            id: row.field("id")?,
            org_id: row.field("org_id")?,
            name: row.field("name")?,
            prefix: row.field("prefix")?,
            scopes: Scopes::parse_text(&scopes).unwrap_or_default(),
            created_by: row.field("created_by")?,
            created_at: row.field("created_at")?,
            expires_at: row.field("expires_at")?,
            last_used_at: row.field("last_used_at")?,
            revoked_at: row.field("revoked_at")?,
        })
    }
}

/// A repository connected to an organization (never its secrets: only whether it has them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Repository {
    pub id: String,
    pub org_id: String,
    /// The repository key `<owner>/<name>` (lower case) its index is kept under.
    pub name: String,
    pub git_url: String,
    pub default_branch: String,
    pub has_webhook_secret: bool,
    pub has_access_token: bool,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Repository {
    pub(crate) const COLUMNS: &'static str = "id, org_id, full_name, git_url, default_branch, webhook_secret, \
         access_token, created_by, created_at, updated_at";

    pub(crate) fn from_row(row: &impl Record) -> Result<Repository> {
        let webhook_secret: Option<String> = row.field("webhook_secret")?;
        let access_token: Option<String> = row.field("access_token")?;
        Ok(Repository {
            id: row.field("id")?,
            org_id: row.field("org_id")?,
            name: row.field("full_name")?,
            git_url: row.field("git_url")?,
            default_branch: row.field("default_branch")?,
            has_webhook_secret: webhook_secret.is_some(),
            has_access_token: access_token.is_some(),
            created_by: row.field("created_by")?,
            created_at: row.field("created_at")?,
            updated_at: row.field("updated_at")?,
        })
    }
}

/// One security-relevant action in an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub id: String,
    pub org_id: String,
    /// The user (or `key:<id>`) who acted, if anyone did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub at: i64,
}

impl AuditEntry {
    pub(crate) fn from_row(row: &impl Record) -> Result<AuditEntry> {
        Ok(AuditEntry {
            id: row.field("id")?,
            org_id: row.field("org_id")?,
            actor: row.field("actor")?,
            action: row.field("action")?,
            target: row.field("target")?,
            detail: row.field("detail")?,
            at: row.field("at")?,
        })
    }
}

pub(crate) fn role_of(row: &impl Record) -> Result<Role> {
    let text: String = row.field("role")?;
    // Only ledge writes the column; an unknown value is the least privileged role.
    Ok(Role::parse(&text).unwrap_or(Role::Member))
}

fn role_text<S: Serializer>(role: &Role, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(role.as_str())
}

fn scopes_list<S: Serializer>(scopes: &Scopes, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(scopes.iter().map(|s| s.as_str()))
}
