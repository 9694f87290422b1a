//! Integration tests of ledge-config: the built-in defaults, merging ledge.toml over them, every validation
//! rule with its line and column, environment overrides, secrets, and the rendered configuration.

mod defaults;
mod env;
mod file;
mod plans;
mod render;
mod secrets;
mod validation;

use std::path::{Path, PathBuf};

use ledge_config::{Config, ConfigErrors, LoadOptions, load};

/// Environment variables as `(name, value)` pairs.
pub type Env<'a> = &'a [(&'a str, &'a str)];

/// A working directory of its own, optionally holding a ledge.toml.
pub struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    pub fn empty() -> Self {
        Workspace { dir: tempfile::tempdir().expect("temporary directory") }
    }

    /// A working directory whose `./ledge.toml` is `toml`.
    pub fn with_config(toml: &str) -> Self {
        let workspace = Workspace::empty();
        workspace.write("ledge.toml", toml);
        workspace
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create directory");
        }
        std::fs::write(&path, text).expect("write file");
        path
    }

    pub fn options(&self) -> LoadOptions {
        LoadOptions { working_dir: Some(self.path().to_path_buf()), ..LoadOptions::default() }
    }

    pub fn load(&self, env: Env) -> Result<Config, ConfigErrors> {
        load(self.options().with_env(env.iter().copied()))
    }

    pub fn config(&self, env: Env) -> Config {
        match self.load(env) {
            Ok(config) => config,
            Err(errors) => panic!("expected a valid configuration, got:\n{errors}"),
        }
    }

    /// The problems, one per line, with the working directory's path replaced by `$WORK`.
    pub fn problems(&self, env: Env) -> String {
        match self.load(env) {
            Ok(_) => panic!("expected configuration errors"),
            Err(errors) => errors.to_string().replace(&self.path().display().to_string(), "$WORK"),
        }
    }
}

/// The problems of a ledge.toml holding `toml`, with no environment.
pub fn problems_of(toml: &str) -> String {
    Workspace::with_config(toml).problems(&[])
}
