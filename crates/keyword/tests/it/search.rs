//! Searching: always inside the caller's organization, identifiers found by their parts, filters, phrases,
//! ranking, and user text that never acts as query syntax.

use ledge_keyword::{ChunkDoc, KeywordError, KeywordIndex, KeywordQuery, MAX_LIMIT, SymbolFilter};

use crate::support::{chunk, ids, index_files, open, own_sources, search};

const PARSE_JSON: &str = "/// Parses a JSON document.\npub fn parse_json(input: &str) -> Result<Value, Error> {\n    \
                          serde_json::from_str(input)\n}";
const JSON_PARSER: &str = "pub struct JsonParser {\n    depth: usize,\n}\n\nimpl JsonParser {\n    pub fn new() \
                           -> Self { JsonParser { depth: 0 } }\n}";
const HTTP: &str = "fn parseHTTPRequest2(buf: &[u8]) -> Option<Request> {\n    let server = HTTPServer::new();\n    \
                    server.handle(buf)\n}";

/// The same three files in two organizations, with the same repository names, paths and chunk ids.
fn two_orgs() -> (tempfile::TempDir, KeywordIndex) {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path());
    let mut docs = Vec::new();
    for org in ["acme", "globex"] {
        docs.push(chunk(org, "api", "src/json.rs", "json-1", Some("parse_json"), PARSE_JSON));
        docs.push(chunk(org, "api", "src/parser.rs", "parser-1", Some("JsonParser"), JSON_PARSER));
        docs.push(chunk(org, "web", "src/http/request.rs", "http-1", Some("parseHTTPRequest2"), HTTP));
    }
    index_files(&index, docs);
    (dir, index)
}

fn orgs(hits: &[ledge_keyword::KeywordHit]) -> Vec<&str> {
    hits.iter().map(|h| h.doc.org.as_str()).collect()
}

#[test]
fn results_never_leave_the_callers_organization() {
    let (_dir, index) = two_orgs();
    assert_eq!(index.num_docs(), 6);
    for text in ["json", "parser", "fn", "JsonParser", "src", "rust", "globex", "acme", "api web"] {
        let hits = search(&index, "acme", text);
        assert!(orgs(&hits).iter().all(|&o| o == "acme"), "{text:?} stays in acme: {:?}", orgs(&hits));
    }
    assert_eq!(search(&index, "acme", "json").len(), 2);
    assert!(search(&index, "initech", "json").is_empty(), "an org with no documents finds nothing");
}

#[test]
fn query_syntax_in_user_text_neither_errors_nor_escapes_the_organization() {
    let (_dir, index) = two_orgs();
    for text in [
        "org:globex",
        "org:globex OR json",
        "* OR org:globex",
        "*",
        "json*",
        "\"",
        "\"unbalanced json",
        "json\"",
        "(json",
        "json)",
        "+json -parser",
        "repo:web AND chunk_id:json-1",
        "[a TO z]",
        "\\",
        "json^100",
        "::",
        "",
        "   ",
        "\0",
        "org\0globex",
    ] {
        let hits = index.search(&KeywordQuery::new("acme", text)).unwrap();
        assert!(orgs(&hits).iter().all(|&o| o == "acme"), "{text:?} stays in acme: {:?}", orgs(&hits));
    }
    assert!(search(&index, "acme", "*").is_empty(), "no words, no hits");
}

#[test]
fn identifiers_are_found_by_their_parts() {
    let (_dir, index) = two_orgs();
    let hits = search(&index, "acme", "json");
    let mut json = ids(&hits);
    json.sort();
    assert_eq!(json, ["json-1", "parser-1"]);
    assert_eq!(ids(&search(&index, "acme", "parser")), ["parser-1"]);
    assert_eq!(ids(&search(&index, "acme", "http")), ["http-1"]);
    assert_eq!(ids(&search(&index, "acme", "server")), ["http-1"]);
    assert_eq!(ids(&search(&index, "acme", "request2")), ["http-1"]);
    assert_eq!(ids(&search(&index, "acme", "quest")), Vec::<&str>::new(), "parts, not arbitrary substrings");
    // A query identifier in another style still finds the definition, through its parts.
    assert_eq!(ids(&search(&index, "acme", "parseJson"))[0], "json-1");
    assert_eq!(ids(&search(&index, "acme", "json_parser"))[0], "parser-1");
    assert_eq!(ids(&search(&index, "acme", "ParseHttpRequest")), ["http-1"]);
    // Case does not matter.
    assert_eq!(ids(&search(&index, "acme", "JSONPARSER")), ["parser-1"]);
}

