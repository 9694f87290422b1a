//! [`Pipeline`]: what the four indexing consumers share — the env's bindings, the coordinators' host,
//! the chunker, the file filter, the cache of commit listings — and [`PipelineOptions`].

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use ledge_bucket::Bucket;
use ledge_chunker::{Chunker, ChunkerConfig};
use ledge_durable::{DurableHost, HostConfig, HostRun, Namespace};
use ledge_embed::Embedder;
use ledge_env::{BucketBinding, Env, KvBinding, QueueBinding};
use ledge_git::{
    BlobId, CommitId, Credentials, FileFilter, FilterOptions, IgnoreRules, Mirror, MirrorOptions,
};
use ledge_github::EventRecorder;
use ledge_keyword::KeywordIndex;
use ledge_queue::{BatchHandler, QueueProducer};
use ledge_vector::VectorIndex;
use tokio::sync::{OnceCell, watch};

use crate::error::blocking;
use crate::{
    ArtifactStore, CoordinatorConfig, EmbeddingCache, EmbeddingGenerator, FileIndexer, GithubEventRouter,
    IndexingCoordinator, NAMESPACE, PipelineError, Progress, RepoRef, RepositoryAccounts, RepositoryIndexer,
    Request, Response,
};

/// How the pipeline behaves. `Default` gives ledge's defaults.
#[derive(Clone)]
pub struct PipelineOptions {
    /// Whether repositories may be fetched from this machine's disk (local paths, `file://`). Default
    /// false: on a server, a clone URL that arrived in a request must not read the server's own disk.
    /// `ledge index <path>` and tests turn it on.
    pub allow_local_sources: bool,
    /// Whether plain `http://` sources are allowed. Default false.
    pub allow_plain_http: bool,
    /// Which files are indexed (vendored, generated, binary, too large, `.gitignore`d are skipped).
    pub filter: FilterOptions,
    /// How files are cut into chunks (the chunker's defaults by default).
    pub chunker: ChunkerConfig,
    /// Files per `file-indexing` batch. Default 50.
    pub files_per_batch: usize,
    /// How long an embedding stays in the `embedding-cache` KV. Default 1 hour (at least 60 s).
    pub embedding_cache_ttl: Duration,
    /// The lease of a claimed batch; `None` (the default): the `file-indexing` consumer's visibility
    /// timeout, so a batch held by a dead process is handed out again about when its message is.
    pub claim_lease: Option<Duration>,
    /// The coordinators' limits.
    pub coordinator: CoordinatorConfig,
    /// The platform's records of repositories: each one's access token (else `LEDGE_GITHUB_TOKEN`)
    /// and its organization's indexed-files limit. `None` (the default): the environment's token
    /// for every repository, no limit.
    pub accounts: Option<Arc<dyn RepositoryAccounts>>,
    /// Test breakpoints; `None` in the product.
    #[doc(hidden)]
    pub hooks: Option<Arc<dyn PipelineHooks>>,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            allow_local_sources: false,
            allow_plain_http: false,
            filter: FilterOptions::default(),
            chunker: ChunkerConfig::default(),
            files_per_batch: 50,
            embedding_cache_ttl: Duration::from_secs(3600),
            claim_lease: None,
            coordinator: CoordinatorConfig::default(),
            accounts: None,
            hooks: None,
        }
    }
}

impl std::fmt::Debug for PipelineOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineOptions")
            .field("allow_local_sources", &self.allow_local_sources)
            .field("allow_plain_http", &self.allow_plain_http)
            .field("files_per_batch", &self.files_per_batch)
            .field("embedding_cache_ttl", &self.embedding_cache_ttl)
            .field("claim_lease", &self.claim_lease)
            .field("accounts", &self.accounts)
            .finish_non_exhaustive()
    }
}

