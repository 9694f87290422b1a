//! The `repository-indexing` consumer: [`RepositoryIndexer`] fetches a commit into the repository's bare
//! mirror, chooses the files to (re)index or remove, registers the job and its batches with the
//! repository's coordinator, and queues one `file-indexing` message per batch. It also carries out
//! [`RepositoryTask::Remove`].
//!
//! # Which files
//!
//! * **Diff** — when the coordinator's current job is the last indexed commit `L` (finished, indexed):
//!   the files changed from `L` to the new commit. Renames are a removal of the old path plus the new
//!   path. When the current job is an unfinished (or failed) diff from `L` for commit `J`, the index may
//!   hold `L`'s or `J`'s version of `J`'s files, so the new job takes the changes from `L` *and* from `J`.
//! * **Full** — otherwise (first index, a superseded job that was itself full or a union, a base that
//!   cannot be fetched any more): every file of the commit, plus every path that still has a chunk
//!   artifact but is not among them (the artifacts name everything indexed, see [`crate::artifact`]).
//!
//! Files are filtered with the commit's own `.gitignore` files and the [`FileFilter`]: each skipped file
//! is counted by reason and the first hundred are listed, in the job's notes in the coordinator. A changed
//! file that is now skipped (it grew too large, say) stays in a batch: the file-indexing consumer applies
//! the same filter and removes what was indexed of it.
//!
//! # Failures
//!
//! A repository that cannot be fetched is an error on the job (recorded in the coordinator, shown in
//! the status); when it may come back (unreachable) the message is retried as the queue's settings say,
//! otherwise (not found, authentication, an unusable URL) it is acknowledged. Jobs start in the order
//! their events were received ([`Request::StartJobInOrder`]), so a retried old push never replaces a
//! newer one. An https fetch uses the repository's own access token ([`crate::RepositoryAccounts`]),
//! else `LEDGE_GITHUB_TOKEN`.
//!
//! A job whose commit would take its organization past its plan's `indexed_files` fails before it
//! starts, with the reason in the status and a `usage_limit.reached` notification.
//!
//! [`FileFilter`]: ledge_git::FileFilter

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use ledge_env::QueueBinding;
use ledge_git::{Change, CommitId, Mirror, Source, Want};
use ledge_queue::{
    BatchEntry, BatchHandler, BatchOptions, HandlerError, MessageBatch, MessageBody, RetryOptions,
};

use crate::error::blocking;
use crate::messages::decode;
use crate::{
    BatchSpec, FileIndexingTask, FilesAdmission, JobNotes, JobState, MESSAGE_VERSION, Pipeline,
    PipelineError, Progress, RepoRef, RepositoryJob, RepositoryTask, Request, Response, Selection,
    SkipSummary,
};

/// Handles `repository-indexing` messages.
pub struct RepositoryIndexer {
    pipeline: Arc<Pipeline>,
}

impl std::fmt::Debug for RepositoryIndexer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RepositoryIndexer")
    }
}

#[async_trait]
impl BatchHandler for RepositoryIndexer {
    async fn handle(&self, batch: MessageBatch) -> Result<(), HandlerError> {
        for message in &batch.messages {
            let outcome = match decode::<RepositoryJob>(message) {
                Ok(job) => self.run(job).await,
                Err(error) => Err(error),
            };
            if let Err(error) = outcome {
                tracing::warn!(message = %message.id, attempt = message.attempts, %error, "repository-indexing failed");
                message.retry_because(RetryOptions::default(), error)?;
            }
        }
        Ok(())
    }
}

/// The files of a job, before batching.
struct Plan {
    selection: Selection,
    previous_commit: Option<String>,
    paths: BTreeSet<String>,
    skipped: SkipSummary,
}

impl RepositoryIndexer {
    pub fn new(pipeline: Arc<Pipeline>) -> RepositoryIndexer {
        RepositoryIndexer { pipeline }
    }

    async fn run(&self, job: RepositoryJob) -> Result<(), PipelineError> {
        let repo = RepoRef::new(&job.org, &job.repo)?;
        match job.task {
            RepositoryTask::Remove => self.remove(&repo).await,
            RepositoryTask::Index { clone_url, commit, .. } => {
                self.index(&repo, &clone_url, commit.as_deref(), job.order).await
            }
        }
    }

    async fn record_error(&self, repo: &RepoRef, commit: &str, reason: String) -> Result<(), PipelineError> {
        tracing::warn!(%repo, commit, %reason, "indexing job cannot start");
        let reason = truncate(reason, 1000);
        self.pipeline.coordinator(repo, Request::RecordError { commit: commit.to_owned(), reason }).await?;
        Ok(())
    }

