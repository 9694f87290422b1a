//! Repositories connected to an organization: a git URL, the repository key `<owner>/<name>` its
//! index is kept under (unique in the organization), the default branch, and optionally a webhook
//! secret and an access token, sealed at rest with [`PlatformOptions::sealing_keys`]
//! (`LEDGE_ENCRYPTION_KEY`) for the record and field they belong to. Records show only whether a
//! secret is set; [`Platform::repository_secrets`] opens them for the code that needs them.
//!
//! Indexing is not this module's business: the HTTP layer queues the jobs (index on connect and
//! on request, remove on disconnect).
//!
//! [`PlatformOptions::sealing_keys`]: crate::PlatformOptions::sealing_keys

use ledge_db::sqlx;
use sqlx::Row as _;

use crate::accounts::Principal;
use crate::audit::action;
use crate::error::{PlatformError, Result};
use crate::page::{Cursor, Page, PageRequest};
use crate::records::Repository;
use crate::{Access, Platform, new_id};

const MAX_URL_BYTES: usize = 2048;
const MAX_PART: usize = 100;
const MAX_BRANCH_BYTES: usize = 255;
const MAX_SECRET_BYTES: usize = 4096;

/// What connecting a repository takes.
#[derive(Debug, Clone, Default)]
pub struct NewRepository<'a> {
    /// `https://host/…/<owner>/<name>[.git]`, without credentials.
    pub git_url: &'a str,
    /// The repository key `<owner>/<name>`; by default the URL's last two path segments.
    pub name: Option<&'a str>,
    /// `main` by default.
    pub default_branch: Option<&'a str>,
    pub webhook_secret: Option<&'a str>,
    pub access_token: Option<&'a str>,
}

/// A change to a repository: `None` leaves a field alone; for the secrets, `Some(None)` removes it.
#[derive(Debug, Clone, Default)]
pub struct RepositoryChange<'a> {
    pub git_url: Option<&'a str>,
    pub default_branch: Option<&'a str>,
    pub webhook_secret: Option<Option<&'a str>>,
    pub access_token: Option<Option<&'a str>>,
}

/// A repository whose record goes away with its organization, for [`IndexRemoval`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedRepository {
    /// The slug of its organization, which its index is kept under.
    pub org_slug: String,
    /// Its key `<owner>/<name>`.
    pub name: String,
}

/// Removes the index of repositories whose organization is purged (the HTTP layer queues
/// `remove` jobs). The records are deleted only once this succeeded, so an organization's slug
/// is never given back while its code is still indexed under it.
pub trait IndexRemoval: Send + Sync + std::fmt::Debug {
    fn remove<'a>(
        &'a self,
        repositories: &'a [RemovedRepository],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::result::Result<(), String>> + Send + 'a>>;
}

/// A repository's secrets, opened.
#[derive(Clone, PartialEq, Eq)]
pub struct RepositorySecrets {
    pub webhook_secret: Option<String>,
    pub access_token: Option<String>,
}

