//! The IndexingCoordinator durable object: one per repository, it coordinates the indexing job of
//! the repository's latest commit — batches handed out as claims with leases, progress, completion.
//!
//! # Storage layout (keys of the object)
//!
//! * `job` — [`Job`]: the current job's commit, cursor and counters (small, rewritten per call).
//! * `indexed` — the last commit whose job finished indexed; survives superseding.
//! * `spec/{index}` — the [`BatchSpec`] (id and files) of batch `index`; written once.
//! * `state/{index}` — the batch's [`BatchRecord`]: attempts, waiting / ready / leased / done / failed.
//! * `id/{batch id}` — the batch's index, to find it from a completion.
//! * `ready/{index}` — a batch released by a failed attempt, to be handed out again first.
//! * `lease/{deadline ms}/{index}` — a leased batch; keys sort by deadline, so the first key tells
//!   whether any lease has expired, without scanning batches.
//! * `failure/{seq}` — the first `max_failures_listed` failed files with their reasons.
//! * `notes` — [`JobNotes`] of the current job: how its files were chosen, what was skipped and why.
//! * `error` — [`JobError`]: the last job that could not even start (an unreachable repository).
//!
//! A call therefore touches a handful of keys however many batches a job has; only starting a job
//! writes one key per batch (three, in fact) and superseding deletes the old job with one
//! `delete_all`.
//!
//! # Decisions
//!
//! * A batch is finished when done or failed permanently (after `max_attempts` attempts, a lease
//!   expiring counting as a failed attempt). A job is finished when every batch is. A finished job
//!   with at least one done batch (or no batch at all) is [`JobState::Indexed`] — "indexed with
//!   failures" when `batches_failed > 0`, the failures visible in [`Progress`] — and its commit
//!   becomes `last_indexed_commit`. A job whose every batch failed is [`JobState::Failed`] and
//!   leaves `last_indexed_commit` unchanged.
//! * Completing a batch counts once; a second completion answers [`Response::AlreadyFinished`].
//!   A completion for the current commit is accepted from any worker, even after its lease expired
//!   (the work is valid for that commit). A failure report must name the attempt it belongs to:
//!   one from an attempt whose lease was handed to another worker is [`Response::StaleAttempt`].
//! * Leases are checked lazily, on `Claim`: no alarm is needed.
//! * Starting a job for the commit of the current job is idempotent ([`Response::JobAlreadyStarted`]).
//!   The coordinator cannot tell which of two commits is newer: [`Request::StartJobInOrder`] carries
//!   the caller's order (the time the push was received), and a job started for a later order is
//!   never replaced by an earlier one ([`Response::OutOfOrder`]), so a retried old push cannot
//!   supersede a newer one.
//! * [`Request::Forget`] deletes everything (the repository was deleted or renamed): the next job
//!   starts from nothing, and workers of the forgotten job are answered [`Response::Superseded`].

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use ledge_durable::{DurableObject, ListOptions, ObjectContext, ObjectError, ObjectErrorKind, Storage};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The namespace the coordinators are registered under; the object name is the repository's.
pub const NAMESPACE: &str = "INDEXING_COORDINATOR";

/// Limits and policy of a coordinator. Every limit exceeded is a typed error, never a truncation
/// (except the list of failures in [`Progress`], which is bounded by design; counts stay exact).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoordinatorConfig {
    /// Attempts of a batch (claims, failed or expired) before it is marked failed. Default 3.
    pub max_attempts: u32,
    /// Most batches in one job. Default 10 000 (500 000 files in batches of 50).
    pub max_batches: usize,
    /// Longest lease a claim may ask for. Default 1 hour.
    pub max_lease: Duration,
    /// Failed files (with reasons) kept for [`Progress::failures`]. Default 100.
    pub max_failures_listed: usize,
    /// Longest failure reason, in bytes. Default 4096.
    pub max_reason_bytes: usize,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            max_attempts: 3,
            max_batches: 10_000,
            max_lease: Duration::from_secs(3600),
            max_failures_listed: 100,
            max_reason_bytes: 4096,
        }
    }
}

/// Where the coordinator reads "now" from (epoch milliseconds), so tests can move time.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> i64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, millis)
    }
}

/// A clock that moves only when told to. Clones share the time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now_ms: Arc<AtomicI64>,
}

