//! Giving back the resident pages of the index's memory-mapped files.
//!
//! tantivy maps every segment file; the pages a search or a merge touches stay mapped into the process —
//! and count in its resident memory — until the kernel needs the memory back, which on a machine with free
//! memory is never. Over 100,000 chunks, a few dozen searches left ~40 MB of term dictionaries and postings
//! resident. [`Releaser`] tells the kernel every second that the process no longer needs those pages
//! (`madvise(MADV_DONTNEED)`): they leave the process's resident set but stay in the page cache, so the
//! next search that needs one maps it again with a minor fault, without reading the disk.
//!
//! Only read-only mappings of files under the index's directory are advised (those of files deleted by a
//! merge included, until tantivy drops them). For such a mapping the advice cannot change what a reader
//! sees: the page is the file's, and a concurrent read simply maps it again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Releases the index's mapped pages every `period` on a thread of its own, until dropped.
#[derive(Debug)]
pub(crate) struct Releaser {
    stop: Arc<AtomicBool>,
}

impl Releaser {
    pub(crate) fn start(dir: &Path, period: Duration) -> std::io::Result<Releaser> {
        let dir = dir.canonicalize()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::Builder::new().name("keyword-release".into()).stack_size(64 * 1024).spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                std::thread::sleep(period);
                if let Err(error) = release_mapped_pages(&dir) {
                    tracing::warn!(dir = %dir.display(), %error, "cannot release the keyword index's mapped pages");
                    return;
                }
            }
        })?;
        Ok(Releaser { stop })
    }
}

impl Drop for Releaser {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Advises away the pages of every read-only mapping of a file under `dir` (canonical); returns the bytes
/// of the mappings advised.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub(crate) fn release_mapped_pages(dir: &Path) -> std::io::Result<usize> {
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let mut released = 0;
    for (start, end) in mappings_under(&maps, dir) {
        // SAFETY: [start, end) is a whole mapping of this process, read from /proc/self/maps, of a
        // file opened read-only: MADV_DONTNEED only drops its page-table entries, and the next access
        // maps the file's page again, unchanged. A mapping unmapped meanwhile makes madvise fail with
        // ENOMEM, which is ignored.
        let result = unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        if result == 0 {
            released += end - start;
        }
    }
    Ok(released)
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn release_mapped_pages(_dir: &Path) -> std::io::Result<usize> {
    Ok(0)
}

/// The (start, end) of the read-only mappings of files under `dir` in a `/proc/<pid>/maps` text.
fn mappings_under(maps: &str, dir: &Path) -> Vec<(usize, usize)> {
    let mut prefix = PathBuf::from(dir).into_os_string().into_string().unwrap_or_default();
    prefix.push('/');
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.splitn(6, ' ');
            let range = fields.next()?;
            let perms = fields.next()?;
            let path = fields.nth(3)?.trim_start();
            if !path.starts_with(&prefix) || perms.as_bytes().get(1) != Some(&b'-') {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            Some((usize::from_str_radix(start, 16).ok()?, usize::from_str_radix(end, 16).ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_read_only_mappings_of_files_under_the_directory_are_chosen() {
        let maps = "\
7f0000000000-7f0000001000 r--s 00000000 fd:01 1 /data/keyword/a.term
7f0000002000-7f0000004000 r--s 00000000 fd:01 2 /data/keyword/b.idx (deleted)
7f0000005000-7f0000006000 rw-s 00000000 fd:01 3 /data/keyword/meta.json
7f0000007000-7f0000008000 r--s 00000000 fd:01 4 /data/keyword-old/c.term
7f0000009000-7f000000a000 r-xp 00000000 fd:01 5 /usr/bin/ledge
7f000000b000-7f000000c000 rw-p 00000000 00:00 0 
";
        assert_eq!(
            mappings_under(maps, Path::new("/data/keyword")),
            vec![(0x7f0000000000, 0x7f0000001000), (0x7f0000002000, 0x7f0000004000)]
        );
    }
}
