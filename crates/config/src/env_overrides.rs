//! `LEDGE_*` environment variables over the file's values.
//!
//! Applied in this order, later ones winning: `PORT` (only when `LEDGE_PORT` is unset), the nested overrides
//! `LEDGE_<SECTION>__<KEY>` and `LEDGE_<SECTION>__<NAME>__<KEY>` (levels separated by a double underscore,
//! each level matched case-insensitively with `-` and `_` equivalent), then the shorthands `LEDGE_HOST`,
//! `LEDGE_PORT`, `LEDGE_LOG_FORMAT` and `LEDGE_LOG`. Any other `LEDGE_*` variable is an error (typo
//! protection), as is an override naming no known setting or carrying a bad value.

use std::collections::BTreeMap;

use crate::error::{ConfigError, ErrorKind, Location};
use crate::schema::Config;
use crate::secrets::{SECRETS_FILE_VARIABLE, SecretName};
use crate::settings::{Raw, Section, key_path, normalize};

/// Names the configuration file.
pub const CONFIG_VARIABLE: &str = "LEDGE_CONFIG";
/// Names the data directory.
pub const DATA_DIR_VARIABLE: &str = "LEDGE_DATA_DIR";
/// The platform's port variable, read when `LEDGE_PORT` is unset.
pub const PLATFORM_PORT_VARIABLE: &str = "PORT";

const PREFIX: &str = "LEDGE_";

/// Shorthand variables for the settings people change most.
const SHORTHANDS: &[(&str, Section, &str)] = &[
    ("LEDGE_HOST", Section::Server, "host"),
    ("LEDGE_PORT", Section::Server, "port"),
    ("LEDGE_LOG_FORMAT", Section::Server, "log_format"),
    ("LEDGE_LOG", Section::Server, "log_filter"),
];

/// Every `LEDGE_*` variable that is not a nested override.
pub fn known_variables() -> Vec<&'static str> {
    let mut known = vec![CONFIG_VARIABLE, DATA_DIR_VARIABLE, SECRETS_FILE_VARIABLE];
    known.extend(SHORTHANDS.iter().map(|(variable, _, _)| *variable));
    known.extend(SecretName::ALL.iter().map(|name| name.variable()));
    known
}

pub(crate) fn apply_env(config: &mut Config, env: &BTreeMap<String, String>, errors: &mut Vec<ConfigError>) {
    if !env.contains_key("LEDGE_PORT")
        && let Some(value) = env.get(PLATFORM_PORT_VARIABLE)
    {
        set(config, PLATFORM_PORT_VARIABLE, Section::Server, None, "port", value, errors);
    }
    let known = known_variables();
    for (variable, value) in env {
        let Some(rest) = variable.strip_prefix(PREFIX) else { continue };
        if rest.contains("__") {
            apply_nested(config, variable, rest, value, errors);
        } else if !known.contains(&variable.as_str()) {
            errors.push(unknown_variable(variable, rest, &known));
        }
    }
    for (variable, section, key) in SHORTHANDS {
        if let Some(value) = env.get(*variable) {
            set(config, variable, *section, None, key, value, errors);
        }
    }
}

fn apply_nested(config: &mut Config, variable: &str, rest: &str, value: &str, errors: &mut Vec<ConfigError>) {
    let problem = |kind, key: Option<String>, message: String| {
        ConfigError::new(kind, Some(Location::Env { variable: variable.to_owned() }), key, message)
    };
    let levels: Vec<&str> = rest.split("__").collect();
    let Some(section) =
        Section::ALL.into_iter().find(|section| normalize(section.name()) == normalize(levels[0]))
    else {
        let sections: Vec<&str> = Section::ALL.iter().map(|section| section.name()).collect();
        let message = format!("names no known section; sections: {}", sections.join(", "));
        errors.push(problem(ErrorKind::UnknownSetting, None, message));
        return;
    };
    let upper = section.name().to_ascii_uppercase();
    let (binding, key) = match (section.binding_kind(), levels.as_slice()) {
        (None, [_, key]) => (None, *key),
        (Some(kind), [_, name, key]) => {
            let declared = section.binding_names(config);
            match declared.iter().find(|declared| normalize(declared) == normalize(name)) {
                Some(found) => (Some(found.clone()), *key),
                None => {
                    let message =
                        format!("no {kind} named `{name}` is declared; declared: {}", declared.join(", "));
                    errors.push(problem(ErrorKind::UnknownSetting, None, message));
                    return;
                }
            }
        }
        (None, _) => {
            let message = format!("expected {PREFIX}{upper}__<KEY>");
            errors.push(problem(ErrorKind::UnknownSetting, None, message));
            return;
        }
        (Some(_), _) => {
            let message = format!("expected {PREFIX}{upper}__<NAME>__<KEY>");
            errors.push(problem(ErrorKind::UnknownSetting, None, message));
            return;
        }
    };
    let Some(key) = section.keys().iter().find(|known| normalize(known) == normalize(key)) else {
        let prefix = key_path(section, binding.as_deref(), "");
        let message = format!(
            "names no known setting of {}; keys: {}",
            prefix.trim_end_matches('.'),
            section.keys().join(", ")
        );
        errors.push(problem(ErrorKind::UnknownSetting, None, message));
        return;
    };
    set(config, variable, section, binding.as_deref(), key, value, errors);
}

fn set(
    config: &mut Config,
    variable: &str,
    section: Section,
    binding: Option<&str>,
    key: &str,
    value: &str,
    errors: &mut Vec<ConfigError>,
) {
    let path = key_path(section, binding, key);
    let location = Location::Env { variable: variable.to_owned() };
    match section.set(config, binding, key, Raw::Text(value)) {
        Ok(()) => {
            config.origins.insert(path, location);
        }
        Err(message) => {
            errors.push(ConfigError::new(ErrorKind::InvalidValue, Some(location), Some(path), message))
        }
    }
}

fn unknown_variable(variable: &str, rest: &str, known: &[&str]) -> ConfigError {
    let looks_nested = Section::ALL
        .iter()
        .find(|section| normalize(rest).starts_with(&format!("{}_", normalize(section.name()))));
    let message = match looks_nested {
        Some(section) => format!(
            "unknown variable; levels of an override are separated by a double underscore, e.g. {PREFIX}{}__<KEY>",
            section.name().to_ascii_uppercase()
        ),
        None => format!(
            "unknown variable; ledge reads {} and {PREFIX}<SECTION>__[<NAME>__]<KEY> overrides",
            known.join(", ")
        ),
    };
    ConfigError::new(
        ErrorKind::UnknownSetting,
        Some(Location::Env { variable: variable.to_owned() }),
        None,
        message,
    )
}