#[test]
fn a_multi_part_query_word_needs_all_its_parts() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path());
    index_files(
        &index,
        vec![
            chunk("acme", "api", "a.rs", "both", None, "let parsed = parse(json);"),
            chunk("acme", "api", "b.rs", "one", None, "let parsed = parse(yaml);"),
        ],
    );
    assert_eq!(ids(&search(&index, "acme", "parse_json")), ["both"]);
}

#[test]
fn kebab_case_and_paths_are_searchable() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path());
    index_files(
        &index,
        vec![
            chunk("acme", "api", "Cargo.toml", "toml", None, "[features]\ndefault-features = false"),
            chunk("acme", "api", "crates/index_writer/src/lib.rs", "lib", None, "mod segment;"),
        ],
    );
    assert_eq!(ids(&search(&index, "acme", "features")), ["toml"]);
    assert_eq!(ids(&search(&index, "acme", "default-features")), ["toml"]);
    assert_eq!(ids(&search(&index, "acme", "writer")), ["lib"], "path parts");
    assert_eq!(ids(&search(&index, "acme", "lib.rs")), ["lib"], "file name");
    assert_eq!(ids(&search(&index, "acme", "toml")), ["toml"], "extension");
}

#[test]
fn a_symbol_match_outranks_mentions_in_text() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path());
    index_files(
        &index,
        vec![
            chunk(
                "acme",
                "api",
                "src/a.rs",
                "caller",
                Some("load"),
                "fn load(a: &str, b: &str) {\n    parse_json(a);\n    parse_json(b);\n}",
            ),
            chunk(
                "acme",
                "api",
                "src/b.rs",
                "definition",
                Some("parse_json"),
                "fn parse_json(s: &str) -> Value {\n    decode(s, Options::default())\n}",
            ),
        ],
    );
    assert_eq!(ids(&search(&index, "acme", "parse_json")), ["definition", "caller"]);
    assert_eq!(ids(&search(&index, "acme", "parse json")), ["definition", "caller"]);
}

#[test]
fn quoted_phrases_require_the_words_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path());
    index_files(
        &index,
        vec![
            chunk("acme", "api", "a.rs", "adjacent", None, "let v = parse_json(data);"),
            chunk("acme", "api", "b.rs", "apart", None, "// json goes here\nlet v = parse(data);"),
        ],
    );
    assert_eq!(ids(&search(&index, "acme", "\"parse json\"")), ["adjacent"]);
    assert_eq!(ids(&search(&index, "acme", "\"parseJson data\"")), ["adjacent"]);
    assert_eq!(ids(&search(&index, "acme", "\"json parse\"")), Vec::<&str>::new());
    assert_eq!(search(&index, "acme", "parse json").len(), 2, "unquoted words are alternatives");
}

fn filtered(index: &KeywordIndex, edit: impl FnOnce(&mut KeywordQuery)) -> Vec<String> {
    let mut query = KeywordQuery::new("acme", "fn");
    edit(&mut query);
    let mut paths: Vec<String> =
        index.search(&query).unwrap().into_iter().map(|h| format!("{}:{}", h.doc.repo, h.doc.path)).collect();
    paths.sort();
    paths
}

