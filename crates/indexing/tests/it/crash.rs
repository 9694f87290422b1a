//! Crash safety: the process dies in the middle of a file-indexing batch (its runtime is dropped with
//! every task at whatever await point it was, nothing flushed, leases left behind), then a new process
//! starts on the same data directory. The job must complete with exactly what a clean run gives.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ledge_indexing::{JobState, PipelineHooks, RepoRef};
use tokio::sync::Notify;

use crate::support::{Harness, Setup, Snapshot, TestRepo, widgets};

const FULL_NAME: &str = "acme/widgets";

#[derive(Debug, Clone, Copy)]
enum Point {
    /// Before writing the n-th file (0-based) of the batch.
    BeforeFile(usize),
    /// After the batch's writes, before its completion is reported.
    BeforeComplete,
}

/// Freezes the file worker of `commit` at `point` for good, and tells the test.
struct Freeze {
    commit: String,
    point: Point,
    files: AtomicUsize,
    frozen: Notify,
}

impl Freeze {
    async fn freeze(&self) {
        self.frozen.notify_one();
        std::future::pending::<()>().await;
    }
}

#[async_trait]
impl PipelineHooks for Freeze {
    async fn before_file(&self, _repo: &RepoRef, commit: &str, _path: &str) {
        if commit != self.commit {
            return;
        }
        let n = self.files.fetch_add(1, Ordering::SeqCst);
        if matches!(self.point, Point::BeforeFile(at) if at == n) {
            self.freeze().await;
        }
    }

    async fn before_complete(&self, _repo: &RepoRef, commit: &str, _batch: &str) {
        if commit == self.commit && matches!(self.point, Point::BeforeComplete) {
            self.freeze().await;
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// A second commit that changes, adds, removes and renames files.
fn second_commit(repo: &TestRepo) -> String {
    repo.write(
        "src/util.py",
        "def slugify(title):\n    return title.lower()\n\n\ndef shout(text):\n    return text.upper()\n",
    );
    for i in 0..8 {
        repo.write(
            &format!("src/gen/module_{i}.rs"),
            format!("pub fn generated_{i}() -> usize {{\n    {i}\n}}\n"),
        );
    }
    repo.remove("web/app.js");
    repo.rename("old/legacy.rs", "src/legacy.rs");
    repo.commit("second")
}

/// Leases far longer than the test may wait: the restarted process finishes only because it releases
/// the dead process's leases at once.
const CRASH_LEASE: Duration = Duration::from_secs(300);

/// Indexes `first`, then dies at `point` while indexing `second`; restarts and finishes.
fn crash_and_recover(data: &Path, repo: &TestRepo, first: &str, second: &str, point: Point) -> Snapshot {
    let acme = RepoRef::from_github(FULL_NAME).unwrap();
    let freeze = Arc::new(Freeze {
        commit: second.to_owned(),
        point,
        files: AtomicUsize::new(0),
        frozen: Notify::new(),
    });
    let dying = runtime();
    let harness = dying.block_on(async {
        let setup = Setup { hooks: Some(freeze.clone()), claim_lease: CRASH_LEASE, ..Setup::default() };
        let h = Harness::start(data, setup).await;
        h.push(repo, FULL_NAME, None, first).await;
        h.indexed(&acme, first).await;
        h.push(repo, FULL_NAME, Some(first), second).await;
        tokio::time::timeout(Duration::from_secs(60), freeze.frozen.notified())
            .await
            .expect("the worker froze");
        h
    });
    // The crash: every task of the process is dropped where it stands.
    dying.shutdown_timeout(Duration::from_secs(10));
    let restarted = runtime();
    restarted.block_on(async {
        drop(harness);
        let setup = Setup { claim_lease: CRASH_LEASE, ..Setup::default() };
        let h = Harness::start(data, setup).await;
        let p = h.indexed(&acme, second).await;
        assert_eq!(p.state, JobState::Indexed, "{p:#?}");
        assert_eq!((p.files_failed, p.batches_failed), (0, 0), "{p:#?}");
        let snapshot = h.snapshot(&acme).await;
        h.stop().await;
        snapshot
    })
}

fn clean_run(repo: &TestRepo, commit: &str) -> Snapshot {
    let data = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let acme = RepoRef::from_github(FULL_NAME).unwrap();
        let h = Harness::start(data.path(), Setup::default()).await;
        h.push(repo, FULL_NAME, None, commit).await;
        h.indexed(&acme, commit).await;
        let snapshot = h.snapshot(&acme).await;
        h.stop().await;
        snapshot
    })
}

#[test]
fn a_process_killed_mid_batch_and_restarted_loses_and_duplicates_no_chunk() {
    let repo = TestRepo::new();
    let first = widgets(&repo);
    let second = second_commit(&repo);
    let expected = clean_run(&repo, &second);
    expected.assert_consistent(true);
    for point in [Point::BeforeFile(0), Point::BeforeFile(6), Point::BeforeFile(11), Point::BeforeComplete] {
        let data = tempfile::tempdir().unwrap();
        let recovered = crash_and_recover(data.path(), &repo, &first, &second, point);
        recovered.assert_consistent(true);
        assert_eq!(recovered, expected, "killed at {point:?}");
    }
}
