//! Loading: the built-in defaults, then ledge.toml, then the environment, then the secrets; then paths are
//! resolved against the data directory and the cross-references between queues are checked.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::defaults::{DEFAULT_DATA_DIR, DEFAULT_TOML};
use crate::env_overrides::{CONFIG_VARIABLE, DATA_DIR_VARIABLE, apply_env};
use crate::error::{ConfigError, ConfigErrors, ErrorKind, Location};
use crate::paths::absolute;
use crate::schema::{
    Config, DatabaseConfig, DatabaseUrl, EmbeddingConfig, EmbeddingProvider, NotificationsConfig,
    ServerConfig, StorageConfig,
};
use crate::secrets::{Secrets, read_secrets};
use crate::toml_file::{FileDataDir, TomlFile};

/// The name of the configuration file looked for in the working directory.
pub const CONFIG_FILE_NAME: &str = "ledge.toml";

/// What [`load`] reads besides the files: the command line's choices and the environment.
#[derive(Clone, Default)]
pub struct LoadOptions {
    /// `--config PATH`; beats `LEDGE_CONFIG`; else `./ledge.toml` if it exists; else no file.
    pub config_path: Option<PathBuf>,
    /// `--data-dir PATH`; beats `LEDGE_DATA_DIR`, then `data_dir` in the file, then `./.ledge`.
    pub data_dir: Option<PathBuf>,
    /// The environment variables (only `LEDGE_*` and `PORT` are read).
    pub env: BTreeMap<String, String>,
    /// The directory relative paths of the command line and the environment resolve against;
    /// `None`: the process's current directory.
    pub working_dir: Option<PathBuf>,
}

impl LoadOptions {
    /// Options with the process's environment (variables that are not valid UTF-8 are skipped).
    pub fn from_process_env() -> Self {
        LoadOptions::default().with_env(
            std::env::vars_os()
                .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?))),
        )
    }

    /// Adds environment variables.
    pub fn with_env<K: Into<String>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.env.extend(vars.into_iter().map(|(name, value)| (name.into(), value.into())));
        self
    }
}

/// Shows the names of the environment variables, never their values (they may be secrets).
impl fmt::Debug for LoadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadOptions")
            .field("config_path", &self.config_path)
            .field("data_dir", &self.data_dir)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("working_dir", &self.working_dir)
            .finish()
    }
}

/// Loads, merges and validates the configuration; every problem found is returned, not just the first.
///
/// Precedence, highest first: the environment (`LEDGE_*`, see [`crate::known_variables`]), ledge.toml, the
/// built-in defaults ([`DEFAULT_TOML`]). Relative paths in ledge.toml resolve against the data directory,
/// except `data_dir` itself, which resolves against the directory of ledge.toml.
pub fn load(options: LoadOptions) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let working_dir = working_dir(options.working_dir.as_deref())
        .map_err(|message| ConfigErrors::new(vec![ConfigError::new(ErrorKind::Io, None, None, message)]))?;

    let mut config = Config::initial();
    builtin_layer().apply(&mut config, &mut errors);

    let mut file_data_dir = None;
    let mut file_dir = working_dir.clone();
    if let Some(file) = locate_file(&options, &working_dir, &mut errors) {
        match std::fs::read_to_string(&file.path) {
            Ok(text) => {
                let layer = TomlFile { shown_path: &file.shown_path, text: &text, record_origins: true };
                file_data_dir = layer.apply(&mut config, &mut errors);
                file_dir = file.path.parent().map_or_else(|| working_dir.clone(), Path::to_path_buf);
                config.file = Some(file.path);
            }
            Err(error) => {
                let message = match file.named_by {
                    Location::Path { .. } => format!("cannot read: {error}"),
                    _ => format!("cannot read {}: {error}", file.shown_path.display()),
                };
                errors.push(ConfigError::new(ErrorKind::Io, Some(file.named_by), None, message));
            }
        }
    }

    apply_env(&mut config, &options.env, &mut errors);
    config.secrets = read_secrets(&options.env, &working_dir, &mut errors);

    let (data_dir, origin) = resolve_data_dir(&options, &working_dir, file_data_dir, &file_dir, &mut errors);
    if let Some(origin) = origin {
        config.origins.insert("data_dir".to_owned(), origin);
    }
    config.resolve_paths(data_dir);
    check_dead_letter_queues(&config, &mut errors);
    check_embedding(&config, &mut errors);
    check_email(&config, &mut errors);

    if errors.is_empty() { Ok(config) } else { Err(ConfigErrors::new(errors)) }
}

