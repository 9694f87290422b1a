//! The embedded bucket driver: object content in files named by version id under a directory,
//! a SQLite index (`ledge-sqlite`) from key to current version and metadata.
//!
//! Every upload goes: body → temp file (hashed while streaming, fsynced) → renamed to its
//! version path (directory fsynced) → one index transaction that checks `only_if` and flips
//! the key to the new version (the commit point) → the replaced version's file is removed.
//! So a reader sees the old version or the new one, never part of one; racing writers are
//! ordered by their commits (last to finish wins); and a crash leaves at most files nothing
//! refers to, which the sweep at [`LocalBucket::open`] removes. A reader that opened the old
//! version's file keeps reading it after the flip: unlinking does not disturb an open file.

mod files;
mod index;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
pub use ledge_sqlite::Durability;
use ledge_sqlite::{Database, now_ms};

use self::files::{Doomed, Layout};
use self::index::{ListQuery, NewObject, PartRow};
use crate::conditional::Validators;
use crate::hashing::multipart_etag;
use crate::object::from_epoch_ms;
use crate::{
    Body, Bucket, Checksums, Conditional, Error, GetOptions, GetOutcome, Include, Limits, ListOptions,
    Listing, MultipartOptions, MultipartUpload, Object, ObjectBody, PutOptions, Result, ServedRange,
    UploadedPart,
};

/// How often `get` looks the key up again when the version it found was replaced before its
/// file could be opened.
const OPEN_ATTEMPTS: usize = 8;

/// Configuration of a [`LocalBucket`].
#[derive(Debug, Clone)]
pub struct LocalOptions {
    pub limits: Limits,
    /// What a committed index write survives (content files are always fsynced).
    pub durability: Durability,
    /// Multipart uploads older than this are aborted by the sweep at open. (7 days, as on
    /// the edge platform)
    pub multipart_expiry: Duration,
    /// Size of the chunks a body is read from disk in. (64 KiB)
    pub read_chunk_bytes: usize,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            limits: Limits::default(),
            durability: Durability::default(),
            multipart_expiry: Duration::from_secs(7 * 24 * 3600),
            read_chunk_bytes: 64 * 1024,
        }
    }
}

/// A bucket in a local directory. Cheap to clone; clones share the directory. One
/// `LocalBucket` (with its clones) holds a directory at a time.
#[derive(Clone)]
pub struct LocalBucket {
    inner: Arc<Inner>,
}

struct Inner {
    layout: Layout,
    db: Database,
    options: LocalOptions,
    /// Holds the directory's lock for as long as the bucket lives.
    _lock: std::fs::File,
}

impl std::fmt::Debug for LocalBucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBucket").field("dir", &self.inner.layout.root()).finish()
    }
}

impl LocalBucket {
    /// Opens (creating if needed) the bucket in `dir`, takes the directory's lock (`InUse`
    /// if another bucket holds it), aborts expired multipart uploads and removes what an
    /// interrupted operation left behind.
    pub async fn open(dir: impl Into<PathBuf>, options: LocalOptions) -> Result<LocalBucket> {
        let dir = dir.into();
        tokio::task::spawn_blocking(move || LocalBucket::open_blocking(dir, options))
            .await
            .map_err(|e| Error::Backend(Box::new(e)))?
    }

    fn open_blocking(dir: PathBuf, options: LocalOptions) -> Result<LocalBucket> {
        let layout = Layout::new(dir);
        layout.create_dirs()?;
        let lock_path = layout.lock_path();
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::file("open", &lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(Error::InUse(layout.root().to_path_buf())),
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::file("lock", &lock_path, e)),
        }
        let db = Database::open(
            layout.index_path(),
            index::SCHEMA,
            ledge_sqlite::Options { durability: options.durability, readers: 2, ..Default::default() },
        )?;
        let expiry_ms = i64::try_from(options.multipart_expiry.as_millis()).unwrap_or(i64::MAX);
        let cutoff_ms = now_ms().saturating_sub(expiry_ms);
        let expired = db.write_blocking(move |txn| index::expire_uploads(txn, cutoff_ms))?;
        let swept = files::sweep(&layout, &db)?;
        if expired > 0 || swept != files::Swept::default() {
            tracing::info!(dir = %layout.root().display(), expired_uploads = expired, ?swept, "bucket cleaned at open");
        }
        Ok(LocalBucket { inner: Arc::new(Inner { layout, db, options, _lock: lock }) })
    }

    /// The bucket's directory.
    pub fn dir(&self) -> &Path {
        self.inner.layout.root()
    }

    fn limits(&self) -> &Limits {
        &self.inner.options.limits
    }

    async fn find(&self, key: &str) -> Result<Option<index::ObjectRow>> {
        let key = key.to_owned();
        self.inner.db.read(move |conn| index::find_object(conn, &key)).await
    }
}

