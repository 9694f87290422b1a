//! With no ledge.toml: the built-in configuration declares every binding on the embedded drivers under one
//! data directory; how the file and the data directory are found.

use std::path::PathBuf;
use std::time::Duration;

use ledge_config::{
    BucketDriver, Config, DEFAULT_TOML, DatabaseUrl, Durability, DurableObjectDriver, ErrorKind, KvDriver,
    Location, LogFormat, Metric, QueueDriver, VectorIndexDriver,
};

use crate::Workspace;

#[test]
fn no_file_declares_every_binding_the_issue_names_on_the_embedded_drivers() {
    let workspace = Workspace::empty();
    let config = workspace.config(&[]);
    let data_dir = workspace.path().join(".ledge");

    assert_eq!(config.file, None);
    assert_eq!(config.data_dir, data_dir);
    let buckets: Vec<_> = config.buckets.keys().map(String::as_str).collect();
    assert_eq!(buckets, ["archives", "artifacts", "documents", "profile-documents", "recordings"]);
    for (name, bucket) in &config.buckets {
        assert_eq!(bucket.driver, BucketDriver::Local);
        assert_eq!(bucket.path, data_dir.join("buckets").join(name));
    }
    let kv: Vec<_> = config.kv.keys().map(String::as_str).collect();
    assert_eq!(kv, ["embedding-cache", "sessions"]);
    assert!(config.kv.values().all(|namespace| namespace.driver == KvDriver::Sqlite));

    let consumers = [
        "github-events",
        "repository-indexing",
        "file-indexing",
        "embedding-generation",
        "bug-analysis",
        "notifications",
    ];
    assert_eq!(config.queues.len(), consumers.len() * 2);
    for name in consumers {
        let queue = config.queue(name).unwrap_or_else(|| panic!("queue {name} is declared"));
        let dead_letter_queue = format!("{name}-dlq");
        assert_eq!(queue.dead_letter_queue.as_deref(), Some(dead_letter_queue.as_str()), "{name}");
        let dlq = config
            .queue(&dead_letter_queue)
            .unwrap_or_else(|| panic!("queue {dead_letter_queue} is declared"));
        assert_eq!(dlq.dead_letter_queue, None, "a dead-letter queue has none of its own");
    }
    assert!(config.queues.values().all(|queue| queue.driver == QueueDriver::Sqlite));

    let classes: Vec<_> = config.durable_objects.keys().map(String::as_str).collect();
    assert_eq!(classes, ["ChatSession", "IndexingCoordinator"]);
    assert!(config.durable_objects.values().all(|class| class.driver == DurableObjectDriver::Sqlite));
    let code = config.vector_index("code").expect("vector index code");
    assert_eq!((code.driver, code.dimensions, code.metric), (VectorIndexDriver::Sqlite, 256, Metric::Cosine));

    assert_eq!(config.database.url, DatabaseUrl::Sqlite(data_dir.join("ledge.db")));
    assert_eq!(config.storage.durability, Durability::Process);
    assert_eq!(config.secrets.github_webhook_secret().map(|secret| secret.expose().to_owned()), None);
}

#[test]
fn server_defaults_are_the_documented_ones() {
    let server = Workspace::empty().config(&[]).server;
    assert_eq!(server.host, "127.0.0.1");
    assert_eq!(server.port, 8787);
    assert_eq!(server.body_limit, 1024 * 1024);
    assert_eq!(server.webhook_body_limit, 25 * 1024 * 1024);
    assert_eq!(server.request_timeout, Duration::from_secs(30));
    assert_eq!(server.shutdown_grace, Duration::from_secs(30));
    assert_eq!(server.log_format, LogFormat::Text);
    assert_eq!(server.log_filter, "info");
}

#[test]
fn queue_defaults_stay_within_the_contract() {
    let config = Workspace::empty().config(&[]);
    let batch_sizes: Vec<_> =
        ["github-events", "file-indexing", "embedding-generation", "repository-indexing"]
            .into_iter()
            .map(|name| config.queue(name).map(|queue| queue.max_batch_size))
            .collect();
    assert_eq!(batch_sizes, [Some(100), Some(4), Some(10), Some(1)]);
    // A push of a few files is searchable within 2 s of its webhook: no stage of the pipeline waits
    // more than a fraction of that for a batch to fill.
    for name in ["github-events", "repository-indexing", "file-indexing", "embedding-generation"] {
        let timeout = config.queue(name).map(|queue| queue.max_batch_timeout);
        assert!(timeout.is_some_and(|t| t <= Duration::from_millis(100)), "{name}: {timeout:?}");
    }
    for (name, queue) in &config.queues {
        assert!((1..=100).contains(&queue.max_batch_size), "{name}");
        assert!(queue.max_batch_timeout <= Duration::from_secs(60), "{name}");
        assert!(queue.max_retries <= 100, "{name}");
        assert!(queue.max_concurrency.is_none_or(|n| (1..=250).contains(&n)), "{name}");
    }
    // A dead-letter queue has the contract's defaults.
    let dlq = config.queue("file-indexing-dlq").expect("declared");
    assert_eq!(dlq.max_batch_size, 10);
    assert_eq!(dlq.max_batch_timeout, Duration::from_secs(5));
    assert_eq!(dlq.max_retries, 3);
    assert_eq!(dlq.retry_delay, Duration::ZERO);
    assert_eq!(dlq.max_concurrency, None);
    assert_eq!(dlq.message_retention, Duration::from_secs(4 * 24 * 3600));
    assert_eq!(dlq.visibility_timeout, Duration::from_secs(300));
}

