//! The built-in configuration ([`DEFAULT_TOML`]) and the defaults of a binding a file declares anew.

use std::path::PathBuf;
use std::time::Duration;

use crate::schema::{
    BucketConfig, BucketDriver, DatabaseConfig, DatabaseUrl, Durability, DurableObjectConfig,
    DurableObjectDriver, EmbeddingCacheMode, EmbeddingConfig, EmbeddingProvider, KvConfig, KvDriver,
    LogFormat, Metric, NotificationsConfig, PlanConfig, QueueConfig, QueueDriver, ServerConfig,
    StorageConfig, VectorIndexConfig, VectorIndexDriver,
};

/// The default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = ".ledge";

/// The built-in configuration: every binding ledge uses, on the embedded drivers, under one data directory.
///
/// It is read first, exactly like a ledge.toml; a user's file is then merged over it **field by field**: a
/// binding the file declares that is also declared here keeps every setting the file does not mention, and
/// a binding declared only in the file starts from the defaults of its kind (the contract's values: a queue
/// has `max_batch_size = 10`, `max_batch_timeout = "5s"`, `max_retries = 3`, `retry_delay = 0`, no dead-letter
/// queue, autoscaled concurrency, `delivery_delay = 0`, `message_retention = "4d"`, `visibility_timeout = "5m"`;
/// a bucket lives in `buckets/<name>`; a vector index has 256 dimensions and the cosine metric).
/// Bindings cannot be removed: the application uses every one declared here.
pub const DEFAULT_TOML: &str = r#"# ledge's built-in configuration.
# data_dir = ".ledge"   # relative to the working directory; --data-dir > LEDGE_DATA_DIR > data_dir > .ledge

[server]
host = "127.0.0.1"
port = 8787
body_limit = "1MiB"
webhook_body_limit = "25MiB"    # GitHub's maximum payload
request_timeout = "30s"
shutdown_grace = "30s"
log_format = "text"
log_filter = "info"
cors_origins = ""               # browser origins allowed to call the API, comma-separated ("*": any)
caller_burst = 300              # requests a user or an API key may make at once (per process) ...
caller_refill = "100ms"         # ... then one more per interval (429 with Retry-After)

[storage]
durability = "process"

[database]
url = "sqlite://ledge.db"

[notifications]
allow_private_targets = false   # true: webhooks may target private, loopback and link-local hosts
delivery_timeout = "10s"
smtp_url = ""                   # email: "smtps://[user@]host", "smtp://[user@]host:587" (STARTTLS) or "smtp://host:25?tls=none";
                                # the password is LEDGE_SMTP_PASSWORD
email_from = ""                 # the From: of notification emails, e.g. "ledge <ledge@example.com>"

[buckets.archives]
driver = "local"
path = "buckets/archives"

[buckets.artifacts]
driver = "local"
path = "buckets/artifacts"

[buckets.documents]
driver = "local"
path = "buckets/documents"

[buckets.profile-documents]
driver = "local"
path = "buckets/profile-documents"

[buckets.recordings]
driver = "local"
path = "buckets/recordings"

[kv.embedding-cache]
driver = "sqlite"

[kv.sessions]
driver = "sqlite"

# Webhook events: cheap to handle and bursty, so large batches (one claim, one commit for up to
# 100 deliveries); a partial batch waits at most 50 ms (a push must be searchable within 2 s).
[queues.github-events]
driver = "sqlite"
max_batch_size = 100
max_batch_timeout = "50ms"
max_retries = 5
retry_delay = "5s"
dead_letter_queue = "github-events-dlq"

# One repository per message: a clone and a diff are heavy, so few at once and a long lease.
[queues.repository-indexing]
driver = "sqlite"
max_batch_size = 1
max_batch_timeout = 0
max_retries = 3
retry_delay = "30s"
dead_letter_queue = "repository-indexing-dlq"
max_concurrency = 2
visibility_timeout = "15m"

# Each message is already a batch of 50 files (claimed from the repository's coordinator): a few
# messages per claim, and none waits for company, so a small push is indexed at once. Parsing is
# CPU-bound: two batches at once keep two cores busy, and more only hold more files and parse trees
# in memory (a full index of 10,000 files peaked ~15 MB higher with four).
[queues.file-indexing]
driver = "sqlite"
max_batch_size = 4
max_batch_timeout = 0
max_retries = 3
retry_delay = "10s"
dead_letter_queue = "file-indexing-dlq"
max_concurrency = 2

# Each message names up to 128 chunks of one file: a batch of 10 messages is up to 1,280 texts,
# embedded in one call — large enough that the per-call cost vanishes, small enough that two batches
# at once hold a few MB of texts and vectors (100 messages, 12,800 texts, held tens of MB).
# A partial batch waits at most 100 ms: during a full index the queue fills faster than that, and a
# small push is embedded at once.
[queues.embedding-generation]
driver = "sqlite"
max_batch_size = 10
max_batch_timeout = "100ms"
max_retries = 3
retry_delay = "30s"
dead_letter_queue = "embedding-generation-dlq"
max_concurrency = 2

# One bug report per message (a recording can be 100 MB).
[queues.bug-analysis]
driver = "sqlite"
max_batch_size = 1
max_batch_timeout = 0
max_retries = 3
retry_delay = "30s"
dead_letter_queue = "bug-analysis-dlq"
max_concurrency = 2
visibility_timeout = "10m"