impl ManualClock {
    pub fn new(now_ms: i64) -> ManualClock {
        ManualClock { now_ms: Arc::new(AtomicI64::new(now_ms)) }
    }
    pub fn advance(&self, by: Duration) {
        self.now_ms.fetch_add(millis(by), Ordering::SeqCst);
    }
    pub fn set_ms(&self, now_ms: i64) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

/// One batch of a job: an id unique within the job and the paths of its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchSpec {
    pub id: String,
    pub files: Vec<String>,
}

/// A file that could not be indexed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileFailure {
    pub path: String,
    pub reason: String,
}

/// What a coordinator is asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Starts indexing `commit`. Another commit's job, finished or not, is replaced (its batches
    /// cancelled); the same commit again is a no-op.
    StartJob { commit: String, previous_commit: Option<String>, batches: Vec<BatchSpec> },
    /// [`Request::StartJob`] for a job of rank `order` (e.g. the epoch milliseconds at which its
    /// push was received): answered [`Response::OutOfOrder`], changing nothing, when the current
    /// job was started with a greater order.
    StartJobInOrder { commit: String, previous_commit: Option<String>, batches: Vec<BatchSpec>, order: i64 },
    /// Attaches `notes` to the job of `commit` (replacing earlier notes).
    Annotate { commit: String, notes: JobNotes },
    /// Records that a job for `commit` could not start (e.g. the repository is unreachable). Kept,
    /// and shown in [`Progress::error`], until the next job starts.
    RecordError { commit: String, reason: String },
    /// The current job's commit and state: a cheap check before writing a file.
    CurrentCommit,
    /// Deletes the job, the last indexed commit, notes and errors: the repository is gone.
    Forget,
    /// Hands `worker` the next batch to index, leased until now + `lease`.
    Claim { worker: String, lease: Duration },
    /// Records a batch as done: `files_done` files indexed, `files_failed` not, `chunks` chunks made.
    Complete { batch: String, commit: String, files_done: u64, files_failed: Vec<FileFailure>, chunks: u64 },
    /// Reports that attempt `attempt` of a batch failed: the batch is released for another attempt,
    /// or marked failed once it has had `max_attempts`.
    Fail { batch: String, commit: String, attempt: u32, reason: String },
    /// Releases every lease held by a worker whose name does not start with `keep_prefix`: the caller
    /// knows those workers are gone (with the embedded drivers, one process owns the data directory, so
    /// every worker of an earlier process is). Their batches are handed out again first, at once,
    /// rather than when their leases expire; the attempts they used still count.
    ReleaseLeases { keep_prefix: String },
    /// The job's progress.
    Status,
}

/// A batch handed out by [`Request::Claim`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchClaim {
    pub batch: String,
    pub files: Vec<String>,
    pub commit: String,
    /// 1 on the first claim of the batch, then one more on each claim after a failure or expiry.
    pub attempt: u32,
    /// Epoch milliseconds after which the batch may be handed to another worker.
    pub lease_deadline_ms: i64,
}

/// How a finished batch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BatchOutcome {
    Done,
    Failed,
}

/// Where the repository's indexing stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum JobState {
    /// No job was ever started.
    Idle,
    Running,
    /// Every batch finished and at least one is done (see `batches_failed` for failures).
    Indexed,
    /// Every batch failed.
    Failed,
}

/// What a coordinator answers.
// One answer per call, moved once through the object's reply channel: boxing the status buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The job was started; `superseded` is the commit of the unfinished job it replaced, if any.
    JobStarted {
        commit: String,
        batches_total: u32,
        superseded: Option<String>,
    },
    /// The job of this commit already exists; nothing changed.
    JobAlreadyStarted {
        commit: String,
        state: JobState,
    },
    Claimed(BatchClaim),
    /// No job is running: nothing is left to hand out.
    NothingToDo,
    /// Every unfinished batch is leased; the first lease expires after `retry_after`.
    AllClaimed {
        retry_after: Duration,
    },
    /// The batch was recorded as done.
    Completed {
        batch: String,
        job_state: JobState,
    },
    /// The batch was already finished; nothing was counted.
    AlreadyFinished {
        batch: String,
        outcome: BatchOutcome,
    },
    /// The failed attempt was recorded; the batch will be handed out again.
    Released {
        batch: String,
        attempts: u32,
    },
    /// The failed attempt was the last allowed: the batch is failed for good.
    BatchFailed {
        batch: String,
        attempts: u32,
        job_state: JobState,
    },
    /// [`Request::ReleaseLeases`] released this many leases.
    LeasesReleased {
        released: u32,
    },
    /// A failure report for an attempt that no longer holds the batch; nothing changed.
    StaleAttempt {
        batch: String,
        current_attempt: u32,
    },
    /// The request names a commit that is not the current job's; nothing changed.
    Superseded {
        current_commit: Option<String>,
    },
    Status(Progress),
    /// The job of `current_commit` was started with a greater order; nothing changed.
    OutOfOrder {
        current_commit: String,
        current_order: i64,
    },
    Annotated,
    ErrorRecorded,
    CurrentCommit {
        commit: Option<String>,
        state: JobState,
    },
    Forgotten,
}

