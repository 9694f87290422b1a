//! Search quality, CodeSearchNet style, over crates of ledge's own dependency tree (see `harness.rs` for
//! the method): MRR@10 and Recall@10 of keyword, semantic and hybrid search (RRF and weighted fusion),
//! printed as a Markdown table.
//!
//! usage: cargo run --release -p ledge-search --example eval [-- [--sweep] <crate>…]
//!        (default crates: regex-syntax serde_json http; needs `scripts/fetch-test-model`)
//!        `--sweep` adds hybrid search at other semantic weights (and RRF k), for tuning the fusion.

mod harness;

use std::time::Instant;

use ledge_search::{Fusion, FusionWeights, Mode, SearchOptions};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let sweep = args.iter().any(|a| a == "--sweep");
    args.retain(|a| a != "--sweep");
    let names: Vec<&str> = if args.is_empty() {
        vec!["regex-syntax", "serde_json", "http"]
    } else {
        args.iter().map(String::as_str).collect()
    };
    let crates = harness::crate_sources(&names);
    let corpus = harness::corpus(&crates, &[]);
    let base = std::env::temp_dir().join(format!("ledge-search-eval-{}", std::process::id()));
    let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/eval-models");
    let env = harness::open_env(&base, &models);
    let t = Instant::now();
    harness::index(&env, &corpus).await;
    let indexing = t.elapsed().as_secs_f64();
    let searcher = harness::searcher(&env, SearchOptions::default()).await;

    let described: Vec<String> = crates.iter().map(|c| format!("{} {}", c.name, c.version)).collect();
    println!(
        "corpus: {} ({} files, {} chunks, indexed in {indexing:.1} s); {} queries ({} documented functions \
         skipped: first sentence under 3 words)\n",
        described.join(", "),
        corpus.files,
        corpus.docs.len(),
        corpus.queries.len(),
        corpus.skipped,
    );
    for query in corpus.queries.iter().step_by((corpus.queries.len() / 3).max(1)).take(3) {
        println!("e.g. {:?} must find {} in {}", query.text, query.symbol, query.path);
    }
    println!();
    println!("| mode | MRR@10 | Recall@10 | mean ms/search |");
    println!("|---|---|---|---|");
    let runs = [
        ("keyword", Mode::Keyword, Fusion::Rrf),
        ("semantic", Mode::Semantic, Fusion::Rrf),
        ("hybrid (RRF)", Mode::Hybrid, Fusion::Rrf),
        ("hybrid (weighted)", Mode::Hybrid, Fusion::Weighted),
    ];
    for (name, mode, fusion) in runs {
        let s = harness::evaluate(&searcher, &corpus.queries, mode, fusion).await;
        println!("| {name} | {:.3} | {:.3} | {:.2} |", s.mrr, s.recall, s.mean_ms);
    }
    if sweep {
        let defaults = FusionWeights::default();
        println!("\n| fusion | semantic weight | RRF k | MRR@10 | Recall@10 |");
        println!("|---|---|---|---|---|");
        for fusion in [Fusion::Rrf, Fusion::Weighted] {
            let ks: &[f32] = if fusion == Fusion::Rrf { &[10.0, 60.0] } else { &[defaults.rrf_k] };
            for &rrf_k in ks {
                for semantic_weight in [0.2, 0.3, 0.4, 0.5, 0.6] {
                    let fusion_weights = FusionWeights { semantic_weight, rrf_k };
                    let options = SearchOptions { fusion: fusion_weights, ..SearchOptions::default() };
                    let searcher = harness::searcher(&env, options).await;
                    let s = harness::evaluate(&searcher, &corpus.queries, Mode::Hybrid, fusion).await;
                    let k = if fusion == Fusion::Rrf { format!("{rrf_k}") } else { "-".into() };
                    println!(
                        "| {} | {semantic_weight} | {k} | {:.3} | {:.3} |",
                        fusion.as_str(),
                        s.mrr,
                        s.recall
                    );
                }
            }
        }
    }
    env.close().await;
    let _ = std::fs::remove_dir_all(&base);
}
