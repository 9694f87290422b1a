//! `GET /search` and `POST /search` through the router over a real env: chunks written to the real
//! keyword index (no model installed, so keyword-only with a notice), results scoped by the caller's
//! organization, and every bad input answered 400 problem+json naming its field.

use axum::body::Body;
use axum::http::Request;
use ledge_keyword::ChunkDoc;

use crate::harness::{TestApp, app};

fn chunk(org: &str, repo: &str, path: &str, id: &str, symbol: &str, text: &str) -> ChunkDoc {
    ChunkDoc {
        org: org.into(),
        repo: repo.into(),
        commit: "0123456789abcdef0123456789abcdef01234567".into(),
        path: path.into(),
        language: "rust".into(),
        symbol: Some(symbol.into()),
        symbols: vec![symbol.into()],
        kind: "function".into(),
        start_line: 10,
        end_line: 10 + text.lines().count() as u32 - 1,
        chunk_id: id.into(),
        text: text.into(),
    }
}

/// An app whose keyword index holds a parser in two organizations, "acme" and "globex", both owned
/// by the signed-in user the app sends requests as.
async fn indexed() -> TestApp {
    let app = app();
    let token = app.sign_in("searcher@example.com").await;
    for slug in ["acme", "globex"] {
        let answer =
            app.post("/organizations", Some(&token), serde_json::json!({ "name": slug, "slug": slug })).await;
        assert_eq!(answer.status, 201, "{:?}", answer.body);
    }
    app.bearer.set(token).unwrap();
    let keyword = app.state.env.keyword_index().await.unwrap();
    for org in ["acme", "globex"] {
        let text =
            format!("/// Parses JSON for {org}.\npub fn parse_json(input: &str) -> Value {{\n    todo()\n}}");
        let doc = chunk(org, &format!("{org}/api"), "src/json.rs", &format!("{org}-1"), "parse_json", &text);
        keyword.replace_file(org, &format!("{org}/api"), "src/json.rs", vec![doc]).unwrap();
    }
    keyword.commit().unwrap();
    app
}

async fn post(app: &TestApp, body: &str) -> crate::harness::Answer {
    let request =
        Request::post("/search").header("content-type", "application/json").body(Body::from(body.to_owned()));
    app.send(request.unwrap()).await
}

