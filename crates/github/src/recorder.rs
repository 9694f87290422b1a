//! The `github-events` consumer until repository indexing lands: it records every delivery in the
//! relational store (`github_events`), idempotently by delivery id, and acknowledges it through
//! the real queue runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use ledge_db::Database;
use ledge_queue::{BatchHandler, HandlerError, MessageBatch, RetryOptions};
use tokio::sync::OnceCell;

use crate::QueuedDelivery;

type Opening = Pin<Box<dyn Future<Output = Result<Database, HandlerError>> + Send>>;
type Open = Arc<dyn Fn() -> Opening + Send + Sync>;

/// Records `github-events` deliveries in the `github_events` table.
///
/// Built with [`EventRecorder::lazy`], it opens the relational store on the first batch, so a
/// process that receives no webhook never pays for it (the store's driver and pool are a good part
/// of an idle process's pages); a batch that finds it unopenable is retried.
#[derive(Clone)]
pub struct EventRecorder {
    db: Arc<OnceCell<Database>>,
    open: Open,
}

impl std::fmt::Debug for EventRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventRecorder").field("opened", &self.db.initialized()).finish()
    }
}

impl EventRecorder {
    /// A recorder into `db`, already open.
    pub fn new(db: Database) -> EventRecorder {
        let opened = db.clone();
        EventRecorder {
            db: Arc::new(OnceCell::new_with(Some(db))),
            open: Arc::new(move || {
                let db = opened.clone();
                Box::pin(async move { Ok(db) })
            }),
        }
    }

    /// A recorder that opens its store with `open` when the first batch comes.
    pub fn lazy<F, Fut, E>(open: F) -> EventRecorder
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Database, E>> + Send + 'static,
        E: Into<HandlerError>,
    {
        EventRecorder {
            db: Arc::new(OnceCell::new()),
            open: Arc::new(move || {
                let opening = open();
                Box::pin(async move { opening.await.map_err(Into::into) })
            }),
        }
    }

    async fn db(&self) -> Result<&Database, HandlerError> {
        self.db.get_or_try_init(|| (self.open)()).await
    }
}

#[async_trait]
impl BatchHandler for EventRecorder {
    async fn handle(&self, batch: MessageBatch) -> Result<(), HandlerError> {
        let now = ledge_db::migrations::now_ms();
        let mut rows = Vec::with_capacity(batch.messages.len());
        for message in &batch.messages {
            match message.json::<QueuedDelivery>() {
                Ok(delivery) => {
                    let received_at = message
                        .timestamp
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis() as i64)
                        .unwrap_or(now);
                    rows.push((delivery, received_at));
                }
                Err(error) => {
                    // Not a delivery this version understands: retried, then dead-lettered.
                    tracing::warn!(id = %message.id, %error, "github-events message is malformed");
                    message.retry_because(
                        RetryOptions::default(),
                        format!("not a github-events delivery: {error}"),
                    )?;
                }
            }
        }
        if !rows.is_empty() {
            insert(self.db().await?, &rows, now).await?;
        }
        // Every message not retried above is acked when the handler returns Ok.
        Ok(())
    }
}

const COLUMNS: usize = 9;

/// Records the deliveries with one multi-row statement; a delivery recorded before is left as is.
async fn insert(db: &Database, rows: &[(QueuedDelivery, i64)], now: i64) -> Result<(), HandlerError> {
    let mut sql = String::from(
        "INSERT INTO github_events
           (delivery, event, action, installation, repository_id, repository, payload_key, received_at, recorded_at)
         VALUES ",
    );
    for i in 0..rows.len() {
        let n = i * COLUMNS;
        let placeholders: Vec<String> = (1..=COLUMNS).map(|c| format!("${}", n + c)).collect();
        sql.push_str(if i == 0 { "(" } else { ", (" });
        sql.push_str(&placeholders.join(", "));
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (delivery) DO NOTHING");
    // Only numbered placeholders are interpolated; every value is bound.
    let mut query = ledge_db::sqlx::query(ledge_db::sqlx::AssertSqlSafe(sql));
    for (d, received_at) in rows {
        let env = &d.envelope;
        query = query
            .bind(env.delivery.clone())
            .bind(env.event.clone())
            .bind(env.action.clone())
            .bind(env.installation.map(|i| i as i64))
            .bind(env.repository.as_ref().map(|r| r.id as i64))
            .bind(env.repository.as_ref().map(|r| r.full_name.clone()))
            .bind(d.payload_key.clone())
            .bind(*received_at)
            .bind(now);
    }
    query.execute(db.pool()).await?;
    Ok(())
}
