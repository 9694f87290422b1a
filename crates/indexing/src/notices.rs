//! Telling the organization when a repository's indexing job ends: one `indexing.finished` or
//! `indexing.failed` event on the `notifications` queue (and `usage_limit.reached` when the plan's
//! indexed files refused the job), in the wire format of
//! `ledge_platform::notifications::delivery` (`{"kind":"event", …}`), naming the organization by
//! slug (the indexing side knows it as [`RepoRef::org`]).
//!
//! Sent by the consumer whose completion (or final failure) finished the job — the coordinator
//! answers that once —, or that found the job cannot start for good (a repository not found or
//! refused, an unusable URL), and de-duplicated on the repository, commit and outcome, so a redelivered
//! message does not notify twice. A failure to send is logged, never fails the indexing.

use serde_json::json;
use sha2::{Digest, Sha256};

use ledge_env::QueueBinding;
use ledge_queue::{MessageBody, SendOptions};

use crate::{JobState, Pipeline, RepoRef};

impl Pipeline {
    /// Queues the notification that `repo`'s job for `commit` ended in `state` (nothing for a job
    /// still running or idle).
    pub(crate) async fn notify_job_ended(&self, repo: &RepoRef, commit: &str, state: JobState) {
        let (event, outcome) = match state {
            JobState::Indexed => ("indexing.finished", "indexed"),
            JobState::Failed => ("indexing.failed", "failed"),
            JobState::Running | JobState::Idle => return,
        };
        if let Err(error) = self.send_notice(repo, commit, event, outcome).await {
            tracing::warn!(%repo, commit, event, %error, "cannot queue the indexing notification");
        }
    }

    /// Queues the notification that `repo`'s job for `commit` was refused by the plan's `limit`
    /// (`usage_limit.reached`, de-duplicated on the repository, commit and limit).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn notify_usage_limit(
        &self,
        repo: &RepoRef,
        commit: &str,
        limit: &str,
        plan: &str,
        allowed: u64,
        would_hold: u64,
        reason: &str,
    ) {
        let key = format!("usage-limit:{repo}@{commit}:{limit}");
        let data = json!({
            "limit": limit,
            "plan": plan,
            "allowed": allowed,
            "would_hold": would_hold,
            "repository": repo.key(),
            "commit": commit,
        });
        let summary = format!("{}: {reason}", repo.org());
        if let Err(error) = self.queue_event(repo, &key, "usage_limit.reached", summary, data).await {
            tracing::warn!(%repo, commit, limit, %error, "cannot queue the usage limit notification");
        }
    }

    /// Queues one `event` notification about `repo`, its id derived from `key`.
    async fn queue_event(
        &self,
        repo: &RepoRef,
        key: &str,
        event: &str,
        summary: String,
        data: serde_json::Value,
    ) -> Result<(), crate::PipelineError> {
        let id = hex::encode(&Sha256::digest(key.as_bytes())[..16]);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let notice = json!({
            "kind": "event",
            "id": id,
            "event": event,
            "org_slug": repo.org(),
            "subject": repo.key(),
            "summary": summary,
            "occurred_at": now,
            "data": data,
        });
        let producer = self.queue(QueueBinding::Notifications).await?;
        producer.send(MessageBody::json_from(&notice)?, SendOptions::dedup(id)).await?;
        Ok(())
    }

    async fn send_notice(
        &self,
        repo: &RepoRef,
        commit: &str,
        event: &str,
        outcome: &str,
    ) -> Result<(), crate::PipelineError> {
        let progress = self.status(repo).await?;
        let key = format!("indexing:{repo}@{commit}:{outcome}");
        let short = commit.get(..12).unwrap_or(commit);
        let summary = match outcome {
            "indexed" if progress.files_failed > 0 => format!(
                "{} indexed at {short}: {} files, {} failed",
                repo.key(),
                progress.files_done,
                progress.files_failed
            ),
            "indexed" => format!("{} indexed at {short}: {} files", repo.key(), progress.files_done),
            _ => format!("Indexing {} at {short} failed", repo.key()),
        };
        let data = json!({
            "repository": repo.key(),
            "commit": commit,
            "files_done": progress.files_done,
            "files_failed": progress.files_failed,
            "chunks": progress.chunks,
            "batches_failed": progress.batches_failed,
            "error": progress.error.map(|error| error.reason),
        });
        self.queue_event(repo, &key, event, summary, data).await
    }
}
