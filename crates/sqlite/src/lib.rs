//! SQLite plumbing shared by ledge's embedded drivers.
//!
//! Every embedded driver (KV, queues, durable-object storage, the vector index) keeps its state in a
//! SQLite database in WAL mode opened through [`Database`]. A database has
//!
//! * **one writer thread** that owns the only write connection and applies *group commit*: it takes
//!   every write job waiting in its channel, runs each inside its own savepoint of one transaction,
//!   commits once, and only then answers the callers. A caller whose `write` returned `Ok` knows its
//!   change is committed; a job that fails is rolled back alone, without disturbing the others.
//! * **a pool of read connections**, used from blocking tasks, that see every committed write
//!   (read-your-writes across the process).
//! * **a checkpointer thread**: SQLite's automatic WAL checkpoint would run inside the writer's
//!   commit and stall every caller behind it (p99 of a send went from ~1 ms to ~9 ms), so the
//!   writer turns it off and kicks this thread after each commit; it copies the WAL back into
//!   the database with passive checkpoints, at most every [`CHECKPOINT_INTERVAL`], never
//!   blocking the writer or the readers. Under sustained writes a passive checkpoint never
//!   catches up with the end of the WAL, and SQLite only restarts a WAL whose every frame is
//!   copied back, so the file would grow without end. So once the WAL passes
//!   [`WAL_RESTART_PAGES`] and the checkpointer has copied all but a few of its frames, the
//!   writer copies the rest itself between two transactions (a fraction of a millisecond) and
//!   the next transaction starts the WAL over.
//!
//! Durability: with [`Durability::Process`] (the default, `synchronous=NORMAL`) a committed write
//! survives a crash of the process; with [`Durability::PowerLoss`] (`synchronous=FULL`) it also
//! survives a power loss, at the price of one fsync per group commit.
//!
//! Memory: every connection has a small page cache, and all of SQLite in the process — every
//! database and connection, the relational store's too — shares one soft heap limit,
//! [`SOFT_HEAP_LIMIT`]: past it SQLite reuses and releases cached pages instead of growing. A full
//! index holds some thirty connections; their caches alone reached 32 MB before the limit.
//!
//! Invariant: no SQL leaves the drivers; this crate knows SQLite, not what the tables mean.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

pub use rusqlite;
use rusqlite::{Connection, OpenFlags, Transaction};

/// Errors from the SQLite layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite itself failed (constraint, I/O, corruption, …).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The writer thread or the pool is gone (the database was closed).
    #[error("database {0} is closed")]
    Closed(PathBuf),
    /// Creating the database's directory failed.
    #[error("cannot create {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How much a committed write survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Survives a crash of the process (WAL + `synchronous=NORMAL`).
    #[default]
    Process,
    /// Survives a power loss too (WAL + `synchronous=FULL`: one fsync per group commit).
    PowerLoss,
}

/// Options for [`Database::open`].
#[derive(Debug, Clone)]
pub struct Options {
    pub durability: Durability,
    /// Read connections kept open (at least 1).
    pub readers: usize,
    /// Most write jobs folded into one transaction.
    pub max_group: usize,
    /// The writer and checkpointer threads run at the lowest CPU priority ([`run_in_background`];
    /// otherwise they keep the opening thread's). For a database whose writes are background
    /// work, so that they yield the CPU to request handling whoever opened it.
    pub background: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { durability: Durability::Process, readers: 4, max_group: 512, background: false }
    }
}

/// Lowers the calling thread's CPU priority to the lowest `nice` level, 19 (Linux schedules
/// threads as tasks of their own: `PRIO_PROCESS` with `who = 0` names the calling thread only, and
/// threads it starts inherit it). A failure is logged, not fatal.
///
/// Not `SCHED_IDLE`: request handlers sometimes wait for a background thread (a sender when the
/// queue inbox is at its bound, `/metrics` reading queue depths). With the queues' threads at
/// `SCHED_IDLE`, `/metrics` took over 5 s to answer during a webhook burst.
#[allow(unsafe_code)]
pub fn run_in_background() {
    // SAFETY: setpriority has no memory-safety preconditions.
    let result = unsafe { libc::setpriority(libc::PRIO_PROCESS as _, 0, 19) };
    if result != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "cannot lower a thread's CPU priority");
    }
}