    async fn index(
        &self,
        repo: &RepoRef,
        clone_url: &str,
        commit: Option<&str>,
        order: i64,
    ) -> Result<(), PipelineError> {
        let label = commit.unwrap_or("HEAD");
        let embedding_model = match self.pipeline.embedder().await {
            Ok(embedder) => embedder.map(|e| e.model_id().to_owned()),
            Err(error) => {
                self.record_error(repo, label, error.to_string()).await?;
                return Err(error);
            }
        };
        let source = match Source::parse(clone_url) {
            Ok(source) => source,
            Err(error) => {
                self.record_error(repo, label, error.to_string()).await?;
                self.pipeline.notify_job_ended(repo, label, JobState::Failed).await;
                return Ok(());
            }
        };
        let want = match commit {
            Some(commit) => Want::Commit(CommitId::from_hex(commit)?),
            None => Want::Head,
        };
        let mirror = self.pipeline.mirror(repo);
        let head = match self.fetch(repo, &mirror, &source, want).await {
            Ok(head) => head,
            Err(PipelineError::Git(error)) => {
                self.record_error(repo, label, error.to_string()).await?;
                // Only an unreachable repository may come back by itself: retried by the queue.
                if error.is_retryable() {
                    return Err(PipelineError::Git(error));
                }
                self.pipeline.notify_job_ended(repo, label, JobState::Failed).await;
                return Ok(());
            }
            Err(other) => return Err(other),
        };
        let commit = head.to_hex();
        let progress = self.pipeline.status(repo).await?;
        if progress.commit.as_deref() == Some(commit.as_str()) {
            // A redelivery after the job started: make sure its batches have messages.
            if progress.state == JobState::Running {
                let remaining = progress.batches_total - progress.batches_done - progress.batches_failed;
                self.queue_batches(repo, &commit, clone_url, remaining as usize).await?;
            }
            return Ok(());
        }

        if !self.admitted(repo, &mirror, head).await? {
            return Ok(());
        }
        let plan = self.plan(repo, &mirror, &source, head, &progress).await?;
        let batches: Vec<BatchSpec> = plan
            .paths
            .into_iter()
            .collect::<Vec<_>>()
            .chunks(self.pipeline.options.files_per_batch)
            .enumerate()
            .map(|(i, files)| BatchSpec { id: format!("b{i:05}"), files: files.to_vec() })
            .collect();
        let files: usize = batches.iter().map(|b| b.files.len()).sum();
        let start = Request::StartJobInOrder {
            commit: commit.clone(),
            previous_commit: plan.previous_commit,
            batches,
            order,
        };
        let batches_total = match self.pipeline.coordinator(repo, start).await? {
            Response::JobStarted { batches_total, superseded, .. } => {
                tracing::info!(%repo, commit, files, batches_total, ?superseded, selection = ?plan.selection,
                    skipped = plan.skipped.total, "indexing job started");
                if batches_total == 0 {
                    // Nothing to index: the job finished as it started.
                    self.pipeline.notify_job_ended(repo, &commit, JobState::Indexed).await;
                }
                batches_total
            }
            Response::JobAlreadyStarted { state: JobState::Running, .. } => {
                let progress = self.pipeline.status(repo).await?;
                progress.batches_total - progress.batches_done - progress.batches_failed
            }
            Response::JobAlreadyStarted { .. } => return Ok(()),
            Response::OutOfOrder { current_commit, .. } => {
                tracing::info!(%repo, commit, current_commit, "a newer job is already started; this one is dropped");
                return Ok(());
            }
            other => return Err(PipelineError::UnexpectedResponse(format!("{other:?}"))),
        };
        let notes = JobNotes { selection: plan.selection, skipped: plan.skipped, embedding_model };
        self.pipeline.coordinator(repo, Request::Annotate { commit: commit.clone(), notes }).await?;
        self.queue_batches(repo, &commit, clone_url, batches_total as usize).await
    }

    async fn fetch(
        &self,
        repo: &RepoRef,
        mirror: &Mirror,
        source: &Source,
        want: Want,
    ) -> Result<CommitId, PipelineError> {
        let credentials = if source.is_network() { self.pipeline.credentials(repo).await? } else { None };
        let (mirror, source) = (mirror.clone(), source.clone());
        blocking(move || Ok(mirror.fetch(&source, &want, credentials.as_ref())?.commit)).await
    }

