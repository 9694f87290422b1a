//! Huge inputs: a 5 MB file is chunked in bounded memory and reasonable time. Memory is measured with a
//! counting allocator that tracks the bytes allocated *by the current thread*, so tests running in parallel
//! do not disturb each other. (tree-sitter's own C allocations are not counted; these inputs are over the
//! parse limit, so nothing is parsed.)
#![allow(unsafe_code)] // implementing `GlobalAlloc` is unsafe by definition

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use ledge_chunker::{Chunker, LineWindowReason, Strategy};

struct CountingAllocator;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn record(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            record(layout.size() as isize);
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            record(layout.size() as isize);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        unsafe { System.dealloc(pointer, layout) };
        record(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            record(new_size as isize - layout.size() as isize);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Runs `f` and returns its result with the peak of bytes it held at once on this thread.
fn peak_bytes<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(start));
    let result = f();
    let peak = PEAK.with(Cell::get);
    (result, (peak - start).max(0) as usize)
}

const FIVE_MB: usize = 5 * 1024 * 1024;
/// Generous for an unoptimised test build on a shared 2-core machine; a release build is far faster.
const TIME_LIMIT: Duration = Duration::from_secs(30);

fn generated_source(size: usize) -> String {
    let mut source = String::with_capacity(size + 200);
    let mut i = 0;
    while source.len() < size {
        source.push_str(&format!(
            "/// Handles request {i}.\npub fn handle_{i}(request: &Request) -> Response {{\n    let id = request.id + {i};\n    Response::ok(id)\n}}\n\n"
        ));
        i += 1;
    }
    source
}

#[test]
fn a_5_mb_file_streams_in_bounded_memory() {
    let source = generated_source(FIVE_MB);
    let chunker = Chunker::default();
    let started = Instant::now();
    let ((count, covered_to), peak) = peak_bytes(|| {
        let stream =
            chunker.stream("generated.rs", source.as_bytes(), Some(ledge_chunker::Language::Rust)).unwrap();
        assert_eq!(stream.strategy(), Strategy::LineWindows(LineWindowReason::TooLargeToParse));
        let mut count = 0;
        let mut covered_to = 0;
        for chunk in stream {
            assert!(chunk.start_byte <= covered_to, "no gap before byte {}", chunk.start_byte);
            covered_to = chunk.end_byte;
            count += 1;
        }
        (count, covered_to)
    });
    assert_eq!(covered_to, source.len());
    assert!(count > FIVE_MB / 4096, "{count} chunks");
    assert!(peak < 64 * 1024, "streaming held {peak} bytes at once");
    assert!(started.elapsed() < TIME_LIMIT, "took {:?}", started.elapsed());
}

#[test]
fn collecting_a_5_mb_file_costs_about_its_chunks() {
    let source = generated_source(FIVE_MB);
    let chunker = Chunker::default();
    let started = Instant::now();
    let (file, peak) = peak_bytes(|| chunker.chunk("generated.rs", source.as_bytes()).unwrap());
    let text_bytes: usize = file.chunks.iter().map(|c| c.text.len()).sum();
    // Windows overlap by 10 of 60 lines: about a fifth more text than the file.
    assert!(text_bytes < source.len() * 13 / 10, "{text_bytes} bytes of chunk text");
    assert!(peak < source.len() * 2, "held {peak} bytes at once for a {} byte file", source.len());
    assert!(started.elapsed() < TIME_LIMIT, "took {:?}", started.elapsed());
}

#[test]
fn a_5_mb_single_line_is_cut_in_linear_time_and_bounded_memory() {
    let source = "x=1;".repeat(FIVE_MB / 4);
    let chunker = Chunker::default();
    let started = Instant::now();
    let (pieces, peak) = peak_bytes(|| {
        chunker
            .stream("bundle.min.js", source.as_bytes(), None)
            .unwrap()
            .map(|c| c.text.len())
            .collect::<Vec<_>>()
    });
    assert_eq!(pieces.iter().sum::<usize>(), source.len(), "pieces of one line do not overlap");
    assert!(pieces.iter().all(|&len| len <= 4096));
    assert!(peak < pieces.len() * std::mem::size_of::<usize>() * 2 + 64 * 1024, "held {peak} bytes");
    assert!(started.elapsed() < TIME_LIMIT, "took {:?}", started.elapsed());
}

#[test]
fn invalid_utf8_costs_one_repaired_copy() {
    let mut source = generated_source(FIVE_MB).into_bytes();
    source[100] = 0xff;
    let chunker = Chunker::default();
    let (lossy, peak) = peak_bytes(|| {
        let stream = chunker.stream("latin1.rs", &source, Some(ledge_chunker::Language::Rust)).unwrap();
        let lossy = stream.lossy_utf8();
        stream.for_each(drop);
        lossy
    });
    assert!(lossy);
    assert!(peak < source.len() + 128 * 1024, "held {peak} bytes for a {} byte file", source.len());
}
