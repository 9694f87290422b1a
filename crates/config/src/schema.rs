//! The resolved configuration: typed values (durations, byte sizes, absolute paths, enums) for the server, the
//! storage, the relational store and every declared binding.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::Location;
use crate::secrets::Secrets;

/// The whole resolved configuration. Built by [`crate::load`] (or [`Config::defaults`]); rendered back as
/// TOML by [`Config::render`].
#[derive(Debug, Clone)]
pub struct Config {
    /// The file that was read, if any (absolute).
    pub file: Option<PathBuf>,
    /// Every relative path of the configuration is resolved against this directory (absolute).
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub database: DatabaseConfig,
    pub notifications: NotificationsConfig,
    /// `[buckets.<name>]`
    pub buckets: BTreeMap<String, BucketConfig>,
    /// `[kv.<name>]`
    pub kv: BTreeMap<String, KvConfig>,
    /// `[queues.<name>]`
    pub queues: BTreeMap<String, QueueConfig>,
    /// `[durable_objects.<ClassName>]`
    pub durable_objects: BTreeMap<String, DurableObjectConfig>,
    /// `[vector_index.<name>]`
    pub vector_index: BTreeMap<String, VectorIndexConfig>,
    pub embedding: EmbeddingConfig,
    /// `[plans.<name>]`: the billing plans and their limits (`free` is the plan of an organization
    /// without a subscription).
    pub plans: BTreeMap<String, PlanConfig>,
    pub secrets: Secrets,
    /// Where each value that did not come from the built-in defaults was set, by dotted key.
    pub(crate) origins: BTreeMap<String, Location>,
}

impl Config {
    pub fn bucket(&self, name: &str) -> Option<&BucketConfig> {
        self.buckets.get(name)
    }

    pub fn kv_namespace(&self, name: &str) -> Option<&KvConfig> {
        self.kv.get(name)
    }

    pub fn queue(&self, name: &str) -> Option<&QueueConfig> {
        self.queues.get(name)
    }

    pub fn durable_object(&self, class_name: &str) -> Option<&DurableObjectConfig> {
        self.durable_objects.get(class_name)
    }

    pub fn vector_index(&self, name: &str) -> Option<&VectorIndexConfig> {
        self.vector_index.get(name)
    }

    pub fn plan(&self, name: &str) -> Option<&PlanConfig> {
        self.plans.get(name)
    }

    /// Where the setting at `key` (e.g. `server.port`) was set: `None` for a built-in default.
    pub fn origin(&self, key: &str) -> Option<&Location> {
        self.origins.get(key)
    }
}

/// `[server]`: the HTTP listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// An IP address or a host name.
    pub host: String,
    /// 0 asks the system for a free port.
    pub port: u16,
    /// Default request body limit, bytes.
    pub body_limit: u64,
    /// Body limit of the webhook routes, bytes (GitHub's maximum payload is 25 MiB).
    pub webhook_body_limit: u64,
    pub request_timeout: Duration,
    /// How long shutdown waits for requests and consumers in flight.
    pub shutdown_grace: Duration,
    pub log_format: LogFormat,
    /// A `tracing` filter directive, e.g. `info,ledge_queue=debug` (`LEDGE_LOG`).
    pub log_filter: String,
    /// Origins (`https://app.example.com`, `chrome-extension://<id>`) whose pages may call the API
    /// from a browser (CORS); `*` allows any. Empty: no cross-origin access.
    pub cors_origins: Vec<String>,
    /// Requests an authenticated caller (a user or an API key) may make at once, counted per
    /// process; past them, one more per `caller_refill` (429 with `Retry-After`).
    pub caller_burst: u32,
    pub caller_refill: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// `[notifications]`: how notifications are delivered to members' webhooks and email addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationsConfig {
    /// Allows targets on private, loopback, link-local and unique-local addresses (receivers on the
    /// server's own network). Off: a member cannot make the server call its neighbours.
    pub allow_private_targets: bool,
    /// Longest a delivery may take, connection included.
    pub delivery_timeout: Duration,
    /// The mail server email notifications go through (`smtp_url`); none: email is not sent.
    pub smtp: Option<SmtpServer>,
    /// The `From:` of notification emails, `address` or `Name <address>`.
    pub email_from: String,
}

/// A mail server, from `smtp_url`: `smtps://[user@]host[:465]`, `smtp://[user@]host[:587]` (STARTTLS
/// required) or `smtp://[user@]host[:25]?tls=none`. Its password is the secret `LEDGE_SMTP_PASSWORD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpServer {
    pub security: SmtpSecurity,
    pub host: String,
    pub port: u16,
    /// Who to log in as (SMTP AUTH); none: no login.
    pub username: Option<String>,
}

