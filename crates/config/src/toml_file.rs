//! Reading one TOML document (the built-in defaults, then ledge.toml) into the configuration: every key is
//! checked against its section's table, every value goes through the section's setter, and every problem is
//! recorded with its line and column.

use std::ops::Range;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::{ConfigError, ErrorKind, Location};
use crate::schema::Config;
use crate::secrets::secret_in_file_message;
use crate::settings::{Raw, Section, check_binding_name, key_path, normalize};

/// A TOML document being read, with what is needed to turn spans into locations.
pub(crate) struct TomlFile<'a> {
    /// The path as shown in messages.
    pub(crate) shown_path: &'a Path,
    pub(crate) text: &'a str,
    /// Whether values set by this document are recorded in [`Config::origin`] (not for the built-in defaults).
    pub(crate) record_origins: bool,
}

/// The top-level `data_dir` of a document, resolved later because of its precedence.
pub(crate) struct FileDataDir {
    pub(crate) value: String,
    pub(crate) location: Location,
}

impl TomlFile<'_> {
    /// Applies the document over `config`; returns its `data_dir`, if it sets one.
    pub(crate) fn apply(&self, config: &mut Config, errors: &mut Vec<ConfigError>) -> Option<FileDataDir> {
        let (document, syntax_errors) = DeTable::parse_recoverable(self.text);
        if !syntax_errors.is_empty() {
            // A recovered document would only add confusing follow-up problems.
            for error in syntax_errors {
                let location = self.location(error.span().unwrap_or(0..0));
                let message = error.message().trim_end().replace('\n', "; ");
                errors.push(ConfigError::new(ErrorKind::Syntax, Some(location), None, message));
            }
            return None;
        }
        let mut data_dir = None;
        for (key, value) in document.get_ref().iter() {
            let name = key.get_ref().as_ref();
            if name == "data_dir" {
                match Raw::Toml(value.get_ref()).string() {
                    Ok(text) if !text.trim().is_empty() => {
                        data_dir = Some(FileDataDir {
                            value: text.to_owned(),
                            location: self.location(value.span()),
                        })
                    }
                    Ok(_) => errors.push(self.invalid(
                        value.span(),
                        "data_dir".to_owned(),
                        "must not be empty".to_owned(),
                    )),
                    Err(message) => errors.push(self.invalid(value.span(), "data_dir".to_owned(), message)),
                }
                continue;
            }
            match Section::from_name(name) {
                Some(section) if section.binding_kind().is_some() => {
                    self.apply_bindings(config, section, value, errors)
                }
                Some(section) => self.apply_section(config, section, None, value, errors),
                None => {
                    let mut known = vec!["data_dir"];
                    known.extend(Section::ALL.iter().map(|section| section.name()));
                    self.unknown_key(key, value, "", &known, errors);
                }
            }
        }
        data_dir
    }

    fn apply_bindings(
        &self,
        config: &mut Config,
        section: Section,
        value: &Spanned<DeValue<'_>>,
        errors: &mut Vec<ConfigError>,
    ) {
        let kind = section.binding_kind().unwrap_or("binding");
        let Some(table) = value.get_ref().as_table() else {
            let message =
                format!("expected a table of {kind} declarations, e.g. [{}.<name>]", section.name());
            errors.push(self.invalid(value.span(), section.name().to_owned(), message));
            return;
        };
        for (name_key, body) in table.iter() {
            let name = name_key.get_ref().as_ref();
            let path = format!("{}.{name}", section.name());
            if let Err(message) = check_binding_name(name) {
                errors.push(self.invalid(name_key.span(), path, message));
                continue;
            }
            let twin = section
                .binding_names(config)
                .into_iter()
                .find(|other| other != name && normalize(other) == normalize(name));
            if let Some(other) = twin {
                let message = format!(
                    "conflicts with the {kind} `{other}`: names must differ in more than case and '-' versus '_'"
                );
                errors.push(self.invalid(name_key.span(), path, message));
                continue;
            }
            if body.get_ref().as_table().is_none() {
                errors.push(self.invalid(body.span(), path, format!("expected a table of {kind} settings")));
                continue;
            }
            section.declare(config, name);
            self.apply_section(config, section, Some(name), body, errors);
        }
    }

    /// Applies the keys of a plain section (`binding: None`) or of one binding's table.
    fn apply_section(
        &self,
        config: &mut Config,
        section: Section,
        binding: Option<&str>,
        value: &Spanned<DeValue<'_>>,
        errors: &mut Vec<ConfigError>,
    ) {
        let prefix = match binding {
            Some(name) => format!("{}.{name}.", section.name()),
            None => format!("{}.", section.name()),
        };
        let Some(table) = value.get_ref().as_table() else {
            errors.push(self.invalid(
                value.span(),
                prefix.trim_end_matches('.').to_owned(),
                "expected a table".to_owned(),
            ));
            return;
        };
        for (key, value) in table.iter() {
            let name = key.get_ref().as_ref();
            if !section.keys().contains(&name) {
                self.unknown_key(key, value, &prefix, section.keys(), errors);
                continue;
            }
            let path = key_path(section, binding, name);
            match section.set(config, binding, name, Raw::Toml(value.get_ref())) {
                Ok(()) if self.record_origins => {
                    config.origins.insert(path, self.location(value.span()));
                }
                Ok(()) => {}
                Err(message) => errors.push(self.invalid(value.span(), path, message)),
            }
        }
    }

    /// Reports a key no section knows: a secret if it looks like one, else a typo with a suggestion.
    fn unknown_key(
        &self,
        key: &Spanned<std::borrow::Cow<'_, str>>,
        value: &Spanned<DeValue<'_>>,
        prefix: &str,
        known: &[&str],
        errors: &mut Vec<ConfigError>,
    ) {
        let name = key.get_ref().as_ref();
        let path = format!("{prefix}{name}");
        let location = Some(self.location(key.span()));
        if let Some(message) = secret_in_file_message(&normalize(name)) {
            errors.push(ConfigError::new(ErrorKind::SecretInFile, location, Some(path), message));
            return;
        }
        let suggestion = known.iter().find(|candidate| normalize(candidate) == normalize(name));
        let message = match suggestion {
            Some(candidate) => format!("unknown key; did you mean `{candidate}`?"),
            None => format!("unknown key; expected one of: {}", known.join(", ")),
        };
        errors.push(ConfigError::new(ErrorKind::UnknownSetting, location, Some(path.clone()), message));
        // A secret hidden under an unknown table is still a secret in the file.
        if let Some(table) = value.get_ref().as_table() {
            self.find_secrets(table, &path, errors);
        }
    }

    fn find_secrets(&self, table: &DeTable<'_>, prefix: &str, errors: &mut Vec<ConfigError>) {
        for (key, value) in table.iter() {
            let name = key.get_ref().as_ref();
            let path = format!("{prefix}.{name}");
            if let Some(message) = secret_in_file_message(&normalize(name)) {
                let location = Some(self.location(key.span()));
                errors.push(ConfigError::new(ErrorKind::SecretInFile, location, Some(path.clone()), message));
            }
            if let Some(inner) = value.get_ref().as_table() {
                self.find_secrets(inner, &path, errors);
            }
        }
    }

    fn invalid(&self, span: Range<usize>, key: String, message: String) -> ConfigError {
        ConfigError::new(ErrorKind::InvalidValue, Some(self.location(span)), Some(key), message)
    }

    /// 1-based line and column (in characters) of the start of `span`.
    pub(crate) fn location(&self, span: Range<usize>) -> Location {
        let mut start = span.start.min(self.text.len());
        while !self.text.is_char_boundary(start) {
            start -= 1;
        }
        let before = &self.text[..start];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        let column = before[line_start..].chars().count() + 1;
        Location::File { path: self.shown_path.to_path_buf(), line, column }
    }
}
