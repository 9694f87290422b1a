//! The `github-events` consumer: [`GithubEventRouter`] records every delivery (with ledge-github's
//! `EventRecorder`) and turns the events that change what should be indexed into `repository-indexing`
//! jobs ([`route`]).
//!
//! | event | action | job |
//! |---|---|---|
//! | `push` to the default branch | — | index `after` (diffed against the last indexed commit) |
//! | `installation` | `created` | index the default branch head of each repository |
//! | `installation_repositories` | `added` | index the default branch head of each added repository |
//! | `repository` | `created` | index the default branch head |
//! | `repository` | `deleted` | remove the repository's index |
//! | `repository` | `renamed` | remove the old name's index, index the new name from scratch |
//!
//! Everything else — pushes to other branches, tag pushes, branch deletions (`after` all zeros), a push
//! whose payload does not say which branch is the default, other events and actions — is recorded and
//! acknowledged. A rename re-keys by re-indexing: the repository key is part of every document, vector
//! and artifact key, and re-indexing under the new name costs little (chunking is cheap and the
//! embedding cache still holds the vectors), where rewriting every record in place would be a second,
//! crash-prone code path.
//!
//! A payload that cannot be read as its event (e.g. a push to the default branch without a valid
//! `after`) is retried with the reason, and dead-lettered by the queue runtime after its last retry.

use std::sync::Arc;

use async_trait::async_trait;
use ledge_env::QueueBinding;
use ledge_github::{EventRecorder, QueuedDelivery};
use ledge_queue::{
    BatchEntry, BatchHandler, BatchOptions, HandlerError, MessageBatch, MessageBody, RetryOptions,
    SendOptions,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::{MESSAGE_VERSION, Pipeline, PipelineError, RepoRef, RepositoryJob, RepositoryTask};

/// Routes `github-events` deliveries to indexing jobs, after recording them.
pub struct GithubEventRouter {
    pipeline: Arc<Pipeline>,
    recorder: EventRecorder,
}

impl std::fmt::Debug for GithubEventRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GithubEventRouter")
    }
}

impl GithubEventRouter {
    pub fn new(pipeline: Arc<Pipeline>, recorder: EventRecorder) -> GithubEventRouter {
        GithubEventRouter { pipeline, recorder }
    }
}

const QUEUE: &str = "github-events";

#[async_trait]
impl BatchHandler for GithubEventRouter {
    async fn handle(&self, batch: MessageBatch) -> Result<(), HandlerError> {
        // Recording first: it retries the messages that are not deliveries at all, and fails the batch
        // (every message retried) if the store is down.
        self.recorder.handle(batch.clone()).await?;
        for message in &batch.messages {
            let Ok(delivery) = message.json::<QueuedDelivery>() else {
                continue; // the recorder asked for its retry
            };
            let order = message
                .timestamp
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            let routed = match self.payload(&delivery).await {
                Ok(Some(payload)) => route(&delivery, &payload, order),
                Ok(None) => Ok(Vec::new()),
                Err(error) => Err(error),
            };
            let sent = match routed {
                Ok(jobs) => self.send(&delivery.envelope.delivery, jobs).await,
                Err(error) => Err(error),
            };
            if let Err(error) = sent {
                tracing::warn!(delivery = %delivery.envelope.delivery, event = %delivery.envelope.event, %error,
                    "github event not routed; retrying");
                message.retry_because(RetryOptions::default(), error)?;
            }
        }
        Ok(())
    }
}

impl GithubEventRouter {
    /// The payload of an event that may ask for indexing; `None` for the others.
    async fn payload(&self, delivery: &QueuedDelivery) -> Result<Option<Vec<u8>>, PipelineError> {
        if !matches!(
            delivery.envelope.event.as_str(),
            "push" | "installation" | "installation_repositories" | "repository"
        ) {
            return Ok(None);
        }
        match (&delivery.payload, &delivery.payload_key) {
            (Some(raw), _) => Ok(Some(raw.get().as_bytes().to_vec())),
            (None, Some(key)) => {
                let archives = self.pipeline.archives().await?;
                let found = archives.get(key, Default::default()).await?.and_then(|found| found.into_body());
                let Some(found) = found else {
                    return Err(PipelineError::message(
                        QUEUE,
                        format!("the archived payload {key:?} is missing"),
                    ));
                };
                let bytes = found.body.bytes().await.map_err(|e| PipelineError::Task(e.to_string()))?;
                Ok(Some(bytes.to_vec()))
            }
            (None, None) => {
                Err(PipelineError::message(QUEUE, "the delivery has neither payload nor payload_key"))
            }
        }
    }

