//! The resolved configuration as TOML text (what `ledge config check` prints): every setting with its
//! effective value, the environment variable that set it where one did, and the secrets masked.
//!
//! The text loads back into the same configuration (secrets aside, which never live in the file).

use std::fmt::Write as _;

use crate::error::Location;
use crate::schema::Config;
use crate::secrets::{SECRETS_FILE_VARIABLE, SecretName, SecretSource};
use crate::settings::{Section, key_path, toml_string};

impl Config {
    /// Renders the resolved configuration as TOML. Secrets appear in comments only, as `***` when set and
    /// `(unset)` when not; a value set by the environment (or by `--data-dir`) is followed by a comment
    /// naming the variable.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let source = match &self.file {
            Some(path) => path.display().to_string(),
            None => "the built-in defaults (no ledge.toml)".to_owned(),
        };
        let _ = writeln!(out, "# ledge configuration, resolved from {source}");
        self.line(&mut out, "data_dir", &toml_string(&self.data_dir.to_string_lossy()), "data_dir");
        for section in Section::ALL {
            if section.binding_kind().is_none() {
                let _ = writeln!(out, "\n[{}]", section.name());
                self.keys(&mut out, section, None);
            } else {
                for name in section.binding_names(self) {
                    let _ = writeln!(out, "\n[{}.{name}]", section.name());
                    self.keys(&mut out, section, Some(&name));
                }
            }
        }
        let _ = writeln!(
            out,
            "\n# Secrets come only from the environment or the file named by {SECRETS_FILE_VARIABLE}, never from \
             this file."
        );
        for &name in SecretName::ALL {
            let shown = match self.secrets.get(name) {
                Some(secret) => secret.to_string(),
                None => "(unset)".to_owned(),
            };
            let from = match self.secrets.source(name) {
                Some(SecretSource::Env) => "  (from the environment)".to_owned(),
                Some(SecretSource::File(path)) => format!("  (from {})", path.display()),
                None => String::new(),
            };
            let _ = writeln!(out, "# {} = {shown}{from}", name.variable());
        }
        out
    }

    fn keys(&self, out: &mut String, section: Section, binding: Option<&str>) {
        for key in section.keys() {
            if let Some(value) = section.value(self, binding, key) {
                self.line(out, key, &value, &key_path(section, binding, key));
            }
        }
    }

    fn line(&self, out: &mut String, key: &str, value: &str, path: &str) {
        let _ = match self.origins.get(path) {
            Some(Location::Env { variable }) => writeln!(out, "{key} = {value}  # {variable}"),
            Some(Location::Argument { name }) => writeln!(out, "{key} = {value}  # {name}"),
            _ => writeln!(out, "{key} = {value}"),
        };
    }
}
