//! Measures the keyword index on real source text: indexing time, peak resident memory, index size and
//! search latency.
//!
//! ```text
//! cargo run --release -p ledge-keyword --example keyword_bench -- [--corpus DIR] [--chunks N] [--index DIR]
//!     [--writer-mib N]
//! cargo run --release -p ledge-keyword --example keyword_bench -- --search-only --index DIR
//! ```
//!
//! The corpus defaults to `~/.cargo/registry/src` (the vendored sources of dependencies): every `.rs` file
//! under it, cut into 40-line chunks (symbol: the first `fn`, `struct`, `enum` or `trait` name in the
//! chunk), one organization, one repository per crate, a commit every 500 files — until `--chunks` (default
//! 100,000). Memory is read from `/proc/self/status`: `VmHWM` is the peak, `RssAnon` the heap and stacks,
//! `RssFile` the mapped index pages the kernel may drop. `--search-only` reopens an existing index in a
//! fresh process and only searches.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ledge_keyword::{ChunkDoc, KeywordIndex, KeywordOptions, KeywordQuery};

const LINES_PER_CHUNK: usize = 40;
const FILES_PER_COMMIT: usize = 500;

struct Args {
    corpus: PathBuf,
    chunks: usize,
    index: Option<PathBuf>,
    search_only: bool,
    options: KeywordOptions,
}

fn parse_args() -> Args {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    let mut args = Args {
        corpus: home.join(".cargo/registry/src"),
        chunks: 100_000,
        index: None,
        search_only: false,
        options: KeywordOptions::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--corpus" => args.corpus = it.next().expect("--corpus DIR").into(),
            "--chunks" => args.chunks = it.next().expect("--chunks N").parse().expect("a number"),
            "--index" => args.index = Some(it.next().expect("--index DIR").into()),
            "--search-only" => args.search_only = true,
            "--writer-mib" => {
                let mib: usize = it.next().expect("--writer-mib N").parse().expect("a number");
                args.options.writer_memory_bytes = mib << 20;
            }
            other => panic!("unknown argument {other:?}"),
        }
    }
    args
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn memory(label: &str) {
    println!(
        "{label:<28} VmHWM {:>4} MiB   VmRSS {:>4} MiB   RssAnon {:>4} MiB   RssFile {:>4} MiB",
        status_kib("VmHWM") / 1024,
        status_kib("VmRSS") / 1024,
        status_kib("RssAnon") / 1024,
        status_kib("RssFile") / 1024,
    );
}