    async fn send(&self, delivery: &str, jobs: Vec<RepositoryJob>) -> Result<(), PipelineError> {
        if jobs.is_empty() {
            return Ok(());
        }
        let producer = self.pipeline.queue(QueueBinding::RepositoryIndexing).await?;
        let mut entries = Vec::with_capacity(jobs.len());
        for job in &jobs {
            let options = SendOptions::dedup(job_dedup_key(delivery, job));
            entries.push(BatchEntry { body: MessageBody::json_from(job)?, options });
        }
        for page in entries.chunks(50) {
            producer.send_batch(page.to_vec(), BatchOptions::default()).await?;
        }
        for job in &jobs {
            tracing::info!(delivery, org = %job.org, repo = %job.repo, task = ?job.task, "indexing job queued");
        }
        Ok(())
    }
}

/// The dedup key of a job: a redelivered event queues nothing twice, and a push is one job however
/// many deliveries report it (a repository webhook and an organization webhook, or a burst of
/// copies): the ref update `before → after` of one repository names it. A later push back to an
/// earlier commit has another `before`, so it is indexed again.
fn job_dedup_key(delivery: &str, job: &RepositoryJob) -> String {
    let named = match &job.task {
        RepositoryTask::Index { commit: Some(after), before, .. } => {
            format!("push\0{}\0{}\0{}\0{after}", job.org, job.repo, before.as_deref().unwrap_or(""))
        }
        RepositoryTask::Index { commit: None, .. } => format!("{delivery}\0{}\0{}\0index", job.org, job.repo),
        RepositoryTask::Remove => format!("{delivery}\0{}\0{}\0remove", job.org, job.repo),
    };
    format!("github:{}", hex::encode(&Sha256::digest(named)[..16]))
}

#[derive(Deserialize)]
struct PushEvent {
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    after: Option<String>,
    before: Option<String>,
    #[serde(default)]
    deleted: bool,
    repository: Option<RepositoryPayload>,
}

#[derive(Deserialize)]
struct RepositoryPayload {
    full_name: String,
    clone_url: Option<String>,
    default_branch: Option<String>,
}

#[derive(Deserialize)]
struct RepositoryName {
    full_name: String,
}

#[derive(Deserialize)]
struct InstallationEvent {
    action: Option<String>,
    #[serde(default)]
    repositories: Vec<RepositoryName>,
}

#[derive(Deserialize)]
struct InstallationRepositoriesEvent {
    action: Option<String>,
    #[serde(default)]
    repositories_added: Vec<RepositoryName>,
}

#[derive(Deserialize)]
struct RepositoryEvent {
    action: Option<String>,
    repository: RepositoryPayload,
    changes: Option<RepositoryChanges>,
}

#[derive(Deserialize)]
struct RepositoryChanges {
    repository: Option<RenameChange>,
}

#[derive(Deserialize)]
struct RenameChange {
    name: Option<FromValue>,
}

#[derive(Deserialize)]
struct FromValue {
    from: String,
}

const ZERO_COMMIT: &str = "0000000000000000000000000000000000000000";

fn parse<T: DeserializeOwned>(event: &str, payload: &[u8]) -> Result<T, PipelineError> {
    serde_json::from_slice(payload)
        .map_err(|e| PipelineError::message(QUEUE, format!("not a readable {event} payload: {e}")))
}

fn repo_of(full_name: &str) -> Result<RepoRef, PipelineError> {
    RepoRef::from_github(full_name).map_err(|e| PipelineError::message(QUEUE, e.to_string()))
}

/// The clone URL GitHub gives repositories that an event names without one.
fn github_clone_url(full_name: &str) -> String {
    format!("https://github.com/{full_name}.git")
}

fn job(repo: &RepoRef, task: RepositoryTask, order: i64, delivery: &str) -> RepositoryJob {
    RepositoryJob {
        v: MESSAGE_VERSION,
        org: repo.org().to_owned(),
        repo: repo.key(),
        task,
        order,
        delivery: Some(delivery.to_owned()),
    }
}

fn index_head(repo: &RepoRef, clone_url: String, order: i64, delivery: &str) -> RepositoryJob {
    job(repo, RepositoryTask::Index { clone_url, commit: None, before: None }, order, delivery)
}