/// How the files of a job were chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum Selection {
    /// Every file of the commit, and every file indexed before that the commit no longer has.
    Full { reason: String },
    /// The files changed since `base`, the last indexed commit, and — when the job replaced an unfinished
    /// job that was itself a diff from `base` — the files changed since that job's commit too.
    Diff {
        base: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        superseded: Option<String>,
    },
}

/// A file that was not indexed on purpose, and why (a stable code such as `vendored` or `too_large`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SkippedPath {
    pub path: String,
    pub reason: String,
}

/// Files left out of a job on purpose: exact counts by reason, and the first few by path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SkipSummary {
    pub total: u64,
    pub by_reason: BTreeMap<String, u64>,
    /// At most [`SkipSummary::MAX_LISTED`] of them.
    pub listed: Vec<SkippedPath>,
}

impl SkipSummary {
    /// Skipped files listed by path; the counts stay exact beyond it.
    pub const MAX_LISTED: usize = 100;

    /// Listed paths are cut to this many bytes (the counts are what matter).
    pub const MAX_PATH_BYTES: usize = 1024;

    /// Counts one skipped file, listing it while there is room.
    pub fn add(&mut self, path: &str, reason: &str) {
        self.total += 1;
        *self.by_reason.entry(reason.to_owned()).or_default() += 1;
        if self.listed.len() < Self::MAX_LISTED {
            let mut end = path.len().min(Self::MAX_PATH_BYTES);
            while !path.is_char_boundary(end) {
                end -= 1;
            }
            self.listed.push(SkippedPath { path: path[..end].to_owned(), reason: reason.to_owned() });
        }
    }
}

/// What the caller tells about a job beyond its batches, shown in [`Progress::notes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobNotes {
    pub selection: Selection,
    pub skipped: SkipSummary,
    /// The embedding model the job's chunks are embedded with; `None`: keyword index only.
    pub embedding_model: Option<String>,
}

/// A job that could not start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobError {
    pub commit: String,
    pub reason: String,
    /// Epoch milliseconds.
    pub at_ms: i64,
}

/// Progress of the current job, and the repository's last indexed commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Progress {
    pub commit: Option<String>,
    pub previous_commit: Option<String>,
    pub state: JobState,
    pub files_total: u64,
    pub files_done: u64,
    /// Exact count of failed files (reported by workers, or in batches failed for good).
    pub files_failed: u64,
    /// The first `max_failures_listed` failed files with their reasons.
    pub failures: Vec<FileFailure>,
    pub chunks: u64,
    pub batches_total: u32,
    pub batches_done: u32,
    pub batches_failed: u32,
    /// Epoch milliseconds.
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    pub last_indexed_commit: Option<String>,
    pub last_indexed_at_ms: Option<i64>,
    /// The notes of the current job, if the caller gave any.
    #[serde(default)]
    pub notes: Option<JobNotes>,
    /// The last job that could not start, unless a job started since.
    #[serde(default)]
    pub error: Option<JobError>,
}

/// The durable object. Holds no state in memory: everything is in its storage.
#[derive(Clone)]
pub struct IndexingCoordinator {
    config: CoordinatorConfig,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for IndexingCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexingCoordinator").field("config", &self.config).finish_non_exhaustive()
    }
}

impl IndexingCoordinator {
    pub fn new(config: CoordinatorConfig, clock: Arc<dyn Clock>) -> IndexingCoordinator {
        IndexingCoordinator { config, clock }
    }

    /// A coordinator on the system clock.
    pub fn with_config(config: CoordinatorConfig) -> IndexingCoordinator {
        IndexingCoordinator::new(config, Arc::new(SystemClock))
    }
}

#[async_trait]
impl DurableObject for IndexingCoordinator {
    type Request = Request;
    type Response = Response;

    async fn handle(&mut self, ctx: &mut ObjectContext, request: Request) -> Result<Response, ObjectError> {
        let config = self.config;
        let now = self.clock.now_ms();
        // One transaction per request: a request answered with an error leaves storage untouched.
        ctx.storage().transaction(move |txn| Box::pin(dispatch(txn, config, now, request))).await
    }
}