type Job = Box<dyn FnOnce(&Transaction<'_>) -> JobDone + Send>;
/// What a job hands back to the writer: a way to deliver its result once the commit outcome is
/// known, and whether the job itself failed (so its savepoint is rolled back).
struct JobDone {
    failed: bool,
    deliver: Deliver,
}

/// Hands a job's result to its caller, given the group commit's error if the commit failed.
type Deliver = Box<dyn FnOnce(Option<&rusqlite::Error>) + Send>;

struct Inner {
    path: PathBuf,
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    readers: Mutex<Vec<Connection>>,
    options: Options,
}

/// A SQLite database with one group-committing writer and a pool of readers. Cheap to clone.
#[derive(Clone)]
pub struct Database {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("path", &self.inner.path).finish()
    }
}

/// WAL size (pages) past which the writer completes a checkpoint itself so the WAL restarts.
pub const WAL_RESTART_PAGES: i32 = 2048;

/// Most WAL pages the writer copies itself when it completes a checkpoint.
const WRITER_CHECKPOINT_PAGES: i32 = 256;

/// WAL size (pages) at which the writer checkpoints itself whatever it costs: the checkpointer is
/// not keeping up (writes faster than the disk takes them back), and the WAL must stay bounded.
pub const WAL_MAX_PAGES: i32 = 3 * WAL_RESTART_PAGES;

thread_local! {
    /// Pages in the WAL after the writer's last commit (set by the WAL hook, on the writer thread).
    static WAL_PAGES: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

fn record_wal_pages(_: &rusqlite::hooks::Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_PAGES.with(|p| p.set(pages));
    Ok(())
}

/// The bytes all of SQLite in the process may keep before it releases cached pages (page caches
/// beyond it are recycled; memory a statement needs is never refused). Set by the first
/// [`Database::open`].
pub const SOFT_HEAP_LIMIT: i64 = 8 << 20;

/// Sets [`SOFT_HEAP_LIMIT`] once per process.
#[allow(unsafe_code)]
fn limit_sqlite_memory() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: sqlite3_soft_heap_limit64 only stores the limit under SQLite's own mutex; it may be
    // called from any thread at any time.
    ONCE.call_once(|| unsafe {
        rusqlite::ffi::sqlite3_soft_heap_limit64(SOFT_HEAP_LIMIT);
    });
}

/// Bytes SQLite has allocated in this process now (every connection, every database).
#[allow(unsafe_code)]
pub fn memory_used() -> i64 {
    // SAFETY: reads SQLite's memory statistics under its own mutex; no preconditions.
    unsafe { rusqlite::ffi::sqlite3_memory_used() }
}

/// Least time between two passive checkpoints while writes keep coming.
pub const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(20);

