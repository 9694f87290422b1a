//! The relational store's schema, as numbered migrations written in the SQL both engines accept.

use crate::{Database, DbError};

/// One schema change. Versions are applied in increasing order, each exactly once.
#[derive(Debug)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[Migration {
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
}];

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
