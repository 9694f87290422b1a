//! The files of a local bucket: where content lives, how a body is staged and published
//! atomically, how content is streamed back, and the sweep that removes what a crash left.
//!
//! ```text
//! <dir>/LOCK                    held (flock) while a LocalBucket has the directory open
//! <dir>/index.sqlite3           the index (see `index`)
//! <dir>/tmp/<id>                bodies being received; never referenced, wiped at open
//! <dir>/objects/<v[..2]>/<v>    the content of version v, immutable once published
//! <dir>/parts/<id>              the content of one multipart part
//! ```
//! File names are ids the driver generates (32 hex digits), never keys.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use ledge_sqlite::Database;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;
use tokio_util::io::ReaderStream;

use super::index;
use crate::hashing::{ContentDigests, ContentHasher};
use crate::{Body, ChecksumAlgorithm, Error, Result, ServedRange};

/// Chunks in flight between a body stream and the thread writing it to disk: with the chunk
/// being hashed and the one being read, this bounds an upload's memory to a few chunks.
const WRITE_QUEUE_CHUNKS: usize = 4;

/// A fresh id for a version or a part file.
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Where a local bucket keeps what.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: PathBuf) -> Layout {
        Layout { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn lock_path(&self) -> PathBuf {
        self.root.join("LOCK")
    }

    pub fn index_path(&self) -> PathBuf {
        self.root.join("index.sqlite3")
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn objects_dir(&self) -> PathBuf {
        self.root.join("objects")
    }

    pub fn parts_dir(&self) -> PathBuf {
        self.root.join("parts")
    }

    pub fn version_path(&self, version: &str) -> PathBuf {
        let shard = version.get(..2).unwrap_or("__");
        self.objects_dir().join(shard).join(version)
    }

    pub fn part_path(&self, file: &str) -> PathBuf {
        self.parts_dir().join(file)
    }

    fn temp_path(&self) -> PathBuf {
        self.tmp_dir().join(new_id())
    }

    /// Creates the directories a bucket needs.
    pub fn create_dirs(&self) -> Result<()> {
        for dir in [self.root.clone(), self.tmp_dir(), self.objects_dir(), self.parts_dir()] {
            fs::create_dir_all(&dir).map_err(|e| Error::file("create", &dir, e))?;
        }
        Ok(())
    }
}

/// A file that is removed when this guard is dropped, unless it was [`Doomed::keep`]. Covers a
/// caller that gives up (drops the future) half-way through an upload.
#[derive(Debug)]
pub(crate) struct Doomed {
    path: Option<PathBuf>,
}

impl Doomed {
    fn new(path: PathBuf) -> Doomed {
        Doomed { path: Some(path) }
    }

    /// Where the file is now.
    pub fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    /// Keeps the file: someone else owns it from now on.
    pub fn keep(mut self) -> PathBuf {
        self.path.take().unwrap_or_default()
    }
}

impl Drop for Doomed {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = fs::remove_file(path);
        }
    }
}

/// A body received into a temporary file, fsynced, with its digests.
#[derive(Debug)]
pub(crate) struct Staged {
    pub file: Doomed,
    pub digests: ContentDigests,
}

enum Feed {
    Chunk(Bytes),
    /// The body ended: make the file durable and report.
    Finish,
}

/// Receives `body` into a new file under `tmp/`, hashing it on the way (MD5, plus `expected`'s
/// algorithm), and fsyncs it. More than `max_bytes` is `TooLarge { what }`; a failing body
/// stream is `Error::Body`. On any error, or if the future is dropped, the file is removed.
pub(crate) async fn stage(
    layout: &Layout,
    mut body: Body,
    max_bytes: u64,
    what: &'static str,
    expected: Option<ChecksumAlgorithm>,
) -> Result<Staged> {
    let path = layout.temp_path();
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .await
        .map_err(|e| Error::file("create", &path, e))?
        .into_std()
        .await;
    let doomed = Doomed::new(path.clone());

    // The disk writes and the hashing run on a blocking thread fed through a bounded queue.
    let (feed, mut chunks) = mpsc::channel::<Feed>(WRITE_QUEUE_CHUNKS);
    let writer = tokio::task::spawn_blocking(move || -> io::Result<Option<ContentDigests>> {
        let mut file = file;
        let mut hasher = ContentHasher::new(expected);
        while let Some(next) = chunks.blocking_recv() {
            match next {
                Feed::Chunk(chunk) => {
                    hasher.update(&chunk);
                    file.write_all(&chunk)?;
                }
                Feed::Finish => {
                    file.sync_all()?;
                    return Ok(Some(hasher.finish()));
                }
            }
        }
        Ok(None) // abandoned: the body failed or the upload was dropped
    });

    let fed: Result<()> = async {
        let mut received = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(Error::Body)?;
            received += chunk.len() as u64;
            if received > max_bytes {
                return Err(Error::TooLarge { what, limit: max_bytes });
            }
            if !chunk.is_empty() && feed.send(Feed::Chunk(chunk)).await.is_err() {
                return Ok(()); // the writer stopped; its error is reported below
            }
        }
        let _ = feed.send(Feed::Finish).await;
        Ok(())
    }
    .await;
    drop(feed);
    let written = writer.await.map_err(|e| Error::Backend(Box::new(e)))?;
    fed?;
    match written {
        Ok(Some(digests)) => Ok(Staged { file: doomed, digests }),
        Ok(None) => Err(Error::Backend("the body writer stopped early".into())),
        Err(e) => Err(Error::file("write", path, e)),
    }
}

