//! A user's ledge.toml merged over the built-in defaults, field by field.

use std::path::PathBuf;
use std::time::Duration;

use ledge_config::{DatabaseUrl, Durability, LogFormat, Metric};

use crate::Workspace;

#[test]
fn a_file_amending_one_queue_changes_only_the_fields_it_names() {
    let defaults = Workspace::empty().config(&[]);
    let amended = Workspace::with_config(
        "[queues.file-indexing]\n\
         max_batch_size = 20\n\
         retry_delay = \"45s\"\n",
    )
    .config(&[]);

    let before = &defaults.queues["file-indexing"];
    let after = &amended.queues["file-indexing"];
    assert_eq!(after.max_batch_size, 20);
    assert_eq!(after.retry_delay, Duration::from_secs(45));
    // Every other field of the queue keeps its default …
    assert_eq!(after.max_batch_timeout, before.max_batch_timeout);
    assert_eq!(after.max_retries, before.max_retries);
    assert_eq!(after.dead_letter_queue, before.dead_letter_queue);
    assert_eq!(after.max_concurrency, before.max_concurrency);
    assert_eq!(after.visibility_timeout, before.visibility_timeout);
    // … and every other binding is still declared, unchanged.
    assert_eq!(amended.queues.len(), defaults.queues.len());
    assert_eq!(amended.queues["github-events"], defaults.queues["github-events"]);
    assert_eq!(amended.buckets.len(), defaults.buckets.len());
    assert_eq!(amended.kv.len(), defaults.kv.len());
}

#[test]
fn a_binding_declared_only_in_the_file_starts_from_the_defaults_of_its_kind() {
    let config = Workspace::with_config(
        "[queues.audit]\n\
         [buckets.exports]\n\
         [kv.flags]\n\
         [durable_objects.RateLimiter]\n\
         [vector_index.docs]\n\
         metric = \"dot-product\"\n",
    )
    .config(&[]);
    let audit = &config.queues["audit"];
    assert_eq!(audit.max_batch_size, 10);
    assert_eq!(audit.max_batch_timeout, Duration::from_secs(5));
    assert_eq!(audit.max_retries, 3);
    assert_eq!(audit.retry_delay, Duration::ZERO);
    assert_eq!(audit.dead_letter_queue, None);
    assert_eq!(audit.max_concurrency, None);
    assert_eq!(config.buckets["exports"].path, config.data_dir.join("buckets/exports"));
    assert!(config.kv.contains_key("flags"));
    assert!(config.durable_objects.contains_key("RateLimiter"));
    assert_eq!(
        (config.vector_index["docs"].dimensions, config.vector_index["docs"].metric),
        (256, Metric::DotProduct)
    );
}

#[test]
fn every_section_takes_its_documented_values() {
    let config = Workspace::with_config(
        r#"
data_dir = "/var/lib/ledge"

[server]
host = "0.0.0.0"
port = 9000
body_limit = "2MB"
webhook_body_limit = 1048576
request_timeout = "1m30s"
shutdown_grace = 0
log_format = "json"
log_filter = "debug,hyper=info"

[storage]
durability = "power-loss"

[database]
url = "sqlite:///srv/db/ledge.sqlite"

[buckets.recordings]
path = "/mnt/recordings"

[buckets.documents]
path = "elsewhere/documents"
"#,
    )
    .config(&[]);
    assert_eq!(config.data_dir, PathBuf::from("/var/lib/ledge"));
    assert_eq!(config.server.host, "0.0.0.0");
    assert_eq!(config.server.port, 9000);
    assert_eq!(config.server.body_limit, 2_000_000);
    assert_eq!(config.server.webhook_body_limit, 1_048_576);
    assert_eq!(config.server.request_timeout, Duration::from_secs(90));
    assert_eq!(config.server.shutdown_grace, Duration::ZERO);
    assert_eq!(config.server.log_format, LogFormat::Json);
    assert_eq!(config.server.log_filter, "debug,hyper=info");
    assert_eq!(config.storage.durability, Durability::PowerLoss);
    assert_eq!(config.database.url, DatabaseUrl::Sqlite(PathBuf::from("/srv/db/ledge.sqlite")));
    assert_eq!(config.buckets["recordings"].path, PathBuf::from("/mnt/recordings"));
    assert_eq!(config.buckets["documents"].path, PathBuf::from("/var/lib/ledge/elsewhere/documents"));
    assert_eq!(config.buckets["archives"].path, PathBuf::from("/var/lib/ledge/buckets/archives"));
}

