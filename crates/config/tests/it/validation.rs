//! Every validation rule of ledge.toml, each reported with its file, line and column, the key and a one-line
//! message; all problems of a file are reported together, in file order.

use ledge_config::ErrorKind;

use crate::{Workspace, problems_of};

/// `(ledge.toml, the problems printed)`
const RULES: &[(&str, &str)] = &[
    // Queue consumer settings and their contract ranges.
    (
        "[queues.file-indexing]\nmax_batch_size = 500\n",
        "ledge.toml:2:18: queues.file-indexing.max_batch_size: must be 1..=100, got 500",
    ),
    (
        "[queues.file-indexing]\nmax_batch_size = 0\n",
        "ledge.toml:2:18: queues.file-indexing.max_batch_size: must be 1..=100, got 0",
    ),
    (
        "[queues.github-events]\nmax_batch_timeout = 61\n",
        "ledge.toml:2:21: queues.github-events.max_batch_timeout: must be 0s..=1m, got 61s",
    ),
    (
        "[queues.github-events]\nmax_batch_timeout = \"5 parsecs\"\n",
        "ledge.toml:2:21: queues.github-events.max_batch_timeout: invalid duration \"5 parsecs\"; expected e.g. \
         \"500ms\", \"5s\", \"1m30s\" or seconds",
    ),
    (
        "[queues.github-events]\nmax_batch_timeout = -1\n",
        "ledge.toml:2:21: queues.github-events.max_batch_timeout: must not be negative, got -1",
    ),
    (
        "[queues.notifications]\nmax_retries = 101\n",
        "ledge.toml:2:15: queues.notifications.max_retries: must be 0..=100, got 101",
    ),
    (
        "[queues.notifications]\nretry_delay = \"13h\"\n",
        "ledge.toml:2:15: queues.notifications.retry_delay: must be 0s..=12h, got 13h",
    ),
    (
        "[queues.notifications]\nmax_concurrency = 251\n",
        "ledge.toml:2:19: queues.notifications.max_concurrency: must be 1..=250, got 251",
    ),
    (
        "[queues.notifications]\nmax_concurrency = \"many\"\n",
        "ledge.toml:2:19: queues.notifications.max_concurrency: expected an integer 1..=250 or \"auto\", got \"many\"",
    ),
    (
        "[queues.notifications]\ndelivery_delay = 43201\n",
        "ledge.toml:2:18: queues.notifications.delivery_delay: must be 0s..=12h, got 43201s",
    ),
    (
        "[queues.notifications]\nmessage_retention = \"15d\"\n",
        "ledge.toml:2:21: queues.notifications.message_retention: must be 1m..=14d, got 15d",
    ),
    (
        "[queues.notifications]\nvisibility_timeout = 0\n",
        "ledge.toml:2:22: queues.notifications.visibility_timeout: must be 1ms..=12h, got 0s",
    ),
    (
        "[queues.file-indexing]\nmax_batch_size = \"ten\"\n",
        "ledge.toml:2:18: queues.file-indexing.max_batch_size: expected an integer, got a string",
    ),
    (
        "[queues.file-indexing]\nmax_batch_size = 1.5\n",
        "ledge.toml:2:18: queues.file-indexing.max_batch_size: expected an integer, got a float",
    ),
    // Dead-letter queues.
    (
        "[queues.file-indexing]\ndead_letter_queue = \"nowhere\"\n",
        "ledge.toml:2:21: queues.file-indexing.dead_letter_queue: no queue named `nowhere` is declared",
    ),
    (
        "[queues.file-indexing]\ndead_letter_queue = \"file-indexing\"\n",
        "ledge.toml:2:21: queues.file-indexing.dead_letter_queue: a queue cannot be its own dead-letter queue",
    ),
    (
        "[queues.a]\ndead_letter_queue = \"b\"\n[queues.b]\ndead_letter_queue = \"a\"\n",
        "ledge.toml:2:21: queues.a.dead_letter_queue: dead-letter queues form a cycle: a → b → a",
    ),
    (
        "[queues.github-events-dlq]\ndead_letter_queue = \"github-events\"\n",
        "ledge.toml:2:21: queues.github-events-dlq.dead_letter_queue: dead-letter queues form a cycle: \
         github-events → github-events-dlq → github-events",
    ),
    // Drivers and other words.
    (
        "[buckets.recordings]\ndriver = \"s3\"\n",
        "ledge.toml:2:10: buckets.recordings.driver: expected one of \"local\", got \"s3\"",
    ),
    (
        "[kv.sessions]\ndriver = \"redis\"\n",
        "ledge.toml:2:10: kv.sessions.driver: expected one of \"sqlite\", got \"redis\"",
    ),
    (
        "[vector_index.code]\nmetric = \"manhattan\"\n",
        "ledge.toml:2:10: vector_index.code.metric: expected one of \"cosine\", \"euclidean\", \"dot-product\", got \
         \"manhattan\"",
    ),
    (
        "[vector_index.code]\ndimensions = 2048\n",
        "ledge.toml:2:14: vector_index.code.dimensions: must be 1..=1536, got 2048",
    ),
    (
        "[storage]\ndurability = \"disk\"\n",
        "ledge.toml:2:14: storage.durability: expected one of \"process\", \"power-loss\", got \"disk\"",
    ),
    (
        "[server]\nlog_format = \"xml\"\n",
        "ledge.toml:2:14: server.log_format: expected one of \"text\", \"json\", got \"xml\"",
    ),
    // Server.
    ("[server]\nport = 70000\n", "ledge.toml:2:8: server.port: must be 0..=65535, got 70000"),
    (
        "[server]\nhost = \"no such host!\"\n",
        "ledge.toml:2:8: server.host: expected an IP address or a host name, got \"no such host!\"",
    ),
    (
        "[server]\nbody_limit = \"1 parsec\"\n",
        "ledge.toml:2:14: server.body_limit: invalid size \"1 parsec\"; expected e.g. \"1MiB\", \"25MB\" or a number of bytes",
    ),
    ("[server]\nbody_limit = 0\n", "ledge.toml:2:14: server.body_limit: must be more than 0 bytes"),
    ("[server]\nrequest_timeout = \"0s\"\n", "ledge.toml:2:19: server.request_timeout: must be more than 0s"),
    ("[server]\nlog_filter = \"\"\n", "ledge.toml:2:14: server.log_filter: must not be empty"),
    ("[server]\ncaller_burst = 0\n", "ledge.toml:2:16: server.caller_burst: must be 1..=1000000000, got 0"),
    ("[server]\ncaller_refill = \"0s\"\n", "ledge.toml:2:17: server.caller_refill: must be more than 0s"),
    (
        "[server]\ncors_origins = \"https://a.example/path\"\n",
        "ledge.toml:2:16: server.cors_origins: \"https://a.example/path\" is not an origin; expected a \
         comma-separated list like \"https://app.example.com, chrome-extension://<id>\" (no path), or \"*\"",
    ),
    // Database.
    (
        "[database]\nurl = \"postgres://ledge:hunter2@db/ledge\"\n",
        "ledge.toml:2:7: database.url: the postgres driver is not available in this version; use \"sqlite://PATH\"",
    ),
    ("[database]\nurl = \"ledge.db\"\n", "ledge.toml:2:7: database.url: expected a \"sqlite://PATH\" URL"),
    // Top level.
    ("data_dir = \"\"\n", "ledge.toml:1:12: data_dir: must not be empty"),
    ("data_dir = 5\n", "ledge.toml:1:12: data_dir: expected a string, got an integer"),
    ("server = 5\n", "ledge.toml:1:10: server: expected a table"),
    (
        "queues = [1]\n",
        "ledge.toml:1:10: queues: expected a table of queue declarations, e.g. [queues.<name>]",
    ),
    (
        "[queues]\nfile-indexing = 3\n",
        "ledge.toml:2:17: queues.file-indexing: expected a table of queue settings",
    ),
    // Unknown keys (typo protection).
    (
        "[queues.file-indexing]\nmax_batch_sise = 5\n",
        "ledge.toml:2:1: queues.file-indexing.max_batch_sise: unknown key; expected one of: driver, max_batch_size, \
         max_batch_timeout, max_retries, retry_delay, dead_letter_queue, max_concurrency, delivery_delay, \
         message_retention, visibility_timeout",
    ),
    (
        "[queues.file-indexing]\nmax-batch-size = 5\n",
        "ledge.toml:2:1: queues.file-indexing.max-batch-size: unknown key; did you mean `max_batch_size`?",
    ),
    (
        "[sever]\nport = 1\n",
        "ledge.toml:1:2: sever: unknown key; expected one of: data_dir, server, storage, database, notifications, buckets, \
         kv, queues, durable_objects, vector_index, embedding, plans",
    ),
    ("[server]\n  Port = 1\n", "ledge.toml:2:3: server.Port: unknown key; did you mean `port`?"),
    // Binding names.
    (
        "[queues.\"no spaces\"]\n",
        "ledge.toml:1:9: queues.no spaces: invalid name \"no spaces\": use 1 to 63 ASCII letters, digits, '-' and \
         '_', starting with a letter or digit",
    ),
    (
        "[queues.File_Indexing]\n",
        "ledge.toml:1:9: queues.File_Indexing: conflicts with the queue `file-indexing`: names must differ in more \
         than case and '-' versus '_'",
    ),
    // The embedding provider: a model, a key where the provider's own endpoint needs one, a URL.
    (
        "[embedding]\nprovider = \"cohere\"\n",
        "ledge.toml:2:12: embedding.provider: expected one of \"local\", \"voyage\", \"openai\", got \"cohere\"",
    ),
    (
        "[embedding]\nprovider = \"voyage\"\nmodel = \"voyage-code-3\"\n",
        "ledge.toml:2:12: embedding.provider: the voyage provider's endpoint needs an API key: set \
         LEDGE_VOYAGE_API_KEY in the environment or the secrets file",
    ),
    (
        "[embedding]\nprovider = \"openai\"\nurl = \"http://localhost:11434/v1/embeddings\"\n",
        "ledge.toml:2:12: embedding.model: the openai provider needs a model name",
    ),
    (
        "[embedding]\nurl = \"localhost:11434\"\nbatch_size = 0\n",
        "ledge.toml:2:7: embedding.url: expected an http:// or https:// URL (or \"\" for the provider's own), got \
         \"localhost:11434\"\nledge.toml:3:14: embedding.batch_size: must be 1..=1000, got 0",
    ),
    // Email: a mail server URL without a password in it, a sender, the user's password.
    (
        "[notifications]\nsmtp_url = \"mail.example.com\"\n",
        "ledge.toml:2:12: notifications.smtp_url: expected \"smtps://HOST[:PORT]\" (TLS), \"smtp://HOST[:PORT]\" \
         (STARTTLS required) or \"smtp://HOST:PORT?tls=none\" (no encryption), with an optional USER@ before HOST; \
         got \"mail.example.com\"",
    ),
    (
        "[notifications]\nsmtp_url = \"smtps://ledge:hunter2@mail.example.com\"\n",
        "ledge.toml:2:12: notifications.smtp_url: put no password in smtp_url: it is a secret, set \
         LEDGE_SMTP_PASSWORD in the environment",
    ),
    (
        "[notifications]\nsmtp_url = \"smtp://mail.example.com:0\"\n",
        "ledge.toml:2:12: notifications.smtp_url: expected \"smtps://HOST[:PORT]\" (TLS), \"smtp://HOST[:PORT]\" \
         (STARTTLS required) or \"smtp://HOST:PORT?tls=none\" (no encryption), with an optional USER@ before HOST; \
         got \"smtp://mail.example.com:0\"",
    ),
    (
        "[notifications]\nsmtp_url = \"smtps://mail.example.com\"\n",
        "ledge.toml:2:12: notifications.email_from: email needs a sender: set email_from, e.g. \"ledge <ledge@example.com>\"",
    ),
    (
        "[notifications]\nsmtp_url = \"smtps://ledge@mail.example.com\"\nemail_from = \"ledge@example.com\"\n",
        "ledge.toml:2:12: notifications.smtp_url: smtp_url names a user: set LEDGE_SMTP_PASSWORD in the \
         environment or the secrets file",
    ),
    (
        "[notifications]\nemail_from = \"ledge\"\n",
        "ledge.toml:2:14: notifications.email_from: expected an address like \"ledge@example.com\" or \
         \"ledge <ledge@example.com>\", got \"ledge\"",
    ),
    // Syntax.
    ("[server]\nport = \n", "ledge.toml:2:8: string values must be quoted, expected literal string"),
    ("[server]\nport = 1\nport = 2\n", "ledge.toml:3:1: duplicate key"),
];