fn open_connection(path: &Path, durability: Durability, write: bool) -> rusqlite::Result<Connection> {
    let flags = if write {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    if write {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(
            None,
            "synchronous",
            if durability == Durability::PowerLoss { "FULL" } else { "NORMAL" },
        )?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
    }
    // Small page cache per connection: the memory budget is the whole process's.
    conn.pragma_update(None, "cache_size", -2048)?; // KiB
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(conn)
}

impl Database {
    /// Opens (creating if needed) the database at `path`, then runs `schema` (idempotent DDL,
    /// e.g. `CREATE TABLE IF NOT EXISTS …`) on the write connection before anything else.
    pub fn open(path: impl AsRef<Path>, schema: &str, options: Options) -> Result<Database> {
        limit_sqlite_memory();
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
        }
        let mut write_conn = open_connection(&path, options.durability, true)?;
        write_conn.execute_batch(schema)?;
        write_conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        write_conn.wal_hook(Some(record_wal_pages));
        // After a checkpoint that reaches the end of the WAL, keep at most this much of its file.
        write_conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        let checkpoint_conn = open_connection(&path, options.durability, true)?;
        let mut readers = Vec::new();
        for _ in 0..options.readers.max(1) {
            readers.push(open_connection(&path, options.durability, false)?);
        }
        let (tx, rx) = mpsc::channel::<Job>();
        let max_group = options.max_group.max(1);
        let file = path.file_name().and_then(|n| n.to_str()).unwrap_or("db").to_string();
        let (kick, kicked) = mpsc::sync_channel::<()>(1);
        let backfilled = Arc::new(AtomicI32::new(0));
        let checkpoint = Checkpointer { kick, backfilled: backfilled.clone() };
        let background = options.background;
        thread::Builder::new()
            .name(format!("sqlite-ckpt:{file}"))
            .spawn(move || {
                if background {
                    run_in_background();
                }
                checkpoint_loop(&checkpoint_conn, kicked, &backfilled)
            })
            .map_err(|source| Error::Io { path: path.clone(), source })?;
        thread::Builder::new()
            .name(format!("sqlite-writer:{file}"))
            .spawn(move || {
                if background {
                    run_in_background();
                }
                writer_loop(&mut write_conn, rx, max_group, checkpoint)
            })
            .map_err(|source| Error::Io { path: path.clone(), source })?;
        Ok(Database {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(Some(tx)),
                readers: Mutex::new(readers),
                options,
            }),
        })
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `job` inside the writer's next group transaction and returns its result once the
    /// transaction is committed. If `job` fails, only its own changes are rolled back.
    pub async fn write<R, E, F>(&self, job: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<Error> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<R, E> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(job, move |r| {
            let _ = tx.send(r);
        })?;
        rx.await.unwrap_or_else(|_| Err(Error::Closed(self.inner.path.clone()).into()))
    }

    /// Blocking form of [`Database::write`], for threads outside the async runtime.
    pub fn write_blocking<R, E, F>(&self, job: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<Error> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<R, E> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(job, move |r| {
            let _ = tx.send(r);
        })?;
        rx.recv().unwrap_or_else(|_| Err(Error::Closed(self.inner.path.clone()).into()))
    }

    fn submit<R, E, F>(&self, job: F, reply: impl FnOnce(Result<R, E>) + Send + 'static) -> Result<(), E>
    where
        R: Send + 'static,
        E: From<Error> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<R, E> + Send + 'static,
    {
        let path = self.inner.path.clone();
        let boxed: Job = Box::new(move |txn| {
            let outcome = job(txn);
            let failed = outcome.is_err();
            JobDone {
                failed,
                deliver: Box::new(move |commit_error| match (outcome, commit_error) {
                    (Ok(_), Some(e)) => reply(Err(Error::Sqlite(clone_error(e, &path)).into())),
                    (outcome, _) => reply(outcome),
                }),
            }
        });
        let guard = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(sender) => sender.send(boxed).map_err(|_| Error::Closed(self.inner.path.clone()).into()),
            None => Err(Error::Closed(self.inner.path.clone()).into()),
        }
    }

    /// Runs `f` on a read connection from the pool, on a blocking thread. Sees every write that
    /// was committed before the call.
    pub async fn read<R, E, F>(&self, f: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<Error> + Send + 'static,
        F: FnOnce(&Connection) -> Result<R, E> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.read_blocking(f))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    /// Blocking form of [`Database::read`].
    pub fn read_blocking<R, E, F>(&self, f: F) -> Result<R, E>
    where
        E: From<Error>,
        F: FnOnce(&Connection) -> Result<R, E>,
    {
        let conn = self.inner.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None => open_connection(&self.inner.path, self.inner.options.durability, false)
                .map_err(Error::from)?,
        };
        let result = f(&conn);
        let mut pool = self.inner.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < self.inner.options.readers.max(1) {
            pool.push(conn);
        }
        result
    }

    /// Stops accepting writes; jobs already queued still run. Reads keep working.
    pub fn close(&self) {
        self.inner.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

fn clone_error(e: &rusqlite::Error, path: &Path) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, msg) => rusqlite::Error::SqliteFailure(*code, msg.clone()),
        other => {
            rusqlite::Error::InvalidPath(PathBuf::from(format!("{}: commit failed: {other}", path.display())))
        }
    }
}

