//! The `file-indexing` consumer: [`FileIndexer`] claims a batch from the repository's coordinator and,
//! for each of its paths, brings the indexes in line with the file at the job's commit.
//!
//! For a file to index: read its blob from the mirror, chunk it (tree-sitter, or line windows — the
//! chunker falls back by itself), store the [chunk artifact](crate::artifact), replace the file's
//! keyword documents, delete the vectors of its other versions, and queue `embedding-generation`
//! messages of up to 128 chunks. A path the commit does not have, or that the filter now skips, is
//! removed: its keyword documents, its vectors and its artifacts. After the batch: one keyword commit,
//! then the replaced versions' artifacts are deleted (and their vectors once more, see below) unless a
//! newer job stored the same version again meanwhile, then the batch is completed with its counts.
//!
//! # One commit per file
//!
//! Right before writing each file, the worker asks the coordinator for its current commit and stops the
//! batch if it is no longer the claimed one (a newer push superseded the job, or the repository was
//! removed). The residual window: a job started between that check and the end of the file's writes,
//! whose own worker writes the same path before this one finishes, can be overwritten by the older
//! version. Both writes are whole-file replacements, so the index never holds a mix of two versions'
//! chunks for one path, but it may hold the older version until the path is touched again. The window
//! is one file's writes (milliseconds) and needs two jobs' workers on the same path at once.
//!
//! # Crash safety
//!
//! Every step is idempotent (same artifact key and chunk ids for the same path and content, whole-file
//! keyword replacement, deletes of absent ids), and a batch is completed only after the keyword commit,
//! so a crash anywhere leaves the batch leased; it is claimed again (attempt + 1) when its lease expires —
//! or at once after a restart, when the env says this process is the only one ([`Env::is_sole_process`]):
//! the leases of the process that died are then released — and redone, converging on the same
//! documents, vectors and artifacts as a clean run.
//!
//! [`Env::is_sole_process`]: ledge_env::Env::is_sole_process
//!
//! Old versions' vectors are deleted before the keyword commit (while their artifact still names them)
//! and again after their artifact is deleted: an `embedding-generation` message of the old version that
//! was running concurrently either upserted before the second delete (and is deleted by it) or after the
//! artifact was gone (and deletes its own vectors, see [`crate::embedding_generation`]).

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use ledge_chunker::ChunkKind;
use ledge_env::QueueBinding;
use ledge_git::{CommitId, Mirror, Source, Want};
use ledge_keyword::{ChunkDoc, KeywordIndex};
use ledge_queue::{
    BatchEntry, BatchHandler, BatchOptions, HandlerError, Message, MessageBatch, MessageBody, RetryOptions,
    SendOptions,
};
use ledge_vector::VectorIndex;

use crate::artifact::{ARTIFACT_VERSION, ArtifactChunk, ArtifactStore, ChunkArtifact, chunk_key};
use crate::error::blocking;
use crate::messages::decode;
use crate::pipeline::{CommitView, PipelineStats};
use crate::{
    BatchClaim, EmbeddingTask, FileFailure, FileIndexingTask, MESSAGE_VERSION, Pipeline, PipelineError,
    RepoRef, Request, Response,
};

/// Handles `file-indexing` messages.
pub struct FileIndexer {
    pipeline: Arc<Pipeline>,
}

impl std::fmt::Debug for FileIndexer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileIndexer")
    }
}

#[async_trait]
impl BatchHandler for FileIndexer {
    async fn handle(&self, batch: MessageBatch) -> Result<(), HandlerError> {
        // Each message is a claim of up to 50 files: the claims of one queue batch run side by side,
        // one per core, so that chunking on one overlaps the storage writes of another.
        let parallel =
            std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, MAX_PARALLEL_CLAIMS);
        futures::stream::iter(&batch.messages)
            .for_each_concurrent(parallel, |message| async move {
                let outcome = match decode::<FileIndexingTask>(message) {
                    Ok(task) => self.run(message, task).await,
                    Err(error) => Err(error),
                };
                if let Err(error) = outcome {
                    tracing::warn!(message = %message.id, attempt = message.attempts, %error, "file-indexing failed");
                    // The default options are always valid: this cannot fail.
                    let _ = message.retry_because(RetryOptions::default(), error);
                }
            })
            .await;
        Ok(())
    }
}

