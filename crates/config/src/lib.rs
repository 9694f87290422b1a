//! ledge's configuration: loads `ledge.toml` over the built-in defaults, applies `LEDGE_*` environment
//! overrides, reads secrets from the environment, validates everything, and renders the result.
//!
//! Layout:
//! * [`load`] (`load.rs`) — the order of the layers, the data directory, path resolution, cross-checks;
//! * `defaults.rs` — [`DEFAULT_TOML`], the built-in configuration, and the defaults of a new binding;
//! * `toml_file.rs` — reads one TOML document into the configuration, locating every problem;
//! * `env_overrides.rs` — `LEDGE_*` variables, shorthands and the nested `LEDGE_<SECTION>__<NAME>__<KEY>`;
//! * `settings.rs` — each section's keys, their parsing and range checks, and their TOML text;
//! * `schema.rs` — the typed result, [`Config`]; `render.rs` — [`Config::render`];
//! * `secrets.rs` — [`Secret`], [`SecretName`], the secrets file; `units.rs` — durations and sizes;
//! * `error.rs` — [`ConfigError`] and [`ConfigErrors`].
//!
//! Invariant: this crate describes what is configured and knows nothing of the drivers' code; a value that
//! reaches a [`Config`] has passed every check (a driver never re-validates ranges), and a secret is never
//! read from ledge.toml nor printed.
//!
//! ```
//! let options = ledge_config::LoadOptions {
//!     data_dir: Some("/var/lib/ledge".into()),
//!     working_dir: Some("/var/lib/ledge".into()),
//!     ..Default::default()
//! }
//! .with_env([("LEDGE_QUEUES__FILE_INDEXING__MAX_BATCH_SIZE", "50")]);
//! let config = ledge_config::load(options).expect("valid configuration");
//! assert_eq!(config.queue("file-indexing").map(|queue| queue.max_batch_size), Some(50));
//! ```

mod defaults;
mod env_overrides;
mod error;
mod load;
mod paths;
mod render;
mod schema;
mod secrets;
mod settings;
mod toml_file;
mod units;

pub use defaults::{DEFAULT_DATA_DIR, DEFAULT_TOML};
pub use env_overrides::{CONFIG_VARIABLE, DATA_DIR_VARIABLE, PLATFORM_PORT_VARIABLE, known_variables};
pub use error::{ConfigError, ConfigErrors, ErrorKind, Location};
pub use load::{CONFIG_FILE_NAME, LoadOptions, load};
pub use schema::{
    BucketConfig, BucketDriver, Config, DatabaseConfig, DatabaseUrl, Durability, DurableObjectConfig,
    DurableObjectDriver, EmbeddingCacheMode, EmbeddingConfig, EmbeddingProvider, KvConfig, KvDriver,
    LogFormat, Metric, NotificationsConfig, PlanConfig, QueueConfig, QueueDriver, ServerConfig, SmtpSecurity,
    SmtpServer, StorageConfig, VectorIndexConfig, VectorIndexDriver,
};
pub use secrets::{SECRETS_FILE_VARIABLE, Secret, SecretName, SecretSource, Secrets};