/// The jobs a delivery asks for (none for most events), or why its payload cannot be read.
pub fn route(
    delivery: &QueuedDelivery,
    payload: &[u8],
    order: i64,
) -> Result<Vec<RepositoryJob>, PipelineError> {
    let event = delivery.envelope.event.as_str();
    let id = delivery.envelope.delivery.as_str();
    match event {
        "push" => {
            let push: PushEvent = parse(event, payload)?;
            let Some(repository) = push.repository else {
                return Err(PipelineError::message(QUEUE, "a push without repository"));
            };
            let Some(default_branch) = repository.default_branch.as_deref() else {
                tracing::debug!(delivery = id, "push without repository.default_branch: ignored");
                return Ok(Vec::new());
            };
            if push.git_ref.as_deref() != Some(&format!("refs/heads/{default_branch}")) {
                return Ok(Vec::new()); // another branch, or a tag
            }
            if push.deleted || push.after.as_deref() == Some(ZERO_COMMIT) {
                return Ok(Vec::new()); // the default branch was deleted
            }
            let repo = repo_of(&repository.full_name)?;
            let Some(after) = push.after else {
                return Err(PipelineError::message(QUEUE, "a push to the default branch without `after`"));
            };
            let Some(clone_url) = repository.clone_url else {
                return Err(PipelineError::message(QUEUE, "a push without repository.clone_url"));
            };
            let before = push.before.filter(|b| b != ZERO_COMMIT);
            let task = RepositoryTask::Index { clone_url, commit: Some(after), before };
            let job = job(&repo, task, order, id);
            crate::messages::QueueMessage::check(&job)
                .map_err(|reason| PipelineError::message(QUEUE, reason))?;
            Ok(vec![job])
        }
        "installation" => {
            let installation: InstallationEvent = parse(event, payload)?;
            if installation.action.as_deref() != Some("created") {
                return Ok(Vec::new());
            }
            installation
                .repositories
                .iter()
                .map(|r| Ok(index_head(&repo_of(&r.full_name)?, github_clone_url(&r.full_name), order, id)))
                .collect()
        }
        "installation_repositories" => {
            let change: InstallationRepositoriesEvent = parse(event, payload)?;
            if change.action.as_deref() != Some("added") {
                return Ok(Vec::new());
            }
            change
                .repositories_added
                .iter()
                .map(|r| Ok(index_head(&repo_of(&r.full_name)?, github_clone_url(&r.full_name), order, id)))
                .collect()
        }
        "repository" => {
            let change: RepositoryEvent = parse(event, payload)?;
            let repository = change.repository;
            let repo = repo_of(&repository.full_name)?;
            let clone_url =
                || repository.clone_url.clone().unwrap_or_else(|| github_clone_url(&repository.full_name));
            match change.action.as_deref() {
                Some("created") => Ok(vec![index_head(&repo, clone_url(), order, id)]),
                Some("deleted") => Ok(vec![job(&repo, RepositoryTask::Remove, order, id)]),
                Some("renamed") => {
                    let Some(from) =
                        change.changes.and_then(|c| c.repository).and_then(|r| r.name).map(|n| n.from)
                    else {
                        return Err(PipelineError::message(
                            QUEUE,
                            "a rename without changes.repository.name.from",
                        ));
                    };
                    let old = repo_of(&format!("{}/{from}", repo.owner()))?;
                    if old == repo {
                        return Ok(Vec::new()); // only the case changed: the same key
                    }
                    Ok(vec![
                        job(&old, RepositoryTask::Remove, order, id),
                        index_head(&repo, clone_url(), order, id),
                    ])
                }
                _ => Ok(Vec::new()),
            }
        }
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use ledge_github::{Envelope, Payload};

    use super::*;

    const AFTER: &str = "1111111111111111111111111111111111111111";
    const BEFORE: &str = "2222222222222222222222222222222222222222";

    fn routed(event: &str, payload: &str) -> Result<Vec<RepositoryJob>, PipelineError> {
        let envelope = Envelope::parse(Some(event.as_bytes()), Some(b"d-1"), payload.as_bytes()).unwrap();
        let message = envelope.queue_message(Payload::Inline(payload.as_bytes()));
        let delivery: QueuedDelivery = serde_json::from_slice(&message).unwrap();
        route(&delivery, payload.as_bytes(), 42)
    }

    fn push(git_ref: &str, after: &str) -> String {
        format!(
            r#"{{"ref":"{git_ref}","after":"{after}","before":"{BEFORE}","deleted":false,
               "repository":{{"id":1,"full_name":"Octo/Hello","default_branch":"main",
                              "clone_url":"https://github.com/Octo/Hello.git"}}}}"#
        )
    }

    #[test]
    fn a_push_to_the_default_branch_indexes_after_in_the_owners_org() {
        let jobs = routed("push", &push("refs/heads/main", AFTER)).unwrap();
        assert_eq!(
            jobs,
            vec![RepositoryJob {
                v: 1,
                org: "octo".into(),
                repo: "octo/hello".into(),
                task: RepositoryTask::Index {
                    clone_url: "https://github.com/Octo/Hello.git".into(),
                    commit: Some(AFTER.into()),
                    before: Some(BEFORE.into()),
                },
                order: 42,
                delivery: Some("d-1".into()),
            }]
        );
    }

    #[test]
    fn other_branches_tags_and_branch_deletions_are_ignored() {
        assert!(routed("push", &push("refs/heads/feature", AFTER)).unwrap().is_empty());
        assert!(routed("push", &push("refs/tags/v1", AFTER)).unwrap().is_empty());
        assert!(routed("push", &push("refs/heads/main", ZERO_COMMIT)).unwrap().is_empty());
        // The binary's end-to-end tests send pushes that do not name the default branch.
        let minimal = r#"{"ref":"refs/heads/main","repository":{"id":3,"full_name":"octo/e2e"}}"#;
        assert!(routed("push", minimal).unwrap().is_empty());
        assert!(routed("issues", r#"{"action":"opened"}"#).unwrap().is_empty());
    }

    #[test]
    fn a_malformed_push_to_the_default_branch_is_an_error_naming_the_problem() {
        let error = routed("push", &push("refs/heads/main", "not-a-commit")).unwrap_err();
        assert!(error.is_malformed() && error.to_string().contains("40 hexadecimal"), "{error}");
        let error =
            routed("push", r#"{"ref":"refs/heads/main","after":7,"repository":{"id":1,"full_name":"a/b"}}"#)
                .unwrap_err();
        assert!(error.to_string().contains("not a readable push payload"), "{error}");
    }

    #[test]
    fn installations_and_new_repositories_index_the_default_branch_head() {
        let jobs = routed(
            "installation",
            r#"{"action":"created","installation":{"id":5},"repositories":[{"id":1,"full_name":"octo/a"},{"id":2,"full_name":"octo/b"}]}"#,
        )
        .unwrap();
        let repos: Vec<_> = jobs.iter().map(|j| (j.repo.as_str(), j.task.clone())).collect();
        let head = |url: &str| RepositoryTask::Index { clone_url: url.into(), commit: None, before: None };
        assert_eq!(
            repos,
            [
                ("octo/a", head("https://github.com/octo/a.git")),
                ("octo/b", head("https://github.com/octo/b.git"))
            ]
        );
        let added = routed(
            "installation_repositories",
            r#"{"action":"added","repositories_added":[{"id":3,"full_name":"octo/c"}],"repositories_removed":[]}"#,
        )
        .unwrap();
        assert_eq!(added.len(), 1);
        assert!(
            routed("installation", r#"{"action":"deleted","repositories":[{"id":1,"full_name":"octo/a"}]}"#)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn repository_deletion_removes_and_a_rename_removes_the_old_key_and_indexes_the_new() {
        let deleted =
            routed("repository", r#"{"action":"deleted","repository":{"id":1,"full_name":"octo/gone"}}"#)
                .unwrap();
        assert_eq!(deleted[0].task, RepositoryTask::Remove);
        assert_eq!(deleted[0].repo, "octo/gone");
        let renamed = routed(
            "repository",
            r#"{"action":"renamed","changes":{"repository":{"name":{"from":"old"}}},
                "repository":{"id":1,"full_name":"octo/new","clone_url":"https://github.com/octo/new.git"}}"#,
        )
        .unwrap();
        let summary: Vec<_> =
            renamed.iter().map(|j| (j.repo.as_str(), matches!(j.task, RepositoryTask::Remove))).collect();
        assert_eq!(summary, [("octo/old", true), ("octo/new", false)]);
    }

    #[test]
    fn one_push_reported_by_two_deliveries_is_one_job_and_a_push_back_is_another() {
        let job = routed("push", &push("refs/heads/main", AFTER)).unwrap().remove(0);
        assert_eq!(job_dedup_key("d-1", &job), job_dedup_key("d-2", &job), "same ref update");
        let mut back = job.clone();
        back.task = RepositoryTask::Index {
            clone_url: "https://github.com/Octo/Hello.git".into(),
            commit: Some(AFTER.into()),
            before: Some("3333333333333333333333333333333333333333".into()),
        };
        assert_ne!(job_dedup_key("d-1", &job), job_dedup_key("d-3", &back), "another ref update");
        let mut head = job.clone();
        head.task = RepositoryTask::Index { clone_url: "u".into(), commit: None, before: None };
        assert_ne!(job_dedup_key("d-1", &head), job_dedup_key("d-2", &head), "head jobs are per delivery");
        assert_eq!(job_dedup_key("d-1", &head), job_dedup_key("d-1", &head), "and a redelivery is one");
    }
}
