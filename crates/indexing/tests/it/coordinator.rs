//! Behaviour of the IndexingCoordinator: claims and leases, completion, progress, superseding,
//! failures and retries, and resuming after a restart.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ledge_durable::{
    DurableHost, Error, HostConfig, HostRun, Namespace, ObjectErrorKind, SqliteStorage, Stub,
};
use ledge_indexing::{
    BatchClaim, BatchOutcome, BatchSpec, CoordinatorConfig, FileFailure, IndexingCoordinator, JobError,
    JobNotes, JobState, ManualClock, NAMESPACE, Progress, Request, Response, Selection, SkipSummary,
};

const LEASE: Duration = Duration::from_secs(60);
const T0: i64 = 1_700_000_000_000;

struct Setup {
    dir: tempfile::TempDir,
    clock: ManualClock,
    config: CoordinatorConfig,
}

/// A running host with the coordinator namespace registered.
struct Running {
    run: HostRun,
    _coordinators: Namespace<IndexingCoordinator>,
    repo: Stub<IndexingCoordinator>,
}

impl Setup {
    fn new() -> Setup {
        Setup::with_config(CoordinatorConfig::default())
    }

    fn with_config(config: CoordinatorConfig) -> Setup {
        Setup { dir: tempfile::tempdir().expect("temporary directory"), clock: ManualClock::new(T0), config }
    }

    fn start(&self) -> Running {
        start_host(self.dir.path(), self.config, self.clock.clone())
    }
}

fn start_host(dir: &Path, config: CoordinatorConfig, clock: ManualClock) -> Running {
    let storage = SqliteStorage::open(dir.join("durable.db"), Default::default()).expect("open storage");
    let host = DurableHost::new(Arc::new(storage), HostConfig::default());
    let coordinators = host
        .namespace(NAMESPACE, move |_| IndexingCoordinator::new(config, Arc::new(clock.clone())))
        .expect("register");
    let run = host.start(std::future::pending()).expect("start");
    let repo = coordinators.stub_for_name("org-1/repo-1");
    Running { run, _coordinators: coordinators, repo }
}

/// `count` batches of `per_batch` files: batch `b{i}` holds `src/{i}/{j}.rs`.
fn batches(count: usize, per_batch: usize) -> Vec<BatchSpec> {
    (0..count)
        .map(|i| BatchSpec {
            id: format!("b{i}"),
            files: (0..per_batch).map(|j| format!("src/{i}/{j}.rs")).collect(),
        })
        .collect()
}

async fn start_job(repo: &Stub<IndexingCoordinator>, commit: &str, batches: Vec<BatchSpec>) -> Response {
    repo.call(Request::StartJob { commit: commit.into(), previous_commit: None, batches })
        .await
        .expect("start job")
}

async fn claim(repo: &Stub<IndexingCoordinator>, worker: &str) -> Response {
    repo.call(Request::Claim { worker: worker.into(), lease: LEASE }).await.expect("claim")
}

async fn claimed(repo: &Stub<IndexingCoordinator>, worker: &str) -> BatchClaim {
    match claim(repo, worker).await {
        Response::Claimed(claim) => claim,
        other => panic!("expected a claim, got {other:?}"),
    }
}

async fn complete(repo: &Stub<IndexingCoordinator>, claim: &BatchClaim, chunks: u64) -> Response {
    complete_with(repo, &claim.batch, &claim.commit, claim.files.len() as u64, Vec::new(), chunks).await
}

async fn complete_with(
    repo: &Stub<IndexingCoordinator>,
    batch: &str,
    commit: &str,
    files_done: u64,
    files_failed: Vec<FileFailure>,
    chunks: u64,
) -> Response {
    repo.call(Request::Complete {
        batch: batch.into(),
        commit: commit.into(),
        files_done,
        files_failed,
        chunks,
    })
    .await
    .expect("complete")
}

async fn fail(repo: &Stub<IndexingCoordinator>, claim: &BatchClaim, reason: &str) -> Response {
    repo.call(Request::Fail {
        batch: claim.batch.clone(),
        commit: claim.commit.clone(),
        attempt: claim.attempt,
        reason: reason.into(),
    })
    .await
    .expect("fail")
}

