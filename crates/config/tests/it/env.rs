//! `LEDGE_*` environment variables over ledge.toml: the shorthands, `PORT` versus `LEDGE_PORT`, the nested
//! `LEDGE_<SECTION>__<NAME>__<KEY>` form, and overrides that are rejected, each naming its variable.

use std::path::PathBuf;
use std::time::Duration;

use ledge_config::{DurableObjectDriver, ErrorKind, Location, LogFormat, SmtpSecurity};

use crate::{Env, Workspace};

#[test]
fn port_comes_from_ledge_port_then_port_then_the_file() {
    let with_file = Workspace::with_config("[server]\nport = 9000\n");
    let without_file = Workspace::empty();
    let cases: &[(&Workspace, Env, u16)] = &[
        (&without_file, &[], 8787),
        (&with_file, &[], 9000),
        (&with_file, &[("PORT", "8080")], 8080),
        (&with_file, &[("LEDGE_PORT", "7000")], 7000),
        (&with_file, &[("PORT", "8080"), ("LEDGE_PORT", "7000")], 7000),
        (&without_file, &[("PORT", "8080"), ("LEDGE_PORT", "7000")], 7000),
        (&with_file, &[("PORT", "8080"), ("LEDGE_SERVER__PORT", "6000")], 6000),
        (&with_file, &[("LEDGE_SERVER__PORT", "6000"), ("LEDGE_PORT", "7000")], 7000),
    ];
    for (workspace, env, expected) in cases {
        assert_eq!(workspace.config(env).server.port, *expected, "{env:?}");
    }
}

#[test]
fn a_bad_port_is_ignored_only_when_ledge_port_overrides_it() {
    let workspace = Workspace::empty();
    assert_eq!(workspace.config(&[("PORT", "not-a-port"), ("LEDGE_PORT", "7000")]).server.port, 7000);
    assert_eq!(
        workspace.problems(&[("PORT", "not-a-port")]),
        "env PORT: server.port: expected an integer, got \"not-a-port\""
    );
}

#[test]
fn shorthand_variables_override_the_file() {
    let config = Workspace::with_config("[server]\nhost = \"10.0.0.1\"\nlog_format = \"text\"\n").config(&[
        ("LEDGE_HOST", "0.0.0.0"),
        ("LEDGE_LOG_FORMAT", "json"),
        ("LEDGE_LOG", "warn,ledge=debug"),
        ("LEDGE_DATA_DIR", "/tmp/elsewhere"),
    ]);
    assert_eq!(config.server.host, "0.0.0.0");
    assert_eq!(config.server.log_format, LogFormat::Json);
    assert_eq!(config.server.log_filter, "warn,ledge=debug");
    assert_eq!(config.data_dir, PathBuf::from("/tmp/elsewhere"));
}

#[test]
fn nested_overrides_reach_every_section_and_binding() {
    let config = Workspace::with_config("[queues.file-indexing]\nmax_batch_size = 20\n").config(&[
        ("LEDGE_QUEUES__FILE_INDEXING__MAX_BATCH_SIZE", "50"),
        ("LEDGE_QUEUES__GITHUB_EVENTS__MAX_BATCH_TIMEOUT", "250ms"),
        ("LEDGE_QUEUES__NOTIFICATIONS__MAX_CONCURRENCY", "auto"),
        ("LEDGE_QUEUES__BUG_ANALYSIS__DEAD_LETTER_QUEUE", ""),
        ("LEDGE_SERVER__BODY_LIMIT", "2MiB"),
        ("LEDGE_SERVER__CALLER_BURST", "100000"),
        ("LEDGE_STORAGE__DURABILITY", "power-loss"),
        ("LEDGE_BUCKETS__PROFILE_DOCUMENTS__PATH", "/mnt/profiles"),
        ("LEDGE_DURABLE_OBJECTS__INDEXINGCOORDINATOR__DRIVER", "sqlite"),
        ("LEDGE_VECTOR_INDEX__CODE__DIMENSIONS", "384"),
    ]);
    assert_eq!(config.queues["file-indexing"].max_batch_size, 50, "the environment beats the file");
    assert_eq!(config.queues["github-events"].max_batch_timeout, Duration::from_millis(250));
    assert_eq!(config.queues["notifications"].max_concurrency, None);
    assert_eq!(config.queues["bug-analysis"].dead_letter_queue, None);
    assert_eq!(config.server.body_limit, 2 << 20);
    assert_eq!(config.server.caller_burst, 100_000);
    assert_eq!(config.storage.durability, ledge_config::Durability::PowerLoss);
    assert_eq!(config.buckets["profile-documents"].path, PathBuf::from("/mnt/profiles"));
    assert_eq!(config.durable_objects["IndexingCoordinator"].driver, DurableObjectDriver::Sqlite);
    assert_eq!(config.vector_index["code"].dimensions, 384);
    assert_eq!(
        config.origin("queues.file-indexing.max_batch_size"),
        Some(&Location::Env { variable: "LEDGE_QUEUES__FILE_INDEXING__MAX_BATCH_SIZE".to_owned() })
    );
}

