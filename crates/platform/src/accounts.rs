//! Accounts and credentials: sign-up, login, refresh, logout, and turning an `Authorization`
//! header into a [`Principal`].
//!
//! A login opens a server-side session — `session/<id>` in the `sessions` KV namespace, ended by
//! [`PlatformOptions::session_ttl`](crate::PlatformOptions) without a request (sliding) — and
//! answers a short-lived JWT access token naming the session and a refresh token bound to it. Every
//! request with an access token reads the session, so logout (which deletes it and revokes its
//! refresh tokens) takes effect on the next request. A refresh token is used once: refreshing
//! rotates it, and presenting a used one again ends the whole session (it was stolen or replayed).
//!
//! No user enumeration: a login with an unknown address does the work of a password check and
//! fails like a wrong password; a sign-up with a taken address answers like a new one.

use ledge_db::Record as _;
use ledge_db::sqlx;
use std::time::Instant;

use bytes::Bytes;
use ledge_auth::password::check_password;
use ledge_auth::{AccessClaims, Credential, Email, OpaqueToken, Role, TokenKind, bearer};
use ledge_kv::{GetOptions, KvNamespaceExt as _, PutOptions};
use serde::{Deserialize, Serialize};
use sqlx::Row as _;

use crate::cache::{CachedSession, Change};
use crate::error::{PlatformError, Result};
use crate::records::{ApiKey, Organization, User};
use crate::{Access, Platform, ms, new_id};

/// Who a credential proves the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A signed-in user, in one session.
    User { user: User, session_id: String },
    /// An API key of one organization.
    ApiKey(ApiKey),
}

/// What a login or a refresh answers.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginTokens {
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub refresh_token: String,
    pub user: User,
}

#[derive(Debug, Serialize, Deserialize)]
struct Session {
    user: String,
    /// When the session was last used (and its TTL last extended), epoch ms.
    seen: i64,
}

/// A session's TTL is extended at most this often, so a burst of requests writes once.
const SLIDE_EVERY_MS: i64 = 60_000;
const MAX_NAME_CHARS: usize = 100;

fn session_key(id: &str) -> String {
    format!("session/{id}")
}

fn unauthenticated(reason: &'static str) -> PlatformError {
    PlatformError::Unauthenticated(reason)
}