/// What became of one file.
enum FileOutcome {
    Indexed { chunks: u64 },
    Removed,
}

/// Why one file was not indexed: the file's fault (recorded, the batch goes on) or the batch's.
enum FileError {
    File(String),
    Batch(PipelineError),
}

impl From<PipelineError> for FileError {
    fn from(error: PipelineError) -> Self {
        FileError::Batch(error)
    }
}

/// A bucket error that names the artifact rather than the storage (too large, bad key): the file's fault.
fn artifact_error(error: PipelineError) -> FileError {
    match error {
        PipelineError::Bucket(
            e @ (ledge_bucket::Error::InvalidInput { .. } | ledge_bucket::Error::TooLarge { .. }),
        ) => FileError::File(format!("the chunk artifact cannot be stored: {e}")),
        other => FileError::Batch(other),
    }
}

/// What a batch did, for its completion.
#[derive(Default)]
struct BatchWork {
    done: u64,
    failed: Vec<FileFailure>,
    chunks: u64,
    /// Replaced or removed versions, deleted after the keyword commit unless stored again meanwhile.
    stale: Vec<StaleVersion>,
    embeddings: Vec<EmbeddingTask>,
}

/// A version of a file retired by this batch: its artifact's key and upload version, and its chunk ids.
struct StaleVersion {
    key: String,
    upload: String,
    chunks: Vec<String>,
}

/// The bindings a batch writes to.
struct Sinks {
    artifacts: ArtifactStore,
    keyword: Arc<KeywordIndex>,
    vectors: Arc<dyn VectorIndex>,
    embed: bool,
}

const MAX_REASON: usize = 1000;

/// Longest wait before a message that found every batch leased looks again.
const MAX_RECHECK: Duration = Duration::from_secs(5);

/// Most claims one handler call works on at once.
const MAX_PARALLEL_CLAIMS: usize = 4;

impl FileIndexer {
    pub fn new(pipeline: Arc<Pipeline>) -> FileIndexer {
        FileIndexer { pipeline }
    }

    async fn run(&self, message: &Message, task: FileIndexingTask) -> Result<(), PipelineError> {
        let repo = RepoRef::new(&task.org, &task.repo)?;
        let worker = format!("{}/{}", self.pipeline.worker, message.id);
        let claim = Request::Claim { worker: worker.clone(), lease: self.pipeline.claim_lease };
        let mut answer = self.pipeline.coordinator(&repo, claim.clone()).await?;
        if matches!(answer, Response::AllClaimed { .. }) && self.pipeline.env.is_sole_process() {
            // After a crash and restart, the leases of the process that died are released at once
            // rather than waited out: no other process can hold one.
            let keep_prefix = format!("{}/", self.pipeline.worker);
            let released = self.pipeline.coordinator(&repo, Request::ReleaseLeases { keep_prefix }).await?;
            if matches!(released, Response::LeasesReleased { released } if released > 0) {
                answer = self.pipeline.coordinator(&repo, claim).await?;
            }
        }
        let claim = match answer {
            Response::Claimed(claim) => claim,
            Response::AllClaimed { retry_after } => {
                // Every batch left is leased by this process's other workers (or, with distributed
                // drivers, perhaps by a process that died): look again with a new message (this one is
                // done; its retries are not used up waiting) when the first lease ends — or sooner, so
                // that the message does not stay queued, and the job unfinished in its status, long
                // after the batches it waited for were completed.
                return self.requeue(&task, retry_after.min(MAX_RECHECK)).await;
            }
            Response::NothingToDo => return Ok(()),
            other => return Err(PipelineError::UnexpectedResponse(format!("{other:?}"))),
        };
        match self.index_batch(&repo, &task, &claim).await {
            Ok(work) => {
                if let Some(hooks) = &self.pipeline.options.hooks {
                    hooks.before_complete(&repo, &claim.commit, &claim.batch).await;
                }
                let complete = Request::Complete {
                    batch: claim.batch.clone(),
                    commit: claim.commit.clone(),
                    files_done: work.done,
                    files_failed: work.failed,
                    chunks: work.chunks,
                };
                let answer = self.pipeline.coordinator(&repo, complete).await?;
                tracing::debug!(%repo, batch = %claim.batch, commit = %claim.commit, ?answer, "batch finished");
                if let Response::Completed { job_state, .. } = answer {
                    self.pipeline.notify_job_ended(&repo, &claim.commit, job_state).await;
                }
                Ok(())
            }
            Err(error) => {
                let reason = truncate(error.to_string());
                let fail = Request::Fail {
                    batch: claim.batch.clone(),
                    commit: claim.commit.clone(),
                    attempt: claim.attempt,
                    reason,
                };
                match self.pipeline.coordinator(&repo, fail).await? {
                    // Released: the batch waits for another attempt, which this message's retry makes.
                    Response::Released { .. } => Err(error),
                    answer => {
                        tracing::warn!(%repo, batch = %claim.batch, %error, ?answer, "batch failed");
                        if let Response::BatchFailed { job_state, .. } = answer {
                            self.pipeline.notify_job_ended(&repo, &claim.commit, job_state).await;
                        }
                        Ok(())
                    }
                }
            }
        }
    }

