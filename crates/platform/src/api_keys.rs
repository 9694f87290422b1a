//! API keys: created for one organization with scopes and an optional expiry, shown once, kept as
//! a SHA-256 hash with a visible prefix, listed, revoked; checked on every request that presents
//! one (a revoked or expired key fails on the next request), recording when each was last used.

use ledge_auth::{OpaqueToken, ParsedToken, Scopes, TokenKind};
use ledge_db::Record as _;
use ledge_db::sqlx;

use crate::audit::action;
use crate::cache::{CachedKey, Change};
use crate::error::{PlatformError, Result};
use crate::page::{Cursor, Page, PageRequest};
use crate::records::ApiKey;
use crate::{Access, Platform};

/// `last_used_at` is written at most this often per key.
const LAST_USED_EVERY_MS: i64 = 60_000;
const MAX_NAME_CHARS: usize = 100;

impl Platform {
    /// Creates a key; answers its record and the secret, which is never shown again. A caller can
    /// only give a key scopes it holds itself.
    pub async fn create_api_key(
        &self,
        access: &Access,
        name: &str,
        scopes: Scopes,
        expires_at: Option<i64>,
    ) -> Result<(ApiKey, String)> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(PlatformError::invalid(
                "name",
                format!("must be 1 to {MAX_NAME_CHARS} printable characters"),
            ));
        }
        if scopes.is_empty() {
            return Err(PlatformError::invalid("scopes", "name at least one scope"));
        }
        if !access.scopes.covers(scopes) {
            return Err(PlatformError::Forbidden("a key cannot have scopes its creator does not hold"));
        }
        let now = self.now_ms();
        if expires_at.is_some_and(|at| at <= now) {
            return Err(PlatformError::invalid("expires_at", "must be in the future"));
        }
        let token = OpaqueToken::generate(TokenKind::ApiKey);
        let key = ApiKey {
            id: token.id.clone(),
            org_id: access.org.id.clone(),
            name: name.to_string(),
            prefix: token.prefix.clone(),
            scopes,
            created_by: access.actor.clone(),
            created_at: now,
            expires_at,
            last_used_at: None,
            revoked_at: None,
        };
        sqlx::query(
            "INSERT INTO api_keys (id, org_id, name, prefix, token_hash, scopes, created_by, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&key.id)
        .bind(&key.org_id)
        .bind(&key.name)
        .bind(&key.prefix)
        .bind(&token.hash)
        .bind(scopes.to_text())
        .bind(&key.created_by)
        .bind(now)
        .bind(expires_at)
        .execute(self.db.pool())
        .await?;
        self.cache.forget(Change::ApiKeyCreated);
        self.audit(
            &key.org_id,
            Some(&access.actor),
            action::API_KEY_CREATED,
            Some(&key.id),
            Some(&scopes.to_text()),
        )
        .await?;
        Ok((key, token.token))
    }

    /// One page of the organization's keys (revoked and expired ones too), oldest first.
    pub async fn api_keys(&self, access: &Access, page: &PageRequest) -> Result<Page<ApiKey>> {
        let org = &access.org.id;
        let position = |k: &ApiKey| Cursor { at: k.created_at, id: k.id.clone() };
        let read = crate::page::org_rows(
            &self.db,
            "api_keys",
            ApiKey::COLUMNS,
            org,
            page,
            ApiKey::from_row,
            position,
        );
        self.first_page_cached(org, page, read).await
    }

    /// Revokes a key of the organization; it fails from the next request on.
    pub async fn revoke_api_key(&self, access: &Access, id: &str) -> Result<()> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = $3 WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL",
        )
        .bind(&access.org.id)
        .bind(id)
        .bind(self.now_ms())
        .execute(self.db.pool())
        .await?;
        self.cache.forget(Change::ApiKey(id));
        if done.rows_affected() != 1 {
            return Err(PlatformError::NotFound("API key"));
        }
        self.audit(&access.org.id, Some(&access.actor), action::API_KEY_REVOKED, Some(id), None).await
    }

    /// The key a presented secret belongs to, if it matches, is not revoked or expired, and its
    /// organization exists.
    pub(crate) async fn authenticate_api_key(&self, parsed: &ParsedToken) -> Result<ApiKey> {
        let invalid = || PlatformError::Unauthenticated("the API key is invalid, revoked or expired");
        let generation = self.cache.generation();
        let CachedKey { token_hash, mut key } = match self.cache.api_key(&parsed.id) {
            Some(cached) => cached,
            None => {
                let cached = self.api_key_record(&parsed.id).await?.ok_or_else(invalid)?;
                self.cache.keep_api_key(generation, cached.clone());
                cached
            }
        };
        if !parsed.matches(&token_hash) {
            return Err(invalid());
        }
        let now = self.now_ms();
        if key.revoked_at.is_some() || key.expires_at.is_some_and(|at| now >= at) {
            return Err(invalid());
        }
        if key.last_used_at.is_none_or(|at| now - at >= LAST_USED_EVERY_MS) {
            sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
                .bind(&key.id)
                .bind(now)
                .execute(self.db.pool())
                .await?;
            key.last_used_at = Some(now);
            // The pages that list the key show its last use: they go, and the key is read again.
            self.cache.forget(Change::ApiKey(&key.id));
        }
        Ok(key)
    }

    /// The key `id` and its secret's hash, if its organization exists.
    async fn api_key_record(&self, id: &str) -> Result<Option<CachedKey>> {
        let sql = format!(
            "SELECT {}, token_hash FROM api_keys k WHERE id = $1
             AND EXISTS (SELECT 1 FROM organizations o WHERE o.id = k.org_id AND o.deleted_at IS NULL)",
            ApiKey::COLUMNS
        );
        let Some(row) = self.db.row(&sql, &[id.into()]).await? else { return Ok(None) };
        Ok(Some(CachedKey { token_hash: row.field("token_hash")?, key: ApiKey::from_row(&row)? }))
    }
}