async fn status(repo: &Stub<IndexingCoordinator>) -> Progress {
    match repo.call(Request::Status).await.expect("status") {
        Response::Status(progress) => progress,
        other => panic!("expected a status, got {other:?}"),
    }
}

fn object_error_kind(result: Result<Response, Error>) -> ObjectErrorKind {
    match result {
        Err(Error::Object(e)) => e.kind,
        other => panic!("expected an object error, got {other:?}"),
    }
}

#[tokio::test]
async fn each_batch_is_handed_out_once_while_its_lease_holds() {
    let s = Setup::new();
    let r = s.start();
    start_job(&r.repo, "c1", batches(3, 2)).await;
    let mut seen = Vec::new();
    for worker in ["w1", "w2", "w3"] {
        let claim = claimed(&r.repo, worker).await;
        assert_eq!(claim.commit, "c1");
        assert_eq!(claim.attempt, 1);
        assert_eq!(claim.lease_deadline_ms, T0 + 60_000);
        assert_eq!(claim.files.len(), 2);
        seen.push(claim.batch);
    }
    assert_eq!(seen, ["b0", "b1", "b2"]);
    s.clock.advance(Duration::from_secs(20));
    assert_eq!(claim(&r.repo, "w4").await, Response::AllClaimed { retry_after: Duration::from_secs(40) });
    r.run.shutdown().await;
}

#[tokio::test]
async fn an_expired_lease_is_handed_out_again_with_the_next_attempt() {
    let s = Setup::new();
    let r = s.start();
    start_job(&r.repo, "c1", batches(1, 1)).await;
    let first = claimed(&r.repo, "w1").await;
    s.clock.advance(LEASE - Duration::from_millis(1));
    assert!(matches!(claim(&r.repo, "w2").await, Response::AllClaimed { .. }), "not expired yet");
    s.clock.advance(Duration::from_millis(1));
    let second = claimed(&r.repo, "w2").await;
    assert_eq!(second.batch, first.batch);
    assert_eq!(second.attempt, 2);
    assert_eq!(second.lease_deadline_ms, T0 + 120_000);
    r.run.shutdown().await;
}

#[tokio::test]
async fn leases_of_a_gone_process_are_released_at_once_and_claimed_first() {
    let s = Setup::new();
    let r = s.start();
    start_job(&r.repo, "c1", batches(3, 1)).await;
    let old_b0 = claimed(&r.repo, "old-process/m1").await;
    let old_b1 = claimed(&r.repo, "old-process/m2").await;
    let live = claimed(&r.repo, "new-process/m3").await;
    assert_eq!(claim(&r.repo, "new-process/m4").await, Response::AllClaimed { retry_after: LEASE });

    let released = r.repo.call(Request::ReleaseLeases { keep_prefix: "new-process/".into() }).await;
    assert_eq!(released.expect("release"), Response::LeasesReleased { released: 2 });

    let again = claimed(&r.repo, "new-process/m4").await;
    assert_eq!((again.batch.as_str(), again.attempt), (old_b0.batch.as_str(), 2), "the attempt still counts");
    let again = claimed(&r.repo, "new-process/m5").await;
    assert_eq!(again.batch, old_b1.batch);
    assert!(
        matches!(claim(&r.repo, "new-process/m6").await, Response::AllClaimed { .. }),
        "{live:?} stays leased"
    );
    let released = r.repo.call(Request::ReleaseLeases { keep_prefix: "new-process/".into() }).await;
    assert_eq!(released.expect("release"), Response::LeasesReleased { released: 0 });
    r.run.shutdown().await;
}

#[tokio::test]
async fn completing_a_batch_twice_counts_once() {
    let s = Setup::new();
    let r = s.start();
    start_job(&r.repo, "c1", batches(2, 3)).await;
    let b0 = claimed(&r.repo, "w1").await;
    assert_eq!(
        complete(&r.repo, &b0, 7).await,
        Response::Completed { batch: "b0".into(), job_state: JobState::Running }
    );
    assert_eq!(
        complete(&r.repo, &b0, 7).await,
        Response::AlreadyFinished { batch: "b0".into(), outcome: BatchOutcome::Done }
    );
    let p = status(&r.repo).await;
    assert_eq!((p.batches_done, p.files_done, p.chunks), (1, 3, 7));
    r.run.shutdown().await;
}