    /// Chooses the files of the job for `head`, given where the repository's indexing stands.
    async fn plan(
        &self,
        repo: &RepoRef,
        mirror: &Mirror,
        source: &Source,
        head: CommitId,
        progress: &Progress,
    ) -> Result<Plan, PipelineError> {
        let last = progress.last_indexed_commit.as_deref();
        let (base, superseded, full_reason) = match (last, progress.commit.as_deref()) {
            (None, _) => (None, None, "first index"),
            (Some(last), Some(current)) if current == last => (Some(last), None, ""),
            (Some(last), Some(current)) if progress.previous_commit.as_deref() == Some(last) => {
                (Some(last), Some(current), "")
            }
            (Some(_), _) => {
                (None, None, "the unfinished job it replaces was not a diff from the last indexed commit")
            }
        };
        if let Some(base) = base {
            let mut commits = vec![base];
            commits.extend(superseded);
            match self.diff_paths(repo, mirror, source, head, &commits).await {
                Ok((paths, skipped)) => {
                    let selection =
                        Selection::Diff { base: base.to_owned(), superseded: superseded.map(str::to_owned) };
                    // Only a pure diff from the last indexed commit can be the base of a later union.
                    let previous_commit = superseded.is_none().then(|| base.to_owned());
                    return Ok(Plan { selection, previous_commit, paths, skipped });
                }
                Err(error) => {
                    tracing::warn!(%repo, %error, "cannot diff against the last indexed commit; indexing in full");
                    let reason = format!("the last indexed commit cannot be diffed: {error}");
                    return self.full_plan(repo, mirror, head, reason).await;
                }
            }
        }
        self.full_plan(repo, mirror, head, full_reason.to_owned()).await
    }

    /// The changed paths from each of `bases` to `head`, and the changed files that are skipped.
    async fn diff_paths(
        &self,
        repo: &RepoRef,
        mirror: &Mirror,
        source: &Source,
        head: CommitId,
        bases: &[&str],
    ) -> Result<(BTreeSet<String>, SkipSummary), PipelineError> {
        let mut changes = Vec::new();
        for base in bases {
            let base = CommitId::from_hex(base)?;
            // A mirror on another node, or a wiped disk, may lack the base: fetch it by id.
            self.fetch(repo, mirror, source, Want::Commit(base)).await?;
            let mirror = mirror.clone();
            changes.extend(blocking(move || Ok(mirror.diff(base, head)?)).await?);
        }
        let rules = {
            let mirror = mirror.clone();
            blocking(move || Ok(mirror.ignore_rules(head)?)).await?
        };
        let filter = &self.pipeline.filter;
        let mut paths = BTreeSet::new();
        let mut skipped = SkipSummary::default();
        let mut changed = |file: &ledge_git::FileEntry, was_indexed: bool, paths: &mut BTreeSet<String>| {
            match filter.check_path(&file.path, file.size, &rules) {
                Some(reason) => {
                    skipped.add(&file.path, reason.as_str());
                    // What was indexed of it must go: the file-indexing consumer sees the skip too.
                    if was_indexed {
                        paths.insert(file.path.clone());
                    }
                }
                None => {
                    paths.insert(file.path.clone());
                }
            }
        };
        for change in &changes {
            match change {
                Change::Added { file } => changed(file, false, &mut paths),
                Change::Modified { file } => changed(file, true, &mut paths),
                Change::Removed { path } => {
                    paths.insert(path.clone());
                }
                Change::Renamed { from, to, .. } => {
                    paths.insert(from.clone());
                    changed(to, false, &mut paths);
                }
            }
        }
        // With two bases, a file may be reported by both; the counts must not double.
        if bases.len() > 1 {
            let mut unique = SkipSummary::default();
            let mut seen = BTreeSet::new();
            for change in &changes {
                let file = match change {
                    Change::Added { file } | Change::Modified { file } => file,
                    Change::Renamed { to, .. } => to,
                    Change::Removed { .. } => continue,
                };
                if seen.insert(file.path.clone())
                    && let Some(reason) = filter.check_path(&file.path, file.size, &rules)
                {
                    unique.add(&file.path, reason.as_str());
                }
            }
            skipped = unique;
        }
        Ok((paths, skipped))
    }

    /// Every selected file of `head`, and every path with an artifact that is not among them.
    async fn full_plan(
        &self,
        repo: &RepoRef,
        mirror: &Mirror,
        head: CommitId,
        reason: String,
    ) -> Result<Plan, PipelineError> {
        let listing = {
            let (mirror, filter) = (mirror.clone(), self.pipeline.filter.clone());
            blocking(move || Ok(mirror.select_files(head, &filter)?)).await?
        };
        let mut skipped = SkipSummary::default();
        for file in &listing.skipped {
            skipped.add(&file.path, file.reason.as_str());
        }
        let mut paths: BTreeSet<String> = listing.files.into_iter().map(|f| f.path).collect();
        let indexed = self.pipeline.artifacts().await?.indexed_paths(repo).await?;
        paths.extend(indexed.into_keys());
        Ok(Plan { selection: Selection::Full { reason }, previous_commit: None, paths, skipped })
    }

