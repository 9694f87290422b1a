//! The pipeline end to end on the real consumers and embedded bindings, against real git repositories:
//! a first index, an incremental push, a superseding push, removal, and indexing without a model.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use ledge_indexing::{JobState, PipelineHooks, RepoRef, Selection};
use tokio::sync::{Notify, watch};

use crate::support::{Harness, Setup, Snapshot, TestRepo, widgets};

const FULL_NAME: &str = "Acme/Widgets";

fn acme() -> RepoRef {
    RepoRef::from_github(FULL_NAME).unwrap()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// What indexing `commit` of `repo` from scratch, in a fresh data directory, gives.
async fn clean_run(repo: &TestRepo, commit: &str, setup: Setup) -> Snapshot {
    let data = tempfile::tempdir().unwrap();
    let h = Harness::start(data.path(), setup).await;
    h.push(repo, FULL_NAME, None, commit).await;
    h.indexed(&acme(), commit).await;
    let snapshot = h.snapshot(&acme()).await;
    h.stop().await;
    snapshot
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_indexes_the_selected_files_into_the_keyword_index_vectors_and_artifacts() {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new();
    let head = widgets(&repo);
    let h = Harness::start(data.path(), Setup::default()).await;
    h.push(&repo, FULL_NAME, None, &head).await;

    let p = h.indexed(&acme(), &head).await;
    assert_eq!((p.state, p.last_indexed_commit.as_deref()), (JobState::Indexed, Some(head.as_str())));
    assert_eq!((p.files_total, p.files_done, p.files_failed), (6, 6, 0));
    // The organization is told once: an indexing.finished event on the notifications queue.
    let notices = notifications_sent(&h).await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    let notice = &notices[0];
    assert_eq!(
        (notice["kind"].as_str(), notice["event"].as_str()),
        (Some("event"), Some("indexing.finished"))
    );
    assert_eq!(
        (notice["org_slug"].as_str(), notice["subject"].as_str()),
        (Some("acme"), Some("acme/widgets"))
    );
    assert_eq!(notice["data"]["commit"].as_str(), Some(head.as_str()));
    assert_eq!(notice["data"]["files_done"], 6);
    let notes = p.notes.expect("the job's notes");
    assert_eq!(notes.selection, Selection::Full { reason: "first index".into() });
    let by_reason: BTreeMap<&str, u64> =
        notes.skipped.by_reason.iter().map(|(r, n)| (r.as_str(), *n)).collect();
    assert_eq!(by_reason, BTreeMap::from([("binary", 1), ("ignored", 1), ("vendored", 1)]));
    assert!(notes.embedding_model.is_some_and(|model| model.starts_with("potion-base-8M")));

    let snapshot = h.snapshot(&acme()).await;
    snapshot.assert_consistent(true);
    let indexed = [".gitignore", "README.md", "old/legacy.rs", "src/lib.rs", "src/util.py", "web/app.js"];
    assert_eq!(snapshot.paths, set(&indexed));
    assert_eq!(p.chunks, snapshot.chunks.len() as u64);

    let hits = h.search("acme", "add numbers").await;
    assert_eq!(hits.first().map(|(path, _)| path.as_str()), Some("src/lib.rs"), "{hits:?}");
    assert!(h.search("acme", "vendored_function").await.is_empty(), "vendored files are not indexed");
    assert!(h.search("other-org", "add numbers").await.is_empty(), "another organization sees nothing");

    let vectors = h.env.vector_index().await.unwrap();
    let id = snapshot.chunks.iter().next().unwrap().clone();
    let stored = vectors.get_by_ids(std::slice::from_ref(&id)).await.unwrap().remove(0);
    assert_eq!(stored.namespace.as_deref(), Some("acme"));
    let metadata = stored.metadata.expect("metadata");
    assert_eq!((metadata["org"].as_str(), metadata["repo"].as_str()), (Some("acme"), Some("acme/widgets")));
    assert_eq!(metadata["commit"].as_str(), Some(head.as_str()));
    assert!(indexed.contains(&metadata["path"].as_str().unwrap()), "{metadata}");
    assert!(metadata["start_line"].as_u64().unwrap() <= metadata["end_line"].as_u64().unwrap());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_push_touches_only_what_changed_and_equals_a_clean_index() {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new();
    let first = widgets(&repo);
    let h = Harness::start(data.path(), Setup::default()).await;
    h.push(&repo, FULL_NAME, None, &first).await;
    h.indexed(&acme(), &first).await;
    let indexed_before = h.pipeline.stats().files_indexed.load(Ordering::Relaxed);

    repo.write("src/util.py", "def slugify(title):\n    return title.lower()\n\n\ndef titlecase_words(text):\n    return text.title()\n");
    repo.write("src/new.rs", "pub fn brand_new_function() -> bool {\n    true\n}\n");
    repo.remove("web/app.js");
    repo.rename("old/legacy.rs", "src/legacy.rs");
    let second = repo.commit("change, add, remove, rename");
    h.push(&repo, FULL_NAME, Some(&first), &second).await;

    let p = h.indexed(&acme(), &second).await;
    assert_eq!(p.notes.unwrap().selection, Selection::Diff { base: first.clone(), superseded: None });
    assert_eq!((p.files_total, p.files_done), (5, 5), "util.py, new.rs, app.js, and both rename paths");
    let stats = h.pipeline.stats();
    assert_eq!(stats.files_indexed.load(Ordering::Relaxed) - indexed_before, 3);
    assert_eq!(stats.files_removed.load(Ordering::Relaxed), 2);

    assert!(h.search("acme", "renderGadget").await.is_empty(), "the removed file is gone");
    let legacy: Vec<_> = h.search("acme", "legacy_thing").await.into_iter().map(|(path, _)| path).collect();
    assert_eq!(legacy, ["src/legacy.rs"], "the renamed file is found once, at its new path");
    assert_eq!(
        h.search("acme", "titlecase words").await.first().map(|(p, _)| p.as_str()),
        Some("src/util.py")
    );

    let snapshot = h.snapshot(&acme()).await;
    snapshot.assert_consistent(true);
    h.stop().await;
    assert_eq!(snapshot, clean_run(&repo, &second, Setup::default()).await);
}

/// Pauses the file worker of one commit before one path until released.
struct Gate {
    commit: String,
    path: &'static str,
    reached: Notify,
    open: watch::Sender<bool>,
}

#[async_trait]
impl PipelineHooks for Gate {
    async fn before_file(&self, _repo: &RepoRef, commit: &str, path: &str) {
        if commit == self.commit && path == self.path {
            self.reached.notify_one();
            let _ = self.open.subscribe().wait_for(|open| *open).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_push_supersedes_a_running_job_and_no_file_keeps_the_older_version() {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new();
    let base = widgets(&repo);
    let original_lib = std::fs::read_to_string(repo.path().join("src/lib.rs")).unwrap();
    // A changes src/lib.rs and adds a file; B reverts the first and drops the second.
    repo.write("src/lib.rs", "pub fn only_in_commit_a() -> u32 {\n    1\n}\n");
    repo.write("src/z_added_in_a.rs", "pub fn also_only_in_a() {}\n");
    let a = repo.commit("a");
    repo.write("src/lib.rs", &original_lib);
    repo.remove("src/z_added_in_a.rs");
    repo.write("README.md", "# Widgets\n\nNow with sprockets.\n");
    let b = repo.commit("b");

    let gate = Arc::new(Gate {
        commit: a.clone(),
        path: "src/z_added_in_a.rs",
        reached: Notify::new(),
        open: watch::Sender::new(false),
    });
    let h = Harness::start(data.path(), Setup { hooks: Some(gate.clone()), ..Setup::default() }).await;
    h.push(&repo, FULL_NAME, None, &base).await;
    h.indexed(&acme(), &base).await;

    h.push(&repo, FULL_NAME, Some(&base), &a).await;
    gate.reached.notified().await; // A's worker wrote src/lib.rs and waits before the next file
    h.push(&repo, FULL_NAME, Some(&a), &b).await;
    while h.status(&acme()).await.commit.as_deref() != Some(b.as_str()) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    gate.open.send_replace(true);

    let p = h.indexed(&acme(), &b).await;
    assert_eq!(p.state, JobState::Indexed);
    let selection = p.notes.unwrap().selection;
    assert_eq!(selection, Selection::Diff { base: base.clone(), superseded: Some(a.clone()) });
    assert!(h.search("acme", "only_in_commit_a").await.is_empty(), "A's version of src/lib.rs is gone");
    assert!(h.search("acme", "also_only_in_a").await.is_empty());
    assert!(!h.search("acme", "sprockets").await.is_empty());
    let snapshot = h.snapshot(&acme()).await;
    snapshot.assert_consistent(true);
    h.stop().await;
    assert_eq!(snapshot, clean_run(&repo, &b, Setup::default()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_repository_leaves_nothing_behind() {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new();
    let head = widgets(&repo);
    let h = Harness::start(data.path(), Setup::default()).await;
    h.push(&repo, FULL_NAME, None, &head).await;
    h.indexed(&acme(), &head).await;
    assert!(acme().mirror_dir(&h.data).is_dir());

    h.deliver(
        "repository",
        "delete-1",
        r#"{"action":"deleted","repository":{"id":1,"full_name":"Acme/Widgets"}}"#,
    )
    .await;
    let p = h.wait_for(|p| p.state == JobState::Idle, &acme()).await;
    assert_eq!((p.commit, p.last_indexed_commit), (None, None));
    let snapshot = h.snapshot(&acme()).await;
    assert!(snapshot.artifacts.is_empty(), "{snapshot:#?}");
    assert_eq!((snapshot.keyword_docs, snapshot.vectors), (0, 0));
    assert!(!acme().mirror_dir(&h.data).exists());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_model_the_keyword_index_is_built_and_the_status_says_so() {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new();
    let head = widgets(&repo);
    let h = Harness::start(data.path(), Setup { model: false, ..Setup::default() }).await;
    h.push(&repo, FULL_NAME, None, &head).await;
    let p = h.indexed(&acme(), &head).await;
    assert_eq!(p.notes.unwrap().embedding_model, None, "keyword only");
    let snapshot = h.snapshot(&acme()).await;
    snapshot.assert_consistent(false);
    assert!(!h.search("acme", "slugify").await.is_empty());

    // An embedding message left over (say, from before the model was removed) is acknowledged and counted.
    let task = ledge_indexing::EmbeddingTask {
        v: 1,
        org: "acme".into(),
        repo: "acme/widgets".into(),
        commit: head.clone(),
        path: "src/lib.rs".into(),
        artifact: snapshot.artifacts.iter().next().unwrap().clone(),
        chunks: snapshot.chunks.iter().take(1).cloned().collect(),
    };
    let producer = h.env.queue(ledge_env::QueueBinding::EmbeddingGeneration).await.unwrap();
    producer.send(ledge_queue::MessageBody::json_from(&task).unwrap(), Default::default()).await.unwrap();
    h.wait_for(|_| true, &acme()).await;
    assert_eq!(h.pipeline.stats().embedding_messages_without_model.load(Ordering::Relaxed), 1);
    assert_eq!(h.snapshot(&acme()).await.vectors, 0, "no vector is ever made up");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_repository_is_indexed_under_its_new_name_only() {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new();
    let head = widgets(&repo);
    let h = Harness::start(data.path(), Setup { model: false, ..Setup::default() }).await;
    h.push(&repo, FULL_NAME, None, &head).await;
    let before = h.indexed(&acme(), &head).await;

    let renamed = serde_json::json!({
        "action": "renamed",
        "changes": {"repository": {"name": {"from": "Widgets"}}},
        "repository": {"id": 1, "full_name": "Acme/Gizmos", "default_branch": "main", "clone_url": repo.url()},
    });
    h.deliver("repository", "rename-1", &renamed.to_string()).await;
    let gizmos = RepoRef::from_github("Acme/Gizmos").unwrap();
    let after = h.indexed(&gizmos, &head).await;
    assert_eq!(after.chunks, before.chunks);
    assert_eq!(h.status(&acme()).await.state, JobState::Idle, "the old name is forgotten");
    assert!(h.snapshot(&acme()).await.artifacts.is_empty());
    let snapshot = h.snapshot(&gizmos).await;
    snapshot.assert_consistent(false);
    let repos: BTreeSet<String> = {
        let keyword = h.env.keyword_index().await.unwrap();
        let hits = keyword.search(&ledge_keyword::KeywordQuery::new("acme", "slugify")).unwrap();
        hits.into_iter().map(|hit| hit.doc.repo).collect()
    };
    assert_eq!(repos, set(&["acme/gizmos"]));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_too_large_for_a_queue_message_is_read_from_the_archives_bucket() {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new();
    let head = widgets(&repo);
    let h = Harness::start(data.path(), Setup { model: false, ..Setup::default() }).await;
    let payload = serde_json::json!({
        "ref": "refs/heads/main", "after": head,
        "repository": {"id": 1, "full_name": FULL_NAME, "default_branch": "main", "clone_url": repo.url()},
        "commits": (0..2000).map(|i| serde_json::json!({"id": i, "message": "x".repeat(100)})).collect::<Vec<_>>(),
    })
    .to_string();
    let key = "github/installations/1/deliveries/big-1.json";
    let archives = h.env.bucket(ledge_env::BucketBinding::Archives).await.unwrap();
    archives.put(key, payload.clone().into(), Default::default()).await.unwrap();
    let envelope = ledge_github::Envelope::parse(Some(b"push"), Some(b"big-1"), payload.as_bytes()).unwrap();
    let message = envelope.queue_message(ledge_github::Payload::Archived(key));
    let producer = h.env.queue(ledge_env::QueueBinding::GithubEvents).await.unwrap();
    producer.send(ledge_queue::MessageBody::RawJson(message.into()), Default::default()).await.unwrap();
    assert_eq!(h.indexed(&acme(), &head).await.state, JobState::Indexed);
    h.stop().await;
}

/// The bodies waiting on the `notifications` queue (no consumer runs it here), once there are any.
async fn notifications_sent(h: &Harness) -> Vec<serde_json::Value> {
    let backend = h.env.queue_backend().await.unwrap();
    for _ in 0..100 {
        let waiting = backend.peek("notifications", 10).await.unwrap();
        if !waiting.is_empty() {
            return waiting.iter().map(|m| m.body.json().unwrap()).collect();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Vec::new()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_embedding_cache_on_the_same_texts_in_another_repository_are_not_embedded_again() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("ledge.toml"), "[embedding]\ncache = \"on\"\n").unwrap();
    let repo = TestRepo::new();
    let head = widgets(&repo);
    let h = Harness::start(data.path(), Setup::default()).await;
    h.push(&repo, FULL_NAME, None, &head).await;
    let first = h.indexed(&acme(), &head).await;
    let stats = h.pipeline.stats();
    let embedded = stats.chunks_embedded.load(Ordering::Relaxed);
    assert_eq!(embedded, first.chunks, "every chunk of the first repository is embedded");
    assert_eq!(stats.chunks_cached.load(Ordering::Relaxed), 0);

    // The same files under another name of the same organization: every text is in the cache.
    let copy_push = serde_json::json!({
        "ref": "refs/heads/main",
        "before": "0000000000000000000000000000000000000000",
        "after": head,
        "repository": {"id": 2, "full_name": "Acme/Copy", "default_branch": "main", "clone_url": repo.url()},
    });
    h.deliver("push", "push-copy", &copy_push.to_string()).await;
    let copy = h.indexed(&RepoRef::from_github("Acme/Copy").unwrap(), &head).await;
    assert_eq!(stats.chunks_embedded.load(Ordering::Relaxed), embedded, "nothing embedded again");
    assert_eq!(stats.chunks_cached.load(Ordering::Relaxed), copy.chunks);
    let copy_snapshot = h.snapshot(&RepoRef::from_github("Acme/Copy").unwrap()).await;
    assert_eq!(copy_snapshot.vectors_of_chunks, copy_snapshot.chunks.len(), "every chunk has its vector");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_local_model_the_embedding_cache_is_not_used_by_default() {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new();
    let head = widgets(&repo);
    let h = Harness::start(data.path(), Setup::default()).await;
    h.push(&repo, FULL_NAME, None, &head).await;
    let p = h.indexed(&acme(), &head).await;
    assert_eq!(h.pipeline.stats().chunks_embedded.load(Ordering::Relaxed), p.chunks);
    let cache = h.env.kv(ledge_env::KvBinding::EmbeddingCache).await.unwrap();
    let listed =
        cache.list(ledge_kv::ListOptions { prefix: Some("acme/".into()), ..Default::default() }).await;
    assert!(listed.unwrap().keys.is_empty(), "a local vector costs less to compute than to cache");
    h.stop().await;
}