#[tokio::test]
async fn a_late_completion_by_the_first_holder_counts_once_and_ends_the_second_lease() {
    let s = Setup::new();
    let r = s.start();
    start_job(&r.repo, "c1", batches(1, 2)).await;
    let first = claimed(&r.repo, "slow").await;
    s.clock.advance(LEASE);
    let second = claimed(&r.repo, "fast").await;
    assert!(matches!(
        complete(&r.repo, &first, 4).await,
        Response::Completed { job_state: JobState::Indexed, .. }
    ));
    assert!(matches!(complete(&r.repo, &second, 4).await, Response::AlreadyFinished { .. }));
    s.clock.advance(LEASE * 2);
    assert_eq!(claim(&r.repo, "w3").await, Response::NothingToDo, "the finished batch is not leased again");
    let p = status(&r.repo).await;
    assert_eq!((p.batches_done, p.files_done, p.chunks), (1, 2, 4));
    r.run.shutdown().await;
}

#[tokio::test]
async fn progress_counts_files_chunks_failures_and_times() {
    let s = Setup::new();
    let r = s.start();
    let idle = status(&r.repo).await;
    assert_eq!((idle.state, idle.commit, idle.last_indexed_commit), (JobState::Idle, None, None));

    r.repo
        .call(Request::StartJob {
            commit: "c2".into(),
            previous_commit: Some("c1".into()),
            batches: batches(3, 4),
        })
        .await
        .unwrap();
    let b0 = claimed(&r.repo, "w1").await;
    let b1 = claimed(&r.repo, "w2").await;
    s.clock.advance(Duration::from_secs(5));
    complete(&r.repo, &b0, 10).await;
    let broken = FileFailure { path: "src/1/3.rs".into(), reason: "not UTF-8".into() };
    complete_with(&r.repo, &b1.batch, "c2", 3, vec![broken.clone()], 6).await;

    let p = status(&r.repo).await;
    assert_eq!(p.commit.as_deref(), Some("c2"));
    assert_eq!(p.previous_commit.as_deref(), Some("c1"));
    assert_eq!(p.state, JobState::Running);
    assert_eq!((p.files_total, p.files_done, p.files_failed, p.chunks), (12, 7, 1, 16));
    assert_eq!((p.batches_total, p.batches_done, p.batches_failed), (3, 2, 0));
    assert_eq!(p.failures, vec![broken]);
    assert_eq!((p.started_at_ms, p.finished_at_ms), (Some(T0), None));
    r.run.shutdown().await;
}

#[tokio::test]
async fn the_commit_is_indexed_only_after_the_last_batch() {
    let s = Setup::new();
    let r = s.start();
    start_job(&r.repo, "c1", batches(3, 1)).await;
    let claims = [claimed(&r.repo, "w").await, claimed(&r.repo, "w").await, claimed(&r.repo, "w").await];
    for claim in &claims[..2] {
        complete(&r.repo, claim, 1).await;
        let p = status(&r.repo).await;
        assert_eq!((p.state, p.last_indexed_commit, p.finished_at_ms), (JobState::Running, None, None));
    }
    s.clock.advance(Duration::from_secs(9));
    assert_eq!(
        complete(&r.repo, &claims[2], 1).await,
        Response::Completed { batch: "b2".into(), job_state: JobState::Indexed }
    );
    let p = status(&r.repo).await;
    assert_eq!(p.state, JobState::Indexed);
    assert_eq!(p.last_indexed_commit.as_deref(), Some("c1"));
    assert_eq!((p.finished_at_ms, p.last_indexed_at_ms), (Some(T0 + 9_000), Some(T0 + 9_000)));
    assert_eq!(claim(&r.repo, "w").await, Response::NothingToDo);
    r.run.shutdown().await;
}

#[tokio::test]
async fn a_job_without_batches_is_indexed_at_once() {
    let s = Setup::new();
    let r = s.start();
    start_job(&r.repo, "empty", Vec::new()).await;
    let p = status(&r.repo).await;
    assert_eq!((p.state, p.last_indexed_commit.as_deref()), (JobState::Indexed, Some("empty")));
    r.run.shutdown().await;
}

