//! Test helpers: chunk documents, indexes in temporary directories, real source files cut into chunks.

use std::path::Path;

use ledge_keyword::{ChunkDoc, KeywordHit, KeywordIndex, KeywordOptions, KeywordQuery};

/// A chunk of `org`/`repo`/`path` with the given id, symbol and text (Rust, lines 1..=n).
pub fn chunk(org: &str, repo: &str, path: &str, id: &str, symbol: Option<&str>, text: &str) -> ChunkDoc {
    ChunkDoc {
        org: org.into(),
        repo: repo.into(),
        commit: "0123456789abcdef0123456789abcdef01234567".into(),
        path: path.into(),
        language: "rust".into(),
        symbol: symbol.map(Into::into),
        symbols: symbol.into_iter().map(Into::into).collect(),
        kind: if symbol.is_some() { "function" } else { "code" }.into(),
        start_line: 1,
        end_line: u32::try_from(text.lines().count().max(1)).unwrap(),
        chunk_id: id.into(),
        text: text.into(),
    }
}

pub fn open(dir: &Path) -> KeywordIndex {
    KeywordIndex::open(dir, KeywordOptions::default()).unwrap()
}

/// Replaces each file with its chunks (grouped by path, in order) and commits.
pub fn index_files(index: &KeywordIndex, docs: Vec<ChunkDoc>) {
    let mut by_file: Vec<(String, String, String, Vec<ChunkDoc>)> = Vec::new();
    for doc in docs {
        match by_file.iter_mut().find(|f| (&f.0, &f.1, &f.2) == (&doc.org, &doc.repo, &doc.path)) {
            Some(file) => file.3.push(doc),
            None => by_file.push((doc.org.clone(), doc.repo.clone(), doc.path.clone(), vec![doc])),
        }
    }
    for (org, repo, path, docs) in by_file {
        index.replace_file(&org, &repo, &path, docs).unwrap();
    }
    index.commit().unwrap();
}

pub fn search(index: &KeywordIndex, org: &str, text: &str) -> Vec<KeywordHit> {
    index.search(&KeywordQuery::new(org, text)).unwrap()
}

/// The chunk ids of the hits, best first.
pub fn ids(hits: &[KeywordHit]) -> Vec<&str> {
    hits.iter().map(|h| h.doc.chunk_id.as_str()).collect()
}

/// The `.rs` files of this crate's `src/`, each cut into 30-line chunks, as documents of `org`/`repo`.
pub fn own_sources(org: &str, repo: &str) -> Vec<ChunkDoc> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: Vec<_> = std::fs::read_dir(&src).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let path = format!("src/{}", file.file_name().unwrap().to_str().unwrap());
        let lines: Vec<&str> = text.lines().collect();
        for (n, window) in lines.chunks(30).enumerate() {
            let start = u32::try_from(n * 30 + 1).unwrap();
            docs.push(ChunkDoc {
                start_line: start,
                end_line: start + u32::try_from(window.len()).unwrap() - 1,
                chunk_id: format!("{path}#{n}"),
                kind: "lines".into(),
                symbol: None,
                symbols: Vec::new(),
                ..chunk(org, repo, &path, "", None, &window.join("\n"))
            });
        }
    }
    docs
}
