//! The inbox: an append-only log that sends are persisted to before they answer, moved into the
//! queue tables later, in large transactions, by whoever reads the queue next.
//!
//! Why: a send is on the request path of every webhook, and a SQLite insert (a hand-off to the
//! writer thread, five B-tree updates, WAL frames, a checkpoint later) costs several times what the
//! rest of the request does. An append to a file costs one `write(2)` on the sender's own thread.
//! The queue tables stay the one place consumers read: `claim`, `ready`, `depth`, `peek` and the
//! purge first move whatever the inbox holds into them ([`Inbox::drain`]).
//!
//! # Format
//!
//! Segment files `inbox/<number:020>.log`, each a sequence of records, one per send call (so a
//! batch send is all-or-none):
//!
//! ```text
//! record  = len:u32le crc32:u32le payload[len]
//! payload = version:u8 (=1) queue_len:u16le queue count:u32le message*
//! message = id:[16] sent_at:i64le visible_at:i64le content_type:u8
//!           key_len:u16le key (key_len = 0xFFFF: no key) body_len:u32le body
//! ```
//!
//! # Invariants
//!
//! * A record is complete in the file before its send returns, and the writer's end offset
//!   (`len`) only ever covers complete records: drains read up to it, never past.
//! * Group write: a send encodes its record into the writer's buffer, lets the other senders that
//!   are ready run (one `yield`), then writes the buffer — its own record and every one buffered
//!   since — unless another sender already did. One `write(2)` of many records costs about what
//!   one record did (the fixed cost of the call and of partly written pages dominates at webhook
//!   sizes). A buffered record's dedup key is pending from the moment it is buffered; if the write
//!   fails, every record of that buffer is dropped, its keys released and its senders answered
//!   with the error, so a send either answered "queued" with its record in the file or failed.
//!   A sender dropped before its record is written (a closed connection) writes it on drop.
//! * `queue_inbox` (one row in the database) holds the position up to which records are in the
//!   queue tables; it moves in the same transaction as the rows it accounts for, so a crash at any
//!   point neither loses nor duplicates a record.
//! * A dedup key is held either by the `queue_dedup_keys` table or by the inbox's pending set, and
//!   a sender checks both; `generation` tells a sender that a drain moved keys from one to the
//!   other between its two checks, so that it checks the table again. The table is read only for
//!   keys that the writer's [`KeyFilter`] of the table's keys may hold: a drain adds its keys to the
//!   filter in the same critical section in which it releases them from the pending set.
//!
//! Durability: with [`Durability::Process`] a record is in the kernel's page cache when its send
//! returns (it survives the process, not a power loss — as SQLite's `synchronous=NORMAL`); with
//! [`Durability::PowerLoss`] the send also waits for an `fdatasync` that covers it (one sync for
//! every sender waiting at once).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use ledge_sqlite::rusqlite::{OptionalExtension, Transaction, params};
use ledge_sqlite::{Database, Durability};
use uuid::Uuid;

use super::key_filter::KeyFilter;
use super::{INSERT_MESSAGE, StoredBody, TAKE_DEDUP_KEY, content_type_code};
use crate::{MessageId, NewMessage, QueueError, SendOutcome, now_ms};

/// A segment is closed and a new one started once it holds this many bytes.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Largest record accepted when reading (a send is at most a batch: 256 KB + metadata).
const MAX_RECORD_BYTES: u32 = 16 * 1024 * 1024;
/// How far the inbox may run ahead of the tables, and in what steps it is drained.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    /// Pending bytes past which a sender drains the inbox itself before it appends: the backlog a
    /// burst may leave for the consumers is bounded, and a producer that outruns them slows down.
    pending_bytes: u64,
    /// Pending messages past which a sender drains first (bounds the pending dedup keys in memory).
    pending_messages: u64,
    /// Most record bytes one drain transaction moves into the tables.
    chunk_bytes: usize,
}

const BOUNDS: Bounds =
    Bounds { pending_bytes: 1024 * 1024 * 1024, pending_messages: 262_144, chunk_bytes: 4 * 1024 * 1024 };
const NO_KEY: u16 = u16::MAX;
const VERSION: u8 = 1;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS queue_inbox (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    segment INTEGER NOT NULL,              -- records before (segment, offset) are in the tables
    offset INTEGER NOT NULL
);
";

const HOLDS_DEDUP_KEY: &str =
    "SELECT 1 FROM queue_dedup_keys WHERE queue = ?1 AND dedup_key = ?2 AND expires_at > ?3";

/// Where the next record to drain starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Position {
    segment: u64,
    offset: u64,
}