#[tokio::test]
async fn a_newer_commit_supersedes_the_running_job() {
    let s = Setup::new();
    let r = s.start();
    start_job(&r.repo, "c1", batches(2, 2)).await;
    let old_b0 = claimed(&r.repo, "w1").await;
    let old_b1 = claimed(&r.repo, "w2").await;
    complete(&r.repo, &old_b0, 3).await;

    assert_eq!(
        start_job(&r.repo, "c2", batches(3, 1)).await,
        Response::JobStarted { commit: "c2".into(), batches_total: 3, superseded: Some("c1".into()) }
    );
    let superseded = Response::Superseded { current_commit: Some("c2".into()) };
    assert_eq!(complete(&r.repo, &old_b1, 3).await, superseded, "completion of the old commit");
    assert_eq!(fail(&r.repo, &old_b1, "boom").await, superseded, "failure of the old commit");

    let p = status(&r.repo).await;
    assert_eq!(p.commit.as_deref(), Some("c2"));
    assert_eq!(p.state, JobState::Running);
    assert_eq!((p.files_total, p.files_done, p.chunks, p.batches_total, p.batches_done), (3, 0, 0, 3, 0));
    assert_eq!(p.last_indexed_commit, None, "the superseded job never finished");

    let new_b0 = claimed(&r.repo, "w3").await;
    assert_eq!((new_b0.commit.as_str(), new_b0.batch.as_str(), new_b0.attempt), ("c2", "b0", 1));
    r.run.shutdown().await;
}

#[tokio::test]
async fn superseding_keeps_the_last_indexed_commit_and_restarting_the_same_commit_is_a_no_op() {
    let s = Setup::new();
    let r = s.start();
    start_job(&r.repo, "c1", batches(1, 1)).await;
    let b0 = claimed(&r.repo, "w").await;
    complete(&r.repo, &b0, 1).await;
    assert_eq!(
        start_job(&r.repo, "c1", batches(1, 1)).await,
        Response::JobAlreadyStarted { commit: "c1".into(), state: JobState::Indexed }
    );
    assert_eq!(
        start_job(&r.repo, "c2", batches(1, 1)).await,
        Response::JobStarted { commit: "c2".into(), batches_total: 1, superseded: None }
    );
    let b0 = claimed(&r.repo, "w").await;
    assert_eq!(
        start_job(&r.repo, "c2", batches(5, 5)).await,
        Response::JobAlreadyStarted { commit: "c2".into(), state: JobState::Running }
    );
    let p = status(&r.repo).await;
    assert_eq!((p.commit.as_deref(), p.last_indexed_commit.as_deref()), (Some("c2"), Some("c1")));
    assert_eq!(p.batches_total, 1, "the repeated start changed nothing");
    complete(&r.repo, &b0, 1).await;
    assert_eq!(status(&r.repo).await.last_indexed_commit.as_deref(), Some("c2"));
    r.run.shutdown().await;
}

#[tokio::test]
async fn a_failing_batch_is_retried_then_failed_after_max_attempts() {
    let s = Setup::with_config(CoordinatorConfig { max_attempts: 2, ..CoordinatorConfig::default() });
    let r = s.start();
    start_job(&r.repo, "c1", batches(2, 2)).await;
    let first = claimed(&r.repo, "w1").await;
    assert_eq!(
        fail(&r.repo, &first, "parser crashed").await,
        Response::Released { batch: "b0".into(), attempts: 1 }
    );
    let retry = claimed(&r.repo, "w2").await;
    assert_eq!((retry.batch.as_str(), retry.attempt), ("b0", 2), "a released batch is handed out first");
    assert_eq!(
        fail(&r.repo, &retry, "parser crashed again").await,
        Response::BatchFailed { batch: "b0".into(), attempts: 2, job_state: JobState::Running }
    );
    assert_eq!(
        fail(&r.repo, &retry, "again").await,
        Response::AlreadyFinished { batch: "b0".into(), outcome: BatchOutcome::Failed }
    );
    let b1 = claimed(&r.repo, "w3").await;
    assert_eq!(b1.batch, "b1");
    complete(&r.repo, &b1, 5).await;

    let p = status(&r.repo).await;
    assert_eq!(p.state, JobState::Indexed, "indexed with failures");
    assert_eq!(p.last_indexed_commit.as_deref(), Some("c1"));
    assert_eq!((p.batches_done, p.batches_failed, p.files_done, p.files_failed), (1, 1, 2, 2));
    let failed: Vec<&str> = p.failures.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(failed, ["src/0/0.rs", "src/0/1.rs"]);
    assert!(p.failures[0].reason.contains("parser crashed again"), "{}", p.failures[0].reason);
    r.run.shutdown().await;
}

