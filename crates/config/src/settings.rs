//! The settings each section accepts: its keys, how a value (from ledge.toml or from an environment variable)
//! is parsed and range-checked into the typed configuration, and how it is written back as TOML.
//!
//! ledge.toml and the environment go through the same setters, so a rule holds whichever way a value comes.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::DeValue;

use crate::schema::{
    BucketConfig, Config, DatabaseConfig, DatabaseUrl, DurableObjectConfig, EmbeddingConfig, Keyword,
    KvConfig, NotificationsConfig, PlanConfig, QueueConfig, ServerConfig, SmtpSecurity, SmtpServer,
    StorageConfig, VectorIndexConfig,
};
use crate::units::{format_duration, format_size, parse_duration, parse_size};

/// A value to set: from ledge.toml (typed), or the text of an environment variable.
#[derive(Clone, Copy)]
pub(crate) enum Raw<'a> {
    Toml(&'a DeValue<'a>),
    Text(&'a str),
}

impl<'a> Raw<'a> {
    fn type_name(&self) -> String {
        match self {
            Raw::Toml(value) => {
                let name = value.type_str();
                let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
                format!("{article} {name}")
            }
            Raw::Text(_) => "a string".to_owned(),
        }
    }

    fn integer(&self) -> Result<i64, String> {
        match self {
            Raw::Toml(DeValue::Integer(integer)) => i64::from_str_radix(integer.as_str(), integer.radix())
                .map_err(|_| format!("integer {integer} is out of range")),
            Raw::Text(text) => text.trim().parse().map_err(|_| format!("expected an integer, got {text:?}")),
            other => Err(format!("expected an integer, got {}", other.type_name())),
        }
    }

    pub(crate) fn string(&self) -> Result<&'a str, String> {
        match self {
            Raw::Toml(DeValue::String(text)) => Ok(text),
            Raw::Text(text) => Ok(text),
            other => Err(format!("expected a string, got {}", other.type_name())),
        }
    }

    fn boolean(&self) -> Result<bool, String> {
        match self {
            Raw::Toml(DeValue::Boolean(value)) => Ok(*value),
            Raw::Text(text) => match text.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(format!("expected true or false, got {text:?}")),
            },
            other => Err(format!("expected true or false, got {}", other.type_name())),
        }
    }

    /// An integer or float is seconds; a string is parsed by [`parse_duration`].
    fn duration(&self) -> Result<Duration, String> {
        match self {
            Raw::Toml(DeValue::Integer(_)) => {
                let seconds = self.integer()?;
                u64::try_from(seconds)
                    .map(Duration::from_secs)
                    .map_err(|_| format!("must not be negative, got {seconds}"))
            }
            Raw::Toml(DeValue::Float(float)) => float
                .as_str()
                .parse::<f64>()
                .ok()
                .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
                .ok_or_else(|| format!("expected a non-negative number of seconds, got {float}")),
            Raw::Toml(DeValue::String(text)) => parse_duration(text),
            Raw::Text(text) => parse_duration(text),
            other => Err(format!("expected seconds or a duration like \"5s\", got {}", other.type_name())),
        }
    }

    /// An integer is bytes; a string is parsed by [`parse_size`].
    fn size(&self) -> Result<u64, String> {
        match self {
            Raw::Toml(DeValue::Integer(_)) => {
                let bytes = self.integer()?;
                u64::try_from(bytes).map_err(|_| format!("must not be negative, got {bytes}"))
            }
            Raw::Toml(DeValue::String(text)) => parse_size(text),
            Raw::Text(text) => parse_size(text),
            other => Err(format!("expected bytes or a size like \"1MiB\", got {}", other.type_name())),
        }
    }
}

/// Lower case, `_` for `-`: how keys and names are compared where the user may vary their spelling.
pub(crate) fn normalize(name: &str) -> String {
    name.to_ascii_lowercase().replace('-', "_")
}

