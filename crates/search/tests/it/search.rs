//! Every mode finds what it should in a real indexed corpus; filters, negation, pagination, snippets; no
//! search ever leaves its organization; bad input is refused naming the field.

use ledge_search::{Fusion, Mode, SearchRequest};

use crate::support::{Corpus, found, q, symbols};

fn mode(mut request: SearchRequest, mode: Mode) -> SearchRequest {
    request.mode = Some(mode);
    request
}

#[tokio::test]
async fn keyword_mode_finds_identifiers_by_their_parts_with_highlighted_snippets() {
    let corpus = Corpus::open(true).await;
    let results = corpus.search(mode(q("acme", "parseJson"), Mode::Keyword)).await;
    assert_eq!(results.mode, Mode::Keyword);
    assert!(results.notices.is_empty(), "{:?}", results.notices);
    let top = &results.hits[0];
    assert_eq!(
        (top.repo.as_str(), top.path.as_str(), top.symbol.as_deref()),
        ("acme/widgets", "src/lib.rs", Some("parse_json"))
    );
    assert_eq!(top.language, "rust");
    assert!(top.start_line <= 9 && top.end_line >= 10, "{top:?}");
    assert_eq!(top.commit.len(), 40);
    let snippet = &top.snippet;
    assert!(snippet.text.contains("pub fn parse_json(input: &str)"), "{snippet:?}");
    let marked: Vec<&str> = snippet.highlights.iter().map(|&[a, b]| &snippet.text[a..b]).collect();
    assert!(marked.iter().any(|m| m.eq_ignore_ascii_case("parse")), "{marked:?}");
    assert!(marked.iter().any(|m| m.eq_ignore_ascii_case("json")), "{marked:?}");
}

#[tokio::test]
async fn semantic_mode_finds_code_by_meaning() {
    let corpus = Corpus::open(true).await;
    // None of these words is in the greeting function, nor anywhere in the corpus' identifiers.
    let results = corpus.search(mode(q("acme", "welcome someone hello"), Mode::Semantic)).await;
    assert_eq!(results.mode, Mode::Semantic);
    assert_eq!(symbols(&results).first().map(String::as_str), Some("greet"), "{:?}", found(&results));
    assert!(results.hits.iter().all(|h| h.repo.starts_with("acme/")));
    let checksum = corpus.search(mode(q("acme", "crc32 checksum of bytes"), Mode::Semantic)).await;
    assert_eq!(symbols(&checksum).first().map(String::as_str), Some("compute_checksum"));
}

#[tokio::test]
async fn hybrid_is_the_default_and_fuses_both_rankings() {
    let corpus = Corpus::open(true).await;
    for fusion in [Fusion::Rrf, Fusion::Weighted] {
        let request = SearchRequest { fusion: Some(fusion), ..q("acme", "parse http request") };
        let results = corpus.search(request).await;
        assert_eq!(results.mode, Mode::Hybrid);
        assert!(results.notices.is_empty());
        assert_eq!(symbols(&results)[0], "parse_http_request", "{fusion:?}: {:?}", found(&results));
    }
    // An exact symbol name puts its definition first.
    let results = corpus.search(q("acme", "Widget")).await;
    assert_eq!(symbols(&results)[0], "Widget", "{:?}", found(&results));
}

#[tokio::test]
async fn without_a_model_search_is_keyword_only_and_says_so() {
    let corpus = Corpus::open(false).await;
    for asked in [Mode::Hybrid, Mode::Semantic] {
        let results = corpus.search(mode(q("acme", "parse json"), asked)).await;
        assert_eq!(results.mode, Mode::Keyword);
        assert_eq!(results.notices, [ledge_embed::NO_MODEL_MESSAGE]);
        assert_eq!(symbols(&results)[0], "parse_json");
    }
    let results = corpus.search(mode(q("acme", "parse json"), Mode::Keyword)).await;
    assert!(results.notices.is_empty(), "asking for keyword mode needs no notice");
}

