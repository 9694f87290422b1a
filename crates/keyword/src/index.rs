//! [`KeywordIndex`]: one tantivy index in a directory, one writer behind a lock, one reader for searches.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tantivy::collector::{DocSetCollector, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::indexer::{IndexWriterOptions, LogMergePolicy, UserOperation};
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, TantivyError, Term,
};

use crate::error::{KeywordError, storage};
use crate::query::{self, KeywordHit, KeywordQuery};
use crate::schema::{self, ChunkDoc, Fields};
use crate::staging::{self, StagedDocument, Staging};

/// The smallest writer memory budget tantivy accepts (15 MB).
pub const MIN_WRITER_MEMORY_BYTES: usize = 15_000_000;
/// The largest writer memory budget accepted (1 GiB; tantivy's own limit is just under 4 GiB).
pub const MAX_WRITER_MEMORY_BYTES: usize = 1 << 30;

/// The most chunk ids one [`KeywordIndex::chunks`] call accepts.
pub const MAX_CHUNK_IDS: usize = 1000;

/// What a [`KeywordIndex::scan`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanSummary {
    /// Chunks that matched the scan's query.
    pub matched: usize,
    /// Chunks handed to the visitor.
    pub visited: usize,
    /// Whether every matching chunk was visited (neither `max` nor the visitor stopped the scan).
    pub complete: bool,
}

/// Segments smaller than this many documents are one merge level ([`merge_policy`]).
const MIN_LAYER_DOCS: u32 = 1_000;

/// tantivy's log merge policy, with levels starting at [`MIN_LAYER_DOCS`] documents rather than
/// 10,000. Indexing commits every batch of files (a few hundred chunks), and with the default every
/// segment under 10,000 documents is one level: each merge of eight re-merged the growing result of
/// the last one, so a document was rewritten five or six times during a full index (a seventh of
/// its CPU). With levels from 1,000 documents, merges take segments of similar size and a document
/// is rewritten about log₈(documents / batch) times.
fn merge_policy() -> LogMergePolicy {
    let mut policy = LogMergePolicy::default();
    policy.set_min_layer_size(MIN_LAYER_DOCS);
    policy
}

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
    /// How often the pages of the index's mapped files that searches and merges touched are given back
    /// to the kernel (they stay in the page cache; see `resident`). Default every second; `None`: never.
    pub release_mapped_pages_every: Option<std::time::Duration>,
}

