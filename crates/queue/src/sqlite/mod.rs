//! The embedded driver: every queue in one SQLite database (the queue name is a column), written
//! through `ledge_sqlite`'s group-commit writer, woken in-process by a `Notify` per queue.
//!
//! A send is appended to the [`inbox`] (one `write(2)` on the sender's thread, after a dedup
//! check) and answered; whoever reads the queue next — a claim, `ready`, `depth`, `peek`, the
//! purge — first moves the inbox into the tables in large transactions. A claim is one write job
//! that leases the oldest visible rows (`visible_at = now + lease`, `attempts + 1`, a fresh lease
//! token); a batch is settled in one write job whose statements all require the lease token still
//! to match. The driver is single-process: opening it drains what a previous process left in the
//! inbox and releases every lease it held, so unsettled messages are redelivered after a restart.
//!
//! Bodies of 512 bytes or more are stored LZ4-compressed when that saves at least an eighth
//! (`body_encoding` 1): webhook payloads shrink ~5x, and every byte not written to the WAL is a
//! byte not copied again by the checkpoint. Compression runs when the inbox is drained (in a task
//! on the drainer's runtime: the consumers', at low priority in `ledge serve`, or a sender's when
//! it finds the inbox at its bound), decompression on the claimer's task; never on the writer
//! thread.

mod inbox;
mod key_filter;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use ledge_sqlite::rusqlite::params;
use ledge_sqlite::{Database, Durability};
use tokio::sync::Notify;
use uuid::Uuid;