/// Points where tests stop the pipeline (meilisearch-style breakpoints). Not for production use.
#[doc(hidden)]
#[async_trait]
pub trait PipelineHooks: Send + Sync + 'static {
    /// Called by the file-indexing consumer before it writes file `path` of a claimed batch.
    async fn before_file(&self, _repo: &RepoRef, _commit: &str, _path: &str) {}

    /// Called by the file-indexing consumer after a batch's writes (keyword commit, stale versions
    /// deleted), before it reports the batch complete.
    async fn before_complete(&self, _repo: &RepoRef, _commit: &str, _batch: &str) {}
}

/// Counters of what the pipeline did, for tests and metrics.
#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Files whose chunks were written.
    pub files_indexed: AtomicU64,
    /// Paths whose documents were removed (deleted, renamed away, or now skipped).
    pub files_removed: AtomicU64,
    /// Chunks embedded by the model (cache misses).
    pub chunks_embedded: AtomicU64,
    /// Chunks whose vector came from the embedding cache.
    pub chunks_cached: AtomicU64,
    /// `embedding-generation` messages acknowledged without work because no model is installed.
    pub embedding_messages_without_model: AtomicU64,
    /// `embedding-generation` messages whose file changed or disappeared before they ran.
    pub embedding_messages_stale: AtomicU64,
}

impl PipelineStats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// The durable-object host of the coordinators, started on first use.
struct Coordinators {
    namespace: Namespace<IndexingCoordinator>,
    run: Mutex<Option<HostRun>>,
}

/// What the indexing consumers share. Built once per process with [`Pipeline::open`]; the handlers
/// ([`Pipeline::github_events_handler`] …) hold an `Arc` of it. Opens nothing until a handler needs it.
pub struct Pipeline {
    pub(crate) env: Arc<Env>,
    pub(crate) options: PipelineOptions,
    pub(crate) claim_lease: Duration,
    /// This process's worker name in claims.
    pub(crate) worker: String,
    pub(crate) chunker: Arc<Chunker>,
    pub(crate) filter: Arc<FileFilter>,
    pub(crate) stats: PipelineStats,
    coordinators: OnceCell<Coordinators>,
    /// The runtime the coordinators' host runs on ([`Pipeline::home_coordinators_here`]).
    home: std::sync::OnceLock<tokio::runtime::Handle>,
    stop: watch::Sender<bool>,
    views: CommitViews,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").field("worker", &self.worker).field("options", &self.options).finish()
    }
}

impl Pipeline {
    /// The pipeline of this process over `env`. Cheap: bindings, the keyword index, the model and the
    /// coordinators' host are opened on first use.
    pub fn open(env: Arc<Env>, options: PipelineOptions) -> Result<Arc<Pipeline>, PipelineError> {
        if options.files_per_batch == 0 {
            return Err(PipelineError::invalid("files_per_batch", "must be at least 1"));
        }
        let claim_lease = match options.claim_lease {
            Some(lease) => lease,
            None => env.consumer_settings(QueueBinding::FileIndexing.name())?.visibility_timeout,
        };
        let claim_lease = claim_lease.clamp(Duration::from_secs(1), options.coordinator.max_lease);
        let filter = Arc::new(FileFilter::new(options.filter.clone()));
        let chunker = Chunker::new(options.chunker.clone())
            .map_err(|e| PipelineError::invalid("chunker", e.to_string()))?;
        Ok(Arc::new(Pipeline {
            env,
            claim_lease,
            worker: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            chunker: Arc::new(chunker),
            filter,
            options,
            stats: PipelineStats::default(),
            coordinators: OnceCell::new(),
            home: std::sync::OnceLock::new(),
            stop: watch::Sender::new(false),
            views: CommitViews::default(),
        }))
    }

    pub fn options(&self) -> &PipelineOptions {
        &self.options
    }

    pub fn stats(&self) -> &PipelineStats {
        &self.stats
    }

    /// The `github-events` handler: records every delivery with `recorder`, then routes the events that
    /// ask for indexing to `repository-indexing`.
    pub fn github_events_handler(self: &Arc<Self>, recorder: EventRecorder) -> Arc<dyn BatchHandler> {
        Arc::new(GithubEventRouter::new(self.clone(), recorder))
    }