/// How the connection to the mail server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// TLS from the first byte (`smtps://`, port 465).
    Tls,
    /// Plain TCP upgraded with STARTTLS, which the server must offer (`smtp://`, port 587).
    StartTls,
    /// No encryption (`?tls=none`): for a relay on this machine or its own network only.
    None,
}

impl SmtpServer {
    /// The `smtp_url` that describes it.
    pub fn url(&self) -> String {
        let scheme = if self.security == SmtpSecurity::Tls { "smtps" } else { "smtp" };
        let user =
            self.username.as_deref().map(|u| format!("{}@", u.replace('@', "%40"))).unwrap_or_default();
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        let query = if self.security == SmtpSecurity::None { "?tls=none" } else { "" };
        format!("{scheme}://{user}{host}:{}{query}", self.port)
    }
}

/// `[storage]`: what every embedded driver shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    pub durability: Durability,
}

/// How much a committed write survives; maps one to one onto `ledge_sqlite::Durability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Survives a crash of the process (`"process"`).
    Process,
    /// Survives a power loss too, at one fsync per group commit (`"power-loss"`).
    PowerLoss,
}

/// `[database]`: the relational store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseConfig {
    pub url: DatabaseUrl,
}

/// Where the relational store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://PATH`: a SQLite database file (absolute; a relative path resolves against the data directory).
    Sqlite(PathBuf),
}

/// `[buckets.<name>]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketConfig {
    pub driver: BucketDriver,
    /// The bucket's directory (absolute). Default: `buckets/<name>` under the data directory.
    pub path: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketDriver {
    /// Objects as files under [`BucketConfig::path`] (`"local"`).
    Local,
}

/// `[kv.<name>]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvConfig {
    pub driver: KvDriver,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvDriver {
    /// The embedded driver (`"sqlite"`).
    Sqlite,
}

/// `[queues.<name>]`: the queue and the settings of its consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    pub driver: QueueDriver,
    /// 1..=100, default 10.
    pub max_batch_size: u32,
    /// 0..=60 s, default 5 s.
    pub max_batch_timeout: Duration,
    /// 0..=100, default 3.
    pub max_retries: u32,
    /// Delay before a retried message is redelivered when `retry()` names none; 0..=12 h, default 0.
    pub retry_delay: Duration,
    /// Where messages go once out of retries; `None`: they are dropped. Names a declared queue, not itself.
    pub dead_letter_queue: Option<String>,
    /// Batches handled at once, 1..=250; `None` (`"auto"`): the consumer scales itself.
    pub max_concurrency: Option<u32>,
    /// Producer's default delivery delay; 0..=12 h, default 0.
    pub delivery_delay: Duration,
    /// How long an undelivered message is kept; 60 s..=14 d, default 4 d.
    pub message_retention: Duration,
    /// ledge extension: lease of a delivered batch before it is redelivered; (0, 12 h], default 5 min.
    pub visibility_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueDriver {
    /// The embedded driver (`"sqlite"`).
    Sqlite,
}

/// `[durable_objects.<ClassName>]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurableObjectConfig {
    pub driver: DurableObjectDriver,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurableObjectDriver {
    /// In-process actors with SQLite storage (`"sqlite"`).
    Sqlite,
}

/// `[vector_index.<name>]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorIndexConfig {
    pub driver: VectorIndexDriver,
    /// 1..=1536.
    pub dimensions: u32,
    pub metric: Metric,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorIndexDriver {
    /// The embedded driver (`"sqlite"`).
    Sqlite,
}

/// How a vector index scores a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Higher is closer (`"cosine"`).
    Cosine,
    /// Lower is closer (`"euclidean"`).
    Euclidean,
    /// Lower is closer (`"dot-product"`).
    DotProduct,
}

/// `[embedding]`: which model embeds chunks and queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingConfig {
    pub provider: EmbeddingProvider,
    /// The provider's model name (`voyage-code-3`, `text-embedding-3-small`, `nomic-embed-text`…); required
    /// for an HTTP provider, unused by `local`.
    pub model: String,
    /// The endpoint (`…/v1/embeddings`); empty: the provider's own.
    pub url: String,
    /// Ask the API for the vector index's dimensions (for models with several output sizes).
    pub request_dimensions: bool,
    /// Texts per request, 1..=1000; default 128.
    pub batch_size: u32,
    /// One request's timeout, 1 s..=10 min; default 30 s.
    pub timeout: Duration,
    /// Retries of a request that timed out, failed to connect or got 408, 429 or 5xx; 0..=20, default 5.
    pub max_retries: u32,
    /// Whether vectors are kept in the `embedding-cache` KV namespace and looked up before embedding.
    pub cache: EmbeddingCacheMode,
}