/// The writer's side, behind one lock: held for the duplicate check and the append.
struct Writer {
    file: File,
    segment: u64,
    /// End of the last complete record in `segment`.
    len: u64,
    /// Dedup keys of records not drained yet (buffered or written), by queue, with when they
    /// expire (epoch ms).
    pending_keys: HashMap<Arc<str>, HashMap<Box<str>, i64>>,
    /// Every key the `queue_dedup_keys` table may hold (and a few more).
    table_keys: KeyFilter,
    /// Records encoded and not written yet, back to back (see "Group write").
    buffer: Vec<u8>,
    /// Messages in `buffer`, and the dedup keys they took (released if the write fails).
    buffered_messages: u64,
    buffered_keys: Vec<(Arc<str>, Box<str>, i64)>,
    /// Sequence number of the last record buffered, and of the last one written or failed.
    buffered_seq: u64,
    written_seq: u64,
    /// The last few failed writes: the record sequence numbers they dropped, and why.
    failures: std::collections::VecDeque<(std::ops::RangeInclusive<u64>, String)>,
}

/// How many failed writes are remembered for the senders still to learn of them (a sender looks
/// right after its one `yield`, so a handful is plenty).
const REMEMBERED_FAILURES: usize = 64;

impl Writer {
    fn new(file: File, segment: u64, table_keys: KeyFilter) -> Writer {
        Writer {
            file,
            segment,
            len: 0,
            pending_keys: HashMap::new(),
            table_keys,
            buffer: Vec::new(),
            buffered_messages: 0,
            buffered_keys: Vec::new(),
            buffered_seq: 0,
            written_seq: 0,
            failures: std::collections::VecDeque::new(),
        }
    }
}

pub(super) struct Inbox {
    dir: PathBuf,
    durability: Durability,
    writer: Mutex<Writer>,
    /// Bumped (under the writer lock) each time a drain moved dedup keys into the table.
    generation: AtomicU64,
    /// Messages appended and not drained yet, and their records' bytes.
    pending_messages: AtomicU64,
    pending_bytes: AtomicU64,
    /// One drain at a time; holds the drained position.
    drained: tokio::sync::Mutex<Position>,
    /// Bytes known to be synced, in `Durability::PowerLoss` (segment, offset).
    synced: Mutex<Position>,
    bounds: Bounds,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox").field("dir", &self.dir).finish()
    }
}

/// One message read back from a record, ready to be inserted.
struct Drained {
    queue: Arc<str>,
    id: [u8; 16],
    sent_at: i64,
    visible_at: i64,
    content_type: i64,
    key: Option<Box<str>>,
    body: StoredBody,
}

fn io_error(path: &Path, error: std::io::Error) -> QueueError {
    QueueError::Backend(format!("queue inbox {}: {error}", path.display()).into())
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:020}.log"))
}

/// The segments in `dir`, in order.
fn list_segments(dir: &Path) -> Result<Vec<u64>, QueueError> {
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        let name = entry.file_name();
        if let Some(number) = name.to_str().and_then(|n| n.strip_suffix(".log")).and_then(|n| n.parse().ok())
        {
            segments.push(number);
        }
    }
    segments.sort_unstable();
    Ok(segments)
}

/// Appends one record to `out`.
fn encode_record(out: &mut Vec<u8>, queue: &str, messages: &[(Uuid, i64, i64, &NewMessage)]) {
    let body_bytes: usize = messages
        .iter()
        .map(|(.., m)| 16 + 8 + 8 + 1 + 2 + m.dedup_key.as_ref().map_or(0, |k| k.len()) + 4 + m.body.len())
        .sum();
    let start = out.len();
    out.reserve(8 + 1 + 2 + queue.len() + 4 + body_bytes);
    let record = out;
    record.extend_from_slice(&[0; 8]);
    record.push(VERSION);
    record.extend_from_slice(&(queue.len() as u16).to_le_bytes());
    record.extend_from_slice(queue.as_bytes());
    record.extend_from_slice(&(messages.len() as u32).to_le_bytes());
    for (id, sent_at, visible_at, message) in messages {
        record.extend_from_slice(id.as_bytes());
        record.extend_from_slice(&sent_at.to_le_bytes());
        record.extend_from_slice(&visible_at.to_le_bytes());
        record.push(content_type_code(message.content_type) as u8);
        match &message.dedup_key {
            Some(key) => {
                record.extend_from_slice(&(key.len() as u16).to_le_bytes());
                record.extend_from_slice(key.as_bytes());
            }
            None => record.extend_from_slice(&NO_KEY.to_le_bytes()),
        }
        record.extend_from_slice(&(message.body.len() as u32).to_le_bytes());
        record.extend_from_slice(&message.body);
    }
    let payload_len = (record.len() - start - 8) as u32;
    let crc = crc32fast::hash(&record[start + 8..]);
    record[start..start + 4].copy_from_slice(&payload_len.to_le_bytes());
    record[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// A buffered record whose sender has not seen it written: written on drop if the sender goes
/// away first (a cancelled request), so that no key stays pending for a record only in memory.
struct Unwritten<'a> {
    inbox: &'a Inbox,
    seq: Option<u64>,
}

impl Unwritten<'_> {
    fn write(mut self) -> Result<Position, QueueError> {
        let seq = self.seq.take().expect("written once");
        self.inbox.write_through(seq)
    }
}