    /// The `repository-indexing` handler.
    pub fn repository_indexing_handler(self: &Arc<Self>) -> Arc<dyn BatchHandler> {
        Arc::new(RepositoryIndexer::new(self.clone()))
    }

    /// The `file-indexing` handler.
    pub fn file_indexing_handler(self: &Arc<Self>) -> Arc<dyn BatchHandler> {
        Arc::new(FileIndexer::new(self.clone()))
    }

    /// The `embedding-generation` handler.
    pub fn embedding_generation_handler(self: &Arc<Self>) -> Arc<dyn BatchHandler> {
        Arc::new(EmbeddingGenerator::new(self.clone()))
    }

    /// The indexing progress of a repository, from its coordinator.
    pub async fn status(&self, repo: &RepoRef) -> Result<Progress, PipelineError> {
        match self.coordinator(repo, Request::Status).await? {
            Response::Status(progress) => Ok(progress),
            other => Err(PipelineError::UnexpectedResponse(format!("{other:?}"))),
        }
    }

    /// Stops the coordinators' host, letting calls in flight finish. Call after the consumers stopped.
    pub async fn shutdown(&self) {
        self.stop.send_replace(true);
        let run =
            self.coordinators.get().and_then(|c| c.run.lock().unwrap_or_else(PoisonError::into_inner).take());
        if let Some(run) = run {
            run.wait().await;
        }
    }

    /// Makes the calling task's runtime the one the coordinators' durable-object host runs on, when
    /// it starts — on the first call to a coordinator, not before (an idle process opens no durable
    /// storage). Without it, the host runs on the runtime of that first call. A process that calls
    /// the pipeline from several runtimes calls this from the one that lives longest — the consumers'.
    pub fn home_coordinators_here(&self) {
        let _ = self.home.set(tokio::runtime::Handle::current());
    }

    /// Sends `request` to the coordinator of `repo`.
    pub(crate) async fn coordinator(
        &self,
        repo: &RepoRef,
        request: Request,
    ) -> Result<Response, PipelineError> {
        let stub = self.coordinators().await?.namespace.stub_for_name(&repo.coordinator_name());
        Ok(stub.call(request).await?)
    }

    async fn coordinators(&self) -> Result<&Coordinators, PipelineError> {
        self.coordinators
            .get_or_try_init(|| async {
                let binding = ledge_env::DurableBinding::IndexingCoordinator;
                let storage = self.env.durable_storage(binding).await?;
                let host = DurableHost::new(storage, HostConfig::default());
                let config = self.options.coordinator;
                let namespace =
                    host.namespace(NAMESPACE, move |_| IndexingCoordinator::with_config(config))?;
                let mut stopped = self.stop.subscribe();
                let run = {
                    let _home = self.home.get().map(tokio::runtime::Handle::enter);
                    host.start(async move {
                        let _ = stopped.wait_for(|stop| *stop).await;
                    })?
                };
                Ok::<_, PipelineError>(Coordinators { namespace, run: Mutex::new(Some(run)) })
            })
            .await
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.env.config().data_dir.clone()
    }

    /// The bare mirror of `repo`.
    pub(crate) fn mirror(&self, repo: &RepoRef) -> Mirror {
        let options = MirrorOptions {
            allow_local_sources: self.options.allow_local_sources,
            allow_plain_http: self.options.allow_plain_http,
            max_blob_size: self.options.filter.max_file_size,
            ..MirrorOptions::default()
        };
        Mirror::new(repo.mirror_dir(&self.data_dir()), options)
    }

    /// Credentials for fetching `repo` over https: the access token stored for it by the platform,
    /// opened now and dropped after the fetch; else `LEDGE_GITHUB_TOKEN`, if set. Never logged, never
    /// written to the mirror (the fetch hands it to the transport through a callback).
    pub(crate) async fn credentials(&self, repo: &RepoRef) -> Result<Option<Credentials>, PipelineError> {
        if let Some(accounts) = &self.options.accounts
            && let Some(token) = accounts.access_token(repo).await.map_err(PipelineError::Accounts)?
        {
            return Ok(Some(Credentials::github_token(token.0)));
        }
        Ok(self.env.secrets().github_token().map(|token| Credentials::github_token(token.expose())))
    }