#[tokio::test]
async fn get_and_post_search_one_organization() {
    let app = indexed().await;
    assert!(!app.loaded("search"));
    let anonymous = Request::get("/search?org=acme&q=parse").header("authorization", "Basic eA==");
    app.send(anonymous.body(Body::empty()).unwrap()).await.problem(401, "unauthenticated");
    assert!(!app.loaded("search"), "an unauthenticated request builds nothing heavy");
    let answer = app.get("/search?org=acme&q=parseJson&limit=5").await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    assert!(app.loaded("search"), "the first search builds the module");
    let body = answer.json();
    assert_eq!(body["mode"], "keyword", "no model: keyword only");
    assert_eq!(body["notices"], serde_json::json!([ledge_embed::NO_MODEL_MESSAGE]));
    assert!(body["took_ms"].as_f64().unwrap() >= 0.0);
    let hits = body["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 1, "{body}");
    let hit = &hits[0];
    assert_eq!(
        (hit["repo"].as_str(), hit["path"].as_str(), hit["symbol"].as_str()),
        (Some("acme/api"), Some("src/json.rs"), Some("parse_json"))
    );
    assert_eq!((hit["start_line"].as_u64(), hit["end_line"].as_u64()), (Some(10), Some(13)));
    assert_eq!(hit["snippet"]["start_line"], 10);
    let text = hit["snippet"]["text"].as_str().unwrap();
    assert!(text.contains("Parses JSON for acme"), "{text}");
    let [a, b] = [&hit["snippet"]["highlights"][0][0], &hit["snippet"]["highlights"][0][1]]
        .map(|v| v.as_u64().unwrap() as usize);
    assert!(
        text[a..b].eq_ignore_ascii_case("parse") || text[a..b].eq_ignore_ascii_case("json"),
        "{}",
        &text[a..b]
    );

    let answer =
        post(&app, r#"{"org": "globex", "q": "parse json", "repo": ["globex/api"], "mode": "keyword"}"#)
            .await;
    assert_eq!(answer.status, 200);
    let body = answer.json();
    assert_eq!(body["hits"][0]["repo"], "globex/api");
    assert_eq!(body["notices"], serde_json::json!([]), "keyword mode was asked: nothing to say");

    // Another organization's repository: empty, never its data.
    let body = app.get("/search?org=acme&q=parse&repo=globex/api").await.json();
    assert_eq!(body["hits"], serde_json::json!([]));
    for heavy in ["chat", "bug-analysis", "analytics-enrichment"] {
        assert!(!app.loaded(heavy), "{heavy} was built by a search");
    }
}

#[tokio::test]
async fn bad_input_answers_400_problem_json_naming_the_field() {
    let app = indexed().await;
    let long = "x".repeat(10 * 1024);
    let cases = [
        ("/search?q=parse".to_owned(), "invalid_field", "org"),
        ("/search?org=acme".to_owned(), "invalid_field", "q"),
        ("/search?org=acme&q=".to_owned(), "invalid_query", "q"),
        (format!("/search?org=acme&q={long}"), "invalid_query", "q"),
        ("/search?org=acme&q=foo:bar".to_owned(), "invalid_query", "q"),
        ("/search?org=acme&q=fn%20(&mode=regex".to_owned(), "invalid_query", "q"),
        ("/search?org=acme&q=x&mode=fast".to_owned(), "invalid_field", "mode"),
        ("/search?org=acme&q=x&limit=0".to_owned(), "invalid_field", "limit"),
        ("/search?org=acme&q=x&limit=many".to_owned(), "invalid_field", "limit"),
        ("/search?org=acme&q=x&cursor=nope".to_owned(), "invalid_field", "cursor"),
        ("/search?org=acme&q=x&repo=noslash".to_owned(), "invalid_field", "repo"),
        ("/search?org=acme&q=x&fusion=max".to_owned(), "invalid_field", "fusion"),
        ("/search?org=acme&q=x&colour=red".to_owned(), "invalid_field", "colour"),
    ];
    for (uri, code, field) in cases {
        let problem = app.get(&uri).await.problem(400, code);
        assert_eq!(problem["field"], field, "{uri}: {problem}");
    }
    let detail = app.get("/search?org=acme&q=foo:bar").await.json()["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("foo:"), "{detail}");

    post(&app, "{not json").await.problem(400, "invalid_json");
    post(&app, "[1]").await.problem(400, "invalid_json");
    for (body, field) in [
        (r#"{"q": "x"}"#, "org"),
        (r#"{"org": "acme", "q": 7}"#, "q"),
        (r#"{"org": "acme", "q": "x", "limit": "ten"}"#, "limit"),
        (r#"{"org": "acme", "q": "x", "limit": 101}"#, "limit"),
        (r#"{"org": "acme", "q": "x", "repo": [1]}"#, "repo"),
        (r#"{"org": "acme", "q": "x", "extra": true}"#, "extra"),
    ] {
        let answer = post(&app, body).await;
        assert_eq!(answer.status, 400, "{body}");
        assert_eq!(answer.json()["field"], field, "{body}");
    }
}

#[tokio::test]
async fn api_keys_search_their_own_organization_with_the_scope() {
    let app = indexed().await;
    let token = app.bearer.get().unwrap().clone();
    let acme = app.call("GET", "/organizations", Some(&token), None, crate::tenants::LOCAL).await.json();
    let acme = acme["items"].as_array().unwrap().iter().find(|o| o["slug"] == "acme").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, reader) = app.api_key(&acme, &token, &["search:read"]).await;
    let (_, chatter) = app.api_key(&acme, &token, &["chat:write"]).await;
    let search = |key: String, uri: &'static str| {
        let app = &app;
        async move { app.call("GET", uri, Some(&key), None, crate::tenants::LOCAL).await }
    };
    let body = search(reader.clone(), "/search?q=parse").await.json();
    assert_eq!(body["hits"][0]["repo"], "acme/api", "{body}");
    search(reader.clone(), "/search?q=parse&org=globex").await.problem(404, "not_found");
    search(chatter, "/search?q=parse").await.problem(403, "forbidden");
    let outsider = app.sign_in("outsider@example.com").await;
    search(outsider, "/search?q=parse&org=acme").await.problem(404, "not_found");
}