/// Binding names become directory names and table keys: 1..=63 ASCII letters, digits, `-` and `_`,
/// starting with a letter or a digit.
pub(crate) fn check_binding_name(name: &str) -> Result<(), String> {
    let valid_start = name.starts_with(|c: char| c.is_ascii_alphanumeric());
    let valid_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if name.len() <= 63 && valid_start && valid_chars {
        Ok(())
    } else {
        Err(format!(
            "invalid name {name:?}: use 1 to 63 ASCII letters, digits, '-' and '_', starting with a letter or digit"
        ))
    }
}

fn integer_in<T: TryFrom<i64>>(raw: Raw<'_>, range: RangeInclusive<i64>) -> Result<T, String> {
    let value = raw.integer()?;
    let out_of_range = || format!("must be {}..={}, got {value}", range.start(), range.end());
    if !range.contains(&value) {
        return Err(out_of_range());
    }
    T::try_from(value).map_err(|_| out_of_range())
}

fn duration_in(raw: Raw<'_>, range: RangeInclusive<Duration>) -> Result<Duration, String> {
    let value = raw.duration()?;
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "must be {}..={}, got {}",
            format_duration(*range.start()),
            format_duration(*range.end()),
            format_duration(value)
        ))
    }
}

fn nonzero_duration(raw: Raw<'_>) -> Result<Duration, String> {
    let value = raw.duration()?;
    if value.is_zero() { Err("must be more than 0s".to_owned()) } else { Ok(value) }
}

fn boolean(raw: Raw<'_>) -> Result<bool, String> {
    match raw {
        Raw::Toml(DeValue::Boolean(value)) => Ok(*value),
        Raw::Text(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(format!("expected true or false, got {text:?}")),
        },
        other => Err(format!("expected true or false, got {}", other.type_name())),
    }
}

fn nonzero_size(raw: Raw<'_>) -> Result<u64, String> {
    let value = raw.size()?;
    if value == 0 { Err("must be more than 0 bytes".to_owned()) } else { Ok(value) }
}

/// A comma-separated list of browser origins (`scheme://host[:port]`, no path), or `*`.
fn origins(raw: Raw<'_>) -> Result<Vec<String>, String> {
    let text = raw.string()?;
    let mut origins = Vec::new();
    for origin in text.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let valid = origin == "*"
            || origin.split_once("://").is_some_and(|(scheme, host)| {
                !scheme.is_empty()
                    && scheme.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
                    && !host.is_empty()
                    && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
            });
        if !valid {
            return Err(format!(
                "{origin:?} is not an origin; expected a comma-separated list like \
                 \"https://app.example.com, chrome-extension://<id>\" (no path), or \"*\""
            ));
        }
        origins.push(origin.to_owned());
    }
    Ok(origins)
}

/// `smtp_url`: empty (no email), or a mail server's URL (see [`SmtpServer`]).
fn smtp_url(raw: Raw<'_>) -> Result<Option<SmtpServer>, String> {
    let text = raw.string()?.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let expected = || {
        format!(
            "expected \"smtps://HOST[:PORT]\" (TLS), \"smtp://HOST[:PORT]\" (STARTTLS required) or \
             \"smtp://HOST:PORT?tls=none\" (no encryption), with an optional USER@ before HOST; got {text:?}"
        )
    };
    let (scheme, rest) = text.split_once("://").ok_or_else(expected)?;
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let security = match (scheme, query) {
        ("smtps", None) => SmtpSecurity::Tls,
        ("smtp", None) => SmtpSecurity::StartTls,
        ("smtp", Some("tls=none")) => SmtpSecurity::None,
        _ => return Err(expected()),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (username, host_port) = match rest.rsplit_once('@') {
        Some((user, _)) if user.contains(':') => {
            return Err(
                "put no password in smtp_url: it is a secret, set LEDGE_SMTP_PASSWORD in the environment"
                    .to_owned(),
            );
        }
        Some((user, host_port)) if !user.is_empty() => (Some(user.replace("%40", "@")), host_port),
        Some(_) => return Err(expected()),
        None => (None, rest),
    };
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or_else(expected)?;
        (host, after.strip_prefix(':'))
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    let valid_host = host.parse::<IpAddr>().is_ok()
        || (!host.is_empty()
            && host.len() <= 253
            && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    if !valid_host {
        return Err(expected());
    }
    let port = match port {
        Some(port) => port.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(expected)?,
        None => match security {
            SmtpSecurity::Tls => 465,
            SmtpSecurity::StartTls => 587,
            SmtpSecurity::None => 25,
        },
    };
    Ok(Some(SmtpServer { security, host: host.to_owned(), port, username }))
}

/// `email_from`: empty, `address` or `Name <address>`, one line.
fn mailbox(raw: Raw<'_>) -> Result<String, String> {
    let text = raw.string()?.trim();
    if text.is_empty() {
        return Ok(String::new());
    }
    let address = match text.rsplit_once('<') {
        Some((_, rest)) => rest.strip_suffix('>'),
        None => Some(text),
    };
    let valid = !text.contains(['\r', '\n'])
        && address.is_some_and(|a| {
            a.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && domain.contains('.') && !a.contains(char::is_whitespace)
            })
        });
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "expected an address like \"ledge@example.com\" or \"ledge <ledge@example.com>\", got {text:?}"
        ))
    }
}