/// Joins `sources` (paths of part files), in order, into a new fsynced file under `tmp/`.
/// A missing source is an `io::ErrorKind::NotFound` error, so the caller can tell a
/// concurrently aborted upload from a broken disk.
pub(crate) async fn concatenate(layout: &Layout, sources: Vec<PathBuf>) -> io::Result<Doomed> {
    let path = layout.temp_path();
    tokio::task::spawn_blocking(move || {
        let doomed = Doomed::new(path.clone());
        let mut out = fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
        for source in sources {
            let mut part = fs::File::open(&source)?;
            // File-to-file copies stay in the kernel (copy_file_range) where it can.
            io::copy(&mut part, &mut out)?;
        }
        out.sync_all()?;
        Ok(doomed)
    })
    .await
    .map_err(io::Error::other)?
}

/// Moves a staged file to `dest` (a content path, which nothing refers to yet) and makes the
/// move durable. The returned guard still removes the file if dropped: until the index refers
/// to it, it is garbage.
pub(crate) async fn publish(staged: Doomed, dest: PathBuf) -> Result<Doomed> {
    tokio::task::spawn_blocking(move || {
        let dir = dest.parent().map(Path::to_path_buf).unwrap_or_default();
        if !dir.is_dir() {
            fs::create_dir_all(&dir).map_err(|e| Error::file("create", &dir, e))?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
        }
        fs::rename(staged.path(), &dest).map_err(|e| Error::file("rename into", &dest, e))?;
        let _moved = staged.keep();
        let published = Doomed::new(dest);
        sync_dir(&dir)?;
        Ok(published)
    })
    .await
    .map_err(|e| Error::Backend(Box::new(e)))?
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::file("sync", dir, e))
}

/// Removes files that are no longer referenced. Failures are logged, not returned: the
/// commit they follow has happened, and the sweep at the next open retries.
pub(crate) async fn remove_garbage(paths: Vec<PathBuf>) {
    for path in paths {
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove an unreferenced bucket file")
            }
        }
    }
}

/// Opens `path` and streams the bytes of `range`. A file that is gone is an
/// `io::ErrorKind::NotFound` error (the version was replaced after the index was read).
pub(crate) async fn read_range(path: &Path, range: ServedRange, chunk_bytes: usize) -> io::Result<Body> {
    let mut file = tokio::fs::File::open(path).await?;
    if range.length == 0 {
        return Ok(Body::empty());
    }
    file.seek(io::SeekFrom::Start(range.offset)).await?;
    let stream = ReaderStream::with_capacity(file.take(range.length), chunk_bytes.max(1));
    Ok(Body::from_stream(ExactLength { inner: stream, remaining: range.length }))
}

/// A content stream that reports a file shorter than the index says as an error rather than
/// ending quietly with too few bytes.
struct ExactLength<S> {
    inner: S,
    remaining: u64,
}

impl<S: Stream<Item = io::Result<Bytes>> + Unpin> Stream for ExactLength<S> {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.remaining = self.remaining.saturating_sub(chunk.len() as u64);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) if self.remaining > 0 => {
                let missing = std::mem::take(&mut self.remaining);
                Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("object content ends {missing} bytes early"),
                ))))
            }
            other => other,
        }
    }
}

/// What the sweep at open removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Swept {
    pub temp_files: usize,
    pub version_files: usize,
    pub part_files: usize,
}

/// Removes every file a crash or an interrupted operation can leave behind: everything in
/// `tmp/`, and every content or part file the index does not refer to. Runs at open, while
/// the bucket's lock guarantees that no operation is in flight.
pub(crate) fn sweep(layout: &Layout, db: &Database) -> Result<Swept> {
    let mut swept = Swept::default();
    for entry in read_dir(&layout.tmp_dir())? {
        remove_entry(&entry)?;
        swept.temp_files += 1;
    }
    for shard in read_dir(&layout.objects_dir())? {
        if !shard.is_dir() {
            remove_entry(&shard)?;
            continue;
        }
        let files = read_dir(&shard)?;
        if files.is_empty() {
            continue;
        }
        let name = shard.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let referenced = db.read_blocking(move |conn| index::versions_in_shard(conn, &name))?;
        for file in files {
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if !referenced.contains(name) {
                remove_entry(&file)?;
                swept.version_files += 1;
            }
        }
    }
    let files = read_dir(&layout.parts_dir())?;
    if !files.is_empty() {
        let referenced = db.read_blocking(index::part_files)?;
        for file in files {
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if !referenced.contains(name) {
                remove_entry(&file)?;
                swept.part_files += 1;
            }
        }
    }
    Ok(swept)
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::file("read", dir, e)),
    };
    entries.map(|entry| entry.map(|e| e.path()).map_err(|e| Error::file("read", dir, e))).collect()
}

fn remove_entry(path: &Path) -> Result<()> {
    let removed = if path.is_dir() { fs::remove_dir_all(path) } else { fs::remove_file(path) };
    match removed {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::file("remove", path, e)),
    }
}