impl Drop for Unwritten<'_> {
    fn drop(&mut self) {
        if let Some(seq) = self.seq.take()
            && let Err(error) = self.inbox.write_through(seq)
        {
            tracing::warn!(%error, "queue inbox: a cancelled send's record could not be written");
        }
    }
}

/// A cursor over a record's payload; every read is bounds-checked.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i64(&mut self) -> Option<i64> {
        self.take(8).and_then(|b| b.try_into().ok()).map(i64::from_le_bytes)
    }
}

/// Decodes one record's payload (its CRC already checked).
fn decode_payload(payload: &[u8], queues: &mut HashMap<Box<str>, Arc<str>>) -> Option<Vec<Drained>> {
    let mut cursor = Cursor(payload);
    if cursor.u8()? != VERSION {
        return None;
    }
    let queue_len = usize::from(cursor.u16()?);
    let queue = std::str::from_utf8(cursor.take(queue_len)?).ok()?;
    let queue = match queues.get(queue) {
        Some(q) => q.clone(),
        None => {
            let q: Arc<str> = queue.into();
            queues.insert(queue.into(), q.clone());
            q
        }
    };
    let count = cursor.u32()? as usize;
    let mut messages = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let id: [u8; 16] = cursor.take(16)?.try_into().ok()?;
        let sent_at = cursor.i64()?;
        let visible_at = cursor.i64()?;
        let content_type = i64::from(cursor.u8()?);
        let key = match cursor.u16()? {
            NO_KEY => None,
            len => Some(std::str::from_utf8(cursor.take(usize::from(len))?).ok()?.into()),
        };
        let body_len = cursor.u32()? as usize;
        let body = StoredBody::encode(&Bytes::copy_from_slice(cursor.take(body_len)?));
        messages.push(Drained { queue: queue.clone(), id, sent_at, visible_at, content_type, key, body });
    }
    cursor.0.is_empty().then_some(messages)
}

/// Reads the complete, intact records of `segment` in `[from, until)` (until `None`: to the end
/// of the file), at most about `max_bytes` of them. Returns the messages and the offset after the
/// last record read. Stops at the first torn or corrupt record.
fn read_records(
    dir: &Path,
    segment: u64,
    from: u64,
    until: Option<u64>,
    max_bytes: usize,
    queues: &mut HashMap<Box<str>, Arc<str>>,
) -> Result<(Vec<Drained>, u64, bool), QueueError> {
    let path = segment_path(dir, segment);
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), from, false)),
        Err(e) => return Err(io_error(&path, e)),
    };
    let end = match until {
        Some(end) => end,
        None => file.metadata().map_err(|e| io_error(&path, e))?.len(),
    };
    file.seek(SeekFrom::Start(from)).map_err(|e| io_error(&path, e))?;
    let mut reader = std::io::BufReader::with_capacity(256 * 1024, file.take(end.saturating_sub(from)));
    let mut offset = from;
    let mut read = 0usize;
    let mut messages = Vec::new();
    let mut header = [0u8; 8];
    let mut payload = Vec::new();
    let mut corrupt = false;
    while read < max_bytes && offset < end {
        if end - offset < 8 || reader.read_exact(&mut header).is_err() {
            corrupt = true;
            break;
        }
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len > MAX_RECORD_BYTES || u64::from(len) > end - offset - 8 {
            corrupt = true;
            break;
        }
        payload.resize(len as usize, 0);
        if reader.read_exact(&mut payload).is_err() || crc32fast::hash(&payload) != crc {
            corrupt = true;
            break;
        }
        let Some(decoded) = decode_payload(&payload, queues) else {
            corrupt = true;
            break;
        };
        messages.extend(decoded);
        offset += 8 + u64::from(len);
        read += 8 + len as usize;
    }
    Ok((messages, offset, corrupt))
}

/// Inserts drained messages and moves the position, in one transaction.
fn insert_drained(
    txn: &Transaction<'_>,
    messages: &[Drained],
    dedup_window: i64,
    to: Position,
) -> Result<(), QueueError> {
    let now = now_ms();
    for message in messages {
        if let Some(key) = &message.key {
            let mut take = txn.prepare_cached(TAKE_DEDUP_KEY)?;
            let expires = message.sent_at.saturating_add(dedup_window);
            if take.execute(params![&*message.queue, &**key, expires, now])? == 0 {
                // The send answered "queued": keep the message whatever the table says.
                tracing::warn!(queue = %message.queue, key = %key, "inbox message's dedup key already held");
            }
        }
        txn.prepare_cached(INSERT_MESSAGE)?.execute(params![
            &message.id[..],
            &*message.queue,
            message.visible_at,
            message.sent_at,
            message.content_type,
            message.body.encoding,
            &message.body.bytes[..],
        ])?;
    }
    txn.prepare_cached(
        "INSERT INTO queue_inbox (id, segment, offset) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET segment = excluded.segment, offset = excluded.offset",
    )?
    .execute(params![to.segment as i64, to.offset as i64])?;
    Ok(())
}