/// Samples `RssAnon` and `RssFile` every 10 ms and keeps their peaks (in KiB).
fn start_peak_sampler() -> Arc<(AtomicU64, AtomicU64)> {
    let peaks = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let sampled = Arc::clone(&peaks);
    std::thread::spawn(move || {
        loop {
            sampled.0.fetch_max(status_kib("RssAnon"), Ordering::Relaxed);
            sampled.1.fetch_max(status_kib("RssFile"), Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    peaks
}

fn print_peaks(peaks: &(AtomicU64, AtomicU64)) {
    println!(
        "peaks (10 ms samples)        RssAnon {:>4} MiB   RssFile {:>4} MiB",
        peaks.0.load(Ordering::Relaxed) / 1024,
        peaks.1.load(Ordering::Relaxed) / 1024
    );
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| {
                    let meta = e.metadata().ok();
                    match meta {
                        Some(m) if m.is_dir() => dir_size(&e.path()),
                        Some(m) => m.len(),
                        None => 0,
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Every `.rs` file under `dir`, sorted (deterministic corpus).
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn first_symbol(text: &str) -> Option<String> {
    let mut words = text.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty());
    while let Some(word) = words.next() {
        if matches!(word, "fn" | "struct" | "enum" | "trait") {
            return words.next().map(str::to_owned);
        }
    }
    None
}

/// The chunks of one file: (repo, path, docs).
fn chunk_file(corpus: &Path, file: &Path) -> Option<(String, String, Vec<ChunkDoc>)> {
    let text = std::fs::read_to_string(file).ok()?;
    let relative = file.strip_prefix(corpus).ok()?;
    let mut components = relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned());
    let _registry = components.next()?;
    let repo = components.next()?;
    let path = components.collect::<Vec<_>>().join("/");
    let lines: Vec<&str> = text.lines().collect();
    let docs = lines
        .chunks(LINES_PER_CHUNK)
        .enumerate()
        .map(|(n, window)| {
            let text = window.join("\n");
            let start = (n * LINES_PER_CHUNK + 1) as u32;
            ChunkDoc {
                org: "bench".into(),
                repo: repo.clone(),
                commit: "0000000000000000000000000000000000000000".into(),
                path: path.clone(),
                language: "rust".into(),
                symbol: first_symbol(&text),
                symbols: Vec::new(),
                kind: "lines".into(),
                start_line: start,
                end_line: start + window.len() as u32 - 1,
                chunk_id: format!("{repo}/{path}#{n}"),
                text,
            }
        })
        .collect();
    Some((repo, path, docs))
}

fn queries(index_symbols: &[String]) -> Vec<String> {
    let mut queries: Vec<String> = [
        "parse json",
        "HashMap insert",
        "serialize",
        "fn new",
        "error handling",
        "read_to_string",
        "async fn poll",
        "impl Display for",
        "\"impl Iterator for\"",
        "unsafe pointer",
        "tokio spawn",
        "utf8 decode",
        "Arc Mutex lock",
        "connection timeout retry",
        "how does the parser handle escapes",
    ]
    .map(String::from)
    .to_vec();
    queries.extend(index_symbols.iter().step_by((index_symbols.len() / 185).max(1)).take(185).cloned());
    queries
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn search_bench(index: &KeywordIndex, symbols: &[String]) {
    let queries = queries(symbols);
    // One warm-up pass (page cache, lazily opened structures), then three measured passes.
    for q in &queries {
        index.search(&KeywordQuery::new("bench", q.as_str())).expect("search");
    }
    let mut times = Vec::new();
    let mut hits = 0;
    for _ in 0..3 {
        for q in &queries {
            let started = Instant::now();
            let found = index.search(&KeywordQuery::new("bench", q.as_str())).expect("search");
            times.push(started.elapsed());
            hits += found.len();
        }
    }
    times.sort();
    println!(
        "search: {} queries (limit 20, {} hits)  p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        times.len(),
        hits,
        percentile(&times, 0.50).as_secs_f64() * 1e3,
        percentile(&times, 0.95).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        times.last().map_or(0.0, |t| t.as_secs_f64() * 1e3),
    );
    memory("after searches");
}

fn main() {
    let args = parse_args();
    let temp;
    let dir = match &args.index {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::tempdir().expect("temp dir");
            temp.path().to_owned()
        }
    };
    memory("start");
    let peaks = start_peak_sampler();
    if args.search_only {
        let index = KeywordIndex::open(&dir, args.options.clone()).expect("open");
        memory("opened");
        let symbols: Vec<String> =
            ["new", "from_str", "poll_next", "deserialize_any", "HashMap", "write_all"]
                .map(String::from)
                .to_vec();
        println!(
            "documents: {}   index size: {:.1} MiB",
            index.num_docs(),
            dir_size(&dir) as f64 / 1048576.0
        );
        search_bench(&index, &symbols);
        print_peaks(&peaks);
        return;
    }

    let mut files = Vec::new();
    rust_files(&args.corpus, &mut files);
    println!("corpus: {} .rs files under {}", files.len(), args.corpus.display());
    let index = KeywordIndex::open(&dir, args.options.clone()).expect("open");
    let started = Instant::now();
    let (mut chunks, mut bytes, mut files_done) = (0usize, 0usize, 0usize);
    let mut symbols = Vec::new();
    for file in &files {
        if chunks >= args.chunks {
            break;
        }
        let Some((repo, path, docs)) = chunk_file(&args.corpus, file) else { continue };
        chunks += docs.len();
        bytes += docs.iter().map(|d| d.text.len()).sum::<usize>();
        if files_done % 20 == 0 {
            symbols.extend(docs.iter().find_map(|d| d.symbol.clone()));
        }
        index.replace_file("bench", &repo, &path, docs).expect("replace_file");
        files_done += 1;
        if files_done % FILES_PER_COMMIT == 0 {
            index.commit().expect("commit");
            if files_done % (4 * FILES_PER_COMMIT) == 0 {
                memory(&format!("committed {chunks} chunks"));
            }
        }
    }
    index.commit().expect("commit");
    let took = started.elapsed();
    println!(
        "indexed: {chunks} chunks, {files_done} files, {:.1} MiB of text in {:.1} s ({:.0} chunks/s)",
        bytes as f64 / 1048576.0,
        took.as_secs_f64(),
        chunks as f64 / took.as_secs_f64()
    );
    memory("after indexing");
    print_peaks(&peaks);
    println!("documents: {}   index size: {:.1} MiB", index.num_docs(), dir_size(&dir) as f64 / 1048576.0);
    search_bench(&index, &symbols);
    print_peaks(&peaks);
    println!("index dir: {}", dir.display());
}