#[tokio::test]
async fn a_lease_expiring_on_the_last_attempt_fails_the_batch_and_a_job_of_failures_is_failed() {
    let s = Setup::with_config(CoordinatorConfig { max_attempts: 1, ..CoordinatorConfig::default() });
    let r = s.start();
    start_job(&r.repo, "c1", batches(1, 3)).await;
    claimed(&r.repo, "crashes").await;
    s.clock.advance(LEASE);
    assert_eq!(claim(&r.repo, "w2").await, Response::NothingToDo);
    let p = status(&r.repo).await;
    assert_eq!(p.state, JobState::Failed);
    assert_eq!((p.batches_failed, p.files_failed, p.last_indexed_commit), (1, 3, None));
    assert!(p.failures[0].reason.contains("lease expired"), "{}", p.failures[0].reason);
    r.run.shutdown().await;
}

#[tokio::test]
async fn a_failure_report_from_an_attempt_that_lost_its_lease_is_stale() {
    let s = Setup::new();
    let r = s.start();
    start_job(&r.repo, "c1", batches(1, 1)).await;
    let first = claimed(&r.repo, "slow").await;
    s.clock.advance(LEASE);
    let second = claimed(&r.repo, "fast").await;
    assert_eq!(
        fail(&r.repo, &first, "late").await,
        Response::StaleAttempt { batch: "b0".into(), current_attempt: 2 }
    );
    assert!(
        matches!(claim(&r.repo, "w3").await, Response::AllClaimed { .. }),
        "the second lease still holds"
    );
    assert!(matches!(
        complete(&r.repo, &second, 1).await,
        Response::Completed { job_state: JobState::Indexed, .. }
    ));
    r.run.shutdown().await;
}

#[tokio::test]
async fn the_failure_list_is_bounded_but_the_count_is_exact() {
    let s = Setup::with_config(CoordinatorConfig { max_failures_listed: 2, ..CoordinatorConfig::default() });
    let r = s.start();
    start_job(&r.repo, "c1", batches(1, 4)).await;
    let b0 = claimed(&r.repo, "w").await;
    let failures =
        b0.files.iter().map(|path| FileFailure { path: path.clone(), reason: "binary".into() }).collect();
    complete_with(&r.repo, "b0", "c1", 0, failures, 0).await;
    let p = status(&r.repo).await;
    assert_eq!((p.files_failed, p.failures.len()), (4, 2));
    r.run.shutdown().await;
}

#[tokio::test]
async fn invalid_requests_are_typed_errors_that_write_nothing() {
    let s = Setup::with_config(CoordinatorConfig {
        max_batches: 2,
        max_reason_bytes: 8,
        ..CoordinatorConfig::default()
    });
    let r = s.start();
    let start =
        |commit: &str, batches| Request::StartJob { commit: commit.into(), previous_commit: None, batches };
    assert_eq!(object_error_kind(r.repo.call(start("", batches(1, 1))).await), ObjectErrorKind::InvalidInput);
    assert_eq!(object_error_kind(r.repo.call(start("c1", batches(3, 1))).await), ObjectErrorKind::TooLarge);
    let twice = vec![batches(1, 1)[0].clone(), batches(1, 1)[0].clone()];
    assert_eq!(object_error_kind(r.repo.call(start("c1", twice)).await), ObjectErrorKind::InvalidInput);
    assert_eq!(status(&r.repo).await.state, JobState::Idle, "nothing was started");

    start_job(&r.repo, "c1", batches(2, 2)).await;
    let zero = Request::Claim { worker: "w".into(), lease: Duration::ZERO };
    assert_eq!(object_error_kind(r.repo.call(zero).await), ObjectErrorKind::InvalidInput);
    let long = Request::Claim { worker: "w".into(), lease: Duration::from_secs(2 * 3600) };
    assert_eq!(object_error_kind(r.repo.call(long).await), ObjectErrorKind::TooLarge);
    let b0 = claimed(&r.repo, "w").await;
    let completion = |batch: &str, files_done, files_failed: Vec<FileFailure>| Request::Complete {
        batch: batch.into(),
        commit: "c1".into(),
        files_done,
        files_failed,
        chunks: 1,
    };
    let failure = |path: &str, reason: &str| FileFailure { path: path.into(), reason: reason.into() };
    assert_eq!(
        object_error_kind(r.repo.call(completion("nope", 1, Vec::new())).await),
        ObjectErrorKind::NotFound
    );
    assert_eq!(
        object_error_kind(r.repo.call(completion("b0", 3, Vec::new())).await),
        ObjectErrorKind::InvalidInput
    );
    let stranger = vec![failure("src/9/9.rs", "x")];
    assert_eq!(
        object_error_kind(r.repo.call(completion("b0", 1, stranger)).await),
        ObjectErrorKind::InvalidInput
    );
    let wordy = vec![failure("src/0/0.rs", "far too long a reason")];
    assert_eq!(object_error_kind(r.repo.call(completion("b0", 1, wordy)).await), ObjectErrorKind::TooLarge);
    let p = status(&r.repo).await;
    assert_eq!((p.batches_done, p.files_done, p.files_failed, p.chunks), (0, 0, 0, 0), "nothing was counted");
    assert!(matches!(complete(&r.repo, &b0, 1).await, Response::Completed { .. }), "the batch is still open");
    r.run.shutdown().await;
}