/// A filter of the unexpired keys in `queue_dedup_keys`, sized for twice as many.
fn load_table_keys(db: &Database) -> Result<KeyFilter, QueueError> {
    db.read_blocking(|conn| -> Result<KeyFilter, QueueError> {
        let now = now_ms();
        let count: i64 =
            conn.query_row("SELECT count(*) FROM queue_dedup_keys WHERE expires_at > ?1", [now], |row| {
                row.get(0)
            })?;
        let mut filter = KeyFilter::with_capacity(2 * count.max(0) as u64);
        let mut keys = conn.prepare("SELECT queue, dedup_key FROM queue_dedup_keys WHERE expires_at > ?1")?;
        let mut rows = keys.query([now])?;
        while let Some(row) = rows.next()? {
            filter.insert(row.get_ref(0)?.as_str()?, row.get_ref(1)?.as_str()?);
        }
        Ok(filter)
    })
}

fn stored_position(db: &Database) -> Result<Option<Position>, QueueError> {
    db.read_blocking(|conn| -> Result<Option<Position>, QueueError> {
        Ok(conn
            .query_row("SELECT segment, offset FROM queue_inbox WHERE id = 1", [], |row| {
                Ok(Position { segment: row.get::<_, i64>(0)? as u64, offset: row.get::<_, i64>(1)? as u64 })
            })
            .optional()?)
    })
}

impl Inbox {
    /// Opens the inbox in `dir`: moves every record a previous process left into the tables
    /// (cutting a torn record at the end, which no send answered for), then starts a new segment.
    pub(super) fn open(
        dir: PathBuf,
        db: &Database,
        durability: Durability,
        dedup_window: i64,
    ) -> Result<Inbox, QueueError> {
        std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        let segments = list_segments(&dir)?;
        let start = stored_position(db)?
            .unwrap_or(Position { segment: segments.first().copied().unwrap_or(0), offset: 0 });
        let mut queues = HashMap::new();
        let mut position = start;
        for &segment in segments.iter().filter(|&&s| s >= start.segment) {
            if segment > position.segment {
                position = Position { segment, offset: 0 };
            }
            loop {
                let (messages, offset, corrupt) =
                    read_records(&dir, segment, position.offset, None, BOUNDS.chunk_bytes, &mut queues)?;
                if offset == position.offset {
                    if corrupt {
                        tracing::warn!(
                            segment,
                            offset,
                            "queue inbox: dropping a torn record no send answered for"
                        );
                    }
                    break;
                }
                let to = Position { segment, offset };
                db.write_blocking(move |txn| insert_drained(txn, &messages, dedup_window, to))?;
                position = to;
            }
        }
        let next = segments.last().map_or(start.segment, |&s| s + 1).max(start.segment);
        let fresh = Position { segment: next, offset: 0 };
        db.write_blocking(move |txn| -> Result<(), QueueError> {
            txn.execute(
                "INSERT INTO queue_inbox (id, segment, offset) VALUES (1, ?1, 0)
                 ON CONFLICT (id) DO UPDATE SET segment = excluded.segment, offset = 0",
                [fresh.segment as i64],
            )?;
            Ok(())
        })?;
        for segment in segments {
            let path = segment_path(&dir, segment);
            std::fs::remove_file(&path).map_err(|e| io_error(&path, e))?;
        }
        let file = create_segment(&dir, next, durability)?;
        Ok(Inbox {
            writer: Mutex::new(Writer::new(file, next, load_table_keys(db)?)),
            dir,
            durability,
            generation: AtomicU64::new(0),
            pending_messages: AtomicU64::new(0),
            pending_bytes: AtomicU64::new(0),
            drained: tokio::sync::Mutex::new(fresh),
            synced: Mutex::new(fresh),
            bounds: BOUNDS,
        })
    }

    fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a sender should drain before appending (the backlog is at its bound).
    pub(super) fn is_full(&self) -> bool {
        self.pending_bytes.load(Ordering::Acquire) >= self.bounds.pending_bytes
            || self.pending_messages.load(Ordering::Acquire) >= self.bounds.pending_messages
    }

    /// Messages appended and not yet moved into the tables.
    pub(super) fn pending_messages(&self) -> u64 {
        self.pending_messages.load(Ordering::Acquire)
    }