impl Config {
    /// The built-in configuration alone (no file, no environment, no secrets), under `data_dir` (which should
    /// be absolute; it is used as given).
    pub fn defaults(data_dir: impl Into<PathBuf>) -> Config {
        let mut config = Config::initial();
        let mut errors = Vec::new();
        builtin_layer().apply(&mut config, &mut errors);
        // The built-in defaults are valid: tests/it/defaults.rs loads them and checks for problems.
        debug_assert!(errors.is_empty(), "built-in defaults are invalid: {errors:?}");
        config.resolve_paths(data_dir.into());
        config
    }

    /// Every section with its pre-default values, before [`DEFAULT_TOML`] is read over them.
    fn initial() -> Config {
        Config {
            file: None,
            data_dir: PathBuf::new(),
            server: ServerConfig::initial(),
            storage: StorageConfig::initial(),
            database: DatabaseConfig::initial(),
            notifications: NotificationsConfig::initial(),
            buckets: BTreeMap::new(),
            kv: BTreeMap::new(),
            queues: BTreeMap::new(),
            durable_objects: BTreeMap::new(),
            vector_index: BTreeMap::new(),
            embedding: EmbeddingConfig::initial(),
            plans: BTreeMap::new(),
            secrets: Secrets::default(),
            origins: BTreeMap::new(),
        }
    }

    /// Makes `data_dir` absolute and every relative path of the configuration relative to it.
    fn resolve_paths(&mut self, data_dir: PathBuf) {
        for bucket in self.buckets.values_mut() {
            bucket.path = absolute(&data_dir, &bucket.path);
        }
        match &mut self.database.url {
            DatabaseUrl::Sqlite(path) => *path = absolute(&data_dir, path),
        }
        self.data_dir = data_dir;
    }
}

fn builtin_layer() -> TomlFile<'static> {
    TomlFile { shown_path: Path::new("(built-in defaults)"), text: DEFAULT_TOML, record_origins: false }
}

fn working_dir(given: Option<&Path>) -> Result<PathBuf, String> {
    let current = || {
        std::env::current_dir().map_err(|error| format!("cannot determine the working directory: {error}"))
    };
    match given {
        Some(dir) if dir.is_absolute() => Ok(absolute(dir, Path::new(""))),
        Some(dir) => Ok(absolute(&current()?, dir)),
        None => current(),
    }
}

/// The configuration file to read.
struct ConfigFile {
    /// As the user wrote it (for messages).
    shown_path: PathBuf,
    path: PathBuf,
    /// The argument or variable that named it, or the file itself when it was found in the working directory.
    named_by: Location,
}

