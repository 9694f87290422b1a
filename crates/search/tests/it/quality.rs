//! Search quality on a small pinned corpus (serde_json at the version Cargo.lock pins, CodeSearchNet style,
//! see `examples/eval/harness.rs`): hybrid search must rank the documented functions better than keyword
//! search alone. The full evaluation (more crates, both fusions, a weight sweep) is
//! `cargo run --release -p ledge-search --example eval`.

use ledge_search::{Fusion, Mode, SearchOptions};

use crate::harness;

#[test]
fn doc_comments_are_removed_and_the_query_is_their_first_sentence() {
    let code = "//! Module docs.\n/// Adds two numbers. Overflow wraps.\n///\n/// More.\n#[inline]\n\
                pub fn add(a: u8, b: u8) -> u8 {\n    // a plain comment stays\n    a.wrapping_add(b)\n}\n\
                /** Block doc. */\nfn f() {}\n/**\n * Long block doc.\n */\nfn g() {}\n";
    assert_eq!(
        harness::strip_doc_comments(code),
        "#[inline]\npub fn add(a: u8, b: u8) -> u8 {\n    // a plain comment stays\n    a.wrapping_add(b)\n}\n\
         fn f() {}\nfn g() {}\n"
    );
    assert_eq!(
        harness::first_sentence("Adds two numbers. Overflow wraps.").as_deref(),
        Some("Adds two numbers")
    );
    assert_eq!(
        harness::first_sentence("Returns `true` if the\nclass is empty (e.g. `[a&&b]`).\n\nMore.").as_deref(),
        Some("Returns true if the class is empty e g"),
        "a sentence ends at the first period and space"
    );
    assert_eq!(harness::first_sentence("See [`Foo`]."), None, "under 3 words");
}

#[tokio::test]
async fn hybrid_search_ranks_documented_functions_better_than_keyword_search() {
    let crates = harness::crate_sources(&["serde_json"]);
    let corpus = harness::corpus(&crates, &[]);
    assert!(corpus.queries.len() >= 200, "{} queries", corpus.queries.len());
    let base = tempfile::tempdir().unwrap();
    let models = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ledge-search-quality-models");
    let env = harness::open_env(base.path(), &models);
    harness::index(&env, &corpus).await;
    let searcher = harness::searcher(&env, SearchOptions::default()).await;
    let keyword = harness::evaluate(&searcher, &corpus.queries, Mode::Keyword, Fusion::default()).await;
    let semantic = harness::evaluate(&searcher, &corpus.queries, Mode::Semantic, Fusion::default()).await;
    let hybrid = harness::evaluate(&searcher, &corpus.queries, Mode::Hybrid, Fusion::default()).await;
    let report = format!("keyword {keyword:?}\nsemantic {semantic:?}\nhybrid {hybrid:?}");
    eprintln!("{report}");
    assert!(hybrid.mrr > keyword.mrr, "{report}");
    assert!(hybrid.recall >= keyword.recall, "{report}");
    env.close().await;
}