fn nonempty_string(raw: Raw<'_>) -> Result<String, String> {
    let value = raw.string()?;
    if value.trim().is_empty() { Err("must not be empty".to_owned()) } else { Ok(value.to_owned()) }
}

/// A word of `T` (compared lower case with `_` for `-`).
fn keyword<T: Keyword>(raw: Raw<'_>) -> Result<T, String> {
    let text = raw.string()?;
    let wanted = normalize(text.trim());
    T::WORDS.iter().find(|(_, word)| normalize(word) == wanted).map(|(value, _)| *value).ok_or_else(|| {
        let words: Vec<String> = T::WORDS.iter().map(|(_, word)| format!("{word:?}")).collect();
        format!("expected one of {}, got {text:?}", words.join(", "))
    })
}

fn host(raw: Raw<'_>) -> Result<String, String> {
    let text = raw.string()?;
    let is_label = |label: &str| {
        (1..=63).contains(&label.len())
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let is_host_name = text.len() <= 253 && text.split('.').all(is_label);
    if text.parse::<IpAddr>().is_ok() || is_host_name {
        Ok(text.to_owned())
    } else {
        Err(format!("expected an IP address or a host name, got {text:?}"))
    }
}

fn database_url(raw: Raw<'_>) -> Result<DatabaseUrl, String> {
    // The URL is never echoed: a future postgres:// URL may carry a password.
    let text = raw.string()?;
    if let Some(path) = text.strip_prefix("sqlite://").or_else(|| text.strip_prefix("sqlite:")) {
        if path.is_empty() {
            return Err("a sqlite URL needs a path, e.g. \"sqlite://ledge.db\"".to_owned());
        }
        Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
    } else if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        Err("the postgres driver is not available in this version; use \"sqlite://PATH\"".to_owned())
    } else {
        Err("expected a \"sqlite://PATH\" URL".to_owned())
    }
}

/// `""` means none.
fn dead_letter_queue(raw: Raw<'_>) -> Result<Option<String>, String> {
    let name = raw.string()?;
    if name.is_empty() {
        return Ok(None);
    }
    check_binding_name(name)?;
    Ok(Some(name.to_owned()))
}

/// `"auto"` means none (the consumer scales itself).
fn max_concurrency(raw: Raw<'_>) -> Result<Option<u32>, String> {
    if let Ok(text) = raw.string() {
        if text.trim().eq_ignore_ascii_case("auto") {
            return Ok(None);
        }
        if let Raw::Toml(_) = raw {
            return Err(format!("expected an integer 1..=250 or \"auto\", got {text:?}"));
        }
    }
    integer_in(raw, 1..=250).map(Some)
}

/// A TOML basic string.
pub(crate) fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_duration(duration: Duration) -> String {
    toml_string(&format_duration(duration))
}

fn toml_size(bytes: u64) -> String {
    toml_string(&format_size(bytes))
}