#[test]
fn each_rule_is_reported_with_its_line_and_column() {
    let mut mismatches = Vec::new();
    for (toml, expected) in RULES {
        let actual = problems_of(toml);
        if actual != *expected {
            mismatches.push(format!("for {toml:?}\n  expected: {expected}\n  actual:   {actual}"));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn every_problem_of_a_file_is_reported_in_file_order() {
    let problems = problems_of(
        "[server]\n\
         port = 70000\n\
         [queues.file-indexing]\n\
         max_batch_size = 500\n\
         max_retries = -1\n\
         typo = 1\n\
         [vector_index.code]\n\
         dimensions = 0\n",
    );
    assert_eq!(
        problems,
        "ledge.toml:2:8: server.port: must be 0..=65535, got 70000\n\
         ledge.toml:4:18: queues.file-indexing.max_batch_size: must be 1..=100, got 500\n\
         ledge.toml:5:15: queues.file-indexing.max_retries: must be 0..=100, got -1\n\
         ledge.toml:6:1: queues.file-indexing.typo: unknown key; expected one of: driver, max_batch_size, \
         max_batch_timeout, max_retries, retry_delay, dead_letter_queue, max_concurrency, delivery_delay, \
         message_retention, visibility_timeout\n\
         ledge.toml:8:14: vector_index.code.dimensions: must be 1..=1536, got 0"
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    let problems = problems_of("# café ☕\n[queues.\"naïve\"]\n");
    assert!(problems.starts_with("ledge.toml:2:9: queues.naïve: invalid name"), "{problems}");
    let problems = problems_of("[server]\nlog_filter = \"é\"\nport = \"é\"\n");
    assert_eq!(problems, "ledge.toml:3:8: server.port: expected an integer, got a string");
}

#[test]
fn problems_carry_a_matchable_kind_and_the_key() {
    let errors = Workspace::with_config(
        "[queues.file-indexing]\n\
         max_batch_size = 500\n\
         dead_letter_queue = \"nowhere\"\n\
         typo = 1\n",
    )
    .load(&[])
    .expect_err("invalid");
    let kinds: Vec<_> = errors.iter().map(|error| (error.kind, error.key.as_deref())).collect();
    assert_eq!(
        kinds,
        [
            (ErrorKind::InvalidValue, Some("queues.file-indexing.max_batch_size")),
            (ErrorKind::UnknownReference, Some("queues.file-indexing.dead_letter_queue")),
            (ErrorKind::UnknownSetting, Some("queues.file-indexing.typo")),
        ]
    );
}

#[test]
fn a_file_with_syntax_errors_reports_them_all_and_nothing_else() {
    let errors = Workspace::with_config("[server\nport = 1\n[queues.x]\nmax_batch_size = = 3\n")
        .load(&[])
        .expect_err("invalid");
    assert!(errors.len() >= 2, "{errors}");
    assert!(errors.iter().all(|error| error.kind == ErrorKind::Syntax), "{errors}");
    assert!(errors.to_string().starts_with("ledge.toml:1:"), "{errors}");
}