impl Default for KeywordOptions {
    fn default() -> Self {
        KeywordOptions {
            writer_memory_bytes: 32 << 20,
            staging_memory_bytes: 8 << 20,
            doc_store_cache_blocks: 8,
            release_mapped_pages_every: Some(std::time::Duration::from_secs(1)),
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
    /// Gives back the mapped pages searches and merges touched (see `resident`).
    _releaser: Option<crate::resident::Releaser>,
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
            .open_or_create(directory.clone())
            .map_err(|error| match error {
                TantivyError::SchemaError(_) => KeywordError::SchemaMismatch { dir: dir.to_owned() },
                error => storage(error),
            })?;
        let writer_options = IndexWriterOptions::builder()
            .memory_budget_per_thread(options.writer_memory_bytes)
            .num_worker_threads(1)
            .num_merge_threads(1)
            .build();
        let writer: IndexWriter<StagedDocument> =
            index.writer_with_options(writer_options).map_err(|error| match error {
                TantivyError::LockFailure(..) => KeywordError::Locked { dir: dir.to_owned() },
                error => storage(error),
            })?;
        writer.set_merge_policy(Box::new(merge_policy()));
        // The reader has an index of its own over the same files, whose document stores are read
        // with pread (see `pread`); it shares the directory's watch of meta.json.
        let mut read_index =
            Index::open(crate::pread::StoresByPread::new(directory, dir)).map_err(storage)?;
        read_index.set_tokenizers(schema::tokenizers());
        let reader = read_index
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
            _releaser: match options.release_mapped_pages_every {
                Some(period) => Some(crate::resident::Releaser::start(dir, period).map_err(storage)?),
                None => None,
            },
        })
    }

    /// The directory the index lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Gives the pages of the index's mapped files back to the kernel now (they stay in the page cache);
    /// returns the bytes of the mappings advised. The index also does this on its own every
    /// [`KeywordOptions::release_mapped_pages_every`].
    pub fn release_mapped_pages(&self) -> Result<usize, KeywordError> {
        let dir = self.dir.canonicalize().map_err(storage)?;
        crate::resident::release_mapped_pages(&dir).map_err(storage)
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

    /// Visits the chunks of `query.org` whose text holds every word and phrase of `query.text` (every
    /// chunk, when the text has no words) and that pass the query's filters and exclusions, in index
    /// order, unranked; `query.limit` is ignored. Stops after `max` chunks or when `visit` returns false.
    /// The matching documents' addresses are collected first (8 bytes each), then each visited chunk is
    /// read from the document store.
    pub fn scan(
        &self,
        query: &KeywordQuery,
        max: usize,
        mut visit: impl FnMut(ChunkDoc) -> bool,
    ) -> Result<ScanSummary, KeywordError> {
        let tantivy_query = query::build_scan(&self.fields, query)?;
        let searcher = self.reader.searcher();
        let mut addresses: Vec<DocAddress> =
            searcher.search(&tantivy_query, &DocSetCollector).map_err(storage)?.into_iter().collect();
        addresses.sort_unstable();
        let mut summary = ScanSummary { matched: addresses.len(), visited: 0, complete: true };
        for address in addresses {
            if summary.visited == max {
                summary.complete = false;
                break;
            }
            let stored: TantivyDocument = searcher.doc(address).map_err(storage)?;
            summary.visited += 1;
            if !visit(self.fields.chunk_of(&stored)?) {
                summary.complete = summary.visited == summary.matched;
                break;
            }
        }
        Ok(summary)
    }

    /// The chunks with these ids among those [`scan`](Self::scan) would visit for `query` (so only
    /// `query.org`'s, passing its text, filters and exclusions), in the order asked, each once; other ids
    /// are left out. At most [`MAX_CHUNK_IDS`] ids.
    pub fn chunks(&self, query: &KeywordQuery, ids: &[String]) -> Result<Vec<ChunkDoc>, KeywordError> {
        if ids.len() > MAX_CHUNK_IDS {
            return Err(KeywordError::InvalidArgument {
                field: "ids",
                reason: format!("{} ids is over the maximum of {MAX_CHUNK_IDS}", ids.len()),
            });
        }
        let scan = query::build_scan(&self.fields, query)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One term lookup per id and segment: a `TermSetQuery` walked the term dictionary with an
        // automaton instead, a tenth of a hybrid search's time.
        let by_id = BooleanQuery::new(
            ids.iter()
                .map(|id| {
                    let term = Term::from_field_text(self.fields.chunk_id, id);
                    let query: Box<dyn Query> = Box::new(TermQuery::new(term, IndexRecordOption::Basic));
                    (Occur::Should, query)
                })
                .collect(),
        );
        let clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, Box::new(by_id)), (Occur::Must, scan)];
        let searcher = self.reader.searcher();
        let addresses = searcher.search(&BooleanQuery::new(clauses), &DocSetCollector).map_err(storage)?;
        let mut found = std::collections::HashMap::with_capacity(addresses.len());
        for address in addresses {
            let stored: TantivyDocument = searcher.doc(address).map_err(storage)?;
            let chunk = self.fields.chunk_of(&stored)?;
            found.insert(chunk.chunk_id.clone(), chunk);
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    /// The organizations that have searchable documents, sorted. (An organization whose documents were
    /// all deleted may stay listed until its segments are merged.)
    pub fn orgs(&self) -> Result<Vec<String>, KeywordError> {
        let searcher = self.reader.searcher();
        let mut orgs = std::collections::BTreeSet::new();
        for segment in searcher.segment_readers() {
            let inverted = segment.inverted_index(self.fields.org).map_err(storage)?;
            let mut terms = inverted.terms().stream().map_err(storage)?;
            while terms.advance() {
                orgs.insert(String::from_utf8_lossy(terms.key()).into_owned());
            }
        }
        Ok(orgs.into_iter().collect())
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
                symbols: Vec::new(),
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