impl std::fmt::Debug for RepositorySecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepositorySecrets")
            .field("webhook_secret", &self.webhook_secret.as_ref().map(|_| "***"))
            .field("access_token", &self.access_token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Checks a git URL: `https://` with a host and a path, no credentials, no spaces or control
/// characters.
pub fn check_git_url(url: &str) -> Result<String> {
    let url = url.trim();
    let bad = |reason: &str| PlatformError::invalid("git_url", reason.to_string());
    if url.is_empty() || url.len() > MAX_URL_BYTES {
        return Err(bad(&format!("must be 1 to {MAX_URL_BYTES} bytes")));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("must not contain spaces or control characters"));
    }
    let Some(rest) = url.strip_prefix("https://") else {
        return Err(bad("must be an https:// URL"));
    };
    if rest.contains('@') {
        return Err(bad("must not hold credentials (or '@'); give access_token instead"));
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if !valid_authority(authority) {
        return Err(bad("must name a host (and optionally a port)"));
    }
    if path.split('/').all(str::is_empty) || url.contains(['?', '#', '\\']) {
        return Err(bad("must name a repository path, without query, fragment or '\\'"));
    }
    Ok(url.to_string())
}

/// `host[:port]`: DNS labels (letters, digits, inner `-`) or a bracketed IPv6 address.
fn valid_authority(authority: &str) -> bool {
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    if port.is_some_and(|p| p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The repository key a URL names by default: its last two path segments, `.git` stripped.
fn name_of_url(url: &str) -> Option<String> {
    let path = url.strip_prefix("https://")?.split_once('/')?.1;
    let mut segments = path.split('/').filter(|s| !s.is_empty()).rev();
    let name = segments.next()?;
    let name = name.strip_suffix(".git").unwrap_or(name);
    let owner = segments.next()?;
    Some(format!("{owner}/{name}"))
}

/// Checks a repository key `<owner>/<name>` and lower-cases it: letters, digits, `-`, `_` (and `.`
/// in the name, which is never only dots), as `ledge-indexing`'s `RepoRef` requires.
pub fn check_repository_name(name: &str) -> Result<String> {
    let bad = || {
        PlatformError::invalid(
            "name",
            format!(
                "must be <owner>/<name>: 1-{MAX_PART} letters, digits, '-' or '_' each ('.' too in the name)"
            ),
        )
    };
    let name = name.trim().to_ascii_lowercase();
    let (owner, repo) = name.split_once('/').ok_or_else(bad)?;
    let part = |value: &str, dot: bool| {
        !value.is_empty()
            && value.len() <= MAX_PART
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (dot && b == b'.'))
            && !value.bytes().all(|b| b == b'.')
    };
    if !part(owner, false) || !part(repo, true) {
        return Err(bad());
    }
    Ok(name)
}

/// Checks a branch name by git's rules for ref names (`git check-ref-format --branch`).
pub fn check_branch(branch: &str) -> Result<String> {
    let branch = branch.trim();
    let fine = !branch.is_empty()
        && branch.len() <= MAX_BRANCH_BYTES
        && !branch.chars().any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c))
        && !branch.contains("..")
        && !branch.contains("@{")
        && !branch.contains("//")
        && branch != "@"
        && !branch.starts_with(['-', '/', '.'])
        && !branch.ends_with(['/', '.'])
        && !branch.ends_with(".lock")
        && !branch.contains("/.");
    if !fine {
        return Err(PlatformError::invalid(
            "default_branch",
            format!(
                "must be a git branch name (1 to {MAX_BRANCH_BYTES} bytes, no spaces, '..', '~^:?*[\\\\')"
            ),
        ));
    }
    Ok(branch.to_string())
}

fn check_secret(field: &'static str, value: &str) -> Result<()> {
    if value.is_empty() || value.len() > MAX_SECRET_BYTES || value.chars().any(char::is_control) {
        return Err(PlatformError::invalid(
            field,
            format!("must be 1 to {MAX_SECRET_BYTES} bytes without control characters (null removes it)"),
        ));
    }
    Ok(())
}

/// The associated data a secret is sealed for: its organization, record and field.
pub(crate) fn context(org_id: &str, id: &str, field: &str) -> String {
    format!("repository/{org_id}/{id}/{field}")
}

impl Platform {
    fn seal(&self, field: &'static str, org_id: &str, id: &str, value: &str) -> Result<String> {
        check_secret(field, value)?;
        let keys = self.options.sealing_keys.as_ref().ok_or(PlatformError::NotConfigured {
            field,
            detail: "secrets cannot be stored: the server has no LEDGE_ENCRYPTION_KEY",
        })?;
        Ok(keys.seal(value.as_bytes(), &context(org_id, id, field)))
    }