#[test]
fn nested_levels_match_case_insensitively_with_dash_and_underscore_equivalent() {
    for variable in [
        "LEDGE_QUEUES__FILE_INDEXING__MAX_BATCH_SIZE",
        "LEDGE_queues__file-indexing__max-batch-size",
        "LEDGE_Queues__File_Indexing__Max_Batch_Size",
    ] {
        let config = Workspace::empty().config(&[(variable, "42")]);
        assert_eq!(config.queues["file-indexing"].max_batch_size, 42, "{variable}");
    }
}

#[test]
fn a_binding_declared_in_the_file_can_be_overridden() {
    let config =
        Workspace::with_config("[queues.audit]\n").config(&[("LEDGE_QUEUES__AUDIT__MAX_RETRIES", "9")]);
    assert_eq!(config.queues["audit"].max_retries, 9);
}

#[test]
fn variables_outside_ledge_are_ignored() {
    let config =
        Workspace::empty().config(&[("HOME", "/root"), ("PATH", "/bin"), ("LEDGEX", "1"), ("HOST", "x")]);
    assert_eq!(config.server.host, "127.0.0.1");
}

/// `(environment, the problems printed)`
const REJECTED: &[(Env, &str)] = &[
    (&[("LEDGE_PORT", "abc")], "env LEDGE_PORT: server.port: expected an integer, got \"abc\""),
    (&[("LEDGE_PORT", "65536")], "env LEDGE_PORT: server.port: must be 0..=65535, got 65536"),
    (
        &[("LEDGE_LOG_FORMAT", "yaml")],
        "env LEDGE_LOG_FORMAT: server.log_format: expected one of \"text\", \"json\", got \"yaml\"",
    ),
    (
        &[("LEDGE_QUEUES__FILE_INDEXING__MAX_BATCH_SIZE", "500")],
        "env LEDGE_QUEUES__FILE_INDEXING__MAX_BATCH_SIZE: queues.file-indexing.max_batch_size: must be 1..=100, got 500",
    ),
    (
        &[("LEDGE_QUEUES__FILE_INDEXING__MAX_BATCH_SIZE", "5.5")],
        "env LEDGE_QUEUES__FILE_INDEXING__MAX_BATCH_SIZE: queues.file-indexing.max_batch_size: expected an integer, \
         got \"5.5\"",
    ),
    (
        &[("LEDGE_PROT", "8080")],
        "env LEDGE_PROT: unknown variable; ledge reads LEDGE_CONFIG, LEDGE_DATA_DIR, LEDGE_SECRETS_FILE, LEDGE_HOST, \
         LEDGE_PORT, LEDGE_LOG_FORMAT, LEDGE_LOG, LEDGE_GITHUB_WEBHOOK_SECRET, LEDGE_GITHUB_TOKEN, \
         LEDGE_JWT_KEYS, LEDGE_ENCRYPTION_KEY, LEDGE_VOYAGE_API_KEY, LEDGE_OPENAI_API_KEY, \
         LEDGE_STRIPE_WEBHOOK_SECRET, LEDGE_SMTP_PASSWORD and LEDGE_<SECTION>__[<NAME>__]<KEY> overrides",
    ),
    (
        &[("LEDGE_SERVER_PORT", "8080")],
        "env LEDGE_SERVER_PORT: unknown variable; levels of an override are separated by a double underscore, e.g. \
         LEDGE_SERVER__<KEY>",
    ),
    (
        &[("LEDGE_SERVR__PORT", "8080")],
        "env LEDGE_SERVR__PORT: names no known section; sections: server, storage, database, notifications, buckets, \
         kv, queues, durable_objects, vector_index, embedding, plans",
    ),
    (
        &[("LEDGE_SERVER__PROT", "8080")],
        "env LEDGE_SERVER__PROT: names no known setting of server; keys: host, port, body_limit, webhook_body_limit, \
         request_timeout, shutdown_grace, log_format, log_filter, cors_origins, caller_burst, caller_refill",
    ),
    (
        &[("LEDGE_QUEUES__FILE_INDEXNG__MAX_RETRIES", "1")],
        "env LEDGE_QUEUES__FILE_INDEXNG__MAX_RETRIES: no queue named `FILE_INDEXNG` is declared; declared: \
         bug-analysis, bug-analysis-dlq, embedding-generation, embedding-generation-dlq, file-indexing, \
         file-indexing-dlq, github-events, github-events-dlq, notifications, notifications-dlq, \
         repository-indexing, repository-indexing-dlq",
    ),
    (
        &[("LEDGE_QUEUES__MAX_RETRIES", "1")],
        "env LEDGE_QUEUES__MAX_RETRIES: expected LEDGE_QUEUES__<NAME>__<KEY>",
    ),
    (&[("LEDGE_SERVER__PORT__EXTRA", "1")], "env LEDGE_SERVER__PORT__EXTRA: expected LEDGE_SERVER__<KEY>"),
    (
        &[("LEDGE_QUEUES__FILE_INDEXING__DEAD_LETTER_QUEUE", "nowhere")],
        "env LEDGE_QUEUES__FILE_INDEXING__DEAD_LETTER_QUEUE: queues.file-indexing.dead_letter_queue: no queue named \
         `nowhere` is declared",
    ),
    (&[("LEDGE_DATA_DIR", "")], "env LEDGE_DATA_DIR: data_dir: must not be empty"),
    (
        &[("LEDGE_PORT", "x"), ("LEDGE_HOST", "a b"), ("LEDGE_BOGUS", "1")],
        "env LEDGE_BOGUS: unknown variable; ledge reads LEDGE_CONFIG, LEDGE_DATA_DIR, LEDGE_SECRETS_FILE, \
         LEDGE_HOST, LEDGE_PORT, LEDGE_LOG_FORMAT, LEDGE_LOG, LEDGE_GITHUB_WEBHOOK_SECRET, LEDGE_GITHUB_TOKEN, \
         LEDGE_JWT_KEYS, LEDGE_ENCRYPTION_KEY, LEDGE_VOYAGE_API_KEY, LEDGE_OPENAI_API_KEY, \
         LEDGE_STRIPE_WEBHOOK_SECRET, LEDGE_SMTP_PASSWORD and LEDGE_<SECTION>__[<NAME>__]<KEY> overrides\n\
         env LEDGE_HOST: server.host: expected an IP address or a host name, got \"a b\"\n\
         env LEDGE_PORT: server.port: expected an integer, got \"x\"",
    ),
];