    /// Appends one send's messages as one record; answers duplicates for dedup keys held by the
    /// table or by a pending record (or twice in `messages`). Returns once the record is written
    /// (and synced, with `Durability::PowerLoss`).
    pub(super) async fn append(
        self: &Arc<Self>,
        db: &Database,
        queue: &Arc<str>,
        messages: Vec<NewMessage>,
        dedup_window: i64,
    ) -> Result<Vec<SendOutcome>, QueueError> {
        let (outcomes, seq) = self.buffer_record(db, queue, messages, dedup_window)?;
        let Some(seq) = seq else {
            return Ok(outcomes);
        };
        let unwritten = Unwritten { inbox: self, seq: Some(seq) };
        // Let the senders that are ready add their records, so that one write carries them all.
        tokio::task::yield_now().await;
        let end = unwritten.write()?;
        if self.durability == Durability::PowerLoss {
            let inbox = self.clone();
            tokio::task::spawn_blocking(move || inbox.sync_to(end))
                .await
                .map_err(|e| QueueError::Backend(format!("inbox sync task failed: {e}").into()))??;
        }
        Ok(outcomes)
    }

    /// The synchronous part of [`Inbox::append`]: checks the dedup keys and buffers the record.
    /// Returns the outcomes and, when a record was buffered, its sequence number.
    fn buffer_record(
        &self,
        db: &Database,
        queue: &Arc<str>,
        messages: Vec<NewMessage>,
        dedup_window: i64,
    ) -> Result<(Vec<SendOutcome>, Option<u64>), QueueError> {
        let now = now_ms();
        let mut writer = self.lock_writer();
        let may_be_held = messages
            .iter()
            .any(|m| m.dedup_key.as_deref().is_some_and(|key| writer.table_keys.may_contain(queue, key)));
        let held = if may_be_held {
            let generation = self.generation.load(Ordering::Acquire);
            drop(writer);
            let held = self.held_in_table(db, queue, &messages, now)?;
            writer = self.lock_writer();
            if self.generation.load(Ordering::Acquire) != generation {
                // A drain moved keys from the pending set into the table since the check above.
                self.held_in_table(db, queue, &messages, now)?
            } else {
                held
            }
        } else {
            // Under the writer lock: no drain can move a key into the table before this send
            // has buffered its record (and taken its keys into the pending set).
            vec![false; messages.len()]
        };
        let mut outcomes = Vec::with_capacity(messages.len());
        let mut accepted = Vec::with_capacity(messages.len());
        let mut taken: Vec<&str> = Vec::new();
        for (index, message) in messages.iter().enumerate() {
            if let Some(key) = message.dedup_key.as_deref() {
                let pending = writer
                    .pending_keys
                    .get(queue)
                    .and_then(|keys| keys.get(key))
                    .is_some_and(|&expires| expires > now);
                if held[index] || pending || taken.contains(&key) {
                    outcomes.push(SendOutcome::Duplicate);
                    continue;
                }
                taken.push(key);
            }
            let id = Uuid::now_v7();
            let visible_at = now.saturating_add(super::millis(message.delay));
            accepted.push((id, now, visible_at, message));
            outcomes.push(SendOutcome::Queued { id: MessageId::from_uuid(id) });
        }
        if accepted.is_empty() {
            return Ok((outcomes, None));
        }
        encode_record(&mut writer.buffer, queue, &accepted);
        writer.buffered_messages += accepted.len() as u64;
        if !taken.is_empty() {
            let expires = now.saturating_add(dedup_window);
            let writer = &mut *writer;
            let keys = writer.pending_keys.entry(queue.clone()).or_default();
            for key in taken {
                keys.insert(Box::from(key), expires);
                writer.buffered_keys.push((queue.clone(), Box::from(key), expires));
            }
        }
        writer.buffered_seq += 1;
        Ok((outcomes, Some(writer.buffered_seq)))
    }

    /// Makes sure record `seq` is written: writes the buffer unless another sender did. Returns
    /// a position at or after the record's end, or the error that dropped it.
    fn write_through(&self, seq: u64) -> Result<Position, QueueError> {
        let mut writer = self.lock_writer();
        if writer.written_seq < seq {
            self.write_buffer(&mut writer);
        }
        if let Some((_, error)) = writer.failures.iter().find(|(dropped, _)| dropped.contains(&seq)) {
            return Err(QueueError::Backend(error.clone().into()));
        }
        Ok(Position { segment: writer.segment, offset: writer.len })
    }