fn toml_keyword<T: Keyword + PartialEq>(value: T) -> String {
    toml_string(value.word())
}

fn toml_path(path: &Path) -> String {
    toml_string(&path.to_string_lossy())
}

/// One section (or one binding) of the configuration, settable key by key.
pub(crate) trait Settings {
    /// Every key, in the order the rendered configuration lists them.
    const KEYS: &'static [&'static str];

    /// Parses, checks and stores `raw` at `key` (one of [`Settings::KEYS`]).
    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), String>;

    /// The TOML text of the value at `key` (one of [`Settings::KEYS`]).
    fn value(&self, key: &str) -> Option<String>;
}

fn not_a_key(key: &str) -> String {
    format!("unknown key `{key}`")
}

impl Settings for ServerConfig {
    const KEYS: &'static [&'static str] = &[
        "host",
        "port",
        "body_limit",
        "webhook_body_limit",
        "request_timeout",
        "shutdown_grace",
        "log_format",
        "log_filter",
        "cors_origins",
        "caller_burst",
        "caller_refill",
    ];

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), String> {
        match key {
            "host" => self.host = host(raw)?,
            "port" => self.port = integer_in(raw, 0..=i64::from(u16::MAX))?,
            "body_limit" => self.body_limit = nonzero_size(raw)?,
            "webhook_body_limit" => self.webhook_body_limit = nonzero_size(raw)?,
            "request_timeout" => self.request_timeout = nonzero_duration(raw)?,
            "shutdown_grace" => self.shutdown_grace = raw.duration()?,
            "log_format" => self.log_format = keyword(raw)?,
            "log_filter" => self.log_filter = nonempty_string(raw)?,
            "cors_origins" => self.cors_origins = origins(raw)?,
            "caller_burst" => self.caller_burst = integer_in(raw, 1..=1_000_000_000)?,
            "caller_refill" => self.caller_refill = nonzero_duration(raw)?,
            _ => return Err(not_a_key(key)),
        }
        Ok(())
    }

    fn value(&self, key: &str) -> Option<String> {
        Some(match key {
            "host" => toml_string(&self.host),
            "port" => self.port.to_string(),
            "body_limit" => toml_size(self.body_limit),
            "webhook_body_limit" => toml_size(self.webhook_body_limit),
            "request_timeout" => toml_duration(self.request_timeout),
            "shutdown_grace" => toml_duration(self.shutdown_grace),
            "log_format" => toml_keyword(self.log_format),
            "log_filter" => toml_string(&self.log_filter),
            "cors_origins" => toml_string(&self.cors_origins.join(", ")),
            "caller_burst" => self.caller_burst.to_string(),
            "caller_refill" => toml_duration(self.caller_refill),
            _ => return None,
        })
    }
}

/// An http(s) URL, or empty.
fn endpoint_url(raw: Raw<'_>) -> Result<String, String> {
    let text = raw.string()?.trim();
    let rest = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://"));
    if text.is_empty() || rest.is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace)) {
        Ok(text.to_owned())
    } else {
        Err(format!("expected an http:// or https:// URL (or \"\" for the provider's own), got {text:?}"))
    }
}

impl Settings for EmbeddingConfig {
    const KEYS: &'static [&'static str] =
        &["provider", "model", "url", "request_dimensions", "batch_size", "timeout", "max_retries", "cache"];

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), String> {
        match key {
            "provider" => self.provider = keyword(raw)?,
            "model" => self.model = raw.string()?.trim().to_owned(),
            "url" => self.url = endpoint_url(raw)?,
            "request_dimensions" => self.request_dimensions = raw.boolean()?,
            "batch_size" => self.batch_size = integer_in(raw, 1..=1000)?,
            "timeout" => self.timeout = duration_in(raw, Duration::from_secs(1)..=Duration::from_secs(600))?,
            "max_retries" => self.max_retries = integer_in(raw, 0..=20)?,
            "cache" => self.cache = keyword(raw)?,
            _ => return Err(not_a_key(key)),
        }
        Ok(())
    }

    fn value(&self, key: &str) -> Option<String> {
        Some(match key {
            "provider" => toml_keyword(self.provider),
            "model" => toml_string(&self.model),
            "url" => toml_string(&self.url),
            "request_dimensions" => self.request_dimensions.to_string(),
            "batch_size" => self.batch_size.to_string(),
            "timeout" => toml_duration(self.timeout),
            "max_retries" => self.max_retries.to_string(),
            "cache" => toml_keyword(self.cache),
            _ => return None,
        })
    }
}