/// Runs the end of an operation — from its commit on — as a task of its own, so that a caller
/// that goes away cannot stop it between the commit and the removal of the files it replaced.
async fn run_detached<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    tokio::spawn(work).await.map_err(|e| Error::Backend(Box::new(e)))?
}

enum PutCommit {
    Stored { uploaded_ms: i64, replaced: Option<String> },
    ConditionFailed,
}

impl Inner {
    /// Commits a published version of `record.key` if `only_if` still holds, then removes the
    /// file of the version it replaced (or, if nothing was stored, its own).
    async fn commit_put(
        self: Arc<Self>,
        record: NewObject,
        content: Doomed,
        only_if: Option<Conditional>,
    ) -> Result<Option<Object>> {
        // Once the job is submitted it may commit whatever happens to this task, so from here
        // on the file is removed only when the commit is known not to have happened.
        let path = content.keep();
        let key = record.key.clone();
        let job_record = record.clone();
        let outcome = self
            .db
            .write(move |txn| -> Result<PutCommit> {
                let current = index::find_current(txn, &key)?;
                if let Some(condition) = &only_if {
                    let validators = current
                        .as_ref()
                        .map(|c| Validators { etag: &c.etag, uploaded: from_epoch_ms(c.uploaded_ms) });
                    if !condition.holds(validators) {
                        return Ok(PutCommit::ConditionFailed);
                    }
                }
                let uploaded_ms = now_ms();
                index::upsert_object(txn, &job_record, uploaded_ms)?;
                Ok(PutCommit::Stored { uploaded_ms, replaced: current.map(|c| c.version) })
            })
            .await;
        match outcome {
            Ok(PutCommit::Stored { uploaded_ms, replaced }) => {
                if let Some(old) = replaced {
                    files::remove_garbage(vec![self.layout.version_path(&old)]).await;
                }
                Ok(Some(record.into_object(uploaded_ms)))
            }
            Ok(PutCommit::ConditionFailed) => {
                files::remove_garbage(vec![path]).await;
                Ok(None)
            }
            Err(e) => {
                files::remove_garbage(vec![path]).await;
                Err(e)
            }
        }
    }
}

#[async_trait]
impl Bucket for LocalBucket {
    fn limits(&self) -> &Limits {
        LocalBucket::limits(self)
    }

    async fn head(&self, key: &str) -> Result<Option<Object>> {
        self.limits().check_key(key)?;
        self.find(key).await?.map(|row| row.into_object(Include::ALL)).transpose()
    }

    async fn get(&self, key: &str, options: GetOptions) -> Result<Option<GetOutcome>> {
        self.limits().check_key(key)?;
        for _ in 0..OPEN_ATTEMPTS {
            let Some(row) = self.find(key).await? else { return Ok(None) };
            let object = row.into_object(Include::ALL)?;
            if let Some(condition) = &options.only_if
                && !condition.holds_for(Some(&object))
            {
                return Ok(Some(GetOutcome::ConditionFailed(object)));
            }
            let range = match &options.range {
                Some(range) => range.resolve(object.size)?,
                None => ServedRange { offset: 0, length: object.size },
            };
            let path = self.inner.layout.version_path(&object.version);
            match files::read_range(&path, range, self.inner.options.read_chunk_bytes).await {
                Ok(body) => return Ok(Some(GetOutcome::Found(ObjectBody { object, range, body }))),
                // Replaced or deleted since the index was read: the index now says what is current.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::file("open", path, e)),
            }
        }
        Err(Error::Backend(format!("the content of {key:?} kept changing while it was opened").into()))
    }

    async fn put(&self, key: &str, body: Body, options: PutOptions) -> Result<Option<Object>> {
        let limits = self.limits();
        limits.check_key(key)?;
        limits.check_custom_metadata(&options.custom_metadata)?;
        let only_if = options.only_if.filter(|c| !c.is_empty());
        // A condition that fails now is not worth receiving the body for; the check that
        // counts is the one at the commit point.
        if let Some(condition) = &only_if {
            let current = self.find(key).await?;
            let validators = current
                .as_ref()
                .map(|c| Validators { etag: &c.etag, uploaded: from_epoch_ms(c.uploaded_ms) });
            if !condition.holds(validators) {
                return Ok(None);
            }
        }
        let expected = options.checksum.as_ref().map(|c| c.algorithm());
        let staged =
            files::stage(&self.inner.layout, body, limits.max_object_bytes, "object size", expected).await?;
        staged.digests.verify(options.checksum.as_ref())?;
        let version = files::new_id();
        let content = files::publish(staged.file, self.inner.layout.version_path(&version)).await?;
        let record = NewObject {
            key: key.to_owned(),
            version,
            size: staged.digests.size,
            etag: staged.digests.etag(),
            checksums: staged.digests.checksums,
            http_metadata: options.http_metadata,
            custom_metadata: options.custom_metadata,
        };
        run_detached(self.inner.clone().commit_put(record, content, only_if)).await
    }