    async fn requeue(&self, task: &FileIndexingTask, retry_after: Duration) -> Result<(), PipelineError> {
        let seconds =
            u32::try_from(retry_after.as_millis().div_ceil(1000)).unwrap_or(u32::MAX).clamp(1, 43_200);
        let producer = self.pipeline.queue(QueueBinding::FileIndexing).await?;
        producer.send(MessageBody::json_from(task)?, SendOptions::delay(seconds)).await?;
        Ok(())
    }

    async fn index_batch(
        &self,
        repo: &RepoRef,
        task: &FileIndexingTask,
        claim: &BatchClaim,
    ) -> Result<BatchWork, PipelineError> {
        let commit = CommitId::from_hex(&claim.commit)?;
        let mirror = self.pipeline.mirror(repo);
        let present = {
            let mirror = mirror.clone();
            blocking(move || Ok(mirror.contains(commit)?)).await?
        };
        if !present {
            // Another node fetched it: bring it here too.
            let source = Source::parse(&task.clone_url)?;
            let credentials = if source.is_network() { self.pipeline.credentials(repo).await? } else { None };
            let mirror = mirror.clone();
            blocking(move || Ok(mirror.fetch(&source, &Want::Commit(commit), credentials.as_ref())?)).await?;
        }
        let view = self.pipeline.commit_view(&mirror, commit).await?;
        let sinks = Sinks {
            artifacts: self.pipeline.artifacts().await?,
            keyword: self.pipeline.keyword().await?,
            vectors: self.pipeline.vectors().await?,
            embed: self.pipeline.embedder().await?.is_some(),
        };
        let mut work = BatchWork::default();
        for path in &claim.files {
            if let Some(hooks) = &self.pipeline.options.hooks {
                hooks.before_file(repo, &claim.commit, path).await;
            }
            // No index may mix two commits for one file: stop as soon as the job is not current.
            match self.pipeline.coordinator(repo, Request::CurrentCommit).await? {
                Response::CurrentCommit { commit: Some(current), .. } if current == claim.commit => {}
                answer => {
                    tracing::info!(%repo, commit = %claim.commit, ?answer, "job superseded: batch stopped");
                    break;
                }
            }
            match self.index_file(repo, &claim.commit, &mirror, &view, &sinks, path, &mut work).await {
                Ok(FileOutcome::Indexed { chunks }) => {
                    work.done += 1;
                    work.chunks += chunks;
                    PipelineStats::add(&self.pipeline.stats.files_indexed, 1);
                }
                Ok(FileOutcome::Removed) => {
                    work.done += 1;
                    PipelineStats::add(&self.pipeline.stats.files_removed, 1);
                }
                Err(FileError::File(reason)) => {
                    tracing::warn!(%repo, path, %reason, "file not indexed");
                    work.failed.push(FileFailure { path: path.clone(), reason: truncate(reason) });
                }
                Err(FileError::Batch(error)) => return Err(error),
            }
        }
        let keyword = sinks.keyword.clone();
        blocking(move || Ok(keyword.commit()?)).await?;
        self.queue_embeddings(std::mem::take(&mut work.embeddings)).await?;
        for stale in std::mem::take(&mut work.stale) {
            // Content-addressed keys come back: a newer job may have stored this version again.
            if sinks.artifacts.delete_if_version(&stale.key, &stale.upload).await? {
                delete_vectors(sinks.vectors.as_ref(), &stale.chunks).await?;
            }
        }
        Ok(work)
    }