#[test]
fn the_documented_default_toml_is_the_configuration_used_without_a_file() {
    let env = [("LEDGE_DATA_DIR", "/srv/ledge")];
    let spelled_out = Workspace::with_config(DEFAULT_TOML).config(&env);
    let built_in = Workspace::empty().config(&env);
    assert!(spelled_out.file.is_some() && built_in.file.is_none());
    // Everything but the first line, which names the source.
    let body = |config: &Config| config.render().lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(body(&spelled_out), body(&built_in));
}

#[test]
fn config_defaults_is_load_without_file_or_environment() {
    let workspace = Workspace::empty();
    let loaded = workspace.config(&[("LEDGE_DATA_DIR", "/srv/ledge")]);
    let defaults = Config::defaults("/srv/ledge");
    assert_eq!(defaults.data_dir, PathBuf::from("/srv/ledge"));
    assert_eq!(defaults.render(), loaded.render().replace("  # LEDGE_DATA_DIR", ""));
}

#[test]
fn the_data_directory_comes_from_the_argument_then_the_environment_then_the_file_then_dot_ledge() {
    let workspace = Workspace::empty();
    workspace.write("conf/ledge.toml", "data_dir = \"state\"\n");
    let file = Some("conf/ledge.toml");
    let cases = [
        (None, None, None, workspace.path().join(".ledge")),
        (None, None, file, workspace.path().join("conf/state")),
        (None, Some("from-env"), file, workspace.path().join("from-env")),
        (Some("/abs/arg"), Some("from-env"), file, PathBuf::from("/abs/arg")),
        (Some("rel-arg"), None, None, workspace.path().join("rel-arg")),
    ];
    for (argument, env, config_path, expected) in cases {
        let mut options = workspace.options();
        options.data_dir = argument.map(PathBuf::from);
        options.config_path = config_path.map(PathBuf::from);
        if let Some(dir) = env {
            options.env.insert("LEDGE_DATA_DIR".to_owned(), dir.to_owned());
        }
        let config = ledge_config::load(options).expect("valid");
        assert_eq!(config.data_dir, expected, "argument {argument:?}, env {env:?}, file {config_path:?}");
        assert_eq!(config.buckets["documents"].path, expected.join("buckets/documents"));
    }
}

#[test]
fn the_file_is_named_by_the_argument_then_ledge_config_then_found_in_the_working_directory() {
    let workspace = Workspace::with_config("[server]\nport = 1\n");
    workspace.write("a.toml", "[server]\nport = 2\n");
    workspace.write("b.toml", "[server]\nport = 3\n");
    let port = |argument: Option<&str>, env: Option<&str>| {
        let mut options = workspace.options();
        options.config_path = argument.map(PathBuf::from);
        if let Some(path) = env {
            options.env.insert("LEDGE_CONFIG".to_owned(), path.to_owned());
        }
        ledge_config::load(options).expect("valid").server.port
    };
    assert_eq!(port(None, None), 1);
    assert_eq!(port(None, Some("b.toml")), 3);
    assert_eq!(port(Some("a.toml"), Some("b.toml")), 2);
}

#[test]
fn a_named_file_that_does_not_exist_is_an_error_naming_who_named_it() {
    let workspace = Workspace::empty();
    let mut options = workspace.options();
    options.config_path = Some(PathBuf::from("missing.toml"));
    let errors = ledge_config::load(options).expect_err("missing file");
    assert_eq!(errors.len(), 1);
    let error = &errors.errors()[0];
    assert_eq!(error.kind, ErrorKind::Io);
    assert_eq!(error.location, Some(Location::Argument { name: "--config" }));
    assert!(error.to_string().starts_with("--config: cannot read missing.toml: "), "{error}");

    let problems = workspace.problems(&[("LEDGE_CONFIG", "gone.toml")]);
    assert!(problems.starts_with("env LEDGE_CONFIG: cannot read gone.toml: "), "{problems}");
}

#[test]
fn a_directory_named_ledge_toml_is_not_a_configuration_file() {
    let workspace = Workspace::empty();
    std::fs::create_dir(workspace.path().join("ledge.toml")).expect("a directory named ledge.toml");
    // A directory is not a file: it is not picked up at all.
    assert_eq!(workspace.config(&[]).file, None);
}
