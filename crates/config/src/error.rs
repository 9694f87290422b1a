//! Configuration problems: each one located (file, line and column, or the environment variable), keyed by
//! the setting it concerns, and collected into [`ConfigErrors`] so that one run reports all of them.

use std::fmt;
use std::path::PathBuf;

/// Where a problem (or a value) comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Location {
    /// A file as a whole (it cannot be read).
    Path { path: PathBuf },
    /// A place in a TOML or secrets file; line and column are 1-based, the column counts characters.
    File { path: PathBuf, line: usize, column: usize },
    /// An argument the caller passed to [`crate::load`] (`--config`, `--data-dir`).
    Argument { name: &'static str },
    /// An environment variable.
    Env { variable: String },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Path { path } => write!(f, "{}", path.display()),
            Location::File { path, line, column } => write!(f, "{}:{line}:{column}", path.display()),
            Location::Argument { name } => write!(f, "{name}"),
            Location::Env { variable } => write!(f, "env {variable}"),
        }
    }
}

/// What kind of problem a [`ConfigError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A file cannot be read.
    Io,
    /// ledge.toml is not valid TOML.
    Syntax,
    /// A key in ledge.toml, or an environment override, names no known setting.
    UnknownSetting,
    /// A value has the wrong type, is out of range or is malformed.
    InvalidValue,
    /// A setting refers to something that is not declared (e.g. a `dead_letter_queue`).
    UnknownReference,
    /// ledge.toml holds a secret; secrets come only from the environment or the secrets file.
    SecretInFile,
}

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub kind: ErrorKind,
    /// Where it is; `None` only for problems of the working directory itself.
    pub location: Option<Location>,
    /// The dotted path of the setting, e.g. `queues.file-indexing.max_batch_size`.
    pub key: Option<String>,
    /// One line, saying what is wrong and what is expected.
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(
        kind: ErrorKind,
        location: Option<Location>,
        key: Option<String>,
        message: String,
    ) -> Self {
        ConfigError { kind, location, key, message }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(location) = &self.location {
            write!(f, "{location}: ")?;
        }
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found while loading the configuration, in file order and then by variable name;
/// `Display` prints one per line, e.g.
/// `ledge.toml:12:18: queues.file-indexing.max_batch_size: must be 1..=100, got 500`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    errors: Vec<ConfigError>,
}

impl ConfigErrors {
    pub(crate) fn new(mut errors: Vec<ConfigError>) -> Self {
        // Stable: problems at one place keep the order they were found in.
        errors.sort_by(|a, b| a.location.cmp(&b.location));
        ConfigErrors { errors }
    }

    pub fn errors(&self) -> &[ConfigError] {
        &self.errors
    }

    pub fn len(&self) -> usize {
        self.errors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.errors.iter()
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