    /// Writes every buffered record with one `write(2)`, or drops them all (see "Group write").
    fn write_buffer(&self, writer: &mut Writer) {
        let records = writer.written_seq + 1..=writer.buffered_seq;
        let written = self.rotate_if_full(writer).and_then(|()| {
            writer
                .file
                .write_all(&writer.buffer)
                .map_err(|e| io_error(&segment_path(&self.dir, writer.segment), e))
        });
        match written {
            Ok(()) => {
                let bytes = writer.buffer.len() as u64;
                writer.len += bytes;
                self.pending_bytes.fetch_add(bytes, Ordering::AcqRel);
                self.pending_messages.fetch_add(writer.buffered_messages, Ordering::AcqRel);
            }
            Err(error) => {
                // Cut what a short write left, so the next record starts where this one did.
                let len = writer.len;
                let _ =
                    writer.file.set_len(len).and_then(|()| writer.file.seek(SeekFrom::Start(len)).map(drop));
                for (queue, key, expires) in writer.buffered_keys.drain(..) {
                    if let Some(held) = writer.pending_keys.get_mut(&queue)
                        && held.get(&key) == Some(&expires)
                    {
                        held.remove(&key);
                    }
                }
                if writer.failures.len() == REMEMBERED_FAILURES {
                    writer.failures.pop_front();
                }
                writer.failures.push_back((records, error.to_string()));
            }
        }
        writer.buffer.clear();
        writer.buffered_keys.clear();
        writer.buffered_messages = 0;
        writer.written_seq = writer.buffered_seq;
        if writer.buffer.capacity() > 4 * 1024 * 1024 {
            writer.buffer = Vec::new(); // a burst's buffer is not kept for the quiet that follows
        }
    }

    /// Starts the next segment once the active one is full.
    fn rotate_if_full(&self, writer: &mut Writer) -> Result<(), QueueError> {
        if writer.len < SEGMENT_BYTES {
            return Ok(());
        }
        if self.durability == Durability::PowerLoss {
            // Records of the closing segment must be synced before any of the next one is.
            writer.file.sync_data().map_err(|e| io_error(&self.dir, e))?;
        }
        let next = writer.segment + 1;
        writer.file = create_segment(&self.dir, next, self.durability)?;
        writer.segment = next;
        writer.len = 0;
        Ok(())
    }

    /// Which of `messages`' dedup keys the table holds, unexpired.
    fn held_in_table(
        &self,
        db: &Database,
        queue: &str,
        messages: &[NewMessage],
        now: i64,
    ) -> Result<Vec<bool>, QueueError> {
        if messages.iter().all(|m| m.dedup_key.is_none()) {
            return Ok(vec![false; messages.len()]);
        }
        db.read_blocking(|conn| -> Result<Vec<bool>, QueueError> {
            let mut holds = conn.prepare_cached(HOLDS_DEDUP_KEY)?;
            messages
                .iter()
                .map(|m| match &m.dedup_key {
                    Some(key) => Ok(holds.exists(params![queue, key, now])?),
                    None => Ok(false),
                })
                .collect()
        })
    }

    /// Syncs the active segment so that everything up to `end` survives a power loss. Senders
    /// waiting at once share one `fdatasync`.
    fn sync_to(&self, end: Position) -> Result<(), QueueError> {
        let mut synced = self.synced.lock().unwrap_or_else(|p| p.into_inner());
        if *synced >= end {
            return Ok(());
        }
        let (file, covered) = {
            let writer = self.lock_writer();
            let file = writer.file.try_clone().map_err(|e| io_error(&self.dir, e))?;
            (file, Position { segment: writer.segment, offset: writer.len })
        };
        // A rotation syncs the segment it closes (see `create_segment`), so syncing the active
        // one covers every earlier record.
        file.sync_data().map_err(|e| io_error(&self.dir, e))?;
        *synced = covered;
        Ok(())
    }

    /// Rebuilds the filter of the table's keys from the table once more keys went into it than it
    /// was sized for (expired keys leave the table, not the filter). No drain runs meanwhile, so
    /// no key reaches the table unseen.
    pub(super) async fn rebuild_key_filter_if_overfull(&self, db: &Database) -> Result<(), QueueError> {
        if !self.lock_writer().table_keys.is_overfull() {
            return Ok(());
        }
        let _no_drain = self.drained.lock().await;
        let db_for_read = db.clone();
        let filter = tokio::task::spawn_blocking(move || load_table_keys(&db_for_read))
            .await
            .map_err(|e| QueueError::Backend(format!("key filter task failed: {e}").into()))??;
        self.lock_writer().table_keys = filter;
        Ok(())
    }

    /// Moves every record appended before the call into the tables. Cheap when there is none.
    ///
    /// The work runs in a task of its own: a caller may go away at any await (a sender whose
    /// client hung up, a timeout), and a drain stopped between a transaction's commit and the
    /// bookkeeping after it would leave `drained` behind the table, so that the next drain
    /// inserted the same messages again and failed on their ids, for good.
    pub(super) async fn drain(self: &Arc<Self>, db: &Database, dedup_window: i64) -> Result<(), QueueError> {
        self.drain_in_task(db, dedup_window, Until::End).await
    }

