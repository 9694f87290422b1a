//! [`StoresByPread`]: the directory the index's reader opens — tantivy's `MmapDirectory`, except
//! that document stores (`*.store`, the chunk texts), postings (`*.idx`) and positions (`*.pos`) are
//! read with `pread` into short-lived buffers ([`PREAD_EXTENSIONS`]).
//!
//! Why: a search reads the stored fields of its candidates, a block of the store each. Through
//! `mmap`, every block ever read stays mapped into the process: after a few dozen queries over
//! 100,000 chunks the stores alone were 25 MB of the serving process's resident memory, and they
//! grow towards their full size. Read by `pread`, a block is a short-lived buffer (the reader's
//! block cache keeps the last few), and the kernel's page cache still serves repeated reads.
//! Postings and positions likewise: a search reads each of its terms' lists once, and through
//! `mmap` the kernel maps 64 KiB around every page touched (fault-around), so a few searches left
//! most of the postings resident (18 MB of 22). Term dictionaries stay mapped: tantivy reads them
//! whole when it opens a segment, a copy would be as large. The
//! writer keeps the plain `MmapDirectory`: merges read whole stores, and a `pread` would copy each
//! into one allocation.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tantivy::HasLen;
use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    Directory, DirectoryLock, FileHandle, Lock, MmapDirectory, OwnedBytes, WatchCallback, WatchHandle,
    WritePtr,
};

/// The files the reader reads with `pread`.
pub(crate) const PREAD_EXTENSIONS: [&str; 3] = ["store", "idx", "pos"];

#[derive(Debug, Clone)]
pub(crate) struct StoresByPread {
    inner: MmapDirectory,
    root: PathBuf,
}

impl StoresByPread {
    pub(crate) fn new(inner: MmapDirectory, root: &Path) -> StoresByPread {
        StoresByPread { inner, root: root.to_owned() }
    }
}

impl Directory for StoresByPread {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        if path.extension().is_none_or(|extension| !PREAD_EXTENSIONS.iter().any(|e| extension == *e)) {
            return self.inner.get_file_handle(path);
        }
        let file = File::open(self.root.join(path)).map_err(|error| match error.kind() {
            io::ErrorKind::NotFound => OpenReadError::FileDoesNotExist(path.to_owned()),
            _ => OpenReadError::wrap_io_error(error, path.to_owned()),
        })?;
        let len =
            file.metadata().map_err(|error| OpenReadError::wrap_io_error(error, path.to_owned()))?.len();
        Ok(Arc::new(PreadFile { file, len: len as usize }))
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.inner.delete(path)
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.inner.exists(path)
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        self.inner.open_write(path)
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.inner.atomic_read(path)
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.inner.atomic_write(path, data)
    }

    fn sync_directory(&self) -> io::Result<()> {
        self.inner.sync_directory()
    }

    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        self.inner.acquire_lock(lock)
    }

    fn watch(&self, callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.inner.watch(callback)
    }
}

/// A file read with `pread`: every read is a buffer of its own.
#[derive(Debug)]
struct PreadFile {
    file: File,
    len: usize,
}

impl HasLen for PreadFile {
    fn len(&self) -> usize {
        self.len
    }
}

impl FileHandle for PreadFile {
    fn read_bytes(&self, range: Range<usize>) -> io::Result<OwnedBytes> {
        if range.start > range.end || range.end > self.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("read of {range:?} outside a file of {} bytes", self.len),
            ));
        }
        let mut buffer = vec![0; range.end - range.start];
        self.file.read_exact_at(&mut buffer, range.start as u64)?;
        Ok(OwnedBytes::new(buffer))
    }
}
