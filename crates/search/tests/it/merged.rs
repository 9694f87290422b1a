//! Regression: the chunker merges small neighbouring definitions into one chunk; each of their names must
//! still find it (`sym:`, symbol mode, the exact-name boost), not only the first.

use ledge_chunker::{ChunkKind, Chunker};
use ledge_search::{Mode, SearchOptions, SearchRequest};

use crate::harness;

const OPS_RS: &str = "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n\n\
                      pub fn subtract(a: i32, b: i32) -> i32 {\n    a - b\n}\n\n\
                      pub fn multiply(a: i32, b: i32) -> i32 {\n    a * b\n}\n";

const CALLS_RS: &str = "pub fn run() -> i32 {\n    subtract(multiply(2, 3), add(1, 1))\n}\n";

#[tokio::test]
async fn every_definition_of_a_merged_chunk_is_found_by_its_name() {
    let chunked = Chunker::default().chunk("src/ops.rs", OPS_RS.as_bytes()).unwrap();
    assert_eq!(chunked.chunks.len(), 1, "the default chunker merges the three small functions");
    assert_eq!(chunked.chunks[0].kind, ChunkKind::Definitions);

    let mut corpus = harness::Corpus::default();
    let chunker = Chunker::default();
    harness::add_file(&mut corpus, &chunker, "acme/ops", "src/ops.rs", OPS_RS);
    harness::add_file(&mut corpus, &chunker, "acme/ops", "src/calls.rs", CALLS_RS);
    let base = tempfile::tempdir().unwrap();
    let models = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ledge-search-quality-models");
    let env = harness::open_env(base.path(), &models);
    harness::index(&env, &corpus).await;
    let searcher = harness::searcher(&env, SearchOptions::default()).await;
    let search = |q: &str, mode: Option<Mode>| {
        let request = SearchRequest { mode, ..SearchRequest::new(harness::ORG, q) };
        let searcher = &searcher;
        async move { searcher.search(&request).await.unwrap() }
    };
    for name in ["add", "subtract", "multiply"] {
        let by_filter = search(&format!("sym:{name}"), None).await;
        assert_eq!(by_filter.mode, Mode::Symbol);
        assert_eq!(by_filter.hits.len(), 1, "sym:{name}: {:?}", by_filter.hits);
        let hit = &by_filter.hits[0];
        assert_eq!((hit.path.as_str(), hit.symbol.as_deref()), ("src/ops.rs", None));
        assert_eq!(hit.symbols, ["add", "subtract", "multiply"]);
        for mode in [Mode::Hybrid, Mode::Keyword] {
            let results = search(name, Some(mode)).await;
            assert_eq!(results.hits[0].path, "src/ops.rs", "{mode} {name}: the definition before the call");
        }
    }
    env.close().await;
}
