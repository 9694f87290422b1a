//! Secrets: read only from the environment or from the file named by `LEDGE_SECRETS_FILE`, never from
//! ledge.toml, and held in a [`Secret`] that prints as `***`.
//!
//! Adding a secret is one row in the `declare_secrets!` table below (plus an accessor on [`Secrets`] if wanted).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{ConfigError, ErrorKind, Location};

/// The variable that names the secrets file.
pub const SECRETS_FILE_VARIABLE: &str = "LEDGE_SECRETS_FILE";

/// A secret value. `Debug` and `Display` print `***`; [`Secret::expose`] is the only way to the text.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret text, for the one place that uses it (e.g. the webhook verifier's key).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Declares [`SecretName`] from one row per secret: variant, environment variable, and the ledge.toml key
/// that gives it away when someone writes it there by mistake.
macro_rules! declare_secrets {
    ($($(#[$doc:meta])* $variant:ident => $variable:literal, $toml_key:literal;)*) => {
        /// Every secret ledge knows.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum SecretName {
            $($(#[$doc])* $variant,)*
        }

        impl SecretName {
            /// Every known secret, in the order the rendered configuration lists them.
            pub const ALL: &'static [SecretName] = &[$(SecretName::$variant),*];

            /// The environment variable that holds it (also its key in the secrets file).
            pub fn variable(self) -> &'static str {
                match self {
                    $(SecretName::$variant => $variable,)*
                }
            }

            /// The key someone would write in ledge.toml by mistake.
            fn toml_key(self) -> &'static str {
                match self {
                    $(SecretName::$variant => $toml_key,)*
                }
            }
        }
    };
}

declare_secrets! {
    /// The key GitHub signs webhook deliveries with.
    GithubWebhookSecret => "LEDGE_GITHUB_WEBHOOK_SECRET", "github_webhook_secret";
    /// A token that can read the repositories ledge indexes over https (a GitHub App installation
    /// token or a personal access token); public repositories need none.
    GithubToken => "LEDGE_GITHUB_TOKEN", "github_token";
    /// The keys that sign and verify access tokens, `kid:secret` pairs separated by commas (each
    /// secret at least 32 bytes); the first signs, all verify, so a key is rotated by putting the
    /// new one first and dropping the old one once the tokens it signed have expired. Without
    /// it, the platform routes (auth, organizations, API keys) answer 503.
    JwtKeys => "LEDGE_JWT_KEYS", "jwt_keys";
    /// The keys that seal the secrets ledge stores and must read back (a repository's webhook
    /// secret and access token), `kid:secret` pairs separated by commas (each secret at least 32
    /// bytes); the first seals, all open. Without it, repositories can be connected without
    /// secrets only.
    EncryptionKey => "LEDGE_ENCRYPTION_KEY", "encryption_key";
    /// The key of Voyage AI's embeddings API (`[embedding] provider = "voyage"`).
    VoyageApiKey => "LEDGE_VOYAGE_API_KEY", "voyage_api_key";
    /// The key of an OpenAI-compatible embeddings API (`[embedding] provider = "openai"`), sent as a
    /// bearer token.
    OpenaiApiKey => "LEDGE_OPENAI_API_KEY", "openai_api_key";
    /// The signing secret of the Stripe webhook endpoint (`whsec_…`): `POST /webhooks/stripe`
    /// verifies each event's `Stripe-Signature` with it. Without it, that route answers 503.
    StripeWebhookSecret => "LEDGE_STRIPE_WEBHOOK_SECRET", "stripe_webhook_secret";
    /// The password of the mail server's user (`[notifications] smtp_url = "smtps://user@host"`).
    SmtpPassword => "LEDGE_SMTP_PASSWORD", "smtp_password";
}

impl SecretName {
    pub(crate) fn from_variable(variable: &str) -> Option<SecretName> {
        SecretName::ALL.iter().copied().find(|name| name.variable() == variable)
    }

    /// The secret a ledge.toml key (normalized: lower case, `_` for `-`) stands for.
    pub(crate) fn from_toml_key(normalized_key: &str) -> Option<SecretName> {
        SecretName::ALL.iter().copied().find(|name| name.toml_key() == normalized_key)
    }
}

/// Where a secret was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env,
    File(PathBuf),
}

/// The secrets that are set.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    values: BTreeMap<SecretName, (Secret, SecretSource)>,
}

impl Secrets {
    pub fn get(&self, name: SecretName) -> Option<&Secret> {
        self.values.get(&name).map(|(secret, _)| secret)
    }

    pub fn source(&self, name: SecretName) -> Option<&SecretSource> {
        self.values.get(&name).map(|(_, source)| source)
    }

    pub fn github_webhook_secret(&self) -> Option<&Secret> {
        self.get(SecretName::GithubWebhookSecret)
    }

    pub fn github_token(&self) -> Option<&Secret> {
        self.get(SecretName::GithubToken)
    }

    pub fn jwt_keys(&self) -> Option<&Secret> {
        self.get(SecretName::JwtKeys)
    }

    pub fn encryption_key(&self) -> Option<&Secret> {
        self.get(SecretName::EncryptionKey)
    }

    pub fn stripe_webhook_secret(&self) -> Option<&Secret> {
        self.get(SecretName::StripeWebhookSecret)
    }

    /// Sets a secret (for tests and for callers that obtain secrets elsewhere).
    pub fn insert(&mut self, name: SecretName, secret: Secret, source: SecretSource) {
        self.values.insert(name, (secret, source));
    }
}