impl Platform {
    /// Creates an account. Answers the same whether or not the address was taken (the existing
    /// account is left alone), so sign-up cannot tell which addresses have accounts.
    pub async fn signup(&self, email: &str, password: &str, name: Option<&str>, ip: &str) -> Result<()> {
        self.options
            .throttle
            .attempt_ip(ip, Instant::now())
            .map_err(|retry_after| PlatformError::Throttled { retry_after })?;
        let email = Email::parse(email).map_err(|e| PlatformError::invalid("email", e.to_string()))?;
        check_password(password, &email).map_err(|e| PlatformError::invalid("password", e.to_string()))?;
        let name = match name.map(str::trim) {
            Some(name) if name.chars().count() > MAX_NAME_CHARS => {
                return Err(PlatformError::invalid(
                    "name",
                    format!("must be at most {MAX_NAME_CHARS} characters"),
                ));
            }
            Some(name) if !name.is_empty() => name.to_string(),
            _ => email.as_str().split('@').next().unwrap_or_default().to_string(),
        };
        let password = password.to_string();
        let hash = self.hash_work(move |hasher| hasher.hash(&password)).await?;
        sqlx::query(
            "INSERT INTO users (id, email, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (email) DO NOTHING",
        )
        .bind(new_id())
        .bind(email.as_str())
        .bind(name)
        .bind(hash)
        .bind(self.now_ms())
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Checks an email and password and opens a session. Throttled per account and per `ip`.
    pub async fn login(&self, email: &str, password: &str, ip: &str) -> Result<LoginTokens> {
        let account = email.trim().to_lowercase();
        self.options
            .throttle
            .attempt(&account, ip, Instant::now())
            .map_err(|retry_after| PlatformError::Throttled { retry_after })?;
        let found = match Email::parse(email) {
            Ok(email) => {
                let sql = format!("SELECT {}, password_hash FROM users WHERE email = $1", User::COLUMNS);
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(email.as_str())
                    .fetch_optional(self.db.pool())
                    .await?
            }
            Err(_) => None,
        };
        let (user, stored) = match &found {
            Some(row) => (Some(User::from_row(row)?), Some(row.try_get::<String, _>("password_hash")?)),
            None => (None, None),
        };
        let password = password.to_string();
        let verified = self
            .hash_work(move |hasher| match stored {
                Some(stored) => hasher.verify(&password, &stored),
                None => {
                    hasher.verify_dummy(&password);
                    false
                }
            })
            .await?;
        let user = match user {
            Some(user) if verified => user,
            _ => return Err(PlatformError::InvalidCredentials),
        };
        self.options.throttle.succeeded(&account);
        let session_id = new_id();
        self.put_session(&session_id, &user.id).await?;
        self.audit_login(&user.id).await?;
        self.issue(user, &session_id).await
    }

    /// Exchanges a refresh token for new tokens (the old refresh token is spent).
    pub async fn refresh(&self, token: &str, ip: &str) -> Result<LoginTokens> {
        self.options
            .throttle
            .attempt_ip(ip, Instant::now())
            .map_err(|retry_after| PlatformError::Throttled { retry_after })?;
        let invalid = || unauthenticated("the refresh token is invalid, expired or already used");
        let parsed = OpaqueToken::parse(TokenKind::Refresh, token.trim()).map_err(|_| invalid())?;
        let row = sqlx::query(
            "SELECT user_id, session_id, token_hash, expires_at, revoked_at FROM refresh_tokens WHERE id = $1",
        )
        .bind(&parsed.id)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(invalid)?;
        let stored: String = row.try_get("token_hash")?;
        if !parsed.matches(&stored) {
            return Err(invalid());
        }
        let user_id: String = row.try_get("user_id")?;
        let session_id: String = row.try_get("session_id")?;
        let revoked: Option<i64> = row.try_get("revoked_at")?;
        if revoked.is_some() {
            // A spent token presented again: someone else holds a copy. End the session.
            tracing::warn!(session = %session_id, "a used refresh token was presented again; ending its session");
            self.end_session(&session_id).await?;
            return Err(invalid());
        }
        let now = self.now_ms();
        if now >= row.try_get::<i64, _>("expires_at")? {
            return Err(invalid());
        }
        let session: Option<Session> =
            self.sessions.get_json(&session_key(&session_id), GetOptions::default()).await?;
        if session.is_none_or(|s| s.user != user_id) {
            return Err(unauthenticated("the session has ended; log in again"));
        }
        let spent =
            sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(&parsed.id)
                .bind(now)
                .execute(self.db.pool())
                .await?;
        if spent.rows_affected() != 1 {
            return Err(invalid());
        }
        let user = self.user(&user_id).await?.ok_or_else(invalid)?;
        self.put_session(&session_id, &user_id).await?;
        self.issue(user, &session_id).await
    }

    /// Ends the caller's session: its access tokens and refresh tokens stop working at once.
    pub async fn logout(&self, principal: &Principal) -> Result<()> {
        match principal {
            Principal::User { session_id, .. } => self.end_session(session_id).await,
            Principal::ApiKey(_) => {
                Err(PlatformError::Forbidden("an API key has no session; revoke the key instead"))
            }
        }
    }

    /// Who the `Authorization` header value proves the caller is.
    pub async fn authenticate(&self, authorization: &[u8]) -> Result<Principal> {
        let credential = bearer::parse(authorization).map_err(|_| {
            unauthenticated("the Authorization header must be `Bearer <access token or API key>`")
        })?;
        match credential {
            Credential::Jwt(token) => self.authenticate_jwt(token).await,
            Credential::ApiKey(parsed) => self.authenticate_api_key(&parsed).await.map(Principal::ApiKey),
        }
    }

    async fn authenticate_jwt(&self, token: &str) -> Result<Principal> {
        let now = self.now_ms();
        let claims = self
            .jwt
            .verify(token, now.div_euclid(1000))
            .map_err(|_| unauthenticated("the access token is invalid or has expired"))?;
        if let Some(session) = self.cache.session(&claims.sid, &claims.sub)
            && now - session.seen < SLIDE_EVERY_MS
        {
            return Ok(Principal::User { user: session.user, session_id: claims.sid });
        }
        let generation = self.cache.generation();
        let key = session_key(&claims.sid);
        let session: Option<Session> = self.sessions.get_json(&key, GetOptions::default()).await?;
        let ended = || unauthenticated("the session has ended; log in again");
        let session = session.ok_or_else(ended)?;
        if session.user != claims.sub {
            return Err(ended());
        }
        let mut seen = session.seen;
        if now - seen >= SLIDE_EVERY_MS {
            seen = self.put_session(&claims.sid, &claims.sub).await?;
        }
        let user = self.user(&claims.sub).await?.ok_or_else(ended)?;
        self.cache.keep_session(generation, &claims.sid, CachedSession { user: user.clone(), seen });
        Ok(Principal::User { user, session_id: claims.sid })
    }

    /// What `principal` may do in organization `org_id`; [`PlatformError::NotFound`] when it is not
    /// in it, or the organization is deleted or does not exist.
    pub async fn access(&self, principal: &Principal, org_id: &str) -> Result<Access> {
        match principal {
            Principal::User { user, .. } => {
                let (org, role) = match self.cache.membership(&user.id, org_id) {
                    Some(membership) => membership,
                    None => self.membership(&user.id, org_id).await?,
                };
                Ok(Access { org, role: Some(role), scopes: role.scopes(), actor: user.id.clone() })
            }
            Principal::ApiKey(key) => {
                if key.org_id != org_id {
                    return Err(PlatformError::NotFound("organization"));
                }
                let org = self.organization(org_id).await?.ok_or(PlatformError::NotFound("organization"))?;
                Ok(Access { org, role: None, scopes: key.scopes, actor: format!("key:{}", key.id) })
            }
        }
    }

    /// User `user`'s organization `org_id` and role in it, read from the store and kept in the cache.
    async fn membership(&self, user: &str, org_id: &str) -> Result<(Organization, Role)> {
        let generation = self.cache.generation();
        let sql = format!(
            "SELECT {}, m.role FROM organizations o JOIN memberships m ON m.org_id = o.id
             WHERE o.id = $1 AND m.user_id = $2 AND o.deleted_at IS NULL",
            Organization::COLUMNS
        );
        let row = self
            .db
            .row(&sql, &[org_id.into(), user.into()])
            .await?
            .ok_or(PlatformError::NotFound("organization"))?;
        let role = crate::records::role_of(&row)?;
        let org = Organization::from_row(&row)?;
        self.cache.keep_membership(generation, user, org.clone(), role);
        Ok((org, role))
    }

    /// Like [`Platform::access`], naming the organization by its slug.
    pub async fn access_by_slug(&self, principal: &Principal, slug: &str) -> Result<Access> {
        let row = self
            .db
            .row("SELECT id FROM organizations WHERE slug = $1 AND deleted_at IS NULL", &[slug.into()])
            .await?
            .ok_or(PlatformError::NotFound("organization"))?;
        self.access(principal, &row.field::<String>("id")?).await
    }

    /// The account `id`.
    pub async fn user(&self, id: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {} FROM users WHERE id = $1", User::COLUMNS);
        let row = self.db.row(&sql, &[id.into()]).await?;
        row.as_ref().map(User::from_row).transpose()
    }

    /// Writes the session `id` of `user`, seen now; answers when.
    async fn put_session(&self, id: &str, user: &str) -> Result<i64> {
        let seen = self.now_ms();
        let session = Session { user: user.to_string(), seen };
        let value = Bytes::from(serde_json::to_vec(&session).unwrap_or_default());
        let options = PutOptions {
            expiration_ttl: Some(self.options.session_ttl.as_secs().max(60)),
            ..PutOptions::default()
        };
        self.sessions.put(&session_key(id), value, options).await?;
        Ok(seen)
    }

    async fn end_session(&self, id: &str) -> Result<()> {
        self.sessions.delete(&session_key(id)).await?;
        self.cache.forget(Change::Session(id));
        sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE session_id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(self.now_ms())
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    async fn issue(&self, user: User, session_id: &str) -> Result<LoginTokens> {
        let now = self.now_ms();
        let refresh = OpaqueToken::generate(TokenKind::Refresh);
        sqlx::query(
            "INSERT INTO refresh_tokens (id, user_id, session_id, token_hash, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&refresh.id)
        .bind(&user.id)
        .bind(session_id)
        .bind(&refresh.hash)
        .bind(now)
        .bind(now.saturating_add(ms(self.options.refresh_ttl)))
        .execute(self.db.pool())
        .await?;
        let iat = now.div_euclid(1000);
        let ttl = self.options.access_ttl.as_secs();
        let claims = AccessClaims {
            sub: user.id.clone(),
            sid: session_id.to_string(),
            iat,
            exp: iat.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
        };
        Ok(LoginTokens {
            access_token: self.jwt.sign(&claims),
            token_type: "Bearer",
            expires_in: ttl,
            refresh_token: refresh.token,
            user,
        })
    }
}