use self::inbox::Inbox;
use crate::{
    ContentType, DeadLetterInfo, LeaseToken, LeasedMessage, MessageBody, MessageId, NewMessage, Producer,
    PurgeReport, QueueBackend, QueueConfig, QueueDepth, QueueError, QueueProducer, QueuedMessage, ReadyState,
    SendOutcome, SettleAction, Settlement, now_ms,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS queue_messages (
    id BLOB NOT NULL PRIMARY KEY,          -- UUIDv7: its first 48 bits are the send time in ms
    queue TEXT NOT NULL,
    visible_at INTEGER NOT NULL,           -- epoch ms; ready when <= now
    sent_at INTEGER NOT NULL,              -- epoch ms
    attempts INTEGER NOT NULL DEFAULT 0,   -- claims so far on this queue
    lease_token INTEGER,                   -- the current claim's token, NULL when not leased
    content_type INTEGER NOT NULL,         -- 0 json, 1 text, 2 bytes
    last_error TEXT,
    dead_letter_source TEXT,               -- set when moved here as a dead letter
    dead_letter_attempts INTEGER,
    dead_letter_error TEXT,
    body_encoding INTEGER NOT NULL DEFAULT 0, -- 0 as sent, 1 LZ4 block with its size prepended
    body BLOB NOT NULL                     -- last: reading the other columns skips its overflow pages
);
CREATE INDEX IF NOT EXISTS queue_messages_by_visibility ON queue_messages (queue, visible_at);
CREATE TABLE IF NOT EXISTS queue_dedup_keys (
    queue TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (queue, dedup_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS queue_dedup_keys_by_expiry ON queue_dedup_keys (expires_at);
";

/// Takes the dedup key unless it is held and unexpired: 0 rows changed means duplicate.
const TAKE_DEDUP_KEY: &str = "INSERT INTO queue_dedup_keys (queue, dedup_key, expires_at) VALUES (?1, ?2, ?3)
    ON CONFLICT (queue, dedup_key) DO UPDATE SET expires_at = excluded.expires_at
    WHERE queue_dedup_keys.expires_at <= ?4";
const INSERT_MESSAGE: &str =
    "INSERT INTO queue_messages (id, queue, visible_at, sent_at, content_type, body_encoding, body)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
const CLAIM: &str = "UPDATE queue_messages SET attempts = attempts + 1, lease_token = ?1, visible_at = ?2
    WHERE id IN (SELECT id FROM queue_messages WHERE queue = ?3 AND visible_at <= ?4 ORDER BY visible_at LIMIT ?5)
    RETURNING id, sent_at, attempts, content_type, dead_letter_source, dead_letter_attempts, dead_letter_error,
              body_encoding, body";
const DELETE_LEASED: &str = "DELETE FROM queue_messages WHERE id = ?1 AND lease_token = ?2";
const RETRY_LEASED: &str = "UPDATE queue_messages
    SET lease_token = NULL, visible_at = ?3, last_error = coalesce(?4, last_error)
    WHERE id = ?1 AND lease_token = ?2";
const DEAD_LETTER_LEASED: &str = "UPDATE queue_messages
    SET queue = ?3, visible_at = ?4, lease_token = NULL, attempts = 0, dead_letter_source = queue,
        dead_letter_attempts = attempts, dead_letter_error = coalesce(?5, last_error), last_error = NULL
    WHERE id = ?1 AND lease_token = ?2";
const EXTEND_LEASE: &str = "UPDATE queue_messages SET visible_at = ?3 WHERE id = ?1 AND lease_token = ?2";

/// Options of [`SqliteQueues::open`].
#[derive(Debug, Clone)]
pub struct SqliteQueueOptions {
    pub config: QueueConfig,
    pub durability: Durability,
    /// How often expired messages and dedup keys are purged (default 60 s). The purge runs on the
    /// tokio runtime `open` is called from; outside one, call `purge_expired` yourself.
    pub purge_interval: Duration,
    /// Whether the database's writer and checkpointer threads run at the lowest CPU priority
    /// ([`ledge_sqlite::Options::background`]): their work is the consumers' (draining the inbox,
    /// claims, acks), so a server lowers it to the consumers' priority. Default false.
    pub background: bool,
}

impl SqliteQueueOptions {
    pub fn new(config: QueueConfig) -> SqliteQueueOptions {
        SqliteQueueOptions {
            config,
            durability: Durability::default(),
            purge_interval: Duration::from_secs(60),
            background: false,
        }
    }
}

/// The embedded queue driver.
pub struct SqliteQueues {
    db: Database,
    inbox: Arc<Inbox>,
    config: QueueConfig,
    /// One entry per declared queue: its wake-up for consumers.
    queues: HashMap<String, Arc<QueueState>>,
}

struct QueueState {
    name: Arc<str>,
    sent: Notify,
}

impl std::fmt::Debug for SqliteQueues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteQueues").field("path", &self.db.path()).finish()
    }
}

impl SqliteQueues {
    /// Opens (creating if needed) the queues database at `path` and releases every lease left by
    /// a previous process. The data directory must not be used by another process at once.
    pub fn open(
        path: impl AsRef<Path>,
        options: SqliteQueueOptions,
    ) -> Result<Arc<SqliteQueues>, QueueError> {
        let SqliteQueueOptions { config, durability, purge_interval, background } = options;
        config.validate()?;
        if purge_interval.is_zero() {
            return Err(QueueError::invalid("purge_interval", "must be more than 0"));
        }
        let sqlite_options =
            ledge_sqlite::Options { durability, background, ..ledge_sqlite::Options::default() };
        let path = path.as_ref();
        let db = Database::open(path, &format!("{SCHEMA}{}", inbox::SCHEMA), sqlite_options)?;
        let dedup_window = millis(config.dedup_window());
        let inbox = Arc::new(Inbox::open(inbox_dir(path), &db, durability, dedup_window)?);
        db.write_blocking(|txn| -> Result<usize, QueueError> {
            Ok(txn.execute(
                "UPDATE queue_messages SET lease_token = NULL, visible_at = min(visible_at, ?1)
                 WHERE lease_token IS NOT NULL",
                [now_ms()],
            )?)
        })?;
        let queues = config
            .queues
            .iter()
            .map(|q| {
                (q.name.clone(), Arc::new(QueueState { name: q.name.as_str().into(), sent: Notify::new() }))
            })
            .collect();
        let this = Arc::new(SqliteQueues { db, inbox, config, queues });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(purge_periodically(Arc::downgrade(&this), purge_interval));
        }
        Ok(this)
    }

    /// A producer for a declared queue.
    pub fn producer(self: &Arc<Self>, queue: &str) -> Result<Arc<dyn QueueProducer>, QueueError> {
        Ok(Arc::new(Producer::new(self.clone(), queue)?))
    }

    fn state(&self, queue: &str) -> Result<&Arc<QueueState>, QueueError> {
        self.queues.get(queue).ok_or_else(|| QueueError::UnknownQueue(queue.to_owned()))
    }

    /// Moves every message sent so far from the inbox into the tables.
    async fn drain_inbox(&self) -> Result<(), QueueError> {
        self.inbox.drain(&self.db, millis(self.config.dedup_window())).await
    }

    /// Messages sent and not yet moved into the tables (they are visible to the next claim).
    pub fn inbox_backlog(&self) -> u64 {
        self.inbox.pending_messages()
    }
}