/// Words of a ledge.toml key (split on `_`) that make it look like a secret: `smtp_password`, `api_token`,
/// `webhook_secret`, but not `max_tokens`.
const SECRET_WORDS: &[&str] = &["secret", "secrets", "password", "passwd", "token", "credentials", "apikey"];

/// Adjacent words that make a key look like a secret: `api_key`, `private_key`, `access_key`, `secret_key`.
const SECRET_WORD_PAIRS: &[(&str, &str)] =
    &[("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key")];

/// If `normalized_key` looks like a secret, the message telling the user where it belongs instead.
pub(crate) fn secret_in_file_message(normalized_key: &str) -> Option<String> {
    if let Some(name) = SecretName::from_toml_key(normalized_key) {
        return Some(format!(
            "secrets are never read from ledge.toml; set {} in the environment or in the file named by \
             {SECRETS_FILE_VARIABLE}",
            name.variable()
        ));
    }
    let words: Vec<&str> = normalized_key.split('_').collect();
    let looks_secret = words.iter().any(|word| SECRET_WORDS.contains(word))
        || words.windows(2).any(|pair| SECRET_WORD_PAIRS.contains(&(pair[0], pair[1])));
    looks_secret.then(|| {
        format!(
            "looks like a secret, and secrets are never read from ledge.toml; set it in the environment \
             (LEDGE_...) or in the file named by {SECRETS_FILE_VARIABLE}"
        )
    })
}

/// Reads the secrets: first the file named by `LEDGE_SECRETS_FILE` (if set), then the environment, which wins.
pub(crate) fn read_secrets(
    env: &BTreeMap<String, String>,
    working_dir: &Path,
    errors: &mut Vec<ConfigError>,
) -> Secrets {
    let mut secrets = Secrets::default();
    if let Some(file) = env.get(SECRETS_FILE_VARIABLE) {
        let location = Location::Env { variable: SECRETS_FILE_VARIABLE.to_owned() };
        if file.trim().is_empty() {
            errors.push(ConfigError::new(
                ErrorKind::InvalidValue,
                Some(location),
                None,
                "must name a file".to_owned(),
            ));
        } else {
            let path = crate::paths::absolute(working_dir, Path::new(file));
            match std::fs::read_to_string(&path) {
                Ok(text) => read_secrets_file(&text, Path::new(file), &mut secrets, errors),
                Err(error) => errors.push(ConfigError::new(
                    ErrorKind::Io,
                    Some(location),
                    None,
                    format!("cannot read the secrets file {}: {error}", path.display()),
                )),
            }
        }
    }
    for &name in SecretName::ALL {
        let Some(value) = env.get(name.variable()) else { continue };
        if value.is_empty() {
            errors.push(ConfigError::new(
                ErrorKind::InvalidValue,
                Some(Location::Env { variable: name.variable().to_owned() }),
                None,
                "a secret must not be empty".to_owned(),
            ));
            continue;
        }
        secrets.insert(name, Secret::new(value.clone()), SecretSource::Env);
    }
    secrets
}

/// Parses `KEY=VALUE` lines: blank lines and `#` comments are skipped, an `export ` prefix is allowed,
/// whitespace around key and value is trimmed and one pair of matching quotes around the value removed.
fn read_secrets_file(text: &str, shown_path: &Path, secrets: &mut Secrets, errors: &mut Vec<ConfigError>) {
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let (column, entry) = match trimmed.strip_prefix("export ") {
            Some(rest) => (indent + "export ".len() + 1, rest.trim_start()),
            None => (indent + 1, trimmed),
        };
        let location = Location::File { path: shown_path.to_path_buf(), line: index + 1, column };
        let problem = |kind, key: Option<&str>, message: String| {
            ConfigError::new(kind, Some(location.clone()), key.map(str::to_owned), message)
        };
        let Some((key, value)) = entry.split_once('=') else {
            errors.push(problem(ErrorKind::Syntax, None, "expected KEY=VALUE".to_owned()));
            continue;
        };
        let key = key.trim();
        let Some(name) = SecretName::from_variable(key) else {
            let known: Vec<&str> = SecretName::ALL.iter().map(|name| name.variable()).collect();
            errors.push(problem(
                ErrorKind::UnknownSetting,
                Some(key),
                format!("not a secret ledge knows; known: {}", known.join(", ")),
            ));
            continue;
        };
        let value = unquote(value.trim());
        if value.is_empty() {
            errors.push(problem(ErrorKind::InvalidValue, Some(key), "a secret must not be empty".to_owned()));
            continue;
        }
        secrets.insert(name, Secret::new(value), SecretSource::File(shown_path.to_path_buf()));
    }
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(quote).and_then(|rest| rest.strip_suffix(quote)) {
            return inner;
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_map_to_distinct_variables_that_find_them_again() {
        for &name in SecretName::ALL {
            assert!(name.variable().starts_with("LEDGE_"), "{name:?}");
            assert_eq!(SecretName::from_variable(name.variable()), Some(name));
            assert_eq!(SecretName::from_toml_key(name.toml_key()), Some(name));
        }
    }

    #[test]
    fn secrets_file_lines_are_parsed_like_dotenv() {
        let mut secrets = Secrets::default();
        let mut errors = Vec::new();
        let text = "# comment\n\nexport LEDGE_GITHUB_WEBHOOK_SECRET = \"s3cr3t\"\n";
        read_secrets_file(text, Path::new("secrets.env"), &mut secrets, &mut errors);
        assert_eq!(errors, []);
        assert_eq!(secrets.github_webhook_secret().map(Secret::expose), Some("s3cr3t"));
        assert_eq!(
            secrets.source(SecretName::GithubWebhookSecret),
            Some(&SecretSource::File("secrets.env".into()))
        );
    }
}
