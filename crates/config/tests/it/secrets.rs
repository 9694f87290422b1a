//! Secrets come from the environment or the secrets file, never from ledge.toml, and never print.

use ledge_config::{ErrorKind, LoadOptions, Secret, SecretName, SecretSource};

use crate::{Workspace, problems_of};

const SECRET: &str = "hunter2-webhook-key";

#[test]
fn the_webhook_secret_is_read_from_the_environment() {
    let config = Workspace::empty().config(&[("LEDGE_GITHUB_WEBHOOK_SECRET", SECRET)]);
    assert_eq!(config.secrets.github_webhook_secret().map(Secret::expose), Some(SECRET));
    assert_eq!(config.secrets.source(SecretName::GithubWebhookSecret), Some(&SecretSource::Env));
}

#[test]
fn an_http_embedding_provider_takes_its_key_from_the_environment() {
    let workspace = Workspace::with_config(
        "[embedding]\nprovider = \"voyage\"\nmodel = \"voyage-code-3\"\nrequest_dimensions = true\n",
    );
    let config = workspace.config(&[("LEDGE_VOYAGE_API_KEY", SECRET)]);
    assert_eq!(config.embedding.provider, ledge_config::EmbeddingProvider::Voyage);
    assert!(config.embedding.request_dimensions);
    assert_eq!(config.secrets.get(SecretName::VoyageApiKey).map(Secret::expose), Some(SECRET));
    assert!(!config.render().contains(SECRET), "the key is never rendered");
}

#[test]
fn a_secret_prints_as_stars_in_debug_and_display() {
    let secret = Secret::new(SECRET);
    assert_eq!(format!("{secret}"), "***");
    assert_eq!(format!("{secret:?}"), "***");
    let config = Workspace::empty().config(&[("LEDGE_GITHUB_WEBHOOK_SECRET", SECRET)]);
    let debug = format!("{config:?}");
    assert!(!debug.contains(SECRET), "the secret leaked into Debug");
    assert!(debug.contains("***"));
}

#[test]
fn load_options_debug_shows_variable_names_but_not_values() {
    let options = LoadOptions::default().with_env([("LEDGE_GITHUB_WEBHOOK_SECRET", SECRET)]);
    let debug = format!("{options:?}");
    assert!(debug.contains("LEDGE_GITHUB_WEBHOOK_SECRET"));
    assert!(!debug.contains(SECRET), "{debug}");
}

#[test]
fn the_secrets_file_holds_key_value_lines_and_the_environment_wins() {
    let workspace = Workspace::empty();
    workspace.write("secrets.env", "# webhook\nLEDGE_GITHUB_WEBHOOK_SECRET='from-file'\n");
    let from_file = workspace.config(&[("LEDGE_SECRETS_FILE", "secrets.env")]);
    assert_eq!(from_file.secrets.github_webhook_secret().map(Secret::expose), Some("from-file"));
    assert_eq!(
        from_file.secrets.source(SecretName::GithubWebhookSecret),
        Some(&SecretSource::File("secrets.env".into()))
    );

    let both =
        workspace.config(&[("LEDGE_SECRETS_FILE", "secrets.env"), ("LEDGE_GITHUB_WEBHOOK_SECRET", SECRET)]);
    assert_eq!(both.secrets.github_webhook_secret().map(Secret::expose), Some(SECRET));
}

#[test]
fn a_bad_secrets_file_is_reported_by_line_without_echoing_values() {
    let workspace = Workspace::empty();
    workspace.write("secrets.env", "LEDGE_GITHUB_WEBHOOK_SECRET=\nGITHUB_TOKEN=ghp_leak\nnot a pair\n");
    let problems = workspace.problems(&[("LEDGE_SECRETS_FILE", "secrets.env")]);
    assert_eq!(
        problems,
        "secrets.env:1:1: LEDGE_GITHUB_WEBHOOK_SECRET: a secret must not be empty\n\
         secrets.env:2:1: GITHUB_TOKEN: not a secret ledge knows; known: LEDGE_GITHUB_WEBHOOK_SECRET, \
         LEDGE_GITHUB_TOKEN, LEDGE_JWT_KEYS, LEDGE_ENCRYPTION_KEY, LEDGE_VOYAGE_API_KEY, \
         LEDGE_OPENAI_API_KEY, LEDGE_STRIPE_WEBHOOK_SECRET, LEDGE_SMTP_PASSWORD\n\
         secrets.env:3:1: expected KEY=VALUE"
    );
    assert!(!problems.contains("ghp_leak"));
}