impl Settings for NotificationsConfig {
    const KEYS: &'static [&'static str] =
        &["allow_private_targets", "delivery_timeout", "smtp_url", "email_from"];

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), String> {
        match key {
            "allow_private_targets" => self.allow_private_targets = boolean(raw)?,
            "delivery_timeout" => {
                self.delivery_timeout = duration_in(raw, Duration::from_millis(1)..=Duration::from_secs(300))?
            }
            "smtp_url" => self.smtp = smtp_url(raw)?,
            "email_from" => self.email_from = mailbox(raw)?,
            _ => return Err(not_a_key(key)),
        }
        Ok(())
    }

    fn value(&self, key: &str) -> Option<String> {
        match key {
            "allow_private_targets" => Some(self.allow_private_targets.to_string()),
            "delivery_timeout" => Some(toml_duration(self.delivery_timeout)),
            "smtp_url" => Some(toml_string(&self.smtp.as_ref().map(SmtpServer::url).unwrap_or_default())),
            "email_from" => Some(toml_string(&self.email_from)),
            _ => None,
        }
    }
}

impl Settings for StorageConfig {
    const KEYS: &'static [&'static str] = &["durability"];

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), String> {
        match key {
            "durability" => self.durability = keyword(raw)?,
            _ => return Err(not_a_key(key)),
        }
        Ok(())
    }

    fn value(&self, key: &str) -> Option<String> {
        match key {
            "durability" => Some(toml_keyword(self.durability)),
            _ => None,
        }
    }
}

impl Settings for DatabaseConfig {
    const KEYS: &'static [&'static str] = &["url"];

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), String> {
        match key {
            "url" => self.url = database_url(raw)?,
            _ => return Err(not_a_key(key)),
        }
        Ok(())
    }

    fn value(&self, key: &str) -> Option<String> {
        match (key, &self.url) {
            ("url", DatabaseUrl::Sqlite(path)) => {
                Some(toml_string(&format!("sqlite://{}", path.to_string_lossy())))
            }
            _ => None,
        }
    }
}

impl Settings for BucketConfig {
    const KEYS: &'static [&'static str] = &["driver", "path"];

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), String> {
        match key {
            "driver" => self.driver = keyword(raw)?,
            "path" => self.path = PathBuf::from(nonempty_string(raw)?),
            _ => return Err(not_a_key(key)),
        }
        Ok(())
    }

    fn value(&self, key: &str) -> Option<String> {
        match key {
            "driver" => Some(toml_keyword(self.driver)),
            "path" => Some(toml_path(&self.path)),
            _ => None,
        }
    }
}

impl Settings for KvConfig {
    const KEYS: &'static [&'static str] = &["driver"];

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), String> {
        match key {
            "driver" => self.driver = keyword(raw)?,
            _ => return Err(not_a_key(key)),
        }
        Ok(())
    }

    fn value(&self, key: &str) -> Option<String> {
        match key {
            "driver" => Some(toml_keyword(self.driver)),
            _ => None,
        }
    }
}

/// The longest delay the contract allows (`delay_seconds` ≤ 43 200).
const MAX_DELAY: Duration = Duration::from_secs(43_200);