#[tokio::test]
async fn regex_mode_matches_chunk_texts_and_highlights_the_matches() {
    let corpus = Corpus::open(true).await;
    let results = corpus.search(q("acme", r"mode:regex fn\s+parse_\w+\(")).await;
    assert_eq!(results.mode, Mode::Regex);
    let mut names = symbols(&results);
    names.sort();
    assert_eq!(names, ["parse_flags", "parse_http_request", "parse_json"]);
    for hit in &results.hits {
        let [a, b] = hit.snippet.highlights[0];
        assert!(hit.snippet.text[a..b].starts_with("fn parse_"), "{hit:?}");
    }
    // Literals prefilter through the keyword index, and filters apply.
    let results =
        corpus.search(mode(q("acme", r#"lang:python return "Hello, " \+ name"#), Mode::Regex)).await;
    assert_eq!(symbols(&results), ["greet"]);
    // No literal at all: a bounded scan of the organization's chunks.
    let results = corpus.search(mode(q("acme", r"0x[0-9A-F]{8}"), Mode::Regex)).await;
    assert_eq!(symbols(&results), ["compute_checksum"]);
    // Case-insensitive patterns work (and cannot prefilter).
    let results = corpus.search(mode(q("acme", r"(?i)HTTPSERVER"), Mode::Regex)).await;
    assert!(symbols(&results).contains(&"HttpServer".to_owned()), "{:?}", found(&results));
}

#[tokio::test]
async fn symbol_mode_ranks_exact_names_before_prefixes() {
    let corpus = Corpus::open(true).await;
    let results = corpus.search(mode(q("acme", "parse_"), Mode::Symbol)).await;
    let mut names = symbols(&results);
    names.sort();
    assert_eq!(names, ["parse_flags", "parse_http_request", "parse_json"]);
    let results = corpus.search(mode(q("acme", "widget"), Mode::Symbol)).await;
    assert_eq!(symbols(&results)[0], "Widget");
    let results = corpus.search(q("acme", "sym:add")).await;
    assert_eq!((results.mode, symbols(&results)), (Mode::Symbol, vec!["add_numbers".to_owned()]));
}

#[tokio::test]
async fn filters_narrow_every_mode() {
    let corpus = Corpus::open(true).await;
    for m in [Mode::Hybrid, Mode::Keyword, Mode::Semantic] {
        let results = corpus.search(mode(q("acme", "parse lang:python"), m)).await;
        assert!(results.hits.iter().all(|h| h.language == "python"), "{m}: {:?}", found(&results));
        let results = corpus.search(mode(q("acme", "parse repo:acme/tools"), m)).await;
        assert!(!results.hits.is_empty(), "{m}");
        assert!(results.hits.iter().all(|h| h.repo == "acme/tools"), "{m}: {:?}", found(&results));
        let results = corpus.search(mode(q("acme", "widget path:tests/"), m)).await;
        assert!(!results.hits.is_empty(), "{m}");
        assert!(results.hits.iter().all(|h| h.path.starts_with("tests/")), "{m}: {:?}", found(&results));
        let results = corpus.search(mode(q("acme", "parse sym:parse_j"), m)).await;
        assert_eq!(symbols(&results), ["parse_json"], "{m}");
    }
    // Request parameters add to the query's filters.
    let request = SearchRequest {
        repos: vec!["acme/tools".into()],
        languages: vec!["rust".into()],
        ..q("acme", "parse")
    };
    let results = corpus.search(mode(request, Mode::Keyword)).await;
    assert_eq!(symbols(&results), ["parse_flags"]);
}

#[tokio::test]
async fn negation_leaves_chunks_out() {
    let corpus = Corpus::open(true).await;
    for m in [Mode::Hybrid, Mode::Keyword, Mode::Semantic] {
        let all = symbols(&corpus.search(mode(q("acme", "parse"), m)).await);
        assert!(all.contains(&"parse_json".to_owned()), "{m}: {all:?}");
        let without = symbols(&corpus.search(mode(q("acme", "parse -json"), m)).await);
        assert!(!without.contains(&"parse_json".to_owned()), "{m}: {without:?}");
        let without = symbols(&corpus.search(mode(q("acme", r#"parse -"request line""#), m)).await);
        assert!(!without.contains(&"parse_http_request".to_owned()), "{m}: {without:?}");
        assert!(without.contains(&"parse_json".to_owned()), "{m}: {without:?}");
    }
}

#[tokio::test]
async fn no_search_leaves_the_organization() {
    let corpus = Corpus::open(true).await;
    let secret = corpus.search(mode(q("globex", "GLOBEX_SECRET_TOKEN"), Mode::Keyword)).await;
    assert_eq!(symbols(&secret), ["parse_json_secrets"], "the secret is findable by its own org");
    let requests = [
        q("acme", "GLOBEX_SECRET_TOKEN"),
        q("acme", "parse json secrets"),
        q("acme", "secrets repo:globex/secrets"),
        q("acme", "sym:parse_json_secrets"),
        q("acme", "mode:regex GLOBEX_SECRET"),
        q("acme", "mode:semantic secrets only globex may ever see"),
        q("initech", "parse json"),
    ];
    for request in requests {
        let results = corpus.search(request.clone()).await;
        assert!(
            results.hits.iter().all(|h| h.repo.starts_with("acme/") && request.org == "acme"),
            "{request:?}: {:?}",
            results.hits
        );
        assert!(results.hits.iter().all(|h| !h.snippet.text.contains("GLOBEX")), "{request:?}");
    }
    let other_repo = corpus.search(q("acme", "secrets repo:globex/secrets")).await;
    assert!(other_repo.hits.is_empty(), "a repo of another org is empty, never its data");
}

#[tokio::test]
async fn cursors_page_through_the_results_of_their_own_query() {
    let corpus = Corpus::open(true).await;
    let all =
        corpus.search(SearchRequest { limit: Some(100), ..mode(q("acme", "pub fn"), Mode::Keyword) }).await;
    assert!(all.hits.len() >= 4, "{:?}", found(&all));
    assert!(all.next_cursor.is_none());
    let mut paged = Vec::new();
    let mut cursor = None;
    loop {
        let request = SearchRequest { limit: Some(2), cursor, ..mode(q("acme", "pub fn"), Mode::Keyword) };
        let page = corpus.search(request).await;
        assert!(page.hits.len() <= 2);
        paged.extend(found(&page));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(paged, found(&all), "pages add up to the whole list");
    let first =
        corpus.search(SearchRequest { limit: Some(1), ..mode(q("acme", "pub fn"), Mode::Keyword) }).await;
    let cursor = first.next_cursor.expect("a next page");
    let other = SearchRequest { cursor: Some(cursor), ..mode(q("acme", "widget"), Mode::Keyword) };
    let error = corpus.searcher.search(&other).await.unwrap_err();
    assert_eq!(error.field(), Some("cursor"));
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field() {
    let corpus = Corpus::open(true).await;
    let cases: Vec<(SearchRequest, &str, &str)> = vec![
        (q("acme", ""), "q", "empty"),
        (q("acme", &"parse ".repeat(2000)), "q", "over the limit"),
        (q("acme", "foo:bar parse"), "q", "foo:"),
        (q("acme", "mode:regex fn (unclosed"), "q", "regular expression"),
        (q("acme", r"mode:regex \w{1000}{1000}"), "q", "bytes"),
        (SearchRequest { limit: Some(1000), ..q("acme", "parse") }, "limit", "1..=100"),
        (SearchRequest { mode: Some(Mode::Keyword), ..q("acme", "mode:regex x") }, "mode", "conflicts"),
        (SearchRequest { repos: vec!["no-slash".into()], ..q("acme", "parse") }, "repo", "owner/name"),
        (SearchRequest { cursor: Some("AAAA".into()), ..q("acme", "parse") }, "cursor", "cursor"),
        (SearchRequest::new("", "parse"), "org", "required"),
    ];
    for (request, field, words) in cases {
        let error = corpus.searcher.search(&request).await.unwrap_err();
        assert_eq!(error.field(), Some(field), "{request:?}: {error}");
        assert!(error.to_string().contains(words), "{request:?}: {error}");
    }
}

#[tokio::test]
async fn overlapping_hits_collapse_and_took_ms_is_reported() {
    let corpus = Corpus::open(true).await;
    let results = corpus.search(SearchRequest { limit: Some(100), ..q("acme", "widget name") }).await;
    for (i, a) in results.hits.iter().enumerate() {
        for b in &results.hits[i + 1..] {
            let overlap = a.repo == b.repo
                && a.path == b.path
                && a.start_line <= b.end_line
                && b.start_line <= a.end_line;
            assert!(!overlap, "{a:?} overlaps {b:?}");
        }
    }
    assert!(results.took_ms > 0.0);
}

/// An embedder that counts its calls (the real model underneath), standing for a paid HTTP provider.
#[derive(Debug)]
struct Counting {
    inner: std::sync::Arc<dyn ledge_embed::Embedder>,
    calls: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl ledge_embed::Embedder for Counting {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }
    fn dimensions(&self) -> usize {
        self.inner.dimensions()
    }
    fn max_batch(&self) -> usize {
        self.inner.max_batch()
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ledge_embed::EmbedError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.embed(texts).await
    }
}

#[tokio::test]
async fn a_repeated_query_takes_its_vector_from_the_embedding_cache_not_the_provider() {
    let corpus = Corpus::open(true).await;
    let env = &corpus.env;
    let counting = std::sync::Arc::new(Counting {
        inner: env.embedder().await.unwrap().unwrap(),
        calls: std::sync::atomic::AtomicUsize::new(0),
    });
    let cache = ledge_indexing::EmbeddingCache::new(
        env.kv(ledge_env::KvBinding::EmbeddingCache).await.unwrap(),
        std::time::Duration::from_secs(3600),
    );
    let searcher = ledge_search::Searcher::new(
        env.keyword_index().await.unwrap(),
        env.vector_index().await.unwrap(),
        Some(counting.clone()),
        ledge_search::SearchOptions::default(),
    )
    .with_query_cache(cache);
    let calls = || counting.calls.load(std::sync::atomic::Ordering::SeqCst);
    let request = || mode(q("acme", "crc32 checksum of bytes"), Mode::Semantic);
    let first = searcher.search(&request()).await.unwrap();
    assert_eq!(calls(), 1);
    let again = searcher.search(&request()).await.unwrap();
    assert_eq!(calls(), 1, "the second search found the vector in the cache");
    assert_eq!(found(&again), found(&first));
    assert!(!found(&first).is_empty());
    searcher.search(&mode(q("acme", "welcome someone hello"), Mode::Semantic)).await.unwrap();
    assert_eq!(calls(), 2, "another text is embedded");
    searcher.search(&mode(q("globex", "crc32 checksum of bytes"), Mode::Semantic)).await.unwrap();
    assert_eq!(calls(), 3, "another organization's cache entries are its own");
}