#[test]
fn repository_language_and_path_prefix_filters() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path());
    let go = |repo: &str, path: &str| ChunkDoc {
        language: "go".into(),
        ..chunk("acme", repo, path, path, None, "fn")
    };
    index_files(
        &index,
        vec![
            chunk("acme", "api", "src/lib.rs", "1", None, "fn"),
            chunk("acme", "api", "src/json/mod.rs", "2", None, "fn"),
            chunk("acme", "api", "srcgen/out.rs", "3", None, "fn"),
            chunk("acme", "api", "tests/it.rs", "4", None, "fn"),
            chunk("acme", "api", "src/naïve/ü.rs", "5", None, "fn"),
            go("web", "src/main.go"),
            go("cli", "cmd/main.go"),
            chunk("globex", "api", "src/lib.rs", "1", None, "fn"),
        ],
    );
    assert_eq!(filtered(&index, |_| {}).len(), 7);
    assert_eq!(
        filtered(&index, |q| q.repos = vec!["web".into(), "cli".into()]),
        ["cli:cmd/main.go", "web:src/main.go"]
    );
    assert_eq!(filtered(&index, |q| q.languages = vec!["go".into()]), ["cli:cmd/main.go", "web:src/main.go"]);
    assert_eq!(
        filtered(&index, |q| q.path_prefix = Some("src/".into())),
        ["api:src/json/mod.rs", "api:src/lib.rs", "api:src/naïve/ü.rs", "web:src/main.go"]
    );
    assert_eq!(filtered(&index, |q| q.path_prefix = Some("src/naï".into())), ["api:src/naïve/ü.rs"]);
    assert_eq!(filtered(&index, |q| q.path_prefix = Some("src".into())).len(), 5, "a string prefix");
    assert_eq!(filtered(&index, |q| q.path_prefix = Some("src/lib.rs".into())), ["api:src/lib.rs"]);
    assert_eq!(filtered(&index, |q| q.path_prefix = Some("SRC/".into())), Vec::<String>::new());
    assert_eq!(filtered(&index, |q| q.path_prefix = Some(String::new())).len(), 7, "empty = no filter");
    assert_eq!(
        filtered(&index, |q| {
            q.repos = vec!["api".into()];
            q.languages = vec!["rust".into()];
            q.path_prefix = Some("src/j".into());
        }),
        ["api:src/json/mod.rs"]
    );
    assert_eq!(filtered(&index, |q| q.repos = vec!["nope".into()]), Vec::<String>::new());
}

#[test]
fn hits_carry_the_stored_chunk_and_respect_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path());
    let doc = ChunkDoc {
        start_line: 10,
        end_line: 13,
        kind: "function".into(),
        ..chunk("acme", "api", "src/json.rs", "json-1", Some("parse_json"), PARSE_JSON)
    };
    let mut docs = vec![doc.clone()];
    docs.extend((0..30).map(|i| chunk("acme", "api", &format!("f{i}.rs"), &format!("{i}"), None, "json")));
    index_files(&index, docs);
    let hits = search(&index, "acme", "parse_json");
    assert_eq!(hits[0].doc, doc);
    assert!(hits[0].score > 0.0);

    let mut query = KeywordQuery::new("acme", "json");
    assert_eq!(index.search(&query).unwrap().len(), 20, "default limit");
    query.limit = 5;
    let hits = index.search(&query).unwrap();
    assert_eq!(hits.len(), 5);
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score), "best first");
    query.limit = 0;
    assert!(index.search(&query).unwrap().is_empty());
    query.limit = MAX_LIMIT + 1;
    let error = index.search(&query).unwrap_err();
    assert!(matches!(error, KeywordError::InvalidArgument { field: "limit", .. }), "{error}");
    let error = index.search(&KeywordQuery::new("", "json")).unwrap_err();
    assert!(matches!(error, KeywordError::InvalidArgument { field: "org", .. }), "{error}");
}

#[test]
fn real_source_files_are_found_by_what_they_define() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path());
    let docs = own_sources("acme", "ledge");
    let count = docs.len() as u64;
    index_files(&index, docs);
    assert_eq!(index.num_docs(), count);
    let top_path = |text: &str| search(&index, "acme", text)[0].doc.path.clone();
    assert_eq!(top_path("prefix_upper_bound"), "src/query.rs");
    assert_eq!(top_path("replace_file UserOperation"), "src/index.rs");
    assert_eq!(top_path("split parts acronym boundary"), "src/analyzer.rs");
    assert_eq!(top_path("\"one term naming every document\""), "src/schema.rs");
}