/// The writer's side of the checkpointer: how to wake it, and how far it has copied the WAL.
struct Checkpointer {
    kick: mpsc::SyncSender<()>,
    /// WAL frames copied into the database by the checkpointer's last pass.
    backfilled: Arc<AtomicI32>,
}

impl Checkpointer {
    /// After a commit that left `wal_pages` in the WAL: complete the checkpoint here if that lets
    /// the WAL restart cheaply, else wake the checkpointer.
    fn after_commit(&self, conn: &Connection, wal_pages: i32) {
        let behind = wal_pages - self.backfilled.load(Ordering::Relaxed);
        // `behind` < 0: the checkpointer's count predates the last restart; let it count again.
        let cheap = wal_pages > WAL_RESTART_PAGES && (0..=WRITER_CHECKPOINT_PAGES).contains(&behind);
        if cheap || wal_pages > WAL_MAX_PAGES {
            // Past the maximum the writer waits (busy handler) for a checkpoint the checkpointer
            // holds: a passive one would give up at once, and while the checkpointer thread is
            // starved of CPU (a loaded machine) the WAL would grow without bound.
            let mode = if wal_pages > WAL_MAX_PAGES { "RESTART" } else { "PASSIVE" };
            let outcome = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
                Ok((r.get::<_, i32>(0)?, r.get::<_, i32>(1)?, r.get::<_, i32>(2)?))
            });
            match outcome {
                // Every frame copied: the next transaction restarts the WAL.
                Ok((0, log, copied)) if copied >= log => self.backfilled.store(0, Ordering::Relaxed),
                Ok(_) => {
                    let _ = self.kick.try_send(()); // busy or partial: the checkpointer goes on
                }
                Err(e) => tracing::warn!(error = %e, "sqlite writer cannot complete a checkpoint"),
            }
        } else {
            // A kick already pending covers this commit too.
            let _ = self.kick.try_send(());
        }
    }
}

/// Runs a passive checkpoint after commits, at most every [`CHECKPOINT_INTERVAL`]; ends when the
/// writer does (its kick sender is dropped).
fn checkpoint_loop(conn: &Connection, kicked: mpsc::Receiver<()>, backfilled: &AtomicI32) {
    while kicked.recv().is_ok() {
        let started = std::time::Instant::now();
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i32>(2)) {
            Ok(frames) => backfilled.store(frames, Ordering::Relaxed),
            Err(e) => {
                tracing::warn!(error = %e, "sqlite checkpoint failed; the WAL keeps the data and the next one retries")
            }
        }
        thread::sleep(CHECKPOINT_INTERVAL.saturating_sub(started.elapsed()));
    }
    // The writer is gone: fold the whole WAL back so the next open starts small.
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
}

fn writer_loop(conn: &mut Connection, rx: mpsc::Receiver<Job>, max_group: usize, checkpoint: Checkpointer) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < max_group {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let txn = match begin(conn) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "sqlite writer cannot begin a transaction; failing its jobs");
                // Dropping a job drops its reply, which its caller sees as an error.
                drop(jobs);
                continue;
            }
        };
        let mut done = Vec::with_capacity(jobs.len());
        if jobs.len() == 1 {
            // Alone in its transaction, a job needs no savepoint: if it fails, nothing commits.
            let d = jobs.pop().map(|job| job(&txn)).expect("one job");
            if d.failed {
                drop(txn); // rolls back
                (d.deliver)(None);
                continue;
            }
            done.push(d);
        } else {
            for job in jobs {
                if let Err(e) = run_statement(&txn, "SAVEPOINT job") {
                    tracing::error!(error = %e, "sqlite writer cannot open a savepoint");
                    continue;
                }
                let d = job(&txn);
                if d.failed
                    && let Err(e) = run_statement(&txn, "ROLLBACK TO job")
                {
                    tracing::error!(error = %e, "sqlite writer cannot roll a failed job back");
                }
                if let Err(e) = run_statement(&txn, "RELEASE job") {
                    tracing::error!(error = %e, "sqlite writer cannot close a savepoint");
                }
                done.push(d);
            }
        }
        let commit = txn.commit();
        let err = commit.as_ref().err();
        if let Some(e) = err {
            tracing::error!(error = %e, "sqlite group commit failed");
        }
        for d in done {
            (d.deliver)(err);
        }
        checkpoint.after_commit(conn, WAL_PAGES.with(|p| p.get()));
    }
}

