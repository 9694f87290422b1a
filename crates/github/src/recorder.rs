//! The `github-events` consumer until repository indexing lands: it records every delivery in the
//! relational store (`github_events`), idempotently by delivery id, and acknowledges it through
//! the real queue runtime.

use async_trait::async_trait;
use ledge_db::Database;
use ledge_queue::{BatchHandler, HandlerError, MessageBatch, RetryOptions};

use crate::QueuedDelivery;

/// Records `github-events` deliveries in the `github_events` table.
#[derive(Debug, Clone)]
pub struct EventRecorder {
    db: Database,
}

impl EventRecorder {
    pub fn new(db: Database) -> EventRecorder {
        EventRecorder { db }
    }
}

#[async_trait]
impl BatchHandler for EventRecorder {
    async fn handle(&self, batch: MessageBatch) -> Result<(), HandlerError> {
        let now = ledge_db::migrations::now_ms();
        let mut tx = self.db.pool().begin().await?;
        for message in &batch.messages {
            let delivery: QueuedDelivery = match message.json() {
                Ok(d) => d,
                Err(error) => {
                    // Not a delivery this version understands: retried, then dead-lettered.
                    tracing::warn!(id = %message.id, %error, "github-events message is malformed");
                    message.retry(RetryOptions::default())?;
                    continue;
                }
            };
            let received_at = message
                .timestamp
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(now);
            insert(&mut tx, &delivery, received_at, now).await?;
            tracing::debug!(delivery = %delivery.envelope.delivery, event = %delivery.envelope.event, "recorded github event");
        }
        // Every message not retried above is acked when the handler returns Ok, after the commit.
        tx.commit().await?;
        Ok(())
    }
}

async fn insert(
    tx: &mut ledge_db::sqlx::Transaction<'_, ledge_db::sqlx::Any>,
    d: &QueuedDelivery,
    received_at: i64,
    now: i64,
) -> Result<(), HandlerError> {
    let env = &d.envelope;
    ledge_db::sqlx::query(
        "INSERT INTO github_events
           (delivery, event, action, installation, repository_id, repository, payload_key, received_at, recorded_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (delivery) DO NOTHING",
    )
    .bind(&env.delivery)
    .bind(&env.event)
    .bind(env.action.as_deref())
    .bind(env.installation.map(|i| i as i64))
    .bind(env.repository.as_ref().map(|r| r.id as i64))
    .bind(env.repository.as_ref().map(|r| r.full_name.as_str()))
    .bind(d.payload_key.as_deref())
    .bind(received_at)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