impl EmbeddingConfig {
    /// Whether the embedding cache is used: `auto` means for the HTTP providers only (a request costs
    /// money and tens of milliseconds; the local model computes a vector in microseconds, less than a
    /// cache lookup and write cost).
    pub fn uses_cache(&self) -> bool {
        match self.cache {
            EmbeddingCacheMode::Auto => self.provider != EmbeddingProvider::Local,
            EmbeddingCacheMode::On => true,
            EmbeddingCacheMode::Off => false,
        }
    }
}

/// `[embedding] cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddingCacheMode {
    /// On for the HTTP providers, off for the local model.
    Auto,
    On,
    Off,
}

/// Where embeddings come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddingProvider {
    /// The static model installed under `<data_dir>/models` by `ledge model pull` (`"local"`).
    Local,
    /// Voyage AI's embeddings API (`"voyage"`; key: `LEDGE_VOYAGE_API_KEY`).
    Voyage,
    /// OpenAI's embeddings API or any server speaking it: Ollama, vLLM… (`"openai"`; key, if the server
    /// needs one: `LEDGE_OPENAI_API_KEY`).
    OpenAi,
}

/// `[plans.<name>]`: what an organization on the plan may have and do. `None` (`"unlimited"`): no
/// limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanConfig {
    /// Repositories connected at once.
    pub repositories: Option<u64>,
    /// Files indexed across the organization's repositories.
    pub indexed_files: Option<u64>,
    /// Searches per UTC day.
    pub searches_per_day: Option<u64>,
    /// Chat messages per UTC day.
    pub chat_messages_per_day: Option<u64>,
    /// The Stripe price id (`price_…`) a subscription to this plan carries; empty: none (the plan is
    /// not sold through Stripe, or only named in the checkout's `metadata.plan`).
    pub stripe_price: Option<String>,
}

/// The words each enum is written as in ledge.toml.
pub(crate) trait Keyword: Sized + Copy + 'static {
    /// Every value with its word, in the order error messages list them.
    const WORDS: &'static [(Self, &'static str)];

    fn word(self) -> &'static str
    where
        Self: PartialEq,
    {
        Self::WORDS.iter().find(|(value, _)| *value == self).map_or("?", |(_, word)| *word)
    }
}

impl Keyword for LogFormat {
    const WORDS: &'static [(Self, &'static str)] = &[(LogFormat::Text, "text"), (LogFormat::Json, "json")];
}

impl Keyword for Durability {
    const WORDS: &'static [(Self, &'static str)] =
        &[(Durability::Process, "process"), (Durability::PowerLoss, "power-loss")];
}

impl Keyword for BucketDriver {
    const WORDS: &'static [(Self, &'static str)] = &[(BucketDriver::Local, "local")];
}

impl Keyword for KvDriver {
    const WORDS: &'static [(Self, &'static str)] = &[(KvDriver::Sqlite, "sqlite")];
}

impl Keyword for QueueDriver {
    const WORDS: &'static [(Self, &'static str)] = &[(QueueDriver::Sqlite, "sqlite")];
}

impl Keyword for DurableObjectDriver {
    const WORDS: &'static [(Self, &'static str)] = &[(DurableObjectDriver::Sqlite, "sqlite")];
}

impl Keyword for VectorIndexDriver {
    const WORDS: &'static [(Self, &'static str)] = &[(VectorIndexDriver::Sqlite, "sqlite")];
}

impl Keyword for EmbeddingCacheMode {
    const WORDS: &'static [(Self, &'static str)] = &[
        (EmbeddingCacheMode::Auto, "auto"),
        (EmbeddingCacheMode::On, "on"),
        (EmbeddingCacheMode::Off, "off"),
    ];
}

impl Keyword for EmbeddingProvider {
    const WORDS: &'static [(Self, &'static str)] = &[
        (EmbeddingProvider::Local, "local"),
        (EmbeddingProvider::Voyage, "voyage"),
        (EmbeddingProvider::OpenAi, "openai"),
    ];
}

impl Keyword for Metric {
    const WORDS: &'static [(Self, &'static str)] =
        &[(Metric::Cosine, "cosine"), (Metric::Euclidean, "euclidean"), (Metric::DotProduct, "dot-product")];
}

macro_rules! display_as_keyword {
    ($($ty:ty),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.word())
            }
        }
    )*};
}

display_as_keyword!(
    LogFormat,
    Durability,
    BucketDriver,
    KvDriver,
    QueueDriver,
    DurableObjectDriver,
    VectorIndexDriver,
    Metric,
    EmbeddingProvider
);
