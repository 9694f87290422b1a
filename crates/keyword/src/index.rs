//! [`KeywordIndex`]: one tantivy index in a directory, one writer behind a lock, one reader for searches.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tantivy::collector::TopDocs;
use tantivy::directory::MmapDirectory;
use tantivy::indexer::{IndexWriterOptions, UserOperation};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, TantivyError, Term};

use crate::error::{KeywordError, storage};
use crate::query::{self, KeywordHit, KeywordQuery};
use crate::schema::{self, ChunkDoc, Fields};
use crate::staging::{self, StagedDocument, Staging};

/// The smallest writer memory budget tantivy accepts (15 MB).
pub const MIN_WRITER_MEMORY_BYTES: usize = 15_000_000;
/// The largest writer memory budget accepted (1 GiB; tantivy's own limit is just under 4 GiB).
pub const MAX_WRITER_MEMORY_BYTES: usize = 1 << 30;

/// How a [`KeywordIndex`] uses memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeywordOptions {
    /// The writer's indexing buffer: when staged documents reach it, they are written to a new segment on
    /// disk (still invisible until [`KeywordIndex::commit`]). At least [`MIN_WRITER_MEMORY_BYTES`];
    /// default 32 MiB. The writer uses one indexing thread and one merge thread.
    pub writer_memory_bytes: usize,
    /// Documents handed to the writer but not yet indexed by its thread, in bytes: past it,
    /// [`KeywordIndex::replace_file`] waits for the indexing thread (back-pressure). Default 8 MiB.
    pub staging_memory_bytes: usize,
    /// Decompressed 16 KiB blocks of stored documents cached per segment, for reading hits (0: none);
    /// default 8.
    pub doc_store_cache_blocks: usize,
}

impl Default for KeywordOptions {
    fn default() -> Self {
        KeywordOptions {
            writer_memory_bytes: 32 << 20,
            staging_memory_bytes: 8 << 20,
            doc_store_cache_blocks: 8,
        }
    }
}

struct Writer {
    inner: IndexWriter<StagedDocument>,
    /// Something was staged since the last commit.
    staged: bool,
}

/// The keyword index of code chunks. `Send + Sync`: share it with an `Arc`.
///
/// Writes ([`replace_file`](Self::replace_file), [`delete_repo`](Self::delete_repo)) are staged; a
/// [`commit`](Self::commit) makes everything staged so far durable and searchable at once. What was staged
/// but not committed when the process dies (or the index is dropped) is lost, and the caller must redo
/// it: record work as done (acknowledge its queue message, say) only after a commit that follows it.
/// Redoing is safe, since replacing a file is idempotent. Committed data survives `kill -9` (segment
/// files and the index's meta file are fsynced, the meta file is replaced atomically). A commit covers
/// what every thread staged before it.
pub struct KeywordIndex {
    dir: PathBuf,
    fields: Fields,
    reader: IndexReader,
    writer: Mutex<Writer>,
    staging: Arc<Staging>,
}

impl std::fmt::Debug for KeywordIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeywordIndex").field("dir", &self.dir).finish_non_exhaustive()
    }
}

fn check_key_part(field: &'static str, value: &str) -> Result<(), KeywordError> {
    if value.is_empty() {
        return Err(KeywordError::InvalidArgument { field, reason: "is empty".into() });
    }
    if value.contains('\0') {
        return Err(KeywordError::InvalidArgument { field, reason: "contains a NUL character".into() });
    }
    Ok(())
}

fn check_doc(index: usize, doc: &ChunkDoc, org: &str, repo: &str, path: &str) -> Result<(), KeywordError> {
    let invalid = |field, reason: String| KeywordError::InvalidDoc { index, field, reason };
    for (field, value, expected) in
        [("org", &doc.org, org), ("repo", &doc.repo, repo), ("path", &doc.path, path)]
    {
        if value != expected {
            return Err(invalid(field, format!("is {value:?} but the call replaces {expected:?}")));
        }
    }
    if doc.chunk_id.is_empty() {
        return Err(invalid("chunk_id", "is empty".into()));
    }
    if doc.start_line > doc.end_line {
        return Err(invalid("end_line", format!("{} is before start_line {}", doc.end_line, doc.start_line)));
    }
    Ok(())
}

impl KeywordIndex {
    /// Opens the index in `dir`, creating the directory and an empty index if needed. One `KeywordIndex`
    /// per directory at a time (a second one, in any process, gets [`KeywordError::Locked`]).
    pub fn open(dir: &Path, options: KeywordOptions) -> Result<KeywordIndex, KeywordError> {
        if !(MIN_WRITER_MEMORY_BYTES..=MAX_WRITER_MEMORY_BYTES).contains(&options.writer_memory_bytes) {
            return Err(KeywordError::InvalidArgument {
                field: "writer_memory_bytes",
                reason: format!(
                    "{} is outside {MIN_WRITER_MEMORY_BYTES}..={MAX_WRITER_MEMORY_BYTES}",
                    options.writer_memory_bytes
                ),
            });
        }
        std::fs::create_dir_all(dir).map_err(storage)?;
        let directory = MmapDirectory::open(dir).map_err(storage)?;
        let (schema, fields) = Fields::schema();
        let index = Index::builder()
            .schema(schema)
            .tokenizers(schema::tokenizers())
            .open_or_create(directory)
            .map_err(|error| match error {
                TantivyError::SchemaError(_) => KeywordError::SchemaMismatch { dir: dir.to_owned() },
                error => storage(error),
            })?;
        let writer_options = IndexWriterOptions::builder()
            .memory_budget_per_thread(options.writer_memory_bytes)
            .num_worker_threads(1)
            .num_merge_threads(1)
            .build();
        let writer = index.writer_with_options(writer_options).map_err(|error| match error {
            TantivyError::LockFailure(..) => KeywordError::Locked { dir: dir.to_owned() },
            error => storage(error),
        })?;
        let reader = index
            .reader_builder()
            // Commits reload explicitly; the watch also picks up the segment merges finished later.
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .doc_store_cache_num_blocks(options.doc_store_cache_blocks)
            .try_into()
            .map_err(storage)?;
        Ok(KeywordIndex {
            dir: dir.to_owned(),
            fields,
            reader,
            writer: Mutex::new(Writer { inner: writer, staged: false }),
            staging: Staging::new(options.staging_memory_bytes),
        })
    }

