//! The messages of the indexing queues — `repository-indexing`, `file-indexing`, `embedding-generation` —
//! as JSON with a version field `v`, and their decoding with the checks every consumer needs.
//!
//! Every message carries the organization (`org`) and the repository key (`repo`, `<owner>/<name>`).
//! A consumer refuses a message of another version, or with a field it cannot use, as malformed: it is
//! retried and then dead-lettered with the reason (see [`PipelineError::InvalidMessage`]).

use ledge_git::CommitId;
use ledge_queue::Message;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{PipelineError, RepoRef};

/// The version of the messages this crate writes and reads.
pub const MESSAGE_VERSION: u32 = 1;

/// A `repository-indexing` message: index a commit of a repository, or remove the repository's index.
///
/// ```json
/// {"v":1,"org":"octo","repo":"octo/hello","action":"index","clone_url":"https://github.com/octo/hello.git",
///  "commit":"<40 hex>","before":"<40 hex>","order":1718000000000,"delivery":"<GitHub delivery id>"}
/// {"v":1,"org":"octo","repo":"octo/hello","action":"remove","order":1718000000000}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryJob {
    pub v: u32,
    pub org: String,
    pub repo: String,
    #[serde(flatten)]
    pub task: RepositoryTask,
    /// Ranks the jobs of one repository: the epoch milliseconds at which the event that asked for it
    /// was received. A job never replaces one of a greater order.
    pub order: i64,
    /// The GitHub delivery that asked for it, for tracing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<String>,
}

/// What a [`RepositoryJob`] asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RepositoryTask {
    /// Index `commit` (the head of the default branch when `None`) of the repository at `clone_url`:
    /// `https://…`, or a local path or `file://` URL where local sources are allowed.
    Index {
        clone_url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        commit: Option<String>,
        /// The commit the push replaced, as GitHub reports it (informative: the coordinator's last
        /// indexed commit is what the diff starts from).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<String>,
    },
    /// Delete everything indexed of the repository: keyword documents, vectors, artifacts, its mirror
    /// and its coordinator's state.
    Remove,
}

/// A `file-indexing` message: "there is a batch to index for this repository at `commit`". The batch
/// itself is claimed from the repository's coordinator, so a redelivered message simply claims again.
///
/// ```json
/// {"v":1,"org":"octo","repo":"octo/hello","commit":"<40 hex>","clone_url":"https://github.com/octo/hello.git"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIndexingTask {
    pub v: u32,
    pub org: String,
    pub repo: String,
    pub commit: String,
    /// Where to fetch the commit from if this node's mirror lacks it.
    pub clone_url: String,
}

/// An `embedding-generation` message: embed up to 128 chunks of one file version. The texts are not
/// copied: they are read from the chunk artifact the message names (128 chunks of up to 4 KiB would not
/// fit a 128 KB message), and a message whose artifact is gone (the file changed or was removed since)
/// has nothing left to do.
///
/// ```json
/// {"v":1,"org":"octo","repo":"octo/hello","commit":"<40 hex>","path":"src/lib.rs",
///  "artifact":"orgs/octo/repos/octo/hello/files/<sha256 of path>/<blob>.json","chunks":["<chunk id>",…]}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddingTask {
    pub v: u32,
    pub org: String,
    pub repo: String,
    pub commit: String,
    pub path: String,
    /// The key of the chunk artifact in the `artifacts` bucket.
    pub artifact: String,
    /// Ids of the artifact's chunks to embed (at most [`EmbeddingTask::MAX_CHUNKS`]).
    pub chunks: Vec<String>,
}

impl EmbeddingTask {
    /// Chunks per message.
    pub const MAX_CHUNKS: usize = 128;
}

/// What the decoding of each message type checks beyond its JSON shape.
pub(crate) trait QueueMessage: DeserializeOwned {
    const QUEUE: &'static str;
    fn version(&self) -> u32;
    fn check(&self) -> Result<(), String>;
}