#[tokio::test]
async fn a_job_resumes_where_it_stopped_after_a_restart() {
    let s = Setup::new();
    let r = s.start();
    start_job(&r.repo, "c1", batches(3, 2)).await;
    let b0 = claimed(&r.repo, "w1").await;
    let b1 = claimed(&r.repo, "w2").await;
    complete(&r.repo, &b0, 5).await;
    r.run.shutdown().await; // the process dies while w2 holds b1

    let r = s.start();
    let p = status(&r.repo).await;
    assert_eq!((p.commit.as_deref(), p.state), (Some("c1"), JobState::Running));
    assert_eq!((p.batches_done, p.files_done, p.chunks), (1, 2, 5));
    let b2 = claimed(&r.repo, "w3").await;
    assert_eq!((b2.batch.as_str(), b2.attempt), ("b2", 1), "b0 is done and b1 still leased");
    s.clock.advance(LEASE);
    let b1_again = claimed(&r.repo, "w3").await;
    assert_eq!((b1_again.batch.as_str(), b1_again.attempt), (b1.batch.as_str(), 2));
    complete(&r.repo, &b2, 1).await;
    complete(&r.repo, &b1_again, 1).await;
    r.run.shutdown().await;

    let r = s.start();
    let p = status(&r.repo).await;
    assert_eq!((p.state, p.last_indexed_commit.as_deref(), p.chunks), (JobState::Indexed, Some("c1"), 7));
    r.run.shutdown().await;
}

#[tokio::test]
async fn a_batch_too_large_for_storage_is_refused_and_the_running_job_is_kept() {
    let s = Setup::new();
    let r = s.start();
    start_job(&r.repo, "c1", batches(1, 1)).await;
    let b0 = claimed(&r.repo, "w").await;
    let huge = BatchSpec { id: "huge".into(), files: (0..30_000).map(|i| format!("{i:0>70}")).collect() };
    let refused =
        r.repo.call(Request::StartJob { commit: "c2".into(), previous_commit: None, batches: vec![huge] });
    assert_eq!(object_error_kind(refused.await), ObjectErrorKind::TooLarge);
    let p = status(&r.repo).await;
    assert_eq!((p.commit.as_deref(), p.batches_total), (Some("c1"), 1), "the older job is untouched");
    assert!(matches!(
        complete(&r.repo, &b0, 1).await,
        Response::Completed { job_state: JobState::Indexed, .. }
    ));
    r.run.shutdown().await;
}

#[tokio::test]
async fn a_repository_of_100_000_files_is_coordinated_in_2000_batches() {
    let s = Setup::new();
    let r = s.start();
    start_job(&r.repo, "c1", batches(2000, 50)).await;
    for expected in ["b0", "b1", "b2"] {
        let claim = claimed(&r.repo, "w").await;
        assert_eq!((claim.batch.as_str(), claim.files.len()), (expected, 50));
        complete(&r.repo, &claim, 1).await;
    }
    let p = status(&r.repo).await;
    assert_eq!((p.files_total, p.files_done, p.batches_total, p.batches_done), (100_000, 150, 2000, 3));
    r.run.shutdown().await;
}