    /// Connects a repository to the organization.
    pub async fn connect_repository(&self, access: &Access, new: &NewRepository<'_>) -> Result<Repository> {
        let git_url = check_git_url(new.git_url)?;
        let name = match new.name {
            Some(name) => check_repository_name(name)?,
            None => check_repository_name(&name_of_url(&git_url).unwrap_or_default()).map_err(|_| {
                PlatformError::invalid("name", "cannot be read from git_url; give name as <owner>/<name>")
            })?,
        };
        let default_branch = check_branch(new.default_branch.unwrap_or("main"))?;
        let org_id = &access.org.id;
        self.check_limit(org_id, crate::Limit::Repositories, 1).await?;
        let id = new_id();
        let webhook_secret =
            new.webhook_secret.map(|s| self.seal("webhook_secret", org_id, &id, s)).transpose()?;
        let access_token = new.access_token.map(|s| self.seal("access_token", org_id, &id, s)).transpose()?;
        let now = self.now_ms();
        let done = sqlx::query(
            "INSERT INTO repositories (id, org_id, full_name, git_url, default_branch, webhook_secret,
               access_token, created_by, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT DO NOTHING",
        )
        .bind(&id)
        .bind(org_id)
        .bind(&name)
        .bind(&git_url)
        .bind(&default_branch)
        .bind(&webhook_secret)
        .bind(&access_token)
        .bind(&access.actor)
        .bind(now)
        .execute(self.db.pool())
        .await?;
        if done.rows_affected() != 1 {
            return Err(PlatformError::Conflict {
                field: Some("name"),
                detail: format!("{name} is already connected to this organization"),
            });
        }
        self.options.repository_changes.bump();
        self.audit(org_id, Some(&access.actor), action::REPOSITORY_CONNECTED, Some(&id), Some(&name)).await?;
        Ok(Repository {
            id,
            org_id: org_id.clone(),
            name,
            git_url,
            default_branch,
            has_webhook_secret: webhook_secret.is_some(),
            has_access_token: access_token.is_some(),
            created_by: access.actor.clone(),
            created_at: now,
            updated_at: now,
        })
    }

    /// One page of the organization's repositories, oldest first.
    pub async fn repositories(&self, access: &Access, page: &PageRequest) -> Result<Page<Repository>> {
        let position = |r: &Repository| Cursor { at: r.created_at, id: r.id.clone() };
        crate::page::org_rows(
            &self.db,
            "repositories",
            Repository::COLUMNS,
            &access.org.id,
            page,
            Repository::from_row,
            position,
        )
        .await
    }