/// The inbox of the database at `path`: `queues.db` → `queues.inbox/`, beside it.
fn inbox_dir(path: &Path) -> std::path::PathBuf {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("queues");
    path.with_file_name(format!("{stem}.inbox"))
}

async fn purge_periodically(queues: Weak<SqliteQueues>, every: Duration) {
    // The first purge comes one interval after open, not at once: open stays cheap.
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        ticker.tick().await;
        let Some(queues) = queues.upgrade() else { return };
        match queues.purge_expired().await {
            Ok(report) if report != PurgeReport::default() => {
                tracing::info!(
                    messages = report.messages,
                    dedup_keys = report.dedup_keys,
                    "purged expired queue data"
                );
            }
            Ok(_) => {}
            Err(QueueError::Closed) => return,
            Err(error) => tracing::warn!(%error, "queue purge failed"),
        }
    }
}

fn content_type_code(content_type: ContentType) -> i64 {
    match content_type {
        ContentType::Json => 0,
        ContentType::Text => 1,
        ContentType::Bytes => 2,
    }
}

fn content_type_from_code(code: i64) -> Result<ContentType, QueueError> {
    match code {
        0 => Ok(ContentType::Json),
        1 => Ok(ContentType::Text),
        2 => Ok(ContentType::Bytes),
        other => Err(QueueError::Backend(format!("unknown stored content type {other}").into())),
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn system_time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn message_id(bytes: &[u8]) -> Result<MessageId, QueueError> {
    Uuid::from_slice(bytes)
        .map(MessageId::from_uuid)
        .map_err(|e| QueueError::Backend(format!("bad stored message id: {e}").into()))
}

fn attempts(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn dead_letter(
    source: Option<String>,
    attempts_there: Option<i64>,
    error: Option<String>,
) -> Option<DeadLetterInfo> {
    source.map(|source_queue| DeadLetterInfo {
        source_queue,
        attempts: attempts(attempts_there.unwrap_or(0)),
        last_error: error,
    })
}

/// The smallest UUIDv7 of the millisecond `ms`: every id sent before `ms` sorts below it.
/// A message body as the table stores it.
struct StoredBody {
    encoding: i64,
    bytes: Bytes,
}

impl StoredBody {
    const RAW: i64 = 0;
    const LZ4: i64 = 1;

    fn encode(body: &Bytes) -> StoredBody {
        if body.len() >= 512 {
            let compressed = lz4_flex::block::compress_prepend_size(body);
            if compressed.len() + compressed.len() / 8 < body.len() {
                return StoredBody { encoding: Self::LZ4, bytes: compressed.into() };
            }
        }
        StoredBody { encoding: Self::RAW, bytes: body.clone() }
    }

    fn decode(encoding: i64, stored: &[u8]) -> Result<Bytes, QueueError> {
        match encoding {
            Self::RAW => Ok(Bytes::copy_from_slice(stored)),
            Self::LZ4 => lz4_flex::block::decompress_size_prepended(stored)
                .map(Bytes::from)
                .map_err(|e| QueueError::Backend(format!("a stored message body is corrupt: {e}").into())),
            other => Err(QueueError::Backend(format!("unknown body encoding {other}").into())),
        }
    }
}

fn first_id_of_millisecond(ms: i64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..6].copy_from_slice(&u64::try_from(ms).unwrap_or(0).to_be_bytes()[2..]);
    id
}

#[async_trait]
impl QueueBackend for SqliteQueues {
    fn config(&self) -> &QueueConfig {
        &self.config
    }

    async fn send(&self, queue: &str, messages: Vec<NewMessage>) -> Result<Vec<SendOutcome>, QueueError> {
        let state = self.state(queue)?.clone();
        let dedup_window = millis(self.config.dedup_window());
        if self.inbox.is_full() {
            // The consumers are far behind: this sender moves some of the backlog into the tables.
            self.inbox.drain_below_bounds(&self.db, dedup_window).await?;
        }
        let outcomes = self.inbox.append(&self.db, &state.name, messages, dedup_window).await?;
        if outcomes.iter().any(|o| matches!(o, SendOutcome::Queued { .. })) {
            state.sent.notify_one();
        }
        Ok(outcomes)
    }

    async fn ready(&self, queue: &str, max: usize) -> Result<ReadyState, QueueError> {
        let queue = self.state(queue)?.name.clone();
        self.drain_inbox().await?;
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        self.db
            .read(move |conn| -> Result<ReadyState, QueueError> {
                let now = now_ms();
                let ready: i64 = conn
                    .prepare_cached(
                        "SELECT count(*) FROM
                         (SELECT 1 FROM queue_messages WHERE queue = ?1 AND visible_at <= ?2 LIMIT ?3)",
                    )?
                    .query_row(params![&*queue, now, max], |row| row.get(0))?;
                let oldest: Option<i64> = conn
                    .prepare_cached("SELECT min(visible_at) FROM queue_messages WHERE queue = ?1")?
                    .query_row(params![&*queue], |row| row.get(0))?;
                let next: Option<i64> = conn
                    .prepare_cached(
                        "SELECT min(visible_at) FROM queue_messages WHERE queue = ?1 AND visible_at > ?2",
                    )?
                    .query_row(params![&*queue, now], |row| row.get(0))?;
                Ok(ReadyState {
                    ready: usize::try_from(ready).unwrap_or(0),
                    oldest_ready_at_ms: oldest.filter(|&t| t <= now),
                    next_visible_at_ms: next,
                })
            })
            .await
    }

    async fn wait_for_messages(&self, queue: &str) {
        match self.queues.get(queue) {
            Some(state) => state.sent.notified().await,
            None => std::future::pending().await,
        }
    }

    async fn claim(
        &self,
        queue: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<LeasedMessage>, QueueError> {
        let queue = self.state(queue)?.name.clone();
        self.drain_inbox().await?;
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let lease = millis(lease);
        self.db
            .write(move |txn| -> Result<Vec<(LeasedMessage, i64)>, QueueError> {
                let now = now_ms();
                let token = Uuid::new_v4().as_u64_pair().0 as i64;
                let mut claim = txn.prepare_cached(CLAIM)?;
                let mut rows = claim.query(params![token, now.saturating_add(lease), &*queue, now, max])?;
                let mut leased = Vec::new();
                while let Some(row) = rows.next()? {
                    let id = message_id(row.get_ref(0)?.as_blob()?)?;
                    let content_type = content_type_from_code(row.get(3)?)?;
                    let encoding: i64 = row.get(7)?;
                    leased.push((
                        LeasedMessage {
                            id,
                            timestamp: system_time(row.get(1)?),
                            content_type,
                            // Still as stored: decoded below, off the writer thread.
                            body: Bytes::copy_from_slice(row.get_ref(8)?.as_blob()?),
                            attempts: attempts(row.get(2)?),
                            lease: LeaseToken(token),
                            dead_letter: dead_letter(row.get(4)?, row.get(5)?, row.get(6)?),
                        },
                        encoding,
                    ));
                }
                Ok(leased)
            })
            .await?
            .into_iter()
            .map(|(mut message, encoding)| {
                if encoding != StoredBody::RAW {
                    message.body = StoredBody::decode(encoding, &message.body)?;
                }
                Ok(message)
            })
            .collect::<Result<Vec<_>, QueueError>>()
            .map(|mut leased| {
                // RETURNING comes in no particular order; deliver oldest first (best effort).
                leased.sort_by_key(|m| (m.timestamp, m.id));
                leased
            })
    }

    async fn extend_leases(
        &self,
        queue: &str,
        leases: &[(MessageId, LeaseToken)],
        lease: Duration,
    ) -> Result<(), QueueError> {
        self.state(queue)?;
        let leases = leases.to_vec();
        let lease = millis(lease);
        self.db
            .write(move |txn| -> Result<(), QueueError> {
                let visible_at = now_ms().saturating_add(lease);
                let mut extend = txn.prepare_cached(EXTEND_LEASE)?;
                for (id, token) in leases {
                    extend.execute(params![&id.as_uuid().as_bytes()[..], token.0, visible_at])?;
                }
                Ok(())
            })
            .await
    }

    async fn settle(&self, queue: &str, settlements: Vec<Settlement>) -> Result<(), QueueError> {
        let state = self.state(queue)?.clone();
        let mut woken = Vec::new();
        for settlement in &settlements {
            match &settlement.action {
                SettleAction::DeadLetter { queue, .. } => woken.push(self.state(queue)?.clone()),
                SettleAction::Retry { .. } => woken.push(state.clone()),
                SettleAction::Ack | SettleAction::Discard => {}
            }
        }
        if settlements.is_empty() {
            return Ok(());
        }
        self.db
            .write(move |txn| -> Result<(), QueueError> {
                let now = now_ms();
                for Settlement { id, lease, action } in settlements {
                    let id = &id.as_uuid().as_bytes()[..];
                    match action {
                        SettleAction::Ack | SettleAction::Discard => {
                            txn.prepare_cached(DELETE_LEASED)?.execute(params![id, lease.0])?;
                        }
                        SettleAction::Retry { delay, error } => {
                            let visible_at = now.saturating_add(millis(delay));
                            txn.prepare_cached(RETRY_LEASED)?
                                .execute(params![id, lease.0, visible_at, error])?;
                        }
                        SettleAction::DeadLetter { queue, error } => {
                            txn.prepare_cached(DEAD_LETTER_LEASED)?
                                .execute(params![id, lease.0, queue, now, error])?;
                        }
                    }
                }
                Ok(())
            })
            .await?;
        for state in woken {
            state.sent.notify_one();
        }
        Ok(())
    }

    async fn depth(&self, queue: &str) -> Result<QueueDepth, QueueError> {
        let queue = self.state(queue)?.name.clone();
        self.drain_inbox().await?;
        self.db
            .read(move |conn| -> Result<QueueDepth, QueueError> {
                let (ready, delayed, in_flight): (i64, i64, i64) = conn
                    .prepare_cached(
                        "SELECT coalesce(sum(visible_at <= ?2), 0),
                                coalesce(sum(visible_at > ?2 AND lease_token IS NULL), 0),
                                coalesce(sum(visible_at > ?2 AND lease_token IS NOT NULL), 0)
                         FROM queue_messages WHERE queue = ?1",
                    )?
                    .query_row(params![&*queue, now_ms()], |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                    })?;
                let count = |n: i64| u64::try_from(n).unwrap_or(0);
                Ok(QueueDepth { ready: count(ready), delayed: count(delayed), in_flight: count(in_flight) })
            })
            .await
    }

    async fn peek(&self, queue: &str, limit: usize) -> Result<Vec<QueuedMessage>, QueueError> {
        let queue = self.state(queue)?.name.clone();
        self.drain_inbox().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .read(move |conn| -> Result<Vec<QueuedMessage>, QueueError> {
                let now = now_ms();
                let mut select = conn.prepare_cached(
                    "SELECT id, sent_at, attempts, content_type, dead_letter_source, dead_letter_attempts,
                            dead_letter_error, last_error, visible_at, lease_token IS NOT NULL AND visible_at > ?2,
                            body, body_encoding
                     FROM queue_messages WHERE queue = ?1 ORDER BY id LIMIT ?3",
                )?;
                let mut rows = select.query(params![&*queue, now, limit])?;
                let mut messages = Vec::new();
                while let Some(row) = rows.next()? {
                    let content_type = content_type_from_code(row.get(3)?)?;
                    let body = StoredBody::decode(row.get(11)?, row.get_ref(10)?.as_blob()?)?;
                    messages.push(QueuedMessage {
                        id: message_id(row.get_ref(0)?.as_blob()?)?,
                        timestamp: system_time(row.get(1)?),
                        body: MessageBody::decode(content_type, body),
                        attempts: attempts(row.get(2)?),
                        visible_at: system_time(row.get(8)?),
                        leased: row.get(9)?,
                        last_error: row.get(7)?,
                        dead_letter: dead_letter(row.get(4)?, row.get(5)?, row.get(6)?),
                    });
                }
                Ok(messages)
            })
            .await
    }

    async fn purge_expired(&self) -> Result<PurgeReport, QueueError> {
        self.drain_inbox().await?;
        let retention = millis(self.config.retention);
        let report = self
            .db
            .write(move |txn| -> Result<PurgeReport, QueueError> {
                let now = now_ms();
                let cutoff = first_id_of_millisecond(now.saturating_sub(retention));
                let messages = txn.execute("DELETE FROM queue_messages WHERE id < ?1", [&cutoff[..]])?;
                let dedup_keys = txn.execute("DELETE FROM queue_dedup_keys WHERE expires_at <= ?1", [now])?;
                Ok(PurgeReport { messages: messages as u64, dedup_keys: dedup_keys as u64 })
            })
            .await?;
        self.inbox.rebuild_key_filter_if_overfull(&self.db).await?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sent_before_a_millisecond_sort_below_its_first_id() {
        let now = now_ms();
        let id = Uuid::now_v7();
        let cutoff = first_id_of_millisecond(now + 2);
        assert!(id.as_bytes()[..] < cutoff[..]);
        let cutoff = first_id_of_millisecond(now - 2);
        assert!(id.as_bytes()[..] > cutoff[..]);
    }
}