    async fn delete(&self, keys: &[String]) -> Result<()> {
        self.limits().check_delete(keys)?;
        if keys.is_empty() {
            return Ok(());
        }
        let keys = keys.to_vec();
        let inner = self.inner.clone();
        run_detached(async move {
            let versions = inner.db.write(move |txn| index::delete_objects(txn, &keys)).await?;
            let paths = versions.iter().map(|v| inner.layout.version_path(v)).collect();
            files::remove_garbage(paths).await;
            Ok(())
        })
        .await
    }

    async fn list(&self, options: ListOptions) -> Result<Listing> {
        let limit = self.limits().list_limit(options.limit)?;
        let prefix = options.prefix.unwrap_or_default().into_bytes();
        let mut lower = prefix.clone();
        if let Some(cursor) = &options.cursor {
            let after =
                hex::decode(cursor).map_err(|_| Error::invalid("cursor", "not a cursor of this bucket"))?;
            lower = lower.max(after);
        }
        if let Some(start_after) = &options.start_after {
            lower = lower.max(index::key_successor(start_after.as_bytes()));
        }
        let query = ListQuery {
            prefix,
            lower,
            delimiter: options.delimiter.filter(|d| !d.is_empty()),
            limit,
            include: options.include,
        };
        self.inner.db.read(move |conn| index::list(conn, &query)).await
    }

    async fn create_multipart_upload(&self, key: &str, options: MultipartOptions) -> Result<MultipartUpload> {
        self.limits().check_key(key)?;
        self.limits().check_custom_metadata(&options.custom_metadata)?;
        let upload = MultipartUpload { key: key.to_owned(), upload_id: files::new_id() };
        let (id, key) = (upload.upload_id.clone(), upload.key.clone());
        self.inner
            .db
            .write(move |txn| {
                index::insert_upload(
                    txn,
                    &id,
                    &key,
                    now_ms(),
                    &options.http_metadata,
                    &options.custom_metadata,
                )
            })
            .await?;
        Ok(upload)
    }

    async fn resume_multipart_upload(&self, key: &str, upload_id: &str) -> Result<MultipartUpload> {
        self.limits().check_key(key)?;
        let (id, k) = (upload_id.to_owned(), key.to_owned());
        match self.inner.db.read(move |conn| index::find_upload(conn, &id, &k)).await? {
            Some(_) => Ok(MultipartUpload { key: key.to_owned(), upload_id: upload_id.to_owned() }),
            None => Err(Error::NoSuchUpload { upload_id: upload_id.to_owned() }),
        }
    }

    async fn upload_part(
        &self,
        upload: &MultipartUpload,
        part_number: u32,
        body: Body,
    ) -> Result<UploadedPart> {
        let limits = self.limits();
        limits.check_part_number(part_number)?;
        // Fail before receiving the body if the upload is not in progress.
        self.resume_multipart_upload(&upload.key, &upload.upload_id).await?;
        let staged = files::stage(&self.inner.layout, body, limits.max_part_bytes, "part size", None).await?;
        let file = files::new_id();
        let content = files::publish(staged.file, self.inner.layout.part_path(&file)).await?;
        let part = PartRow { part_number, file, size: staged.digests.size, md5: staged.digests.md5.to_vec() };
        let etag = staged.digests.etag();
        let (inner, upload) = (self.inner.clone(), upload.clone());
        run_detached(async move {
            let path = content.keep();
            let committed = inner
                .db
                .write(move |txn| {
                    if index::find_upload(txn, &upload.upload_id, &upload.key)?.is_none() {
                        return Err(Error::NoSuchUpload { upload_id: upload.upload_id });
                    }
                    index::upsert_part(txn, &upload.upload_id, &part)
                })
                .await;
            match committed {
                Ok(replaced) => {
                    let garbage = replaced.iter().map(|f| inner.layout.part_path(f)).collect();
                    files::remove_garbage(garbage).await;
                    Ok(UploadedPart { part_number, etag })
                }
                Err(e) => {
                    files::remove_garbage(vec![path]).await;
                    Err(e)
                }
            }
        })
        .await
    }