const JOB: &str = "job";
const INDEXED: &str = "indexed";
const READY_PREFIX: &str = "ready/";
const LEASE_PREFIX: &str = "lease/";
const FAILURE_PREFIX: &str = "failure/";
const NOTES: &str = "notes";
const ERROR: &str = "error";

fn spec_key(index: u32) -> String {
    format!("spec/{index:010}")
}
fn state_key(index: u32) -> String {
    format!("state/{index:010}")
}
fn id_key(batch: &str) -> String {
    format!("id/{batch}")
}
fn ready_key(index: u32) -> String {
    format!("{READY_PREFIX}{index:010}")
}
fn lease_key(deadline_ms: i64, index: u32) -> String {
    format!("{LEASE_PREFIX}{:020}/{index:010}", deadline_ms.max(0))
}
fn failure_key(seq: u32) -> String {
    format!("{FAILURE_PREFIX}{seq:010}")
}

/// The current job: its commit, where fresh batches are handed out from, and its counters.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Job {
    commit: String,
    previous_commit: Option<String>,
    started_at_ms: i64,
    finished_at_ms: Option<i64>,
    batches_total: u32,
    /// Batches below this index were handed out at least once (or finished before that).
    next_fresh: u32,
    batches_done: u32,
    batches_failed: u32,
    files_total: u64,
    files_done: u64,
    files_failed: u64,
    failures_listed: u32,
    chunks: u64,
    /// The order the job was started with ([`Request::StartJobInOrder`]).
    #[serde(default)]
    order: Option<i64>,
}