    #[allow(clippy::too_many_arguments)]
    async fn index_file(
        &self,
        repo: &RepoRef,
        commit: &str,
        mirror: &Mirror,
        view: &CommitView,
        sinks: &Sinks,
        path: &str,
        work: &mut BatchWork,
    ) -> Result<FileOutcome, FileError> {
        let filter = &self.pipeline.filter;
        let Some(&(blob, size)) = view.files.get(path) else {
            return self.remove_file(repo, sinks, path, work).await;
        };
        if filter.check_path(path, size, &view.rules).is_some() {
            return self.remove_file(repo, sinks, path, work).await;
        }
        let bytes = {
            let mirror = mirror.clone();
            match blocking(move || Ok(mirror.read(blob)?)).await {
                Ok(bytes) => bytes,
                Err(PipelineError::Git(error)) => {
                    return Err(FileError::File(format!("cannot read the file: {error}")));
                }
                Err(other) => return Err(FileError::Batch(other)),
            }
        };
        if filter.check_content(&bytes).is_some() {
            return self.remove_file(repo, sinks, path, work).await;
        }
        let chunked = {
            let (chunker, owned_path) = (self.pipeline.chunker.clone(), path.to_owned());
            let chunked = tokio::task::spawn_blocking(move || chunker.chunk(&owned_path, &bytes))
                .await
                .map_err(|e| PipelineError::Task(e.to_string()))?;
            chunked.map_err(|e| FileError::File(format!("cannot chunk the file: {e}")))?
        };
        let blob = blob.to_hex();
        let artifact = ChunkArtifact {
            v: ARTIFACT_VERSION,
            org: repo.org().to_owned(),
            repo: repo.key(),
            path: path.to_owned(),
            commit: commit.to_owned(),
            language: chunked.language.map(|l| l.name().to_owned()),
            strategy: chunked.strategy,
            lossy_utf8: chunked.lossy_utf8,
            chunks: chunked
                .chunks
                .into_iter()
                .map(|c| ArtifactChunk {
                    id: chunk_key(repo, &blob, &c.id),
                    kind: c.kind,
                    symbol: c.symbol,
                    symbols: c.symbols,
                    doc: c.doc,
                    start_line: c.start_line,
                    end_line: c.end_line,
                    start_byte: c.start_byte,
                    end_byte: c.end_byte,
                    text: c.text,
                })
                .collect(),
            blob,
        };
        let versions = sinks.artifacts.versions(repo, path).await?;
        let key = ArtifactStore::key(repo, path, &artifact.blob);
        if versions.contains(&key)
            && let Some(previous) = sinks.artifacts.get(&key).await?
        {
            // The same content chunked before (a redelivered batch, or an earlier job). Chunking is
            // deterministic except where a parse hit the chunker's time limit and fell back to line
            // windows, so the ids may differ: vectors of ids the new chunks do not have must go now,
            // while the stored artifact still names them.
            let current: HashSet<&str> = artifact.chunks.iter().map(|c| c.id.as_str()).collect();
            let gone: Vec<String> = previous
                .chunks
                .into_iter()
                .map(|c| c.id)
                .filter(|id| !current.contains(id.as_str()))
                .collect();
            delete_vectors(sinks.vectors.as_ref(), &gone).await?;
        }
        sinks.artifacts.put(repo, &artifact).await.map_err(artifact_error)?;
        let docs = keyword_docs(&artifact);
        let chunks = artifact.chunks.len() as u64;
        let ids: Vec<String> = artifact.chunks.iter().map(|c| c.id.clone()).collect();
        drop(artifact);
        let (keyword, org, repo_key, owned_path) =
            (sinks.keyword.clone(), repo.org().to_owned(), repo.key(), path.to_owned());
        blocking(move || Ok(keyword.replace_file(&org, &repo_key, &owned_path, docs)?)).await?;
        self.retire_versions(sinks, versions, Some(&key), work).await?;
        if sinks.embed {
            for group in ids.chunks(EmbeddingTask::MAX_CHUNKS) {
                work.embeddings.push(EmbeddingTask {
                    v: MESSAGE_VERSION,
                    org: repo.org().to_owned(),
                    repo: repo.key(),
                    commit: commit.to_owned(),
                    path: path.to_owned(),
                    artifact: key.clone(),
                    chunks: group.to_vec(),
                });
            }
        }
        Ok(FileOutcome::Indexed { chunks })
    }