    async fn complete_multipart_upload(
        &self,
        upload: &MultipartUpload,
        parts: &[UploadedPart],
    ) -> Result<Object> {
        let limits = self.limits();
        limits.check_part_list(parts)?;
        let (id, key) = (upload.upload_id.clone(), upload.key.clone());
        let found = self
            .inner
            .db
            .read(move |conn| {
                Ok::<_, Error>(match index::find_upload(conn, &id, &key)? {
                    Some(row) => Some((row, index::parts_of(conn, &id)?)),
                    None => None,
                })
            })
            .await?;
        let Some((upload_row, stored)) = found else {
            return Err(Error::NoSuchUpload { upload_id: upload.upload_id.clone() });
        };
        let mut chosen = Vec::with_capacity(parts.len());
        for part in parts {
            let Some(row) = stored.iter().find(|s| s.part_number == part.part_number) else {
                return Err(Error::InvalidPart {
                    part_number: part.part_number,
                    message: "was not uploaded".into(),
                });
            };
            if hex::encode(&row.md5) != part.etag.trim_matches('"') {
                return Err(Error::InvalidPart {
                    part_number: part.part_number,
                    message: format!("etag {:?} is not the stored part's", part.etag),
                });
            }
            chosen.push(row.clone());
        }
        let sizes: Vec<(u32, u64)> = chosen.iter().map(|p| (p.part_number, p.size)).collect();
        limits.check_part_sizes(&sizes)?;

        let sources = chosen.iter().map(|p| self.inner.layout.part_path(&p.file)).collect();
        let joined = match files::concatenate(&self.inner.layout, sources).await {
            Ok(joined) => joined,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // A part vanished: the upload was aborted or completed meanwhile.
                return Err(Error::NoSuchUpload { upload_id: upload.upload_id.clone() });
            }
            Err(e) => return Err(Error::file("join the parts of", &upload.key, e)),
        };
        let version = files::new_id();
        let content = files::publish(joined, self.inner.layout.version_path(&version)).await?;
        let record = NewObject {
            key: upload.key.clone(),
            version,
            size: chosen.iter().map(|p| p.size).sum(),
            etag: multipart_etag(chosen.iter().map(|p| p.md5.as_slice())),
            checksums: Checksums::default(),
            http_metadata: upload_row.http_metadata,
            custom_metadata: upload_row.custom_metadata,
        };
        let (inner, upload) = (self.inner.clone(), upload.clone());
        run_detached(async move {
            let path = content.keep();
            let job_record = record.clone();
            let committed = inner
                .db
                .write(move |txn| -> Result<(i64, Vec<String>, Option<String>)> {
                    // The parts joined must still be the upload's: not aborted, completed or
                    // replaced since they were read.
                    let now_stored = index::parts_of(txn, &upload.upload_id)?;
                    for part in &chosen {
                        if !now_stored
                            .iter()
                            .any(|s| s.part_number == part.part_number && s.file == part.file)
                        {
                            if index::find_upload(txn, &upload.upload_id, &upload.key)?.is_none() {
                                return Err(Error::NoSuchUpload { upload_id: upload.upload_id });
                            }
                            return Err(Error::InvalidPart {
                                part_number: part.part_number,
                                message: "was replaced while the upload completed".into(),
                            });
                        }
                    }
                    let part_files = index::delete_upload(txn, &upload.upload_id, &upload.key)?
                        .ok_or_else(|| Error::NoSuchUpload { upload_id: upload.upload_id.clone() })?;
                    let replaced = index::find_current(txn, &upload.key)?.map(|c| c.version);
                    let uploaded_ms = now_ms();
                    index::upsert_object(txn, &job_record, uploaded_ms)?;
                    Ok((uploaded_ms, part_files, replaced))
                })
                .await;
            match committed {
                Ok((uploaded_ms, part_files, replaced)) => {
                    let mut garbage: Vec<PathBuf> =
                        part_files.iter().map(|f| inner.layout.part_path(f)).collect();
                    garbage.extend(replaced.map(|v| inner.layout.version_path(&v)));
                    files::remove_garbage(garbage).await;
                    Ok(record.into_object(uploaded_ms))
                }
                Err(e) => {
                    files::remove_garbage(vec![path]).await;
                    Err(e)
                }
            }
        })
        .await
    }

    async fn abort_multipart_upload(&self, upload: &MultipartUpload) -> Result<()> {
        let (inner, upload) = (self.inner.clone(), upload.clone());
        run_detached(async move {
            let (id, key) = (upload.upload_id.clone(), upload.key.clone());
            let part_files = inner.db.write(move |txn| index::delete_upload(txn, &id, &key)).await?;
            let Some(part_files) = part_files else {
                return Err(Error::NoSuchUpload { upload_id: upload.upload_id });
            };
            files::remove_garbage(part_files.iter().map(|f| inner.layout.part_path(f)).collect()).await;
            Ok(())
        })
        .await
    }
}
