//! Integration tests of ledge-bucket, one test binary: the conformance suite on the embedded
//! driver (`conformance`), and what only the embedded driver promises (`local`).
//!
//! The binary counts its heap allocations (a `#[global_allocator]` wrapping the system one),
//! so the streaming case can assert that a 100 MB object never sits in memory.

mod conformance;
mod local;

use std::alloc::{GlobalAlloc, Layout, System};
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};

use ledge_bucket::conformance::HeapProbe;
use ledge_bucket::{Limits, LocalBucket, LocalOptions};
use tempfile::TempDir;

/// The system allocator, counting the bytes allocated now and at the peak.
struct CountingAllocator {
    current: AtomicUsize,
    peak: AtomicUsize,
}

impl CountingAllocator {
    fn grew(&self, bytes: usize) {
        let now = self.current.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    fn shrank(&self, bytes: usize) {
        self.current.fetch_sub(bytes, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`; only counters are updated around it.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            self.grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            self.grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        self.shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            self.grew(new_size);
            self.shrank(layout.size());
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator =
    CountingAllocator { current: AtomicUsize::new(0), peak: AtomicUsize::new(0) };

/// The test binary's heap, for the conformance suite's streaming case.
pub struct Heap;

pub static HEAP: Heap = Heap;

impl HeapProbe for Heap {
    fn current(&self) -> usize {
        ALLOCATOR.current.load(Ordering::Relaxed)
    }

    fn peak(&self) -> usize {
        ALLOCATOR.peak.load(Ordering::Relaxed)
    }

    fn reset_peak(&self) {
        ALLOCATOR.peak.store(self.current(), Ordering::Relaxed);
    }
}

/// Options for test buckets: the contract's limits, but with a small minimum part size so
/// multipart cases stay small.
pub fn test_options() -> LocalOptions {
    LocalOptions {
        limits: Limits { min_part_bytes: 32 * 1024, ..Limits::default() },
        ..LocalOptions::default()
    }
}

/// A local bucket in a temporary directory that lives as long as the bucket.
pub struct TempBucket {
    pub bucket: LocalBucket,
    pub dir: TempDir,
}

impl Deref for TempBucket {
    type Target = LocalBucket;

    fn deref(&self) -> &LocalBucket {
        &self.bucket
    }
}

pub async fn temp_bucket() -> TempBucket {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let bucket =
        LocalBucket::open(dir.path().join("bucket"), test_options()).await.expect("the bucket opens");
    TempBucket { bucket, dir }
}
