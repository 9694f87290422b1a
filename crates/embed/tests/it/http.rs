//! The HTTP embedders against a scripted embeddings server on loopback speaking each API's wire format:
//! what is sent, batching, retries on 429 (honouring `Retry-After`) and 5xx, timeouts, and the errors
//! that are not retried.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ledge_embed::{EmbedError, Embedder, HttpApi, HttpEmbedder, HttpEmbedderConfig, MAX_REQUEST_BYTES};
use serde_json::{Value, json};

/// What the server answers to one request, in the order requests arrive.
#[derive(Debug, Clone)]
enum Reply {
    /// 200 with one vector per input: `[len(text), 1, 0, 0]`, listed in reverse order with their indexes.
    Embeddings,
    /// 200 with vectors of this many dimensions.
    WrongDimensions(usize),
    /// This status, extra headers and body.
    Status(u16, Vec<(&'static str, &'static str)>, &'static str),
    /// Waits this long, then answers like [`Reply::Embeddings`].
    Stall(Duration),
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    authorization: Option<String>,
    body: Value,
    at: Instant,
}

struct Server {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    /// Serves `script` (one reply per connection; past its end, 500), each connection on its own thread.
    fn start(script: Vec<Reply>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/embeddings", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            let mut script = script.into_iter();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let reply = script.next().unwrap_or(Reply::Status(500, vec![], "script exhausted"));
                let log = log.clone();
                std::thread::spawn(move || serve(stream, reply, &log));
            }
        });
        Server { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(stream: std::net::TcpStream, reply: Reply, log: &Mutex<Vec<Seen>>) {
    let at = Instant::now();
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    let (mut length, mut authorization) = (0, None);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        if header == "\r\n" || header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap(),
            "authorization" => authorization = Some(value.trim().to_owned()),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    let path = request_line.split_whitespace().nth(1).unwrap().to_owned();
    log.lock().unwrap().push(Seen { path, authorization, body: body.clone(), at });
    let inputs: Vec<String> =
        body["input"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()).collect();
    let embeddings = |dims: usize| {
        let data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .rev()
            .map(|(i, text)| {
                let mut values = vec![0.0f32; dims];
                values[0] = text.len() as f32;
                values[1] = 1.0;
                json!({ "object": "embedding", "index": i, "embedding": values })
            })
            .collect();
        json!({ "object": "list", "data": data, "model": body["model"] }).to_string()
    };
    let (status, headers, text) = match reply {
        Reply::Embeddings => (200, vec![], embeddings(4)),
        Reply::WrongDimensions(dims) => (200, vec![], embeddings(dims)),
        Reply::Status(status, headers, text) => (status, headers, text.to_owned()),
        Reply::Stall(delay) => {
            std::thread::sleep(delay);
            (200, vec![], embeddings(4))
        }
    };
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        text.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = reader.into_inner();
    let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(text.as_bytes()));
}

fn config(api: HttpApi, server: &Server) -> HttpEmbedderConfig {
    let model = match api {
        HttpApi::Voyage => "voyage-code-3",
        HttpApi::OpenAi => "text-embedding-3-small",
    };
    let mut config = HttpEmbedderConfig::new(api, model, 4);
    config.url = server.url.clone();
    config.timeout = Duration::from_secs(5);
    config.initial_backoff = Duration::from_millis(20);
    config.max_backoff = Duration::from_millis(100);
    config
}

fn texts(list: &[&str]) -> Vec<String> {
    list.iter().map(|t| (*t).to_owned()).collect()
}

/// The unit vector of `[len, 1, 0, 0]`, what the server's embedding of `text` normalises to.
fn expected(text: &str) -> Vec<f32> {
    let len = text.len() as f32;
    let norm = (len * len + 1.0).sqrt();
    vec![len / norm, 1.0 / norm, 0.0, 0.0]
}