    /// The organization's repository `id`.
    pub async fn repository(&self, access: &Access, id: &str) -> Result<Repository> {
        let sql = format!("SELECT {} FROM repositories WHERE org_id = $1 AND id = $2", Repository::COLUMNS);
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&access.org.id)
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(PlatformError::NotFound("repository"))?;
        Repository::from_row(&row)
    }

    /// What `principal` may do in the organization of repository `id`, and the repository. A
    /// repository of an organization the caller is not in reads as [`PlatformError::NotFound`],
    /// like one that does not exist.
    pub async fn repository_access(&self, principal: &Principal, id: &str) -> Result<(Access, Repository)> {
        let org_id: Option<String> = sqlx::query_scalar("SELECT org_id FROM repositories WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        let org_id = org_id.ok_or(PlatformError::NotFound("repository"))?;
        let access = self.access(principal, &org_id).await.map_err(|error| match error {
            PlatformError::NotFound(_) => PlatformError::NotFound("repository"),
            other => other,
        })?;
        let repository = self.repository(&access, id).await?;
        Ok((access, repository))
    }

    /// Changes a repository's URL, default branch or secrets.
    pub async fn update_repository(
        &self,
        access: &Access,
        id: &str,
        change: &RepositoryChange<'_>,
    ) -> Result<Repository> {
        let current = self.repository(access, id).await?;
        let org_id = &access.org.id;
        let git_url = change.git_url.map(check_git_url).transpose()?.unwrap_or(current.git_url);
        let branch = change.default_branch.map(check_branch).transpose()?.unwrap_or(current.default_branch);
        let mut changed: Vec<&str> = Vec::new();
        if change.git_url.is_some() {
            changed.push("git_url");
        }
        if change.default_branch.is_some() {
            changed.push("default_branch");
        }
        let mut sealed =
            |field: &'static str, value: Option<Option<&str>>| -> Result<Option<Option<String>>> {
                let Some(value) = value else { return Ok(None) };
                changed.push(field);
                Ok(Some(value.map(|s| self.seal(field, org_id, id, s)).transpose()?))
            };
        let webhook_secret = sealed("webhook_secret", change.webhook_secret)?;
        let access_token = sealed("access_token", change.access_token)?;
        if changed.is_empty() {
            return Err(PlatformError::invalid(
                "body",
                "name a field to change: git_url, default_branch, webhook_secret, access_token",
            ));
        }
        let now = self.now_ms();
        // $6/$8 say whether to replace a secret (so that null can remove it).
        sqlx::query(
            "UPDATE repositories SET git_url = $3, default_branch = $4, updated_at = $5,
               webhook_secret = CASE WHEN $6 = 1 THEN $7 ELSE webhook_secret END,
               access_token = CASE WHEN $8 = 1 THEN $9 ELSE access_token END
             WHERE org_id = $1 AND id = $2",
        )
        .bind(org_id)
        .bind(id)
        .bind(&git_url)
        .bind(&branch)
        .bind(now)
        .bind(i64::from(webhook_secret.is_some()))
        .bind(webhook_secret.clone().flatten())
        .bind(i64::from(access_token.is_some()))
        .bind(access_token.clone().flatten())
        .execute(self.db.pool())
        .await?;
        self.options.repository_changes.bump();
        self.audit(
            org_id,
            Some(&access.actor),
            action::REPOSITORY_UPDATED,
            Some(id),
            Some(&changed.join(",")),
        )
        .await?;
        self.repository(access, id).await
    }

    /// Removes the repository's record. (Its index is removed by the job the caller queues.)
    pub async fn disconnect_repository(&self, access: &Access, id: &str) -> Result<Repository> {
        let repository = self.repository(access, id).await?;
        let done = sqlx::query("DELETE FROM repositories WHERE org_id = $1 AND id = $2")
            .bind(&access.org.id)
            .bind(id)
            .execute(self.db.pool())
            .await?;
        if done.rows_affected() != 1 {
            return Err(PlatformError::NotFound("repository"));
        }
        self.options.repository_changes.bump();
        self.audit(
            &access.org.id,
            Some(&access.actor),
            action::REPOSITORY_REMOVED,
            Some(id),
            Some(&repository.name),
        )
        .await?;
        Ok(repository)
    }

    /// The repository's secrets, opened (for fetching and verifying; never shown by the API).
    pub async fn repository_secrets(&self, access: &Access, id: &str) -> Result<RepositorySecrets> {
        let row = sqlx::query(
            "SELECT webhook_secret, access_token FROM repositories WHERE org_id = $1 AND id = $2",
        )
        .bind(&access.org.id)
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or(PlatformError::NotFound("repository"))?;
        let open = |field: &'static str| -> Result<Option<String>> {
            let Some(sealed) = row.try_get::<Option<String>, _>(field)? else { return Ok(None) };
            let keys = self.options.sealing_keys.as_ref().ok_or(PlatformError::NotConfigured {
                field,
                detail: "secrets cannot be read: the server has no LEDGE_ENCRYPTION_KEY",
            })?;
            let plain = keys.open(&sealed, &context(&access.org.id, id, field)).map_err(|error| {
                tracing::error!(%error, repository = id, field, "cannot open a sealed secret");
                PlatformError::Internal("a stored secret cannot be opened with the configured keys")
            })?;
            String::from_utf8(plain)
                .map(Some)
                .map_err(|_| PlatformError::Internal("a stored secret is not text"))
        };
        Ok(RepositorySecrets { webhook_secret: open("webhook_secret")?, access_token: open("access_token")? })
    }

    /// The sealed secrets of repository `id` as stored (for tests that check nothing is plain).
    #[doc(hidden)]
    pub async fn stored_repository_secrets(&self, id: &str) -> Result<(Option<String>, Option<String>)> {
        let row = sqlx::query("SELECT webhook_secret, access_token FROM repositories WHERE id = $1")
            .bind(id)
            .fetch_one(self.db.pool())
            .await?;
        Ok((row.try_get("webhook_secret")?, row.try_get("access_token")?))
    }
}
