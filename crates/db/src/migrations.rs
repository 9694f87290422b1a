//! The relational store's schema, as numbered migrations written in the SQL both engines accept.

use crate::{Database, DbError};

/// One schema change. Versions are applied in increasing order, each exactly once.
#[derive(Debug)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "github_events",
        sql: "CREATE TABLE github_events (
            delivery TEXT PRIMARY KEY,
            event TEXT NOT NULL,
            action TEXT,
            installation BIGINT,
            repository_id BIGINT,
            repository TEXT,
            payload_key TEXT,
            received_at BIGINT NOT NULL,
            recorded_at BIGINT NOT NULL
          );
          CREATE INDEX github_events_repository ON github_events (repository_id, received_at);",
    },
    Migration {
        version: 2,
        name: "platform",
        // The platform records of `ledge-platform`. Every row below `users` carries its
        // organization; lists page on (created_at, id).
        sql: "CREATE TABLE users (
            id TEXT PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            created_at BIGINT NOT NULL
          );
          CREATE TABLE organizations (
            id TEXT PRIMARY KEY,
            slug TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            deleted_at BIGINT
          );
          CREATE TABLE memberships (
            org_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            role TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            PRIMARY KEY (org_id, user_id)
          );
          CREATE INDEX memberships_user ON memberships (user_id, created_at);
          CREATE TABLE invitations (
            id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL,
            email TEXT NOT NULL,
            role TEXT NOT NULL,
            token_hash TEXT NOT NULL,
            invited_by TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL,
            accepted_at BIGINT,
            revoked_at BIGINT
          );
          CREATE INDEX invitations_org ON invitations (org_id, created_at, id);
          CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL,
            name TEXT NOT NULL,
            prefix TEXT NOT NULL,
            token_hash TEXT NOT NULL,
            scopes TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            expires_at BIGINT,
            last_used_at BIGINT,
            revoked_at BIGINT
          );
          CREATE INDEX api_keys_org ON api_keys (org_id, created_at, id);
          CREATE TABLE refresh_tokens (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            session_id TEXT NOT NULL,
            token_hash TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL,
            revoked_at BIGINT
          );
          CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
          CREATE TABLE audit_log (
            id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL,
            actor TEXT,
            action TEXT NOT NULL,
            target TEXT,
            detail TEXT,
            at BIGINT NOT NULL
          );
          CREATE INDEX audit_log_org ON audit_log (org_id, at, id);",
    },
    Migration {
        version: 3,
        name: "repositories",
        // Repositories connected to an organization (`ledge-platform`). `full_name` is the
        // repository key `<owner>/<name>` its index is kept under; the secrets are sealed
        // (`v1.<kid>.<base64url>`), never plain.
        sql: "CREATE TABLE repositories (
            id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL,
            full_name TEXT NOT NULL,
            git_url TEXT NOT NULL,
            default_branch TEXT NOT NULL,
            webhook_secret TEXT,
            access_token TEXT,
            created_by TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
          );
          CREATE UNIQUE INDEX repositories_name ON repositories (org_id, full_name);
          CREATE INDEX repositories_org ON repositories (org_id, created_at, id);",
    },
    Migration {
        version: 4,
        name: "billing",
        // Billing (`ledge-platform`): one subscription per organization (none: the free plan),
        // updated by Stripe events no older than the last one applied (`event_at`); daily usage
        // counters per organization and metric (`day`: days since the epoch, UTC); the Stripe
        // events applied, by id, so a replayed event changes nothing.
        sql: "CREATE TABLE subscriptions (
            org_id TEXT PRIMARY KEY,
            plan TEXT NOT NULL,
            status TEXT NOT NULL,
            stripe_customer TEXT,
            stripe_subscription TEXT,
            current_period_end BIGINT,
            event_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
          );
          CREATE INDEX subscriptions_customer ON subscriptions (stripe_customer);
          CREATE INDEX subscriptions_subscription ON subscriptions (stripe_subscription);
          CREATE TABLE usage_counters (
            org_id TEXT NOT NULL,
            metric TEXT NOT NULL,
            day BIGINT NOT NULL,
            count BIGINT NOT NULL,
            PRIMARY KEY (org_id, metric, day)
          );
          CREATE TABLE billing_events (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            org_id TEXT NOT NULL,
            received_at BIGINT NOT NULL
          );
          CREATE INDEX billing_events_org ON billing_events (org_id);",
    },
    Migration {
        version: 5,
        name: "notification_preferences",
        // Each member's notification preferences in an organization (`ledge-platform`): the
        // channels (an email address, a webhook URL, a Slack-compatible incoming webhook URL) and
        // the events (comma-separated names) they want.
        sql: "CREATE TABLE notification_preferences (
            org_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            email TEXT,
            webhook_url TEXT,
            slack_webhook_url TEXT,
            events TEXT NOT NULL,
            updated_at BIGINT NOT NULL,
            PRIMARY KEY (org_id, user_id)
          );",
    },
    Migration {
        version: 6,
        name: "indexed_files",
        // Indexed files metered per organization (`ledge-platform`, for the plans' `indexed_files`
        // limit): one row per repository key `<owner>/<name>` indexed for the organization, with
        // the files its last admitted indexing job leaves indexed.
        sql: "CREATE TABLE indexed_files (
            org_id TEXT NOT NULL,
            repository TEXT NOT NULL,
            files BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            PRIMARY KEY (org_id, repository)
          );",
    },
];

/// Applies every migration not yet recorded in `schema_migrations`.
pub async fn apply(db: &Database) -> Result<(), DbError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(db.pool())
    .await?;
    for m in MIGRATIONS {
        let fail = |source| DbError::Migration { version: m.version, name: m.name, source };
        let mut tx = db.pool().begin().await.map_err(fail)?;
        let done: Option<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(m.version)
                .fetch_optional(&mut *tx)
                .await
                .map_err(fail)?;
        if done.is_some() {
            continue;
        }
        for statement in m.sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            sqlx::query(statement).execute(&mut *tx).await.map_err(fail)?;
        }
        sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
            .bind(m.version)
            .bind(m.name)
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
    }
    Ok(())
}

/// Milliseconds since the Unix epoch: how the store keeps time.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