# Outgoing notifications: retried patiently, the receiver may be down.
[queues.notifications]
driver = "sqlite"
max_batch_size = 10
max_batch_timeout = "5s"
max_retries = 5
retry_delay = "1m"
dead_letter_queue = "notifications-dlq"

# Dead-letter queues: queues like any other, with the contract's defaults and no dead-letter queue of their own.
[queues.github-events-dlq]
[queues.repository-indexing-dlq]
[queues.file-indexing-dlq]
[queues.embedding-generation-dlq]
[queues.bug-analysis-dlq]
[queues.notifications-dlq]

[durable_objects.ChatSession]
driver = "sqlite"

[durable_objects.IndexingCoordinator]
driver = "sqlite"

[vector_index.code]
driver = "sqlite"
dimensions = 256
metric = "cosine"

# Which model embeds chunks and queries: "local" (the static model `ledge model pull` installs), "voyage"
# (Voyage AI; LEDGE_VOYAGE_API_KEY) or "openai" (OpenAI or any OpenAI-compatible server such as Ollama or
# vLLM; LEDGE_OPENAI_API_KEY if it needs one). Vectors must have the code index's `dimensions`.
[embedding]
provider = "local"
model = ""                  # e.g. "voyage-code-3", "text-embedding-3-small", "nomic-embed-text"
url = ""                    # "" = the provider's own endpoint; e.g. "http://localhost:11434/v1/embeddings"
request_dimensions = false  # ask the API for `dimensions` (models with several output sizes)
batch_size = 128
timeout = "30s"
max_retries = 5
cache = "auto"              # the embedding-cache KV: "auto" = for the HTTP providers, not the local model; "on"; "off"
# Billing plans: what an organization may have and do ("unlimited", or a number). An organization
# without a subscription is on `free`; `stripe_price` maps a Stripe price id to its plan.
[plans.free]
repositories = 3
indexed_files = 10000
searches_per_day = 200
chat_messages_per_day = 50
stripe_price = ""

[plans.pro]
repositories = 25
indexed_files = 250000
searches_per_day = 5000
chat_messages_per_day = 1000
stripe_price = ""

[plans.team]
repositories = 200
indexed_files = 2000000
searches_per_day = 50000
chat_messages_per_day = 10000
stripe_price = ""
"#;

impl ServerConfig {
    /// The values [`DEFAULT_TOML`] spells out, before it is read.
    pub(crate) fn initial() -> Self {
        ServerConfig {
            host: "127.0.0.1".to_owned(),
            port: 8787,
            body_limit: 1 << 20,
            webhook_body_limit: 25 << 20,
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            log_format: LogFormat::Text,
            log_filter: "info".to_owned(),
            cors_origins: Vec::new(),
            caller_burst: 300,
            caller_refill: Duration::from_millis(100),
        }
    }
}

impl StorageConfig {
    pub(crate) fn initial() -> Self {
        StorageConfig { durability: Durability::Process }
    }
}

impl EmbeddingConfig {
    pub(crate) fn initial() -> Self {
        EmbeddingConfig {
            provider: EmbeddingProvider::Local,
            model: String::new(),
            url: String::new(),
            request_dimensions: false,
            batch_size: 128,
            timeout: Duration::from_secs(30),
            max_retries: 5,
            cache: EmbeddingCacheMode::Auto,
        }
    }
}

impl DatabaseConfig {
    pub(crate) fn initial() -> Self {
        DatabaseConfig { url: DatabaseUrl::Sqlite(PathBuf::from("ledge.db")) }
    }
}

impl NotificationsConfig {
    pub(crate) fn initial() -> Self {
        NotificationsConfig {
            allow_private_targets: false,
            delivery_timeout: Duration::from_secs(10),
            smtp: None,
            email_from: String::new(),
        }
    }
}

impl BucketConfig {
    pub(crate) fn declared(name: &str) -> Self {
        BucketConfig { driver: BucketDriver::Local, path: PathBuf::from("buckets").join(name) }
    }
}

impl KvConfig {
    pub(crate) fn declared(_name: &str) -> Self {
        KvConfig { driver: KvDriver::Sqlite }
    }
}

impl QueueConfig {
    /// The contract's defaults (bindings.md §1).
    pub(crate) fn declared(_name: &str) -> Self {
        QueueConfig {
            driver: QueueDriver::Sqlite,
            max_batch_size: 10,
            max_batch_timeout: Duration::from_secs(5),
            max_retries: 3,
            retry_delay: Duration::ZERO,
            dead_letter_queue: None,
            max_concurrency: None,
            delivery_delay: Duration::ZERO,
            message_retention: Duration::from_secs(4 * 86_400),
            visibility_timeout: Duration::from_secs(5 * 60),
        }
    }
}

impl DurableObjectConfig {
    pub(crate) fn declared(_name: &str) -> Self {
        DurableObjectConfig { driver: DurableObjectDriver::Sqlite }
    }
}

impl PlanConfig {
    /// A plan a file declares anew: nothing allowed until its limits are set.
    pub(crate) fn declared(_name: &str) -> Self {
        PlanConfig {
            repositories: Some(0),
            indexed_files: Some(0),
            searches_per_day: Some(0),
            chat_messages_per_day: Some(0),
            stripe_price: None,
        }
    }
}

impl VectorIndexConfig {
    pub(crate) fn declared(_name: &str) -> Self {
        VectorIndexConfig { driver: VectorIndexDriver::Sqlite, dimensions: 256, metric: Metric::Cosine }
    }
}