impl Settings for QueueConfig {
    const KEYS: &'static [&'static str] = &[
        "driver",
        "max_batch_size",
        "max_batch_timeout",
        "max_retries",
        "retry_delay",
        "dead_letter_queue",
        "max_concurrency",
        "delivery_delay",
        "message_retention",
        "visibility_timeout",
    ];

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), String> {
        match key {
            "driver" => self.driver = keyword(raw)?,
            "max_batch_size" => self.max_batch_size = integer_in(raw, 1..=100)?,
            "max_batch_timeout" => {
                self.max_batch_timeout = duration_in(raw, Duration::ZERO..=Duration::from_secs(60))?
            }
            "max_retries" => self.max_retries = integer_in(raw, 0..=100)?,
            "retry_delay" => self.retry_delay = duration_in(raw, Duration::ZERO..=MAX_DELAY)?,
            "dead_letter_queue" => self.dead_letter_queue = dead_letter_queue(raw)?,
            "max_concurrency" => self.max_concurrency = max_concurrency(raw)?,
            "delivery_delay" => self.delivery_delay = duration_in(raw, Duration::ZERO..=MAX_DELAY)?,
            "message_retention" => {
                self.message_retention =
                    duration_in(raw, Duration::from_secs(60)..=Duration::from_secs(14 * 86_400))?
            }
            "visibility_timeout" => {
                self.visibility_timeout = duration_in(raw, Duration::from_millis(1)..=MAX_DELAY)?
            }
            _ => return Err(not_a_key(key)),
        }
        Ok(())
    }

    fn value(&self, key: &str) -> Option<String> {
        Some(match key {
            "driver" => toml_keyword(self.driver),
            "max_batch_size" => self.max_batch_size.to_string(),
            "max_batch_timeout" => toml_duration(self.max_batch_timeout),
            "max_retries" => self.max_retries.to_string(),
            "retry_delay" => toml_duration(self.retry_delay),
            "dead_letter_queue" => toml_string(self.dead_letter_queue.as_deref().unwrap_or("")),
            "max_concurrency" => self.max_concurrency.map_or_else(|| toml_string("auto"), |n| n.to_string()),
            "delivery_delay" => toml_duration(self.delivery_delay),
            "message_retention" => toml_duration(self.message_retention),
            "visibility_timeout" => toml_duration(self.visibility_timeout),
            _ => return None,
        })
    }
}

impl Settings for DurableObjectConfig {
    const KEYS: &'static [&'static str] = &["driver"];

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), String> {
        match key {
            "driver" => self.driver = keyword(raw)?,
            _ => return Err(not_a_key(key)),
        }
        Ok(())
    }

    fn value(&self, key: &str) -> Option<String> {
        match key {
            "driver" => Some(toml_keyword(self.driver)),
            _ => None,
        }
    }
}

impl Settings for VectorIndexConfig {
    const KEYS: &'static [&'static str] = &["driver", "dimensions", "metric"];

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), String> {
        match key {
            "driver" => self.driver = keyword(raw)?,
            "dimensions" => self.dimensions = integer_in(raw, 1..=1536)?,
            "metric" => self.metric = keyword(raw)?,
            _ => return Err(not_a_key(key)),
        }
        Ok(())
    }

    fn value(&self, key: &str) -> Option<String> {
        match key {
            "driver" => Some(toml_keyword(self.driver)),
            "dimensions" => Some(self.dimensions.to_string()),
            "metric" => Some(toml_keyword(self.metric)),
            _ => None,
        }
    }
}

/// A plan limit: a non-negative integer, or `"unlimited"` (`None`).
fn limit(raw: Raw<'_>) -> Result<Option<u64>, String> {
    if let Ok(text) = raw.string() {
        if text.trim().eq_ignore_ascii_case("unlimited") {
            return Ok(None);
        }
        if let Raw::Toml(_) = raw {
            return Err(format!("expected a number 0..=1000000000000 or \"unlimited\", got {text:?}"));
        }
    }
    integer_in(raw, 0..=1_000_000_000_000).map(Some)
}

/// A Stripe price id (`price_…`), or `""` for none.
fn stripe_price(raw: Raw<'_>) -> Result<Option<String>, String> {
    let text = raw.string()?.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > 255 || !text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(format!("expected a Stripe price id like \"price_1234\" or \"\", got {text:?}"));
    }
    Ok(Some(text.to_owned()))
}

fn toml_limit(limit: Option<u64>) -> String {
    limit.map_or_else(|| toml_string("unlimited"), |n| n.to_string())
}