#[test]
fn durations_take_seconds_or_unit_strings() {
    let cases = [
        ("0", Duration::ZERO),
        ("5", Duration::from_secs(5)),
        ("2.5", Duration::from_millis(2_500)),
        ("\"500ms\"", Duration::from_millis(500)),
        ("\"5s\"", Duration::from_secs(5)),
        ("\"1m\"", Duration::from_secs(60)),
    ];
    for (written, expected) in cases {
        let config =
            Workspace::with_config(&format!("[queues.file-indexing]\nmax_batch_timeout = {written}\n"))
                .config(&[]);
        assert_eq!(config.queues["file-indexing"].max_batch_timeout, expected, "{written}");
    }
}

#[test]
fn sizes_take_bytes_or_unit_strings() {
    let cases = [
        ("1024", 1024),
        ("1_000", 1000),
        ("\"25MiB\"", 25 << 20),
        ("\"1MB\"", 1_000_000),
        ("\"2KiB\"", 2048),
    ];
    for (written, expected) in cases {
        let config = Workspace::with_config(&format!("[server]\nbody_limit = {written}\n")).config(&[]);
        assert_eq!(config.server.body_limit, expected, "{written}");
    }
}

#[test]
fn a_default_queue_can_be_set_back_to_autoscaling_and_to_no_dead_letter_queue() {
    let config = Workspace::with_config(
        "[queues.file-indexing]\n\
         max_concurrency = \"auto\"\n\
         dead_letter_queue = \"\"\n",
    )
    .config(&[]);
    assert_eq!(config.queues["file-indexing"].max_concurrency, None);
    assert_eq!(config.queues["file-indexing"].dead_letter_queue, None);
}

#[test]
fn a_queue_may_use_another_declared_queue_as_its_dead_letter_queue() {
    let config = Workspace::with_config(
        "[queues.audit]\n\
         dead_letter_queue = \"audit-failures\"\n\
         [queues.audit-failures]\n\
         [queues.notifications]\n\
         dead_letter_queue = \"audit-failures\"\n",
    )
    .config(&[]);
    assert_eq!(config.queues["audit"].dead_letter_queue.as_deref(), Some("audit-failures"));
    assert_eq!(config.queues["notifications"].dead_letter_queue.as_deref(), Some("audit-failures"));
}

#[test]
fn dotted_keys_and_inline_tables_are_the_same_settings() {
    let config = Workspace::with_config(
        "queues.file-indexing.max_batch_size = 7\n\
         server = { port = 1234 }\n",
    )
    .config(&[]);
    assert_eq!(config.queues["file-indexing"].max_batch_size, 7);
    assert_eq!(config.server.port, 1234);
}

#[test]
fn where_a_value_was_set_is_recorded() {
    let config = Workspace::with_config("[server]\nport = 9000\n").config(&[("LEDGE_HOST", "::1")]);
    assert_eq!(
        config.origin("server.port"),
        Some(&ledge_config::Location::File { path: "ledge.toml".into(), line: 2, column: 8 })
    );
    assert_eq!(
        config.origin("server.host"),
        Some(&ledge_config::Location::Env { variable: "LEDGE_HOST".into() })
    );
    assert_eq!(config.origin("server.log_format"), None, "a built-in default has no origin");
}