#[test]
fn excluded_words_and_phrases_leave_chunks_out() {
    let (_dir, index) = two_orgs();
    let query = |text: &str, exclude: &[&str]| {
        let mut query = KeywordQuery::new("acme", text);
        query.exclude = exclude.iter().map(|e| e.to_string()).collect();
        let hits = index.search(&query).unwrap();
        ids(&hits).into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    assert_eq!(query("json", &[]).len(), 2);
    // `parser` is in JsonParser's text and symbol, and in src/parser.rs's path.
    assert_eq!(query("json", &["parser"]), ["json-1"]);
    assert_eq!(query("json", &["\"json document\""]), ["parser-1"]);
    assert_eq!(query("json", &["\"no such phrase\""]).len(), 2);
    // A word is excluded by its parts too: `server` is a part of HTTPServer.
    assert!(query("parse", &["server"]).iter().all(|id| id != "http-1"));
}

#[test]
fn the_symbol_filter_compares_exactly_or_by_prefix_without_case() {
    let (_dir, index) = two_orgs();
    let query = |text: &str, symbol: SymbolFilter| {
        let mut query = KeywordQuery::new("acme", text);
        query.symbol = Some(symbol);
        let hits = index.search(&query).unwrap();
        ids(&hits).into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    assert_eq!(query("json", SymbolFilter::Exact("jsonparser".into())), ["parser-1"]);
    assert_eq!(query("json", SymbolFilter::Exact("json".into())), Vec::<String>::new());
    assert_eq!(query("fn", SymbolFilter::Prefix("PARSE".into())).len(), 2);
    assert_eq!(query("json", SymbolFilter::Prefix("parse_j".into())), ["json-1"]);
}

#[test]
fn scan_requires_every_word_and_visits_within_the_organization() {
    let (_dir, index) = two_orgs();
    let visit = |query: &KeywordQuery, max: usize| {
        let mut seen = Vec::new();
        let summary = index
            .scan(query, max, |doc| {
                seen.push((doc.org, doc.chunk_id));
                true
            })
            .unwrap();
        (seen, summary)
    };
    let (all, summary) = visit(&KeywordQuery::new("acme", ""), 100);
    assert_eq!(all.len(), 3, "an empty text scans every chunk of the org: {all:?}");
    assert!(all.iter().all(|(org, _)| org == "acme"));
    assert!(summary.complete && summary.matched == 3);
    let (both, _) = visit(&KeywordQuery::new("acme", "parse json"), 100);
    assert_eq!(both, [("acme".to_owned(), "json-1".to_owned())], "every word is required");
    let (bounded, summary) = visit(&KeywordQuery::new("acme", ""), 2);
    assert_eq!((bounded.len(), summary.complete, summary.matched), (2, false, 3));
    let mut filtered = KeywordQuery::new("acme", "");
    filtered.repos = vec!["web".into()];
    assert_eq!(visit(&filtered, 100).0, [("acme".to_owned(), "http-1".to_owned())]);
}

#[test]
fn chunks_by_id_stay_in_the_organization_pass_the_filters_and_keep_the_order_asked() {
    let (_dir, index) = two_orgs();
    let ids = ["http-1", "missing", "json-1"].map(String::from);
    let acme = KeywordQuery::new("acme", "");
    let chunks = index.chunks(&acme, &ids).unwrap();
    let got: Vec<(&str, &str)> = chunks.iter().map(|c| (c.org.as_str(), c.chunk_id.as_str())).collect();
    assert_eq!(got, [("acme", "http-1"), ("acme", "json-1")]);
    assert!(index.chunks(&KeywordQuery::new("initech", ""), &ids).unwrap().is_empty());
    assert_eq!(index.orgs().unwrap(), ["acme", "globex"]);
    let mut rust_json = KeywordQuery::new("acme", "");
    rust_json.exclude = vec!["request".into()];
    let got: Vec<String> = index.chunks(&rust_json, &ids).unwrap().into_iter().map(|c| c.chunk_id).collect();
    assert_eq!(got, ["json-1"], "the query's exclusions apply");
    let too_many: Vec<String> = (0..=ledge_keyword::MAX_CHUNK_IDS).map(|i| i.to_string()).collect();
    assert!(matches!(
        index.chunks(&acme, &too_many),
        Err(KeywordError::InvalidArgument { field: "ids", .. })
    ));
}

#[test]
fn reading_results_leaves_no_document_store_or_postings_mapped_into_the_process() {
    let (dir, index) = two_orgs();
    for text in ["json", "parser", "HTTPServer", "\"json parser\""] {
        assert!(!search(&index, "acme", text).is_empty(), "{text:?} finds its chunk and its stored text");
    }
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let index_dir = dir.path().to_str().unwrap();
    let mapped = |ext: &str| maps.lines().filter(|l| l.contains(index_dir) && l.ends_with(ext)).count();
    for ext in [".store", ".idx", ".pos"] {
        assert_eq!(mapped(ext), 0, "{ext} files are read with pread, not mapped");
    }
    assert!(mapped(".term") > 0, "(the check sees the index's term dictionaries mapped)");
}

#[test]
fn pages_searches_touched_are_given_back_and_searches_still_see_the_same_index() {
    let (dir, index) = two_orgs();
    let before = ["json", "parser", "HTTPServer"].map(|text| ids(&search(&index, "acme", text)).join(","));
    let resident = || {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let index_dir = dir.path().canonicalize().unwrap();
        let mut inside = false;
        let mut kib = 0;
        for line in smaps.lines() {
            let first = line.split_whitespace().next().unwrap_or("");
            if first.contains('-') && !first.ends_with(':') {
                inside = line.contains(index_dir.to_str().unwrap());
            } else if inside && first == "Rss:" {
                kib += line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap();
            }
        }
        kib
    };
    assert!(resident() > 0, "the searches mapped pages of the index's files in");
    assert!(index.release_mapped_pages().unwrap() > 0, "some mappings were advised");
    assert_eq!(resident(), 0, "no page of the index's files stays resident");
    let after = ["json", "parser", "HTTPServer"].map(|text| ids(&search(&index, "acme", text)).join(","));
    assert_eq!(after, before);
}

/// Regression: a chunk merged from several small definitions has no single symbol; every one of its
/// names must still find it, by word, by exact name and through the symbol filter.
#[test]
fn every_name_of_a_merged_chunk_finds_it() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path());
    let merged = ChunkDoc {
        symbol: None,
        symbols: vec!["add_numbers".into(), "subtract".into(), "Widget::new".into()],
        kind: "definitions".into(),
        ..chunk(
            "acme",
            "api",
            "src/math.rs",
            "merged",
            None,
            "fn add_numbers(a: i32, b: i32) -> i32 { a + b }\nfn subtract(a: i32, b: i32) -> i32 { a - b }\n\
             impl Widget { fn new() -> Widget { Widget } }",
        )
    };
    // Another chunk that says `subtract` more often in its text, but defines nothing of that name.
    let caller = chunk("acme", "api", "src/calc.rs", "caller", Some("run"), "subtract(subtract(1, 2), 3)");
    index_files(&index, vec![merged.clone(), caller]);
    let hits = search(&index, "acme", "subtract");
    assert_eq!(ids(&hits), ["merged", "caller"], "the definition ranks above the call");
    assert_eq!(hits[0].doc, merged, "the names are stored");
    let with_filter = |filter: SymbolFilter| {
        let mut query = KeywordQuery::new("acme", "fn");
        query.symbol = Some(filter);
        index.search(&query).unwrap().into_iter().map(|h| h.doc.chunk_id).collect::<Vec<_>>()
    };
    assert_eq!(with_filter(SymbolFilter::Exact("ADD_NUMBERS".into())), ["merged"]);
    assert_eq!(with_filter(SymbolFilter::Prefix("widget::".into())), ["merged"]);
    assert_eq!(with_filter(SymbolFilter::Exact("run".into())), Vec::<String>::new(), "`run` has no `fn`");
    let mut excluded = KeywordQuery::new("acme", "subtract");
    excluded.exclude = vec!["numbers".into()];
    assert_eq!(ids(&index.search(&excluded).unwrap()), ["caller"], "a name's parts exclude the chunk too");
}
