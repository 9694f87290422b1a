//! Chunk artifacts: the chunks of one version of one file, stored as JSON in the `artifacts` bucket
//! ([`ChunkArtifact`], [`ArtifactStore`]), and the ids chunks are known by in every index ([`chunk_key`]).
//!
//! # Key layout
//!
//! ```text
//! orgs/<org>/repos/<owner>/<name>/files/<sha256 of the path, hex>/<blob id>.json
//!      custom metadata: path = <the file's path>, commit = <the commit it was indexed at>
//! ```
//!
//! One object per (path, content): the same file at the same content is the same key, so indexing it
//! again overwrites the artifact with identical chunks. The path is hashed so that any path (however long,
//! whatever its characters) makes a bounded key, and is kept in the object's metadata so that a listing
//! tells which paths have artifacts.
//!
//! # The artifacts are the record of what is indexed
//!
//! A path has documents in the keyword index or vectors only while it has an artifact: the file-indexing
//! consumer writes a version's artifact before its documents, and deletes a replaced or removed version's
//! artifact only after its vectors are deleted and the keyword index has committed the change. So after a
//! crash anywhere, the artifacts still name every version that may have data in an index, which is how a
//! full re-index finds the files to remove and how old vectors are found to delete.
//!
//! That deletion is conditional on the bucket's version id of the upload read when the version was
//! retired ([`ArtifactStore::delete_if_version`]): content-addressed keys come back (a file reverted to
//! an earlier content), and a newer job that stored the same key again must keep it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ledge_bucket::{Bucket, GetOptions, HttpMetadata, Include, ListOptions, PutOptions};
use ledge_chunker::{ChunkKind, Strategy};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{PipelineError, RepoRef};

/// The version of the artifact format.
pub const ARTIFACT_VERSION: u32 = 1;

/// The chunks of one version (blob) of one file, as the file-indexing consumer made them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkArtifact {
    pub v: u32,
    pub org: String,
    pub repo: String,
    pub path: String,
    /// The commit this version was indexed at.
    pub commit: String,
    /// The file's blob id: the content this version is.
    pub blob: String,
    /// The language's name (`rust`, `python`, …), `None` when unknown.
    pub language: Option<String>,
    /// How the chunker cut the file.
    pub strategy: Strategy,
    /// The file was not valid UTF-8 and was repaired before chunking.
    pub lossy_utf8: bool,
    pub chunks: Vec<ArtifactChunk>,
}

/// One chunk of a [`ChunkArtifact`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactChunk {
    /// The chunk's id in every index ([`chunk_key`]): keyword document and vector id.
    pub id: String,
    pub kind: ChunkKind,
    pub symbol: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub symbols: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
    pub start_line: usize,
    pub end_line: usize,
    pub start_byte: usize,
    pub end_byte: usize,
    pub text: String,
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

/// The id of a chunk in the keyword index and the vector index: a hex SHA-256 (64 characters, the
/// longest vector id allowed) over the organization, the repository, the file's blob and the chunker's
/// own id (which covers the path, the byte range and the text).
///
/// Scoped by organization and repository, so two repositories holding the same file never share a
/// vector; and by blob, so the vectors of two versions of a file never share an id and one version's
/// vectors can be deleted without touching the other's, whatever order their messages run in.
///
/// The first 16 hex digits hash the file version alone, the other 48 the chunk: one file's chunks
/// sit side by side in the ordered tables keyed by id (the vector index's rows and id index), so a
/// batch of vectors from a few files writes a few pages of them instead of one page per vector. With
/// purely random ids, the vector index's SQLite file took some ten times its size in WAL and
/// checkpoint writes over a full index.
pub fn chunk_key(repo: &RepoRef, blob: &str, chunker_id: &str) -> String {
    let repo_key = repo.key();
    let (org, key) = (repo.org().as_bytes(), repo_key.as_bytes());
    let file = sha256_hex(&[b"ledge-chunk-v2", org, key, blob.as_bytes()]);
    let chunk = sha256_hex(&[b"ledge-chunk-v2", org, key, blob.as_bytes(), chunker_id.as_bytes()]);
    format!("{}{}", &file[..16], &chunk[..48])
}

/// Reads and writes [`ChunkArtifact`]s in the `artifacts` bucket.
#[derive(Clone)]
pub struct ArtifactStore {
    bucket: Arc<dyn Bucket>,
}

impl std::fmt::Debug for ArtifactStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArtifactStore")
    }
}

const PATH_METADATA: &str = "path";
const COMMIT_METADATA: &str = "commit";

impl ArtifactStore {
    pub fn new(bucket: Arc<dyn Bucket>) -> ArtifactStore {
        ArtifactStore { bucket }
    }

    /// The prefix of every artifact of `path`: `<repo prefix>files/<sha256 of path>/`.
    pub fn path_prefix(repo: &RepoRef, path: &str) -> String {
        let hash = Sha256::digest(path.as_bytes());
        format!("{}files/{}/", repo.artifact_prefix(), hex::encode(hash))
    }

    /// The key of the artifact of `path` at content `blob`.
    pub fn key(repo: &RepoRef, path: &str, blob: &str) -> String {
        format!("{}{blob}.json", ArtifactStore::path_prefix(repo, path))
    }

    /// Stores the artifact (replacing the same version's) and returns its key.
    pub async fn put(&self, repo: &RepoRef, artifact: &ChunkArtifact) -> Result<String, PipelineError> {
        let key = ArtifactStore::key(repo, &artifact.path, &artifact.blob);
        let body = serde_json::to_vec(artifact)
            .map_err(|e| PipelineError::Artifact { key: key.clone(), reason: e.to_string() })?;
        let options = PutOptions {
            http_metadata: HttpMetadata {
                content_type: Some("application/json".into()),
                ..HttpMetadata::default()
            },
            custom_metadata: BTreeMap::from([
                (PATH_METADATA.to_owned(), artifact.path.clone()),
                (COMMIT_METADATA.to_owned(), artifact.commit.clone()),
            ]),
            ..PutOptions::default()
        };
        self.bucket.put(&key, body.into(), options).await?;
        Ok(key)
    }