    /// Moves records into the tables, a chunk at a time, until the inbox is below its bounds: what
    /// a sender does when it finds the inbox full. One chunk costs milliseconds, where moving the
    /// whole backlog (up to a gigabyte) held that sender, and every sender behind it, for seconds.
    pub(super) async fn drain_below_bounds(
        self: &Arc<Self>,
        db: &Database,
        dedup_window: i64,
    ) -> Result<(), QueueError> {
        self.drain_in_task(db, dedup_window, Until::BelowBounds).await
    }

    async fn drain_in_task(
        self: &Arc<Self>,
        db: &Database,
        dedup_window: i64,
        how_far: Until,
    ) -> Result<(), QueueError> {
        if self.pending_messages.load(Ordering::Acquire) == 0 {
            return Ok(());
        }
        let (inbox, db) = (self.clone(), db.clone());
        tokio::spawn(async move { inbox.drain_until(&db, dedup_window, how_far).await })
            .await
            .map_err(|e| QueueError::Backend(format!("inbox drain task failed: {e}").into()))?
    }

    async fn drain_until(&self, db: &Database, dedup_window: i64, how_far: Until) -> Result<(), QueueError> {
        let mut drained = self.drained.lock().await;
        let end = {
            let writer = self.lock_writer();
            Position { segment: writer.segment, offset: writer.len }
        };
        let mut queues = HashMap::new();
        while *drained < end {
            if how_far == Until::BelowBounds && !self.is_full() {
                break;
            }
            let from = *drained;
            let until = (from.segment == end.segment).then_some(end.offset);
            let (messages, offset, corrupt) = read_records(
                &self.dir,
                from.segment,
                from.offset,
                until,
                self.bounds.chunk_bytes,
                &mut queues,
            )?;
            if corrupt {
                return Err(QueueError::Backend(
                    format!("queue inbox segment {} is corrupt at offset {offset}", from.segment).into(),
                ));
            }
            // The end of a closed segment: go on with the next one.
            let to = if from.segment < end.segment && until.is_none() && offset == from.offset {
                Position { segment: from.segment + 1, offset: 0 }
            } else {
                Position { segment: from.segment, offset }
            };
            let keys: Vec<(Arc<str>, Box<str>, i64)> = messages
                .iter()
                .filter_map(|m| {
                    m.key.clone().map(|k| (m.queue.clone(), k, m.sent_at.saturating_add(dedup_window)))
                })
                .collect();
            let count = messages.len() as u64;
            let bytes = if to.segment == from.segment { to.offset - from.offset } else { 0 };
            db.write(move |txn| insert_drained(txn, &messages, dedup_window, to)).await?;
            *drained = to;
            {
                let mut writer = self.lock_writer();
                for (queue, key, _) in &keys {
                    writer.table_keys.insert(queue, key);
                }
                for (queue, key, expires) in &keys {
                    // Only this record's hold: a later send may have taken the key again since.
                    if let Some(held) = writer.pending_keys.get_mut(queue)
                        && held.get(key) == Some(expires)
                    {
                        held.remove(key);
                    }
                }
                self.generation.fetch_add(1, Ordering::AcqRel);
            }
            self.pending_bytes.fetch_sub(bytes, Ordering::AcqRel);
            self.pending_messages.fetch_sub(count, Ordering::AcqRel);
            if to.segment > from.segment {
                let path = segment_path(&self.dir, from.segment);
                std::fs::remove_file(&path).map_err(|e| io_error(&path, e))?;
            }
        }
        Ok(())
    }
}

/// How far a drain goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    /// Every record appended before the drain started.
    End,
    /// Until the inbox is below its bounds ([`Inbox::is_full`] is false).
    BelowBounds,
}