impl Settings for PlanConfig {
    const KEYS: &'static [&'static str] =
        &["repositories", "indexed_files", "searches_per_day", "chat_messages_per_day", "stripe_price"];

    fn set(&mut self, key: &str, raw: Raw<'_>) -> Result<(), String> {
        match key {
            "repositories" => self.repositories = limit(raw)?,
            "indexed_files" => self.indexed_files = limit(raw)?,
            "searches_per_day" => self.searches_per_day = limit(raw)?,
            "chat_messages_per_day" => self.chat_messages_per_day = limit(raw)?,
            "stripe_price" => self.stripe_price = stripe_price(raw)?,
            _ => return Err(not_a_key(key)),
        }
        Ok(())
    }

    fn value(&self, key: &str) -> Option<String> {
        Some(match key {
            "repositories" => toml_limit(self.repositories),
            "indexed_files" => toml_limit(self.indexed_files),
            "searches_per_day" => toml_limit(self.searches_per_day),
            "chat_messages_per_day" => toml_limit(self.chat_messages_per_day),
            "stripe_price" => toml_string(self.stripe_price.as_deref().unwrap_or("")),
            _ => return None,
        })
    }
}

/// The sections of ledge.toml, in the order they are rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Server,
    Storage,
    Database,
    Notifications,
    Buckets,
    Kv,
    Queues,
    DurableObjects,
    VectorIndex,
    Embedding,
    Plans,
}