#[tokio::test]
async fn openai_compatible_requests_carry_model_inputs_key_and_dimensions() {
    let server = Server::start(vec![Reply::Embeddings]);
    let mut config = config(HttpApi::OpenAi, &server);
    config.api_key = Some("sk-test".into());
    config.request_dimensions = true;
    let embedder = HttpEmbedder::new(config).unwrap();
    assert_eq!(embedder.model_id(), "openai:text-embedding-3-small@4");
    let inputs = texts(&["fn main() {}", "parse json", "x"]);
    let vectors = embedder.embed(&inputs).await.unwrap();
    // The server lists the vectors in reverse: they come back in input order, normalised.
    let wanted: Vec<Vec<f32>> = inputs.iter().map(|t| expected(t)).collect();
    assert_eq!(vectors, wanted);
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/embeddings");
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer sk-test"));
    assert_eq!(
        seen[0].body,
        json!({
            "model": "text-embedding-3-small",
            "input": ["fn main() {}", "parse json", "x"],
            "encoding_format": "float",
            "dimensions": 4,
        })
    );
}

#[tokio::test]
async fn voyage_requests_use_its_own_parameters() {
    let server = Server::start(vec![Reply::Embeddings, Reply::Embeddings]);
    let mut config = config(HttpApi::Voyage, &server);
    config.api_key = Some("pa-test".into());
    config.input_type = Some("document".into());
    config.request_dimensions = true;
    let embedder = HttpEmbedder::new(config.clone()).unwrap();
    assert_eq!(embedder.model_id(), "voyage:voyage-code-3@4");
    let vectors = embedder.embed(&texts(&["a b c"])).await.unwrap();
    assert_eq!(vectors, [expected("a b c")]);
    config.input_type = None;
    config.request_dimensions = false;
    config.api_key = None;
    HttpEmbedder::new(config).unwrap().embed(&texts(&["d"])).await.unwrap();
    let seen = server.seen();
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer pa-test"));
    assert_eq!(
        seen[0].body,
        json!({ "model": "voyage-code-3", "input": ["a b c"], "truncation": true, "output_dimension": 4,
                "input_type": "document" })
    );
    assert_eq!(seen[1].authorization, None, "no key, no header (a local server needs none)");
    assert_eq!(seen[1].body, json!({ "model": "voyage-code-3", "input": ["d"], "truncation": true }));
}