#[test]
fn a_bad_override_is_an_error_naming_the_variable() {
    let workspace = Workspace::empty();
    let mut mismatches = Vec::new();
    for (env, expected) in REJECTED {
        let actual = workspace.problems(env);
        if actual != *expected {
            mismatches.push(format!("for {env:?}\n  expected: {expected}\n  actual:   {actual}"));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn override_problems_are_reported_with_the_file_problems() {
    let errors = Workspace::with_config("[server]\nport = 70000\n")
        .load(&[("LEDGE_QUEUES__NOPE__MAX_RETRIES", "1")])
        .expect_err("invalid");
    let kinds: Vec<_> = errors.iter().map(|error| error.kind).collect();
    assert_eq!(kinds, [ErrorKind::InvalidValue, ErrorKind::UnknownSetting]);
    assert_eq!(
        errors.errors()[1].location,
        Some(Location::Env { variable: "LEDGE_QUEUES__NOPE__MAX_RETRIES".to_owned() })
    );
}

#[test]
fn a_mail_server_is_read_from_its_url_with_the_password_from_the_environment() {
    let cases = [
        ("smtps://mail.example.com", SmtpSecurity::Tls, 465, None, "smtps://mail.example.com:465"),
        (
            "smtp://alerts%40example.com@mail.example.com",
            SmtpSecurity::StartTls,
            587,
            Some("alerts@example.com"),
            "smtp://alerts%40example.com@mail.example.com:587",
        ),
        ("smtp://127.0.0.1:2525?tls=none", SmtpSecurity::None, 2525, None, "smtp://127.0.0.1:2525?tls=none"),
        ("smtps://[::1]:1465", SmtpSecurity::Tls, 1465, None, "smtps://[::1]:1465"),
    ];
    for (url, security, port, username, rendered) in cases {
        let toml =
            format!("[notifications]\nsmtp_url = \"{url}\"\nemail_from = \"ledge <ledge@example.com>\"\n");
        let env: &[(&str, &str)] =
            if username.is_some() { &[("LEDGE_SMTP_PASSWORD", "hunter2")] } else { &[] };
        let config = Workspace::with_config(&toml).config(env);
        let smtp = config.notifications.smtp.as_ref().expect("a mail server");
        assert_eq!((smtp.security, smtp.port, smtp.username.as_deref()), (security, port, username), "{url}");
        assert_eq!(smtp.url(), rendered);
        assert_eq!(config.notifications.email_from, "ledge <ledge@example.com>");
    }
    assert_eq!(Workspace::with_config("").config(&[]).notifications.smtp, None, "no mail server by default");
}