impl Section {
    pub(crate) const ALL: [Section; 11] = [
        Section::Server,
        Section::Storage,
        Section::Database,
        Section::Notifications,
        Section::Buckets,
        Section::Kv,
        Section::Queues,
        Section::DurableObjects,
        Section::VectorIndex,
        Section::Embedding,
        Section::Plans,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Section::Server => "server",
            Section::Storage => "storage",
            Section::Database => "database",
            Section::Notifications => "notifications",
            Section::Buckets => "buckets",
            Section::Kv => "kv",
            Section::Queues => "queues",
            Section::DurableObjects => "durable_objects",
            Section::VectorIndex => "vector_index",
            Section::Embedding => "embedding",
            Section::Plans => "plans",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|section| section.name() == name)
    }

    /// What one binding of this section is called in messages; `None` for a plain section.
    pub(crate) fn binding_kind(self) -> Option<&'static str> {
        match self {
            Section::Server
            | Section::Storage
            | Section::Database
            | Section::Embedding
            | Section::Notifications => None,
            Section::Buckets => Some("bucket"),
            Section::Kv => Some("KV namespace"),
            Section::Queues => Some("queue"),
            Section::DurableObjects => Some("durable object class"),
            Section::VectorIndex => Some("vector index"),
            Section::Plans => Some("plan"),
        }
    }

    pub(crate) fn keys(self) -> &'static [&'static str] {
        match self {
            Section::Server => ServerConfig::KEYS,
            Section::Storage => StorageConfig::KEYS,
            Section::Database => DatabaseConfig::KEYS,
            Section::Notifications => NotificationsConfig::KEYS,
            Section::Buckets => BucketConfig::KEYS,
            Section::Kv => KvConfig::KEYS,
            Section::Queues => QueueConfig::KEYS,
            Section::DurableObjects => DurableObjectConfig::KEYS,
            Section::VectorIndex => VectorIndexConfig::KEYS,
            Section::Embedding => EmbeddingConfig::KEYS,
            Section::Plans => PlanConfig::KEYS,
        }
    }

    /// The declared bindings of a binding section, in order; empty for a plain section.
    pub(crate) fn binding_names(self, config: &Config) -> Vec<String> {
        fn names<S>(map: &BTreeMap<String, S>) -> Vec<String> {
            map.keys().cloned().collect()
        }
        match self {
            Section::Server
            | Section::Storage
            | Section::Database
            | Section::Embedding
            | Section::Notifications => Vec::new(),
            Section::Buckets => names(&config.buckets),
            Section::Kv => names(&config.kv),
            Section::Queues => names(&config.queues),
            Section::DurableObjects => names(&config.durable_objects),
            Section::VectorIndex => names(&config.vector_index),
            Section::Plans => names(&config.plans),
        }
    }

    /// Declares the binding `name` with its kind's defaults unless it is already declared.
    pub(crate) fn declare(self, config: &mut Config, name: &str) {
        match self {
            Section::Server
            | Section::Storage
            | Section::Database
            | Section::Embedding
            | Section::Notifications => {}
            Section::Buckets => {
                config.buckets.entry(name.to_owned()).or_insert_with(|| BucketConfig::declared(name));
            }
            Section::Kv => {
                config.kv.entry(name.to_owned()).or_insert_with(|| KvConfig::declared(name));
            }
            Section::Queues => {
                config.queues.entry(name.to_owned()).or_insert_with(|| QueueConfig::declared(name));
            }
            Section::DurableObjects => {
                config
                    .durable_objects
                    .entry(name.to_owned())
                    .or_insert_with(|| DurableObjectConfig::declared(name));
            }
            Section::VectorIndex => {
                config
                    .vector_index
                    .entry(name.to_owned())
                    .or_insert_with(|| VectorIndexConfig::declared(name));
            }
            Section::Plans => {
                config.plans.entry(name.to_owned()).or_insert_with(|| PlanConfig::declared(name));
            }
        }
    }

    /// Sets `key` of the section (`binding: None`) or of one declared binding.
    pub(crate) fn set(
        self,
        config: &mut Config,
        binding: Option<&str>,
        key: &str,
        raw: Raw<'_>,
    ) -> Result<(), String> {
        fn in_map<S: Settings>(
            map: &mut BTreeMap<String, S>,
            name: Option<&str>,
            key: &str,
            raw: Raw<'_>,
        ) -> Result<(), String> {
            let name = name.unwrap_or_default();
            map.get_mut(name).ok_or_else(|| format!("`{name}` is not declared"))?.set(key, raw)
        }
        match self {
            Section::Server => config.server.set(key, raw),
            Section::Storage => config.storage.set(key, raw),
            Section::Database => config.database.set(key, raw),
            Section::Embedding => config.embedding.set(key, raw),
            Section::Notifications => config.notifications.set(key, raw),
            Section::Buckets => in_map(&mut config.buckets, binding, key, raw),
            Section::Kv => in_map(&mut config.kv, binding, key, raw),
            Section::Queues => in_map(&mut config.queues, binding, key, raw),
            Section::DurableObjects => in_map(&mut config.durable_objects, binding, key, raw),
            Section::VectorIndex => in_map(&mut config.vector_index, binding, key, raw),
            Section::Plans => in_map(&mut config.plans, binding, key, raw),
        }
    }

    /// The TOML text of `key` of the section (`binding: None`) or of one declared binding.
    pub(crate) fn value(self, config: &Config, binding: Option<&str>, key: &str) -> Option<String> {
        fn in_map<S: Settings>(map: &BTreeMap<String, S>, name: Option<&str>, key: &str) -> Option<String> {
            map.get(name?)?.value(key)
        }
        match self {
            Section::Server => config.server.value(key),
            Section::Storage => config.storage.value(key),
            Section::Database => config.database.value(key),
            Section::Embedding => config.embedding.value(key),
            Section::Notifications => config.notifications.value(key),
            Section::Buckets => in_map(&config.buckets, binding, key),
            Section::Kv => in_map(&config.kv, binding, key),
            Section::Queues => in_map(&config.queues, binding, key),
            Section::DurableObjects => in_map(&config.durable_objects, binding, key),
            Section::VectorIndex => in_map(&config.vector_index, binding, key),
            Section::Plans => in_map(&config.plans, binding, key),
        }
    }
}

/// The dotted key of a setting, e.g. `queues.file-indexing.max_batch_size`.
pub(crate) fn key_path(section: Section, binding: Option<&str>, key: &str) -> String {
    match binding {
        Some(name) => format!("{}.{name}.{key}", section.name()),
        None => format!("{}.{key}", section.name()),
    }
}