#[tokio::test]
async fn a_429_is_retried_after_the_servers_retry_after() {
    let server = Server::start(vec![
        Reply::Status(429, vec![("Retry-After", "1")], r#"{"detail":"slow down"}"#),
        Reply::Embeddings,
    ]);
    let embedder = HttpEmbedder::new(config(HttpApi::Voyage, &server)).unwrap();
    let vectors = embedder.embed(&texts(&["retry me"])).await.unwrap();
    assert_eq!(vectors, [expected("retry me")]);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let waited = seen[1].at - seen[0].at;
    assert!(waited >= Duration::from_millis(950), "waited {waited:?}, the server asked for 1 s");
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_then_reported() {
    let server = Server::start(vec![
        Reply::Status(503, vec![], "upstream overloaded"),
        Reply::Status(502, vec![], ""),
        Reply::Embeddings,
    ]);
    let embedder = HttpEmbedder::new(config(HttpApi::OpenAi, &server)).unwrap();
    assert_eq!(embedder.embed(&texts(&["x"])).await.unwrap(), [expected("x")]);
    assert_eq!(server.seen().len(), 3);

    let failing = Server::start(vec![Reply::Status(500, vec![], r#"{"error":{"message":"boom"}}"#); 3]);
    let mut config = config(HttpApi::OpenAi, &failing);
    config.max_retries = 2;
    let error = HttpEmbedder::new(config).unwrap().embed(&texts(&["x"])).await.unwrap_err();
    assert!(matches!(error, EmbedError::Unavailable { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("boom") && message.contains("3 attempts"), "{message}");
    assert!(message.contains(&failing.url), "{message}");
    assert_eq!(failing.seen().len(), 3);
}

#[tokio::test]
async fn a_request_that_times_out_is_retried_and_then_reported() {
    let server = Server::start(vec![Reply::Stall(Duration::from_secs(3)), Reply::Embeddings]);
    let mut config = config(HttpApi::OpenAi, &server);
    config.timeout = Duration::from_millis(300);
    let embedder = HttpEmbedder::new(config.clone()).unwrap();
    let started = Instant::now();
    assert_eq!(embedder.embed(&texts(&["slow"])).await.unwrap(), [expected("slow")]);
    assert!(started.elapsed() < Duration::from_secs(2), "the stalled request was abandoned at its timeout");
    assert_eq!(server.seen().len(), 2);

    let stalled = Server::start(vec![Reply::Stall(Duration::from_secs(3))]);
    config.url = stalled.url.clone();
    config.max_retries = 0;
    let error = HttpEmbedder::new(config).unwrap().embed(&texts(&["slow"])).await.unwrap_err();
    assert!(matches!(error, EmbedError::Unavailable { .. }), "{error:?}");
    assert!(error.to_string().contains("timed out"), "{error}");
}

#[tokio::test]
async fn refusals_are_not_retried_and_name_the_status_and_message() {
    let server = Server::start(vec![Reply::Status(
        401,
        vec![],
        r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#,
    )]);
    let error =
        HttpEmbedder::new(config(HttpApi::OpenAi, &server)).unwrap().embed(&texts(&["x"])).await.unwrap_err();
    assert!(matches!(error, EmbedError::Provider { status: Some(401), .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("Incorrect API key provided") && message.contains("API key"), "{message}");
    assert_eq!(server.seen().len(), 1, "a 401 is not retried");
}

#[tokio::test]
async fn vectors_of_the_wrong_length_are_an_error() {
    let server = Server::start(vec![Reply::WrongDimensions(8)]);
    let error =
        HttpEmbedder::new(config(HttpApi::OpenAi, &server)).unwrap().embed(&texts(&["x"])).await.unwrap_err();
    assert!(matches!(error, EmbedError::InvalidResponse { .. }), "{error:?}");
    assert!(error.to_string().contains("8 dimensions, 4 expected"), "{error}");
}

#[tokio::test]
async fn large_batches_are_split_by_size_and_refused_past_the_batch_size() {
    let server = Server::start(vec![Reply::Embeddings, Reply::Embeddings]);
    let mut config = config(HttpApi::OpenAi, &server);
    config.batch_size = 4;
    let embedder = HttpEmbedder::new(config).unwrap();
    assert_eq!(embedder.max_batch(), 4);
    let big = "x".repeat(MAX_REQUEST_BYTES / 2 + 1);
    let inputs = vec![big.clone(), "a".into(), big.clone()];
    let vectors = embedder.embed(&inputs).await.unwrap();
    assert_eq!(vectors, [expected(&big), expected("a"), expected(&big)]);
    let sizes: Vec<usize> = server.seen().iter().map(|s| s.body["input"].as_array().unwrap().len()).collect();
    assert_eq!(sizes, [2, 1], "two requests, each under the request size bound");
    let error = embedder.embed(&texts(&["1", "2", "3", "4", "5"])).await.unwrap_err();
    assert!(matches!(error, EmbedError::BatchTooLarge { len: 5, max: 4 }), "{error:?}");
}

#[test]
fn a_bad_configuration_is_refused_before_any_request() {
    let base = HttpEmbedderConfig::new(HttpApi::OpenAi, "m", 4);
    let cases: Vec<(HttpEmbedderConfig, &str)> = vec![
        (HttpEmbedderConfig { url: "ftp://x/v1/embeddings".into(), ..base.clone() }, "not http or https"),
        (HttpEmbedderConfig { url: "not a url".into(), ..base.clone() }, "url"),
        (HttpEmbedderConfig { model: " ".into(), ..base.clone() }, "no model"),
        (HttpEmbedderConfig { dimensions: 0, ..base.clone() }, "dimensions"),
        (HttpEmbedderConfig { batch_size: 0, ..base.clone() }, "batch_size"),
        (HttpEmbedderConfig { timeout: Duration::ZERO, ..base }, "timeout"),
    ];
    for (config, expected) in cases {
        let error = HttpEmbedder::new(config).unwrap_err().to_string();
        assert!(error.contains(expected), "{error} should mention {expected}");
    }
}