#[test]
fn a_missing_secrets_file_or_an_empty_secret_is_an_error() {
    let workspace = Workspace::empty();
    let problems = workspace.problems(&[("LEDGE_SECRETS_FILE", "nope.env")]);
    assert!(
        problems.starts_with("env LEDGE_SECRETS_FILE: cannot read the secrets file $WORK/nope.env: "),
        "{problems}"
    );
    assert_eq!(
        workspace.problems(&[("LEDGE_GITHUB_WEBHOOK_SECRET", "")]),
        "env LEDGE_GITHUB_WEBHOOK_SECRET: a secret must not be empty"
    );
}

/// `(ledge.toml, the problems printed)`: a secret anywhere in the file is rejected, pointing at its key.
const SECRETS_IN_TOML: &[(&str, &str)] = &[
    (
        "github_webhook_secret = \"hunter2\"\n",
        "ledge.toml:1:1: github_webhook_secret: secrets are never read from ledge.toml; set \
         LEDGE_GITHUB_WEBHOOK_SECRET in the environment or in the file named by LEDGE_SECRETS_FILE",
    ),
    (
        "[server]\ngithub-webhook-secret = \"hunter2\"\n",
        "ledge.toml:2:1: server.github-webhook-secret: secrets are never read from ledge.toml; set \
         LEDGE_GITHUB_WEBHOOK_SECRET in the environment or in the file named by LEDGE_SECRETS_FILE",
    ),
    (
        "[notifications]\nsmtp_password = \"hunter2\"\n",
        "ledge.toml:2:1: notifications.smtp_password: secrets are never read from ledge.toml; set \
         LEDGE_SMTP_PASSWORD in the environment or in the file named by LEDGE_SECRETS_FILE",
    ),
    (
        "[queues.notifications]\nrelay_password = \"hunter2\"\n",
        "ledge.toml:2:1: queues.notifications.relay_password: looks like a secret, and secrets are never read from \
         ledge.toml; set it in the environment (LEDGE_...) or in the file named by LEDGE_SECRETS_FILE",
    ),
    (
        "[github]\napp_id = 1\nwebhook_secret = \"hunter2\"\n",
        "ledge.toml:1:2: github: unknown key; expected one of: data_dir, server, storage, database, notifications, buckets, \
         kv, queues, durable_objects, vector_index, embedding, plans\n\
         ledge.toml:3:1: github.webhook_secret: looks like a secret, and secrets are never read from ledge.toml; \
         set it in the environment (LEDGE_...) or in the file named by LEDGE_SECRETS_FILE",
    ),
];

#[test]
fn a_secret_in_ledge_toml_is_rejected_and_never_echoed() {
    for (toml, expected) in SECRETS_IN_TOML {
        let problems = problems_of(toml);
        assert_eq!(problems, *expected, "for {toml:?}");
        assert!(!problems.contains("hunter2"));
    }
    let errors = Workspace::with_config(SECRETS_IN_TOML[0].0).load(&[]).expect_err("rejected");
    assert_eq!(errors.errors()[0].kind, ErrorKind::SecretInFile);
}

#[test]
fn keys_are_judged_secret_by_whole_words() {
    for key in ["api_key", "access-key", "Slack_Token", "db_password", "secrets"] {
        let errors =
            Workspace::with_config(&format!("[server]\n{key} = \"x\"\n")).load(&[]).expect_err("rejected");
        assert_eq!(errors.errors()[0].kind, ErrorKind::SecretInFile, "{key}");
    }
    for key in ["max_tokens", "keyspace", "tokenizer"] {
        let errors =
            Workspace::with_config(&format!("[server]\n{key} = 1\n")).load(&[]).expect_err("unknown");
        assert_eq!(errors.errors()[0].kind, ErrorKind::UnknownSetting, "{key}");
    }
}