impl QueueMessage for RepositoryJob {
    const QUEUE: &'static str = "repository-indexing";
    fn version(&self) -> u32 {
        self.v
    }
    fn check(&self) -> Result<(), String> {
        RepoRef::new(&self.org, &self.repo).map_err(|e| e.to_string())?;
        if let RepositoryTask::Index { clone_url, commit, before } = &self.task {
            if clone_url.trim().is_empty() {
                return Err("clone_url is empty".into());
            }
            for id in [commit, before].into_iter().flatten() {
                CommitId::from_hex(id).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}

impl QueueMessage for FileIndexingTask {
    const QUEUE: &'static str = "file-indexing";
    fn version(&self) -> u32 {
        self.v
    }
    fn check(&self) -> Result<(), String> {
        RepoRef::new(&self.org, &self.repo).map_err(|e| e.to_string())?;
        CommitId::from_hex(&self.commit).map_err(|e| e.to_string())?;
        Ok(())
    }
}

impl QueueMessage for EmbeddingTask {
    const QUEUE: &'static str = "embedding-generation";
    fn version(&self) -> u32 {
        self.v
    }
    fn check(&self) -> Result<(), String> {
        let repo = RepoRef::new(&self.org, &self.repo).map_err(|e| e.to_string())?;
        if !self.artifact.starts_with(&repo.artifact_prefix()) {
            return Err(format!("artifact {:?} is not one of repository {repo}", self.artifact));
        }
        if self.chunks.len() > EmbeddingTask::MAX_CHUNKS {
            return Err(format!("{} chunks, more than {}", self.chunks.len(), EmbeddingTask::MAX_CHUNKS));
        }
        Ok(())
    }
}

/// Reads a message of queue `T::QUEUE`: JSON of the right shape, of [`MESSAGE_VERSION`], with usable fields.
pub(crate) fn decode<T: QueueMessage>(message: &Message) -> Result<T, PipelineError> {
    let decoded: T = message.json().map_err(|e| PipelineError::message(T::QUEUE, e.to_string()))?;
    if decoded.version() != MESSAGE_VERSION {
        return Err(PipelineError::message(
            T::QUEUE,
            format!("version {} is not {MESSAGE_VERSION}, the version this ledge reads", decoded.version()),
        ));
    }
    decoded.check().map_err(|reason| PipelineError::message(T::QUEUE, reason))?;
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn repository_jobs_are_flat_json_tagged_by_action() {
        let job = RepositoryJob {
            v: 1,
            org: "octo".into(),
            repo: "octo/hello".into(),
            task: RepositoryTask::Index {
                clone_url: "https://github.com/octo/hello.git".into(),
                commit: Some(SHA.into()),
                before: None,
            },
            order: 7,
            delivery: Some("d-1".into()),
        };
        let wire = serde_json::to_value(&job).unwrap();
        assert_eq!(
            wire,
            json!({"v": 1, "org": "octo", "repo": "octo/hello", "action": "index",
                   "clone_url": "https://github.com/octo/hello.git", "commit": SHA, "order": 7, "delivery": "d-1"})
        );
        assert_eq!(serde_json::from_value::<RepositoryJob>(wire).unwrap(), job);
        let remove: RepositoryJob = serde_json::from_value(
            json!({"v": 1, "org": "octo", "repo": "octo/hello", "action": "remove", "order": 1}),
        )
        .unwrap();
        assert_eq!(remove.task, RepositoryTask::Remove);
    }

    #[test]
    fn bad_fields_are_named() {
        let job = |task| RepositoryJob {
            v: 1,
            org: "octo".into(),
            repo: "octo/x".into(),
            task,
            order: 0,
            delivery: None,
        };
        let index = |commit: &str| RepositoryTask::Index {
            clone_url: "https://h/x.git".into(),
            commit: Some(commit.into()),
            before: None,
        };
        assert!(job(index(SHA)).check().is_ok());
        assert!(job(index("main")).check().unwrap_err().contains("40 hexadecimal"));
        let mut wrong_repo = job(RepositoryTask::Remove);
        wrong_repo.repo = "x".into();
        assert!(wrong_repo.check().unwrap_err().contains("<owner>/<name>"));
        let embedding = EmbeddingTask {
            v: 1,
            org: "octo".into(),
            repo: "octo/x".into(),
            commit: SHA.into(),
            path: "a.rs".into(),
            artifact: "orgs/other/repos/octo/x/files/a/b.json".into(),
            chunks: vec![],
        };
        assert!(embedding.check().unwrap_err().contains("is not one of repository"));
    }
}