    pub(crate) async fn artifacts(&self) -> Result<ArtifactStore, PipelineError> {
        Ok(ArtifactStore::new(self.env.bucket(BucketBinding::Artifacts).await?))
    }

    pub(crate) async fn archives(&self) -> Result<Arc<dyn Bucket>, PipelineError> {
        Ok(self.env.bucket(BucketBinding::Archives).await?)
    }

    pub(crate) async fn keyword(&self) -> Result<Arc<KeywordIndex>, PipelineError> {
        Ok(self.env.keyword_index().await?)
    }

    pub(crate) async fn vectors(&self) -> Result<Arc<dyn VectorIndex>, PipelineError> {
        Ok(self.env.vector_index().await?)
    }

    pub(crate) async fn embedder(&self) -> Result<Option<Arc<dyn Embedder>>, PipelineError> {
        Ok(self.env.embedder().await?)
    }

    /// The embedding cache, where `[embedding] cache` uses one (see [`ledge_config::EmbeddingConfig::uses_cache`]).
    pub(crate) async fn embedding_cache(&self) -> Result<Option<EmbeddingCache>, PipelineError> {
        if !self.env.config().embedding.uses_cache() {
            return Ok(None);
        }
        let kv = self.env.kv(KvBinding::EmbeddingCache).await?;
        Ok(Some(EmbeddingCache::new(kv, self.options.embedding_cache_ttl)))
    }

    pub(crate) async fn queue(&self, binding: QueueBinding) -> Result<Arc<dyn QueueProducer>, PipelineError> {
        Ok(self.env.queue(binding).await?)
    }

    /// The files and `.gitignore` rules of `commit` in `mirror`, cached for the batches that follow.
    pub(crate) async fn commit_view(
        &self,
        mirror: &Mirror,
        commit: CommitId,
    ) -> Result<Arc<CommitView>, PipelineError> {
        self.views.get(mirror, commit).await
    }
}

/// What the file-indexing consumer needs to know of a commit for every file of its batches.
#[derive(Debug)]
pub(crate) struct CommitView {
    /// Path → (blob, size) of every regular or executable file.
    pub files: HashMap<String, (BlobId, u64)>,
    pub rules: IgnoreRules,
}

/// The most recent commit views (two: a job and the one superseding it; a 100,000-file listing is a
/// few MB).
#[derive(Default)]
struct CommitViews {
    cells: Mutex<VecDeque<(ViewKey, ViewCell)>>,
}

type ViewKey = (PathBuf, CommitId);
type ViewCell = Arc<OnceCell<Arc<CommitView>>>;

const VIEWS_KEPT: usize = 2;

impl CommitViews {
    async fn get(&self, mirror: &Mirror, commit: CommitId) -> Result<Arc<CommitView>, PipelineError> {
        let key = (mirror.path().to_owned(), commit);
        let cell = {
            let mut cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
            match cells.iter().find(|(k, _)| *k == key) {
                Some((_, cell)) => cell.clone(),
                None => {
                    let cell = Arc::new(OnceCell::new());
                    cells.push_front((key, cell.clone()));
                    cells.truncate(VIEWS_KEPT);
                    cell
                }
            }
        };
        let mirror = mirror.clone();
        let view = cell
            .get_or_try_init(|| async move {
                blocking(move || {
                    let listing = mirror.list_files(commit)?;
                    let rules = mirror.ignore_rules(commit)?;
                    let files = listing.files.into_iter().map(|f| (f.path, (f.blob_id, f.size))).collect();
                    Ok(Arc::new(CommitView { files, rules }))
                })
                .await
            })
            .await?;
        Ok(view.clone())
    }
}
