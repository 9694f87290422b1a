//! In-process profile of one search: times each step of a hybrid search (embedding the query, the vector
//! query, the keyword query, reading vector hits back, the whole search) over an indexed data directory.
//!
//! usage: cargo run --release -p ledge-search --example search_profile -- <data-dir> <org> [query…]

use std::sync::Arc;
use std::time::Instant;

use ledge_keyword::KeywordQuery;
use ledge_search::{Mode, SearchOptions, SearchRequest, Searcher};
use ledge_vector::QueryOptions;

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (data, org) = (args.first().expect("data dir"), args.get(1).expect("org"));
    let queries: Vec<String> = if args.len() > 2 {
        args[2..].to_vec()
    } else {
        vec!["parse json".into(), "read file to string".into()]
    };
    let options = ledge_config::LoadOptions {
        data_dir: Some(data.into()),
        working_dir: Some(data.into()),
        ..Default::default()
    };
    let env = ledge_env::Env::open(Arc::new(ledge_config::load(options).unwrap())).unwrap();
    let t = Instant::now();
    let keyword = env.keyword_index().await.unwrap();
    let vectors = env.vector_index().await.unwrap();
    let embedder = env.embedder().await.unwrap().expect("a model");
    println!("open: {:.1} ms", ms(t));
    let searcher =
        Searcher::new(keyword.clone(), vectors.clone(), Some(embedder.clone()), SearchOptions::default());
    for round in 0..3 {
        for q in &queries {
            let t = Instant::now();
            let values = embedder.embed(std::slice::from_ref(q)).await.unwrap().remove(0);
            let embed = ms(t);
            let t = Instant::now();
            let options =
                QueryOptions { top_k: 100, namespace: Some(org.clone()), ..QueryOptions::default() };
            let result = vectors.query(&values, options).await.unwrap();
            let vector = ms(t);
            let t = Instant::now();
            let mut kq = KeywordQuery::new(org.clone(), q.clone());
            kq.limit = 50;
            let hits = keyword.search(&kq).unwrap();
            let kw = ms(t);
            let t = Instant::now();
            let ids: Vec<String> = result.matches.iter().map(|m| m.id.clone()).collect();
            let chunks = keyword.chunks(&KeywordQuery::new(org.clone(), ""), &ids).unwrap();
            let read_back = ms(t);
            let t = Instant::now();
            let results = searcher
                .search(&SearchRequest {
                    mode: Some(Mode::Hybrid),
                    ..SearchRequest::new(org.clone(), q.clone())
                })
                .await
                .unwrap();
            let total = ms(t);
            println!(
                "round {round} {q:?}: embed {embed:.2} ms, vector top-100 {vector:.2} ms ({} matches), keyword top-50 \
                 {kw:.2} ms ({} hits), read back {read_back:.2} ms ({} chunks), hybrid search {total:.2} ms ({} hits)",
                result.matches.len(),
                hits.len(),
                chunks.len(),
                results.hits.len()
            );
        }
    }
}