/// Runs one statement through the connection's statement cache (savepoints run once per job: not
/// parsing them each time matters).
fn run_statement(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Begins the group's transaction, retrying a few times: a failure here is usually transient
/// (another process holding the database past the busy timeout, a full disk being cleared).
fn begin(conn: &Connection) -> rusqlite::Result<Transaction<'_>> {
    const IMMEDIATE: rusqlite::TransactionBehavior = rusqlite::TransactionBehavior::Immediate;
    for pause in [10, 100, 1000] {
        match Transaction::new_unchecked(conn, IMMEDIATE) {
            Ok(txn) => return Ok(txn),
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = pause, "sqlite writer cannot begin a transaction");
                thread::sleep(std::time::Duration::from_millis(pause));
            }
        }
    }
    Transaction::new_unchecked(conn, IMMEDIATE)
}

/// Milliseconds since the Unix epoch, the time unit of every embedded driver's tables.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v INTEGER NOT NULL);";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn page_caches_of_many_databases_stay_within_the_soft_heap_limit() {
        // Twelve databases, each written and then read in full: 2 MiB of page cache per connection
        // would keep ~48 MB; the process-wide limit keeps SQLite near SOFT_HEAP_LIMIT.
        let dir = tempfile::tempdir().unwrap();
        let mut dbs = Vec::new();
        for n in 0..12 {
            let db = Database::open(dir.path().join(format!("{n}.db")), SCHEMA, Options::default()).unwrap();
            db.write(|t| -> Result<()> {
                let mut insert = t.prepare("INSERT INTO t VALUES (?1, ?2)")?;
                for i in 0..1_000 {
                    insert.execute((format!("{i:04}{}", "x".repeat(4_000)), i))?;
                }
                Ok(())
            })
            .await
            .unwrap();
            let sum: i64 = db
                .read(|c| -> Result<i64> {
                    Ok(c.query_row("SELECT sum(length(k)) FROM t", [], |r| r.get(0))?)
                })
                .await
                .unwrap();
            assert_eq!(sum, 1_000 * 4_004);
            dbs.push(db);
        }
        let used = memory_used();
        assert!(
            used < SOFT_HEAP_LIMIT + (4 << 20),
            "SQLite holds {used} bytes with 12 databases read in full"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn committed_writes_are_visible_to_the_next_read() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path().join("a.db"), SCHEMA, Options::default()).unwrap();
        let mut handles = Vec::new();
        for i in 0..200 {
            let db = db.clone();
            handles.push(tokio::spawn(async move {
                db.write(move |t| -> Result<_> {
                    Ok(t.execute("INSERT INTO t VALUES (?1, ?2)", (format!("k{i}"), i))?)
                })
                .await
            }));
        }
        for h in handles {
            assert_eq!(h.await.unwrap().unwrap(), 1);
        }
        let n: i64 = db
            .read(|c| -> Result<i64> { Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?) })
            .await
            .unwrap();
        assert_eq!(n, 200);
    }

    #[tokio::test]
    async fn a_failing_job_rolls_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path().join("a.db"), SCHEMA, Options::default()).unwrap();
        db.write(|t| -> Result<_> { Ok(t.execute("INSERT INTO t VALUES ('a', 1)", [])?) }).await.unwrap();
        let dup = db
            .write(|t| -> Result<_> {
                t.execute("INSERT INTO t VALUES ('b', 2)", [])?;
                Ok(t.execute("INSERT INTO t VALUES ('a', 3)", [])?) // primary key violation
            })
            .await;
        assert!(dup.is_err());
        let keys: Vec<String> = db
            .read(|c| -> Result<Vec<String>> {
                let mut s = c.prepare("SELECT k FROM t ORDER BY k")?;
                let rows = s.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
                Ok(rows)
            })
            .await
            .unwrap();
        assert_eq!(keys, vec!["a".to_string()], "the failed job's first insert must be rolled back too");
    }

    #[tokio::test]
    async fn the_wal_is_checkpointed_into_the_database_without_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let db = Database::open(&path, SCHEMA, Options::default()).unwrap();
        for i in 0..200 {
            let key = format!("{i:05}{}", "x".repeat(10_000));
            db.write(move |t| -> Result<_> { Ok(t.execute("INSERT INTO t VALUES (?1, ?2)", (key, i))?) })
                .await
                .unwrap();
        }
        // The writer never checkpoints (wal_autocheckpoint=0); the checkpointer must have copied
        // the ~2 MB of rows into the database file.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::fs::metadata(&path).unwrap().len() < 2_000_000 {
            assert!(std::time::Instant::now() < deadline, "the WAL was not checkpointed");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sustained_writes_keep_the_wal_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let db = Database::open(&path, SCHEMA, Options::default()).unwrap();
        let wal = dir.path().join("a.db-wal");
        let mut largest = 0;
        // ~48 MB of rows, written without pause by 8 concurrent writers.
        for round in 0..600 {
            let mut writes = Vec::new();
            for i in 0..8 {
                let key = format!("{round:04}-{i}-{}", "y".repeat(10_000));
                writes.push(db.write(move |t| -> Result<_> {
                    t.execute("INSERT INTO t VALUES (?1, 0)", [key])?;
                    Ok(t.execute("DELETE FROM t WHERE v = 0 AND rowid % 2 = 0", [])?)
                }));
            }
            for w in writes {
                w.await.unwrap();
            }
            largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
        }
        // The WAL restarts past WAL_RESTART_PAGES (8 MiB of 4 KiB pages) and, whatever the
        // checkpointer thread manages, the writer forces a checkpoint at WAL_MAX_PAGES (24 MiB).
        // What a restart needs besides (no other connection holding a read lock at that instant,
        // the checkpointer thread included) is not the writer's to force, so with the rest of the
        // test suite running beside it the file has reached ~70 MB; without restarts it holds
        // every frame written, 130-160 MB. The bound tells the two apart.
        assert!(largest < 96 << 20, "the WAL grew to {largest} bytes");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failing_jobs_grouped_with_others_roll_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path().join("a.db"), SCHEMA, Options::default()).unwrap();
        db.write(|t| -> Result<_> { Ok(t.execute("INSERT INTO t VALUES ('taken', 0)", [])?) }).await.unwrap();
        let mut handles = Vec::new();
        for i in 0..300 {
            let db = db.clone();
            handles.push(tokio::spawn(async move {
                db.write(move |t| -> Result<_> {
                    t.execute("INSERT INTO t VALUES (?1, ?2)", (format!("k{i}"), i))?;
                    if i % 5 == 0 {
                        t.execute("INSERT INTO t VALUES ('taken', 1)", [])?; // fails: the key exists
                    }
                    Ok(())
                })
                .await
                .is_ok()
            }));
        }
        let mut ok = 0;
        for h in handles {
            ok += usize::from(h.await.unwrap());
        }
        assert_eq!(ok, 240);
        let n: i64 = db
            .read(|c| -> Result<i64> {
                Ok(c.query_row("SELECT count(*) FROM t WHERE k LIKE 'k%'", [], |r| r.get(0))?)
            })
            .await
            .unwrap();
        assert_eq!(n, 240, "only the failed jobs' rows are missing");
    }

    #[tokio::test]
    async fn writes_after_close_fail_with_closed() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path().join("a.db"), SCHEMA, Options::default()).unwrap();
        db.close();
        let r = db.write(|t| -> Result<_> { Ok(t.execute("INSERT INTO t VALUES ('a', 1)", [])?) }).await;
        assert!(matches!(r, Err(Error::Closed(_))));
    }
}