fn locate_file(
    options: &LoadOptions,
    working_dir: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<ConfigFile> {
    let (shown_path, named_by) = if let Some(path) = &options.config_path {
        (path.clone(), Location::Argument { name: "--config" })
    } else if let Some(path) = options.env.get(CONFIG_VARIABLE) {
        (PathBuf::from(path), Location::Env { variable: CONFIG_VARIABLE.to_owned() })
    } else {
        let path = working_dir.join(CONFIG_FILE_NAME);
        let shown_path = PathBuf::from(CONFIG_FILE_NAME);
        return path.is_file().then(|| ConfigFile {
            named_by: Location::Path { path: shown_path.clone() },
            shown_path,
            path,
        });
    };
    if shown_path.as_os_str().is_empty() {
        errors.push(ConfigError::new(
            ErrorKind::InvalidValue,
            Some(named_by),
            None,
            "must name a file".to_owned(),
        ));
        return None;
    }
    Some(ConfigFile { path: absolute(working_dir, &shown_path), shown_path, named_by })
}

/// `--data-dir` > `LEDGE_DATA_DIR` > `data_dir` in the file (relative to the file) > `./.ledge`.
fn resolve_data_dir(
    options: &LoadOptions,
    working_dir: &Path,
    file_data_dir: Option<FileDataDir>,
    file_dir: &Path,
    errors: &mut Vec<ConfigError>,
) -> (PathBuf, Option<Location>) {
    let (base, path, origin) = if let Some(path) = &options.data_dir {
        (working_dir, path.clone(), Some(Location::Argument { name: "--data-dir" }))
    } else if let Some(path) = options.env.get(DATA_DIR_VARIABLE) {
        (working_dir, PathBuf::from(path), Some(Location::Env { variable: DATA_DIR_VARIABLE.to_owned() }))
    } else if let Some(FileDataDir { value, location }) = file_data_dir {
        (file_dir, PathBuf::from(value), Some(location))
    } else {
        (working_dir, PathBuf::from(DEFAULT_DATA_DIR), None)
    };
    if path.as_os_str().is_empty() {
        let message = "must not be empty".to_owned();
        errors.push(ConfigError::new(
            ErrorKind::InvalidValue,
            origin.clone(),
            Some("data_dir".to_owned()),
            message,
        ));
    }
    (absolute(base, &path), origin)
}

/// An HTTP provider needs a model name, and the providers' own endpoints need a key.
fn check_embedding(config: &Config, errors: &mut Vec<ConfigError>) {
    let embedding = &config.embedding;
    let location = |key: &str| config.origins.get(&format!("embedding.{key}")).cloned();
    if embedding.provider != EmbeddingProvider::Local && embedding.model.trim().is_empty() {
        let message = format!("the {} provider needs a model name", embedding.provider);
        let key = "embedding.model".to_owned();
        errors.push(ConfigError::new(ErrorKind::InvalidValue, location("provider"), Some(key), message));
    }
    let key = match embedding.provider {
        EmbeddingProvider::Local => None,
        EmbeddingProvider::Voyage => Some(crate::SecretName::VoyageApiKey),
        // Only OpenAI's own endpoint surely needs one; a local server (Ollama, vLLM) usually does not.
        EmbeddingProvider::OpenAi if embedding.url.is_empty() => Some(crate::SecretName::OpenaiApiKey),
        EmbeddingProvider::OpenAi => None,
    };
    if let Some(name) = key.filter(|&name| config.secrets.get(name).is_none()) {
        let message = format!(
            "the {} provider's endpoint needs an API key: set {} in the environment or the secrets file",
            embedding.provider,
            name.variable()
        );
        errors.push(ConfigError::new(
            ErrorKind::InvalidValue,
            location("provider"),
            Some("embedding.provider".to_owned()),
            message,
        ));
    }
}

/// Email needs a sender, and a mail server user needs its password (and a password its user).
fn check_email(config: &Config, errors: &mut Vec<ConfigError>) {
    let notifications = &config.notifications;
    let location = |key: &str| config.origins.get(&format!("notifications.{key}")).cloned();
    let mut error = |key: &str, message: String| {
        let at = location(key).or_else(|| location("smtp_url"));
        errors.push(ConfigError::new(
            ErrorKind::InvalidValue,
            at,
            Some(format!("notifications.{key}")),
            message,
        ));
    };
    let password = config.secrets.get(crate::SecretName::SmtpPassword).is_some();
    match &notifications.smtp {
        Some(smtp) => {
            if notifications.email_from.is_empty() {
                error(
                    "email_from",
                    "email needs a sender: set email_from, e.g. \"ledge <ledge@example.com>\"".into(),
                );
            }
            if smtp.username.is_some() && !password {
                error(
                    "smtp_url",
                    "smtp_url names a user: set LEDGE_SMTP_PASSWORD in the environment or the secrets file"
                        .into(),
                );
            }
            if smtp.username.is_none() && password {
                error(
                    "smtp_url",
                    "LEDGE_SMTP_PASSWORD is set but smtp_url names no user (smtps://USER@host)".into(),
                );
            }
        }
        None if password => {
            error("smtp_url", "LEDGE_SMTP_PASSWORD is set but no smtp_url: set the mail server's URL".into())
        }
        None => {}
    }
}

/// A dead-letter queue must be declared, must not be the queue itself, and the chain of dead-letter queues
/// must not loop (a message would bounce between them forever).
fn check_dead_letter_queues(config: &Config, errors: &mut Vec<ConfigError>) {
    let key = |queue: &str| format!("queues.{queue}.dead_letter_queue");
    let next =
        |queue: &str| config.queues.get(queue).and_then(|settings| settings.dead_letter_queue.as_deref());
    for (name, settings) in &config.queues {
        let Some(target) = settings.dead_letter_queue.as_deref() else { continue };
        let location = config.origins.get(&key(name)).cloned();
        if target == name {
            let message = "a queue cannot be its own dead-letter queue".to_owned();
            errors.push(ConfigError::new(ErrorKind::InvalidValue, location, Some(key(name)), message));
        } else if !config.queues.contains_key(target) {
            let message = format!("no queue named `{target}` is declared");
            errors.push(ConfigError::new(ErrorKind::UnknownReference, location, Some(key(name)), message));
        }
    }
    for start in config.queues.keys() {
        let mut chain = vec![start.as_str()];
        let mut current = start.as_str();
        while let Some(target) = next(current).filter(|target| *target != current) {
            if target == start {
                break;
            }
            if chain.contains(&target) || !config.queues.contains_key(target) {
                chain.clear();
                break;
            }
            chain.push(target);
            current = target;
        }
        // Report each cycle once, from its smallest member, where the user set one of its links.
        let closed = chain.len() > 1 && next(current) == Some(start.as_str());
        let smallest = chain.iter().min() == Some(&start.as_str());
        if closed && smallest {
            let at = chain.iter().find(|queue| config.origins.contains_key(&key(queue))).unwrap_or(&chain[0]);
            let mut shown = chain.join(" → ");
            shown.push_str(&format!(" → {start}"));
            let message = format!("dead-letter queues form a cycle: {shown}");
            let location = config.origins.get(&key(at)).cloned();
            errors.push(ConfigError::new(ErrorKind::InvalidValue, location, Some(key(at)), message));
        }
    }
}