/// Creates segment `number` (empty) and returns it open for appending. With
/// `Durability::PowerLoss` the directory entry is synced, and so is the segment being closed
/// (by the caller's sync of everything before rotation: see `Inbox::sync_to`).
fn create_segment(dir: &Path, number: u64, durability: Durability) -> Result<File, QueueError> {
    let path = segment_path(dir, number);
    let file = OpenOptions::new().create(true).append(true).open(&path).map_err(|e| io_error(&path, e))?;
    if durability == Durability::PowerLoss {
        File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_error(dir, e))?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ContentType;

    fn message(key: &str) -> NewMessage {
        NewMessage {
            content_type: ContentType::Text,
            body: Bytes::from_static(b"body"),
            delay: Duration::ZERO,
            dedup_key: Some(key.to_owned()),
        }
    }

    #[test]
    fn a_failed_group_write_fails_every_sender_of_the_group_and_releases_their_keys() {
        let dir = tempfile::tempdir().unwrap();
        let schema = format!("{}{SCHEMA}", super::super::SCHEMA);
        let db = Database::open(dir.path().join("queues.db"), &schema, Default::default()).unwrap();
        let inbox = Inbox::open(dir.path().join("inbox"), &db, Durability::Process, 60_000).unwrap();
        let queue: Arc<str> = "jobs".into();

        let (_, first) = inbox.buffer_record(&db, &queue, vec![message("a")], 60_000).unwrap();
        let (_, second) = inbox.buffer_record(&db, &queue, vec![message("b")], 60_000).unwrap();
        let segment = {
            let mut writer = inbox.lock_writer();
            let segment = segment_path(&inbox.dir, writer.segment);
            writer.file = File::open(&segment).unwrap(); // read-only: the write fails
            segment
        };
        assert!(inbox.write_through(first.unwrap()).is_err(), "the sender that wrote sees the error");
        assert!(inbox.write_through(second.unwrap()).is_err(), "and so does the other sender of its group");
        assert_eq!(inbox.pending_messages(), 0);
        assert_eq!(std::fs::metadata(&segment).unwrap().len(), 0, "nothing of the group is in the file");

        inbox.lock_writer().file = OpenOptions::new().append(true).open(&segment).unwrap();
        let (outcomes, again) = inbox.buffer_record(&db, &queue, vec![message("a")], 60_000).unwrap();
        assert!(matches!(outcomes[0], SendOutcome::Queued { .. }), "the failed send's key was released");
        inbox.write_through(again.unwrap()).unwrap();
        assert_eq!(inbox.pending_messages(), 1);
    }

    fn count_rows(db: &Database) -> i64 {
        db.read_blocking(|conn| -> Result<i64, QueueError> {
            Ok(conn.query_row("SELECT count(*) FROM queue_messages", [], |row| row.get(0))?)
        })
        .unwrap()
    }

    #[tokio::test]
    async fn a_sender_at_the_bound_drains_only_until_the_inbox_is_below_it() {
        let dir = tempfile::tempdir().unwrap();
        let schema = format!("{}{SCHEMA}", super::super::SCHEMA);
        let db = Database::open(dir.path().join("queues.db"), &schema, Default::default()).unwrap();
        let mut inbox = Inbox::open(dir.path().join("inbox"), &db, Durability::Process, 60_000).unwrap();
        // Ten messages at most, and one record per drain transaction.
        inbox.bounds = Bounds { pending_bytes: u64::MAX, pending_messages: 10, chunk_bytes: 1 };
        let inbox = Arc::new(inbox);
        let queue: Arc<str> = "jobs".into();
        for i in 0..25 {
            inbox.append(&db, &queue, vec![message(&format!("k{i}"))], 60_000).await.unwrap();
        }
        assert!(inbox.is_full());

        inbox.drain_below_bounds(&db, 60_000).await.unwrap();
        assert!(!inbox.is_full());
        assert_eq!(inbox.pending_messages(), 9, "it stopped as soon as the inbox was below the bound");
        assert_eq!(count_rows(&db), 16);

        inbox.drain(&db, 60_000).await.unwrap();
        assert_eq!(inbox.pending_messages(), 0);
        assert_eq!(count_rows(&db), 25, "a consumer's drain moves the rest");
    }

    #[tokio::test]
    async fn a_drain_whose_caller_goes_away_after_its_commit_is_finished_all_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let schema = format!("{}{SCHEMA}", super::super::SCHEMA);
        let db = Database::open(dir.path().join("queues.db"), &schema, Default::default()).unwrap();
        let inbox =
            Arc::new(Inbox::open(dir.path().join("inbox"), &db, Durability::Process, 60_000).unwrap());
        let queue: Arc<str> = "jobs".into();
        for i in 0..100 {
            inbox.append(&db, &queue, vec![message(&format!("k{i}"))], 60_000).await.unwrap();
        }

        // The writer thread is busy with another transaction, so a drain waits for its commit...
        let (started, running) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let busy = {
            let db = db.clone();
            std::thread::spawn(move || {
                db.write_blocking(move |_| -> Result<(), QueueError> {
                    started.send(()).unwrap();
                    released.recv().unwrap();
                    Ok(())
                })
            })
        };
        running.recv().unwrap();
        // ...and its caller goes away meanwhile; the drain's transaction commits after that.
        let gone = tokio::time::timeout(Duration::ZERO, inbox.drain(&db, 60_000)).await;
        assert!(gone.is_err(), "the drain was still waiting for its commit");
        release.send(()).unwrap();
        busy.join().unwrap().unwrap();

        inbox.drain(&db, 60_000).await.expect("the next drain neither repeats nor fails");

        assert_eq!(inbox.pending_messages(), 0);
        assert_eq!(count_rows(&db), 100, "each message is in the table once");
    }
}