async fn start_in_order(repo: &Stub<IndexingCoordinator>, commit: &str, order: i64) -> Response {
    let start = Request::StartJobInOrder {
        commit: commit.into(),
        previous_commit: None,
        batches: batches(1, 1),
        order,
    };
    repo.call(start).await.expect("start job in order")
}

#[tokio::test]
async fn a_job_of_an_earlier_order_never_replaces_a_later_one() {
    let s = Setup::new();
    let r = s.start();
    assert!(matches!(start_in_order(&r.repo, "c2", 200).await, Response::JobStarted { .. }));
    assert_eq!(
        start_in_order(&r.repo, "c1", 100).await,
        Response::OutOfOrder { current_commit: "c2".into(), current_order: 200 }
    );
    assert_eq!(status(&r.repo).await.commit.as_deref(), Some("c2"));
    assert!(matches!(
        start_in_order(&r.repo, "c3", 200).await,
        Response::JobStarted { superseded: Some(_), .. }
    ));
    assert!(
        matches!(start_job(&r.repo, "c4", batches(1, 1)).await, Response::JobStarted { .. }),
        "unordered"
    );
    r.run.shutdown().await;
}

#[tokio::test]
async fn notes_belong_to_their_job_and_errors_last_until_a_job_starts() {
    let s = Setup::new();
    let r = s.start();
    start_job(&r.repo, "c1", batches(1, 1)).await;
    let mut skipped = SkipSummary::default();
    for i in 0..150 {
        skipped.add(&format!("vendor/{i}.js"), "vendored");
    }
    skipped.add("logo.png", "binary");
    let notes = JobNotes {
        selection: Selection::Diff { base: "c0".into(), superseded: None },
        skipped,
        embedding_model: None,
    };
    let annotate = |commit: &str| Request::Annotate { commit: commit.into(), notes: notes.clone() };
    assert_eq!(r.repo.call(annotate("c1")).await.unwrap(), Response::Annotated);
    assert!(matches!(r.repo.call(annotate("c0")).await.unwrap(), Response::Superseded { .. }));
    let shown = status(&r.repo).await.notes.expect("notes");
    assert_eq!((shown.skipped.total, shown.skipped.listed.len()), (151, 100));
    assert_eq!(shown.skipped.by_reason.get("vendored"), Some(&150));

    s.clock.advance(Duration::from_secs(1));
    let error = Request::RecordError { commit: "c2".into(), reason: "repository x is unreachable".into() };
    assert_eq!(r.repo.call(error).await.unwrap(), Response::ErrorRecorded);
    let p = status(&r.repo).await;
    let expected =
        JobError { commit: "c2".into(), reason: "repository x is unreachable".into(), at_ms: T0 + 1000 };
    assert_eq!((p.commit.as_deref(), p.error), (Some("c1"), Some(expected)), "the running job is kept");

    start_job(&r.repo, "c2", batches(1, 1)).await;
    let p = status(&r.repo).await;
    assert_eq!((p.notes, p.error), (None, None), "a new job starts clean");
    r.run.shutdown().await;
}

#[tokio::test]
async fn current_commit_answers_and_forget_starts_over() {
    let s = Setup::new();
    let r = s.start();
    assert_eq!(
        r.repo.call(Request::CurrentCommit).await.unwrap(),
        Response::CurrentCommit { commit: None, state: JobState::Idle }
    );
    start_job(&r.repo, "c1", batches(1, 1)).await;
    let b0 = claimed(&r.repo, "w").await;
    complete(&r.repo, &b0, 1).await;
    assert_eq!(
        r.repo.call(Request::CurrentCommit).await.unwrap(),
        Response::CurrentCommit { commit: Some("c1".into()), state: JobState::Indexed }
    );
    assert_eq!(r.repo.call(Request::Forget).await.unwrap(), Response::Forgotten);
    let p = status(&r.repo).await;
    assert_eq!((p.state, p.commit, p.last_indexed_commit), (JobState::Idle, None, None));
    assert!(matches!(complete(&r.repo, &b0, 1).await, Response::Superseded { current_commit: None }));
    r.run.shutdown().await;
}