    /// The directory the index lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn writer(&self) -> Result<std::sync::MutexGuard<'_, Writer>, KeywordError> {
        self.writer.lock().map_err(|_| KeywordError::Poisoned)
    }

    /// Replaces every document of (org, repo, path) by `docs` (possibly empty = removal). Idempotent.
    ///
    /// Staged only: visible and durable after the next [`commit`](Self::commit). Every doc must carry
    /// the same org, repo and path as the call (else [`KeywordError::InvalidDoc`] and nothing is staged);
    /// chunk ids must be non-empty and distinct.
    pub fn replace_file(
        &self,
        org: &str,
        repo: &str,
        path: &str,
        docs: Vec<ChunkDoc>,
    ) -> Result<(), KeywordError> {
        check_key_part("org", org)?;
        check_key_part("repo", repo)?;
        check_key_part("path", path)?;
        let mut ids = HashSet::with_capacity(docs.len());
        for (index, doc) in docs.iter().enumerate() {
            check_doc(index, doc, org, repo, path)?;
            if !ids.insert(doc.chunk_id.as_str()) {
                return Err(KeywordError::InvalidDoc {
                    index,
                    field: "chunk_id",
                    reason: format!("{:?} occurs twice", doc.chunk_id),
                });
            }
        }
        let key = Term::from_field_text(self.fields.file_key, &schema::file_key(org, repo, path));
        let sizes: Vec<usize> = docs.iter().map(staging::document_size).collect();
        let permits = self.staging.admit(&sizes);
        let mut operations = Vec::with_capacity(docs.len() + 1);
        operations.push(UserOperation::Delete(key));
        operations.extend(docs.iter().zip(permits).map(|(doc, permit)| {
            UserOperation::Add(StagedDocument { doc: self.fields.document_of(doc), _permit: permit })
        }));
        drop(docs);
        let mut writer = self.writer()?;
        // One group of consecutive operations: the delete applies to the file's older documents only.
        writer.inner.run(operations).map_err(storage)?;
        writer.staged = true;
        Ok(())
    }

    /// Removes every document of (org, repo). Staged, like [`replace_file`](Self::replace_file).
    pub fn delete_repo(&self, org: &str, repo: &str) -> Result<(), KeywordError> {
        check_key_part("org", org)?;
        check_key_part("repo", repo)?;
        let key = Term::from_field_text(self.fields.repo_key, &schema::repo_key(org, repo));
        let mut writer = self.writer()?;
        writer.inner.delete_term(key);
        writer.staged = true;
        Ok(())
    }

    /// Makes everything written so far durable and searchable. Cheap when nothing was staged.
    pub fn commit(&self) -> Result<(), KeywordError> {
        let mut writer = self.writer()?;
        if !writer.staged {
            return Ok(());
        }
        writer.inner.commit().map_err(storage)?;
        writer.staged = false;
        self.reader.reload().map_err(storage)
    }

    /// The best hits for `query`, best first, only ever from `query.org`'s documents. A text with no
    /// words (only punctuation, say) or a limit of 0 finds nothing.
    pub fn search(&self, query: &KeywordQuery) -> Result<Vec<KeywordHit>, KeywordError> {
        let Some(tantivy_query) = query::build(&self.fields, query)? else {
            return Ok(Vec::new());
        };
        let searcher = self.reader.searcher();
        let top = searcher
            .search(&tantivy_query, &TopDocs::with_limit(query.limit).order_by_score())
            .map_err(storage)?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let stored: TantivyDocument = searcher.doc(address).map_err(storage)?;
            hits.push(KeywordHit { doc: self.fields.chunk_of(&stored)?, score });
        }
        Ok(hits)
    }

    /// The number of searchable (committed) documents.
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_indexing_thread_gives_back_the_staged_bytes() {
        let dir = tempfile::tempdir().unwrap();
        // A limit of one byte: every file waits for the previous one to be indexed.
        let options = KeywordOptions { staging_memory_bytes: 1, ..KeywordOptions::default() };
        let index = KeywordIndex::open(dir.path(), options).unwrap();
        for f in 0..50 {
            let path = format!("src/f{f}.rs");
            let doc = ChunkDoc {
                org: "acme".into(),
                repo: "api".into(),
                commit: "c".into(),
                path: path.clone(),
                language: "rust".into(),
                symbol: None,
                kind: "code".into(),
                start_line: 1,
                end_line: 1,
                chunk_id: path.clone(),
                text: format!("fn f{f}() {{}}"),
            };
            index.replace_file("acme", "api", &path, vec![doc]).unwrap();
        }
        index.commit().unwrap();
        assert_eq!(index.staging.queued(), 0);
        assert_eq!(index.num_docs(), 50);
    }
}