    /// Removes what is indexed of `path`: keyword documents, vectors, and (after the batch) artifacts.
    async fn remove_file(
        &self,
        repo: &RepoRef,
        sinks: &Sinks,
        path: &str,
        work: &mut BatchWork,
    ) -> Result<FileOutcome, FileError> {
        let (keyword, org, repo_key, owned_path) =
            (sinks.keyword.clone(), repo.org().to_owned(), repo.key(), path.to_owned());
        blocking(move || Ok(keyword.replace_file(&org, &repo_key, &owned_path, Vec::new())?)).await?;
        let versions = sinks.artifacts.versions(repo, path).await?;
        self.retire_versions(sinks, versions, None, work).await?;
        Ok(FileOutcome::Removed)
    }

    /// Deletes the vectors of the stored `versions` of a path but `keep`, and marks their artifacts for
    /// deletion after the keyword commit.
    async fn retire_versions(
        &self,
        sinks: &Sinks,
        versions: Vec<String>,
        keep: Option<&str>,
        work: &mut BatchWork,
    ) -> Result<(), PipelineError> {
        for key in versions {
            if Some(key.as_str()) == keep {
                continue;
            }
            if let Some((old, upload)) = sinks.artifacts.get_versioned(&key).await? {
                let chunks: Vec<String> = old.chunks.into_iter().map(|c| c.id).collect();
                delete_vectors(sinks.vectors.as_ref(), &chunks).await?;
                work.stale.push(StaleVersion { key, upload, chunks });
            }
        }
        Ok(())
    }

    async fn queue_embeddings(&self, tasks: Vec<EmbeddingTask>) -> Result<(), PipelineError> {
        if tasks.is_empty() {
            return Ok(());
        }
        let producer = self.pipeline.queue(QueueBinding::EmbeddingGeneration).await?;
        let mut entries = Vec::with_capacity(tasks.len());
        for task in &tasks {
            entries.push(BatchEntry::new(MessageBody::json_from(task)?));
        }
        // 128 ids of 64 characters make a message of about 9 KB: 20 stay well within a 256 KB batch.
        for page in entries.chunks(20) {
            producer.send_batch(page.to_vec(), BatchOptions::default()).await?;
        }
        Ok(())
    }
}

/// Deletes vectors by id, 1,000 at a time (the binding's limit).
pub(crate) async fn delete_vectors(vectors: &dyn VectorIndex, ids: &[String]) -> Result<(), PipelineError> {
    let unique: BTreeSet<&String> = ids.iter().collect();
    let unique: Vec<String> = unique.into_iter().cloned().collect();
    for page in unique.chunks(1000) {
        vectors.delete_by_ids(page).await?;
    }
    Ok(())
}

/// The keyword documents of an artifact's chunks.
fn keyword_docs(artifact: &ChunkArtifact) -> Vec<ChunkDoc> {
    artifact
        .chunks
        .iter()
        .map(|chunk| ChunkDoc {
            org: artifact.org.clone(),
            repo: artifact.repo.clone(),
            commit: artifact.commit.clone(),
            path: artifact.path.clone(),
            language: artifact.language.clone().unwrap_or_else(|| "text".to_owned()),
            symbol: chunk.symbol.clone(),
            symbols: chunk.symbols.clone(),
            kind: kind_name(chunk.kind),
            start_line: u32::try_from(chunk.start_line).unwrap_or(u32::MAX),
            end_line: u32::try_from(chunk.end_line).unwrap_or(u32::MAX),
            chunk_id: chunk.id.clone(),
            text: chunk.text.clone(),
        })
        .collect()
}

/// The chunk kind's stable name (`function`, `class`, `code`, …): its serialized form.
pub(crate) fn kind_name(kind: ChunkKind) -> String {
    match serde_json::to_value(kind) {
        Ok(serde_json::Value::String(name)) => name,
        _ => "code".to_owned(),
    }
}

fn truncate(mut text: String) -> String {
    if text.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_kinds_have_their_snake_case_names() {
        assert_eq!(kind_name(ChunkKind::TypeAlias), "type_alias");
        assert_eq!(kind_name(ChunkKind::Function), "function");
    }
}