    /// Whether the organization's plan admits the files `head` leaves indexed (those of its files the
    /// filter keeps by path, size and `.gitignore`), metering them if so. If not, the job fails before
    /// it starts: the reason is recorded for the status, `indexing.failed` and `usage_limit.reached`
    /// are queued on `notifications`, and the message is acknowledged (a retry cannot help; a later
    /// push, re-index or upgrade can). Without [`RepositoryAccounts`](crate::RepositoryAccounts),
    /// always.
    async fn admitted(&self, repo: &RepoRef, mirror: &Mirror, head: CommitId) -> Result<bool, PipelineError> {
        let Some(accounts) = &self.pipeline.options.accounts else { return Ok(true) };
        // The listing is cached for the file-indexing batches that follow.
        let view = self.pipeline.commit_view(mirror, head).await?;
        let filter = &self.pipeline.filter;
        let files = view
            .files
            .iter()
            .filter(|(path, (_, size))| filter.check_path(path, *size, &view.rules).is_none())
            .count() as u64;
        let admission = accounts.admit_indexed_files(repo, files).await.map_err(PipelineError::Accounts)?;
        let FilesAdmission::LimitReached { plan, allowed, would_hold } = admission else { return Ok(true) };
        let commit = head.to_hex();
        let reason = format!(
            "plan limit indexed_files: the {plan} plan allows {allowed} indexed files; indexing {} at \
             {commit} ({files} files) would bring the organization to {would_hold}",
            repo.key()
        );
        self.record_error(repo, &commit, reason.clone()).await?;
        self.pipeline.notify_job_ended(repo, &commit, JobState::Failed).await;
        self.pipeline
            .notify_usage_limit(repo, &commit, "indexed_files", &plan, allowed, would_hold, &reason)
            .await;
        Ok(false)
    }

    /// Queues `count` file-indexing messages for the job of `commit`.
    async fn queue_batches(
        &self,
        repo: &RepoRef,
        commit: &str,
        clone_url: &str,
        count: usize,
    ) -> Result<(), PipelineError> {
        if count == 0 {
            return Ok(());
        }
        let task = FileIndexingTask {
            v: MESSAGE_VERSION,
            org: repo.org().to_owned(),
            repo: repo.key(),
            commit: commit.to_owned(),
            clone_url: clone_url.to_owned(),
        };
        let body = MessageBody::json_from(&task)?;
        let producer = self.pipeline.queue(QueueBinding::FileIndexing).await?;
        let mut left = count;
        while left > 0 {
            let n = left.min(100);
            let entries = vec![BatchEntry::new(body.clone()); n];
            producer.send_batch(entries, BatchOptions::default()).await?;
            left -= n;
        }
        Ok(())
    }

    /// Deletes everything indexed of the repository. Converges when redone after a crash at any point:
    /// the coordinator is forgotten first (its workers stop at their next file), then the keyword
    /// documents, then the vectors the artifacts name, then the artifacts and the mirror.
    async fn remove(&self, repo: &RepoRef) -> Result<(), PipelineError> {
        self.pipeline.coordinator(repo, Request::Forget).await?;
        let keyword = self.pipeline.keyword().await?;
        let (org, key) = (repo.org().to_owned(), repo.key());
        blocking(move || {
            keyword.delete_repo(&org, &key)?;
            Ok(keyword.commit()?)
        })
        .await?;
        let artifacts = self.pipeline.artifacts().await?;
        let keys = artifacts.all_keys(repo).await?;
        let vectors = self.pipeline.vectors().await?;
        for key in &keys {
            if let Some(artifact) = artifacts.get(key).await? {
                let ids: Vec<String> = artifact.chunks.into_iter().map(|c| c.id).collect();
                crate::file_indexing::delete_vectors(vectors.as_ref(), &ids).await?;
            }
        }
        artifacts.delete(&keys).await?;
        let mirror = repo.mirror_dir(&self.pipeline.data_dir());
        match tokio::fs::remove_dir_all(&mirror).await {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(PipelineError::Task(format!(
                    "removing the mirror {}: {error}",
                    mirror.display()
                )));
            }
        }
        if let Some(accounts) = &self.pipeline.options.accounts {
            accounts.forget_indexed_files(repo).await.map_err(PipelineError::Accounts)?;
        }
        tracing::info!(%repo, artifacts = keys.len(), "repository index removed");
        Ok(())
    }
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}