impl Job {
    fn state(&self) -> JobState {
        match self.finished_at_ms {
            None => JobState::Running,
            Some(_) if self.batches_total > 0 && self.batches_failed == self.batches_total => {
                JobState::Failed
            }
            Some(_) => JobState::Indexed,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct IndexedCommit {
    commit: String,
    indexed_at_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct BatchRecord {
    /// Claims so far.
    attempts: u32,
    status: BatchStatus,
    last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum BatchStatus {
    /// Never handed out; found through the job's `next_fresh` cursor.
    Waiting,
    /// Released after a failed attempt; listed under `ready/`.
    Ready,
    /// Held by a worker; listed under `lease/`.
    Leased {
        worker: String,
        deadline_ms: i64,
    },
    Done,
    Failed,
}

/// The value under a `lease/` key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LeaseEntry {
    index: u32,
    deadline_ms: i64,
}

async fn dispatch(
    storage: &mut Storage,
    config: CoordinatorConfig,
    now: i64,
    request: Request,
) -> Result<Response, ObjectError> {
    match request {
        Request::StartJob { commit, previous_commit, batches } => {
            start_job(storage, &config, now, JobStart { commit, previous_commit, batches, order: None }).await
        }
        Request::StartJobInOrder { commit, previous_commit, batches, order } => {
            let start = JobStart { commit, previous_commit, batches, order: Some(order) };
            start_job(storage, &config, now, start).await
        }
        Request::Annotate { commit, notes } => annotate(storage, &config, commit, notes).await,
        Request::RecordError { commit, reason } => {
            check_reason(&config, &reason)?;
            storage.put(ERROR, &JobError { commit, reason, at_ms: now })?;
            Ok(Response::ErrorRecorded)
        }
        Request::CurrentCommit => Ok(match storage.get::<Job>(JOB).await? {
            Some(job) => Response::CurrentCommit { state: job.state(), commit: Some(job.commit) },
            None => Response::CurrentCommit { commit: None, state: JobState::Idle },
        }),
        Request::Forget => {
            storage.delete_all();
            Ok(Response::Forgotten)
        }
        Request::Claim { worker, lease } => claim(storage, &config, now, worker, lease).await,
        Request::Complete { batch, commit, files_done, files_failed, chunks } => {
            complete(storage, &config, now, Completion { batch, commit, files_done, files_failed, chunks })
                .await
        }
        Request::Fail { batch, commit, attempt, reason } => {
            fail(storage, &config, now, batch, commit, attempt, reason).await
        }
        Request::ReleaseLeases { keep_prefix } => release_leases(storage, keep_prefix).await,
        Request::Status => status(storage, &config).await,
    }
}

struct JobStart {
    commit: String,
    previous_commit: Option<String>,
    batches: Vec<BatchSpec>,
    order: Option<i64>,
}

async fn start_job(
    storage: &mut Storage,
    config: &CoordinatorConfig,
    now: i64,
    start: JobStart,
) -> Result<Response, ObjectError> {
    let JobStart { commit, previous_commit, batches, order } = start;
    if commit.is_empty() {
        return Err(ObjectError::invalid_input("commit must not be empty"));
    }
    if batches.len() > config.max_batches {
        return Err(too_large("batches in a job", config.max_batches, batches.len()));
    }
    let mut ids = HashSet::new();
    for batch in &batches {
        if batch.id.is_empty() {
            return Err(ObjectError::invalid_input("a batch id must not be empty"));
        }
        if !ids.insert(batch.id.as_str()) {
            return Err(ObjectError::invalid_input(format!("batch id {:?} appears twice", batch.id)));
        }
    }
    let batches_total = u32::try_from(batches.len())
        .map_err(|_| too_large("batches in a job", u32::MAX as usize, batches.len()))?;

    let current: Option<Job> = storage.get(JOB).await?;
    if let Some(job) = &current
        && job.commit == commit
    {
        return Ok(Response::JobAlreadyStarted { commit, state: job.state() });
    }
    if let (Some(job), Some(order)) = (&current, order)
        && let Some(current_order) = job.order
        && order < current_order
    {
        return Ok(Response::OutOfOrder { current_commit: job.commit.clone(), current_order });
    }
    let superseded = current.filter(|job| job.finished_at_ms.is_none()).map(|job| job.commit);
    let indexed: Option<IndexedCommit> = storage.get(INDEXED).await?;
    storage.delete_all();
    if let Some(indexed) = &indexed {
        storage.put(INDEXED, indexed)?;
    }
    let files_total = batches.iter().map(|b| b.files.len() as u64).sum();
    for (index, batch) in (0..batches_total).zip(batches) {
        storage.put(id_key(&batch.id), &index)?;
        storage.put(
            state_key(index),
            &BatchRecord { attempts: 0, status: BatchStatus::Waiting, last_error: None },
        )?;
        storage.put(spec_key(index), &batch)?;
    }
    let mut job = Job {
        commit: commit.clone(),
        previous_commit,
        started_at_ms: now,
        finished_at_ms: None,
        batches_total,
        next_fresh: 0,
        batches_done: 0,
        batches_failed: 0,
        files_total,
        files_done: 0,
        files_failed: 0,
        failures_listed: 0,
        chunks: 0,
        order,
    };
    finish_if_complete(storage, &mut job, now)?;
    storage.put(JOB, &job)?;
    Ok(Response::JobStarted { commit, batches_total, superseded })
}

async fn claim(
    storage: &mut Storage,
    config: &CoordinatorConfig,
    now: i64,
    worker: String,
    lease: Duration,
) -> Result<Response, ObjectError> {
    if worker.is_empty() {
        return Err(ObjectError::invalid_input("worker must not be empty"));
    }
    if lease.is_zero() {
        return Err(ObjectError::invalid_input("a lease must be longer than zero"));
    }
    if lease > config.max_lease {
        return Err(too_large("lease (ms)", millis_usize(config.max_lease), millis_usize(lease)));
    }
    let Some(mut job) = storage.get::<Job>(JOB).await? else {
        return Ok(Response::NothingToDo);
    };
    if job.finished_at_ms.is_some() {
        return Ok(Response::NothingToDo);
    }
    let deadline_ms = now.saturating_add(millis(lease));
    loop {
        // 1. Batches released by a failed attempt.
        if let Some((key, index)) = first::<u32>(storage, READY_PREFIX).await? {
            storage.delete(&key).await?;
            let record = load_record(storage, index).await?;
            return hand_out(storage, &mut job, index, record, worker, deadline_ms).await;
        }
        // 2. The lease that expires first, if it has.
        let mut first_deadline = None;
        if let Some((key, entry)) = first::<LeaseEntry>(storage, LEASE_PREFIX).await? {
            if entry.deadline_ms <= now {
                storage.delete(&key).await?;
                let mut record = load_record(storage, entry.index).await?;
                if record.attempts >= config.max_attempts {
                    let reason = format!("lease expired on attempt {}", record.attempts);
                    fail_for_good(storage, config, &mut job, entry.index, &mut record, reason, now).await?;
                    if job.finished_at_ms.is_some() {
                        storage.put(JOB, &job)?;
                        return Ok(Response::NothingToDo);
                    }
                    continue;
                }
                return hand_out(storage, &mut job, entry.index, record, worker, deadline_ms).await;
            }
            first_deadline = Some(entry.deadline_ms);
        }
        // 3. Batches never handed out.
        while job.next_fresh < job.batches_total {
            let index = job.next_fresh;
            job.next_fresh += 1;
            let record = load_record(storage, index).await?;
            if record.status == BatchStatus::Waiting {
                return hand_out(storage, &mut job, index, record, worker, deadline_ms).await;
            }
        }
        storage.put(JOB, &job)?;
        return Ok(match first_deadline {
            Some(deadline) => Response::AllClaimed {
                retry_after: Duration::from_millis(u64::try_from(deadline.saturating_sub(now)).unwrap_or(0)),
            },
            None => Response::NothingToDo,
        });
    }
}

async fn hand_out(
    storage: &mut Storage,
    job: &mut Job,
    index: u32,
    mut record: BatchRecord,
    worker: String,
    deadline_ms: i64,
) -> Result<Response, ObjectError> {
    let spec = load_spec(storage, index).await?;
    record.attempts += 1;
    record.status = BatchStatus::Leased { worker, deadline_ms };
    storage.put(state_key(index), &record)?;
    storage.put(lease_key(deadline_ms, index), &LeaseEntry { index, deadline_ms })?;
    storage.put(JOB, &*job)?;
    Ok(Response::Claimed(BatchClaim {
        batch: spec.id,
        files: spec.files,
        commit: job.commit.clone(),
        attempt: record.attempts,
        lease_deadline_ms: deadline_ms,
    }))
}

struct Completion {
    batch: String,
    commit: String,
    files_done: u64,
    files_failed: Vec<FileFailure>,
    chunks: u64,
}

async fn complete(
    storage: &mut Storage,
    config: &CoordinatorConfig,
    now: i64,
    done: Completion,
) -> Result<Response, ObjectError> {
    for failure in &done.files_failed {
        check_reason(config, &failure.reason)?;
    }
    let mut job = match current_job(storage, &done.commit).await? {
        Ok(job) => job,
        Err(superseded) => return Ok(superseded),
    };
    let index = batch_index(storage, &done.batch).await?;
    let mut record = load_record(storage, index).await?;
    if let Some(outcome) = finished_outcome(&record.status) {
        return Ok(Response::AlreadyFinished { batch: done.batch, outcome });
    }
    let spec = load_spec(storage, index).await?;
    let reported = done.files_done.saturating_add(done.files_failed.len() as u64);
    if reported > spec.files.len() as u64 {
        return Err(ObjectError::invalid_input(format!(
            "batch {:?} has {} files, the completion reports {reported}",
            done.batch,
            spec.files.len()
        )));
    }
    let files: HashSet<&str> = spec.files.iter().map(String::as_str).collect();
    if let Some(stranger) = done.files_failed.iter().find(|f| !files.contains(f.path.as_str())) {
        return Err(ObjectError::invalid_input(format!(
            "failed file {:?} is not in batch {:?}",
            stranger.path, done.batch
        )));
    }
    unlist(storage, index, &record.status).await?;
    record.status = BatchStatus::Done;
    storage.put(state_key(index), &record)?;
    job.batches_done += 1;
    job.files_done += done.files_done;
    job.files_failed += done.files_failed.len() as u64;
    job.chunks += done.chunks;
    list_failures(storage, config, &mut job, done.files_failed)?;
    finish_if_complete(storage, &mut job, now)?;
    storage.put(JOB, &job)?;
    Ok(Response::Completed { batch: done.batch, job_state: job.state() })
}

async fn fail(
    storage: &mut Storage,
    config: &CoordinatorConfig,
    now: i64,
    batch: String,
    commit: String,
    attempt: u32,
    reason: String,
) -> Result<Response, ObjectError> {
    check_reason(config, &reason)?;
    let mut job = match current_job(storage, &commit).await? {
        Ok(job) => job,
        Err(superseded) => return Ok(superseded),
    };
    let index = batch_index(storage, &batch).await?;
    let mut record = load_record(storage, index).await?;
    if let Some(outcome) = finished_outcome(&record.status) {
        return Ok(Response::AlreadyFinished { batch, outcome });
    }
    if !matches!(record.status, BatchStatus::Leased { .. }) || record.attempts != attempt {
        return Ok(Response::StaleAttempt { batch, current_attempt: record.attempts });
    }
    unlist(storage, index, &record.status).await?;
    if record.attempts >= config.max_attempts {
        let reason = format!("attempt {attempt} failed: {reason}");
        fail_for_good(storage, config, &mut job, index, &mut record, reason, now).await?;
        storage.put(JOB, &job)?;
        return Ok(Response::BatchFailed { batch, attempts: record.attempts, job_state: job.state() });
    }
    record.status = BatchStatus::Ready;
    record.last_error = Some(reason);
    storage.put(state_key(index), &record)?;
    storage.put(ready_key(index), &index)?;
    Ok(Response::Released { batch, attempts: record.attempts })
}

async fn release_leases(storage: &mut Storage, keep_prefix: String) -> Result<Response, ObjectError> {
    let leases = storage.list::<LeaseEntry>(ListOptions::new().prefix(LEASE_PREFIX)).await?;
    let mut released = 0;
    for (key, entry) in leases {
        let mut record = load_record(storage, entry.index).await?;
        let BatchStatus::Leased { worker, .. } = &record.status else { continue };
        if worker.starts_with(&keep_prefix) {
            continue;
        }
        let reason = format!("its worker {worker} is gone (the process stopped)");
        storage.delete(&key).await?;
        record.status = BatchStatus::Ready;
        record.last_error = Some(reason);
        storage.put(state_key(entry.index), &record)?;
        storage.put(ready_key(entry.index), &entry.index)?;
        released += 1;
    }
    Ok(Response::LeasesReleased { released })
}

async fn annotate(
    storage: &mut Storage,
    config: &CoordinatorConfig,
    commit: String,
    notes: JobNotes,
) -> Result<Response, ObjectError> {
    if notes.skipped.listed.len() > SkipSummary::MAX_LISTED {
        return Err(too_large("skipped files listed", SkipSummary::MAX_LISTED, notes.skipped.listed.len()));
    }
    for skipped in &notes.skipped.listed {
        check_reason(config, &skipped.path)?;
    }
    if let Err(superseded) = current_job(storage, &commit).await? {
        return Ok(superseded);
    }
    storage.put(NOTES, &notes)?;
    Ok(Response::Annotated)
}

async fn status(storage: &mut Storage, config: &CoordinatorConfig) -> Result<Response, ObjectError> {
    let indexed: Option<IndexedCommit> = storage.get(INDEXED).await?;
    let job: Option<Job> = storage.get(JOB).await?;
    let notes: Option<JobNotes> = storage.get(NOTES).await?;
    let error: Option<JobError> = storage.get(ERROR).await?;
    let failures = if config.max_failures_listed == 0 || job.is_none() {
        Vec::new()
    } else {
        let options = ListOptions::new().prefix(FAILURE_PREFIX).limit(config.max_failures_listed);
        storage.list::<FileFailure>(options).await?.into_iter().map(|(_, f)| f).collect()
    };
    let (last_indexed_commit, last_indexed_at_ms) = match indexed {
        Some(i) => (Some(i.commit), Some(i.indexed_at_ms)),
        None => (None, None),
    };
    let progress = match job {
        None => Progress {
            commit: None,
            previous_commit: None,
            state: JobState::Idle,
            files_total: 0,
            files_done: 0,
            files_failed: 0,
            failures,
            chunks: 0,
            batches_total: 0,
            batches_done: 0,
            batches_failed: 0,
            started_at_ms: None,
            finished_at_ms: None,
            last_indexed_commit,
            last_indexed_at_ms,
            notes,
            error,
        },
        Some(job) => Progress {
            state: job.state(),
            commit: Some(job.commit),
            previous_commit: job.previous_commit,
            files_total: job.files_total,
            files_done: job.files_done,
            files_failed: job.files_failed,
            failures,
            chunks: job.chunks,
            batches_total: job.batches_total,
            batches_done: job.batches_done,
            batches_failed: job.batches_failed,
            started_at_ms: Some(job.started_at_ms),
            finished_at_ms: job.finished_at_ms,
            last_indexed_commit,
            last_indexed_at_ms,
            notes,
            error,
        },
    };
    Ok(Response::Status(progress))
}

/// The current job if it is the job of `commit`; otherwise the answer for a superseded request.
async fn current_job(storage: &Storage, commit: &str) -> Result<Result<Job, Response>, ObjectError> {
    Ok(match storage.get::<Job>(JOB).await? {
        Some(job) if job.commit == commit => Ok(job),
        Some(job) => Err(Response::Superseded { current_commit: Some(job.commit) }),
        None => Err(Response::Superseded { current_commit: None }),
    })
}

/// Marks batch `index` failed for good and counts its files as failed. The caller stores `job`.
async fn fail_for_good(
    storage: &mut Storage,
    config: &CoordinatorConfig,
    job: &mut Job,
    index: u32,
    record: &mut BatchRecord,
    reason: String,
    now: i64,
) -> Result<(), ObjectError> {
    let spec = load_spec(storage, index).await?;
    record.status = BatchStatus::Failed;
    record.last_error = Some(reason.clone());
    storage.put(state_key(index), &*record)?;
    job.batches_failed += 1;
    job.files_failed += spec.files.len() as u64;
    let batch = spec.id;
    let failures = spec.files.into_iter().map(|path| FileFailure {
        path,
        reason: format!("batch {batch:?} failed after {} attempts: {reason}", record.attempts),
    });
    list_failures(storage, config, job, failures)?;
    finish_if_complete(storage, job, now)
}

/// Keeps the first `max_failures_listed` failures of the job.
fn list_failures(
    storage: &mut Storage,
    config: &CoordinatorConfig,
    job: &mut Job,
    failures: impl IntoIterator<Item = FileFailure>,
) -> Result<(), ObjectError> {
    for failure in failures {
        if job.failures_listed as usize >= config.max_failures_listed {
            break;
        }
        storage.put(failure_key(job.failures_listed), &failure)?;
        job.failures_listed += 1;
    }
    Ok(())
}

/// Finishes the job once every batch is finished, recording its commit as indexed if it is.
fn finish_if_complete(storage: &mut Storage, job: &mut Job, now: i64) -> Result<(), ObjectError> {
    if job.finished_at_ms.is_none() && job.batches_done + job.batches_failed == job.batches_total {
        job.finished_at_ms = Some(now);
        if job.state() == JobState::Indexed {
            storage.put(INDEXED, &IndexedCommit { commit: job.commit.clone(), indexed_at_ms: now })?;
        }
    }
    Ok(())
}

/// Removes the batch from the `ready/` or `lease/` list it is on, if any.
async fn unlist(storage: &mut Storage, index: u32, status: &BatchStatus) -> Result<(), ObjectError> {
    match status {
        BatchStatus::Ready => {
            storage.delete(&ready_key(index)).await?;
        }
        BatchStatus::Leased { deadline_ms, .. } => {
            storage.delete(&lease_key(*deadline_ms, index)).await?;
        }
        BatchStatus::Waiting | BatchStatus::Done | BatchStatus::Failed => {}
    }
    Ok(())
}

fn finished_outcome(status: &BatchStatus) -> Option<BatchOutcome> {
    match status {
        BatchStatus::Done => Some(BatchOutcome::Done),
        BatchStatus::Failed => Some(BatchOutcome::Failed),
        _ => None,
    }
}

async fn batch_index(storage: &Storage, batch: &str) -> Result<u32, ObjectError> {
    storage
        .get::<u32>(&id_key(batch))
        .await?
        .ok_or_else(|| ObjectError::not_found(format!("no batch {batch:?} in the current job")))
}

async fn load_record(storage: &Storage, index: u32) -> Result<BatchRecord, ObjectError> {
    load(storage, &state_key(index)).await
}

async fn load_spec(storage: &Storage, index: u32) -> Result<BatchSpec, ObjectError> {
    load(storage, &spec_key(index)).await
}

/// A key the job's bookkeeping says exists; its absence is an internal inconsistency.
async fn load<T: DeserializeOwned>(storage: &Storage, key: &str) -> Result<T, ObjectError> {
    storage
        .get(key)
        .await?
        .ok_or_else(|| ObjectError::internal(format!("coordinator key {key:?} is missing")))
}

/// The first entry under `prefix`, in key order.
async fn first<T: DeserializeOwned>(
    storage: &Storage,
    prefix: &str,
) -> Result<Option<(String, T)>, ObjectError> {
    Ok(storage.list::<T>(ListOptions::new().prefix(prefix).limit(1)).await?.into_iter().next())
}

fn check_reason(config: &CoordinatorConfig, reason: &str) -> Result<(), ObjectError> {
    if reason.len() > config.max_reason_bytes {
        return Err(too_large("failure reason (bytes)", config.max_reason_bytes, reason.len()));
    }
    Ok(())
}

fn too_large(what: &str, limit: usize, actual: usize) -> ObjectError {
    ObjectError::new(ObjectErrorKind::TooLarge, format!("{what} too large: {actual} > {limit}"))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn millis_usize(d: Duration) -> usize {
    usize::try_from(d.as_millis()).unwrap_or(usize::MAX)
}
