//! Bad input and unreachable sources: errors on the job and dead letters with their reasons, never a
//! crash of the consumers.

use std::time::{Duration, Instant};

use ledge_indexing::{JobState, RepoRef};
use ledge_queue::QueuedMessage;

use crate::support::{Harness, Setup, TestRepo, widgets};

/// Waits until `queue` holds a message, and returns the first.
async fn dead_letter(h: &Harness, queue: &str) -> QueuedMessage {
    let backend = h.env.queue_backend().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(message) = backend.peek(queue, 1).await.unwrap().pop() {
            return message;
        }
        assert!(Instant::now() < deadline, "nothing reached {queue}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_repository_is_an_error_on_the_job_and_a_dead_letter_after_its_retries() {
    let data = tempfile::tempdir().unwrap();
    let h = Harness::start(data.path(), Setup { model: false, ..Setup::default() }).await;
    let missing = data.path().join("no-such-repository");
    let after = "1234567890123456789012345678901234567890";
    let payload = serde_json::json!({
        "ref": "refs/heads/main", "after": after,
        "repository": {"id": 9, "full_name": "acme/ghost", "default_branch": "main", "clone_url": missing},
    });
    h.deliver("push", "ghost-1", &payload.to_string()).await;

    let dead = dead_letter(&h, "repository-indexing-dlq").await;
    let info = dead.dead_letter.expect("dead-letter info");
    assert_eq!(
        (info.source_queue.as_str(), info.attempts),
        ("repository-indexing", 3),
        "1 delivery + 2 retries"
    );
    assert!(info.last_error.as_deref().is_some_and(|e| e.contains("unreachable")), "{info:?}");

    let ghost = RepoRef::from_github("acme/ghost").unwrap();
    let p = h.status(&ghost).await;
    assert_eq!(p.state, JobState::Idle, "no job could start");
    let error = p.error.expect("the job's error");
    assert_eq!(error.commit, after);
    assert!(error.reason.contains("unreachable"), "{error:?}");
    // It may come back: nobody is told it failed.
    let backend = h.env.queue_backend().await.unwrap();
    assert!(backend.peek("notifications", 10).await.unwrap().is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_that_can_never_be_fetched_notifies_its_organization_once() {
    let data = tempfile::tempdir().unwrap();
    let h = Harness::start(data.path(), Setup { model: false, ..Setup::default() }).await;
    let after = "1234567890123456789012345678901234567890";
    let payload = serde_json::json!({
        "ref": "refs/heads/main", "after": after,
        "repository": {"id": 7, "full_name": "acme/broken", "default_branch": "main",
                       "clone_url": "ftp://example.com/acme/broken.git"},
    });
    h.deliver("push", "broken-1", &payload.to_string()).await;

    let notice = dead_letter(&h, "notifications").await;
    let notice: serde_json::Value = notice.body.json().unwrap();
    assert_eq!(
        (notice["event"].as_str(), notice["org_slug"].as_str()),
        (Some("indexing.failed"), Some("acme"))
    );
    assert_eq!(notice["subject"], "acme/broken");
    assert!(notice["data"]["error"].as_str().is_some_and(|e| !e.is_empty()), "{notice}");
    let broken = RepoRef::from_github("acme/broken").unwrap();
    assert!(h.status(&broken).await.error.is_some(), "the job's error is recorded too");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_push_is_dead_lettered_with_its_reason_and_the_queue_goes_on() {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new();
    let head = widgets(&repo);
    let h = Harness::start(data.path(), Setup { model: false, ..Setup::default() }).await;
    let malformed = serde_json::json!({
        "ref": "refs/heads/main", "after": "not-a-commit",
        "repository": {"id": 1, "full_name": "acme/widgets", "default_branch": "main", "clone_url": repo.url()},
    });
    h.deliver("push", "bad-1", &malformed.to_string()).await;
    h.push(&repo, "acme/widgets", None, &head).await;

    let dead = dead_letter(&h, "github-events-dlq").await;
    let info = dead.dead_letter.expect("dead-letter info");
    assert_eq!(info.source_queue, "github-events");
    assert!(info.last_error.as_deref().is_some_and(|e| e.contains("40 hexadecimal")), "{info:?}");
    let delivery: serde_json::Value = dead.body.json().unwrap();
    assert_eq!(delivery["delivery"], "bad-1");

    let widgets = RepoRef::from_github("acme/widgets").unwrap();
    assert_eq!(h.indexed(&widgets, &head).await.state, JobState::Indexed, "the good push is indexed");
    h.stop().await;
}