    /// The artifact under `key`, `None` if there is none (any more).
    pub async fn get(&self, key: &str) -> Result<Option<ChunkArtifact>, PipelineError> {
        Ok(self.get_versioned(key).await?.map(|(artifact, _)| artifact))
    }

    /// The artifact under `key` with the bucket's version id of the upload that stored it (every put
    /// makes a new one), `None` if there is none.
    pub async fn get_versioned(&self, key: &str) -> Result<Option<(ChunkArtifact, String)>, PipelineError> {
        let Some(found) = self.bucket.get(key, GetOptions::default()).await? else {
            return Ok(None);
        };
        let Some(found) = found.into_body() else {
            return Ok(None);
        };
        let version = found.object.version.clone();
        let bytes = found
            .body
            .bytes()
            .await
            .map_err(|e| PipelineError::Artifact { key: key.to_owned(), reason: e.to_string() })?;
        let artifact = serde_json::from_slice::<ChunkArtifact>(&bytes)
            .map_err(|e| PipelineError::Artifact { key: key.to_owned(), reason: e.to_string() })?;
        Ok(Some((artifact, version)))
    }

    /// Deletes the artifact under `key` if it is still the upload `version`; returns whether it was.
    /// An artifact stored again since (a newer job indexed the same content again) is kept.
    pub async fn delete_if_version(&self, key: &str, version: &str) -> Result<bool, PipelineError> {
        match self.bucket.head(key).await? {
            Some(object) if object.version == version => {
                self.bucket.delete(&[key.to_owned()]).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The keys of every stored version of `path`.
    pub async fn versions(&self, repo: &RepoRef, path: &str) -> Result<Vec<String>, PipelineError> {
        let mut keys = Vec::new();
        self.list(ArtifactStore::path_prefix(repo, path), false, |key, _| keys.push(key)).await?;
        Ok(keys)
    }

    /// Every path of the repository that has an artifact, with the keys of its versions.
    pub async fn indexed_paths(
        &self,
        repo: &RepoRef,
    ) -> Result<BTreeMap<String, Vec<String>>, PipelineError> {
        let mut paths: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut unnamed = BTreeSet::new();
        self.list(format!("{}files/", repo.artifact_prefix()), true, |key, path| match path {
            Some(path) => paths.entry(path).or_default().push(key),
            None => {
                unnamed.insert(key);
            }
        })
        .await?;
        if let Some(key) = unnamed.into_iter().next() {
            return Err(PipelineError::Artifact { key, reason: "has no path metadata".into() });
        }
        Ok(paths)
    }

    /// The key of every artifact of the repository.
    pub async fn all_keys(&self, repo: &RepoRef) -> Result<Vec<String>, PipelineError> {
        let mut keys = Vec::new();
        self.list(repo.artifact_prefix(), false, |key, _| keys.push(key)).await?;
        Ok(keys)
    }

    /// Deletes these artifacts (absent ones are fine).
    pub async fn delete(&self, keys: &[String]) -> Result<(), PipelineError> {
        let most = self.bucket.limits().max_delete_keys.max(1);
        for page in keys.chunks(most) {
            self.bucket.delete(page).await?;
        }
        Ok(())
    }

    async fn list(
        &self,
        prefix: String,
        with_path: bool,
        mut each: impl FnMut(String, Option<String>),
    ) -> Result<(), PipelineError> {
        let mut cursor = None;
        loop {
            let options = ListOptions {
                prefix: Some(prefix.clone()),
                cursor: cursor.take(),
                include: Include { http_metadata: false, custom_metadata: with_path },
                ..ListOptions::default()
            };
            let page = self.bucket.list(options).await?;
            for mut object in page.objects {
                let path = object.custom_metadata.remove(PATH_METADATA);
                each(object.key, path);
            }
            match page.cursor {
                Some(next) if page.truncated => cursor = Some(next),
                _ => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_scoped_by_org_repo_and_path_and_bounded() {
        let repo = RepoRef::new("acme", "acme/api").unwrap();
        let key = ArtifactStore::key(&repo, "src/lib.rs", "0123456789abcdef0123456789abcdef01234567");
        assert!(key.starts_with("orgs/acme/repos/acme/api/files/"), "{key}");
        assert!(key.ends_with("/0123456789abcdef0123456789abcdef01234567.json"), "{key}");
        let long = ArtifactStore::key(&repo, &"x/".repeat(2000), "b");
        assert_eq!(long.len(), key.len() - 39, "the path is hashed");
    }

    #[test]
    fn chunk_keys_differ_across_orgs_repos_and_versions() {
        let a = RepoRef::new("acme", "acme/api").unwrap();
        let b = RepoRef::new("acme", "acme/web").unwrap();
        let other_org = RepoRef::new("other", "acme/api").unwrap();
        let id = chunk_key(&a, "blob1", "c");
        assert_eq!(id.len(), 64);
        assert_eq!(id, chunk_key(&a, "blob1", "c"));
        for different in
            [chunk_key(&b, "blob1", "c"), chunk_key(&other_org, "blob1", "c"), chunk_key(&a, "blob2", "c")]
        {
            assert_ne!(id, different);
            assert_ne!(id[..16], different[..16], "another file version sorts elsewhere");
        }
        let sibling = chunk_key(&a, "blob1", "d");
        assert_ne!(id, sibling);
        assert_eq!(id[..16], sibling[..16], "the chunks of one file version sort together");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
