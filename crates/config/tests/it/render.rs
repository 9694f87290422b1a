//! The resolved configuration rendered as TOML (what `ledge config check` prints).

use expect_test::expect;

use crate::Workspace;

#[test]
fn the_built_in_configuration_renders_every_setting() {
    let config = Workspace::empty().config(&[("LEDGE_DATA_DIR", "/srv/ledge")]);
    expect![[r##"
        # ledge configuration, resolved from the built-in defaults (no ledge.toml)
        data_dir = "/srv/ledge"  # LEDGE_DATA_DIR

        [server]
        host = "127.0.0.1"
        port = 8787
        body_limit = "1MiB"
        webhook_body_limit = "25MiB"
        request_timeout = "30s"
        shutdown_grace = "30s"
        log_format = "text"
        log_filter = "info"
        cors_origins = ""
        caller_burst = 300
        caller_refill = "100ms"

        [storage]
        durability = "process"

        [database]
        url = "sqlite:///srv/ledge/ledge.db"

        [notifications]
        allow_private_targets = false
        delivery_timeout = "10s"
        smtp_url = ""
        email_from = ""

        [buckets.archives]
        driver = "local"
        path = "/srv/ledge/buckets/archives"

        [buckets.artifacts]
        driver = "local"
        path = "/srv/ledge/buckets/artifacts"

        [buckets.documents]
        driver = "local"
        path = "/srv/ledge/buckets/documents"

        [buckets.profile-documents]
        driver = "local"
        path = "/srv/ledge/buckets/profile-documents"

        [buckets.recordings]
        driver = "local"
        path = "/srv/ledge/buckets/recordings"

        [kv.embedding-cache]
        driver = "sqlite"

        [kv.sessions]
        driver = "sqlite"

        [queues.bug-analysis]
        driver = "sqlite"
        max_batch_size = 1
        max_batch_timeout = "0s"
        max_retries = 3
        retry_delay = "30s"
        dead_letter_queue = "bug-analysis-dlq"
        max_concurrency = 2
        delivery_delay = "0s"
        message_retention = "4d"
        visibility_timeout = "10m"

        [queues.bug-analysis-dlq]
        driver = "sqlite"
        max_batch_size = 10
        max_batch_timeout = "5s"
        max_retries = 3
        retry_delay = "0s"
        dead_letter_queue = ""
        max_concurrency = "auto"
        delivery_delay = "0s"
        message_retention = "4d"
        visibility_timeout = "5m"

        [queues.embedding-generation]
        driver = "sqlite"
        max_batch_size = 10
        max_batch_timeout = "100ms"
        max_retries = 3
        retry_delay = "30s"
        dead_letter_queue = "embedding-generation-dlq"
        max_concurrency = 2
        delivery_delay = "0s"
        message_retention = "4d"
        visibility_timeout = "5m"

        [queues.embedding-generation-dlq]
        driver = "sqlite"
        max_batch_size = 10
        max_batch_timeout = "5s"
        max_retries = 3
        retry_delay = "0s"
        dead_letter_queue = ""
        max_concurrency = "auto"
        delivery_delay = "0s"
        message_retention = "4d"
        visibility_timeout = "5m"

        [queues.file-indexing]
        driver = "sqlite"
        max_batch_size = 4
        max_batch_timeout = "0s"
        max_retries = 3
        retry_delay = "10s"
        dead_letter_queue = "file-indexing-dlq"
        max_concurrency = 2
        delivery_delay = "0s"
        message_retention = "4d"
        visibility_timeout = "5m"

        [queues.file-indexing-dlq]
        driver = "sqlite"
        max_batch_size = 10
        max_batch_timeout = "5s"
        max_retries = 3
        retry_delay = "0s"
        dead_letter_queue = ""
        max_concurrency = "auto"
        delivery_delay = "0s"
        message_retention = "4d"
        visibility_timeout = "5m"

        [queues.github-events]
        driver = "sqlite"
        max_batch_size = 100
        max_batch_timeout = "50ms"
        max_retries = 5
        retry_delay = "5s"
        dead_letter_queue = "github-events-dlq"
        max_concurrency = "auto"
        delivery_delay = "0s"
        message_retention = "4d"
        visibility_timeout = "5m"

        [queues.github-events-dlq]
        driver = "sqlite"
        max_batch_size = 10
        max_batch_timeout = "5s"
        max_retries = 3
        retry_delay = "0s"
        dead_letter_queue = ""
        max_concurrency = "auto"
        delivery_delay = "0s"
        message_retention = "4d"
        visibility_timeout = "5m"

        [queues.notifications]
        driver = "sqlite"
        max_batch_size = 10
        max_batch_timeout = "5s"
        max_retries = 5
        retry_delay = "1m"
        dead_letter_queue = "notifications-dlq"
        max_concurrency = "auto"
        delivery_delay = "0s"
        message_retention = "4d"
        visibility_timeout = "5m"

        [queues.notifications-dlq]
        driver = "sqlite"
        max_batch_size = 10
        max_batch_timeout = "5s"
        max_retries = 3
        retry_delay = "0s"
        dead_letter_queue = ""
        max_concurrency = "auto"
        delivery_delay = "0s"
        message_retention = "4d"
        visibility_timeout = "5m"

        [queues.repository-indexing]
        driver = "sqlite"
        max_batch_size = 1
        max_batch_timeout = "0s"
        max_retries = 3
        retry_delay = "30s"
        dead_letter_queue = "repository-indexing-dlq"
        max_concurrency = 2
        delivery_delay = "0s"
        message_retention = "4d"
        visibility_timeout = "15m"

        [queues.repository-indexing-dlq]
        driver = "sqlite"
        max_batch_size = 10
        max_batch_timeout = "5s"
        max_retries = 3
        retry_delay = "0s"
        dead_letter_queue = ""
        max_concurrency = "auto"
        delivery_delay = "0s"
        message_retention = "4d"
        visibility_timeout = "5m"

        [durable_objects.ChatSession]
        driver = "sqlite"

        [durable_objects.IndexingCoordinator]
        driver = "sqlite"

        [vector_index.code]
        driver = "sqlite"
        dimensions = 256
        metric = "cosine"

        [embedding]
        provider = "local"
        model = ""
        url = ""
        request_dimensions = false
        batch_size = 128
        timeout = "30s"
        max_retries = 5
        cache = "auto"

        [plans.free]
        repositories = 3
        indexed_files = 10000
        searches_per_day = 200
        chat_messages_per_day = 50
        stripe_price = ""

        [plans.pro]
        repositories = 25
        indexed_files = 250000
        searches_per_day = 5000
        chat_messages_per_day = 1000
        stripe_price = ""

        [plans.team]
        repositories = 200
        indexed_files = 2000000
        searches_per_day = 50000
        chat_messages_per_day = 10000
        stripe_price = ""

        # Secrets come only from the environment or the file named by LEDGE_SECRETS_FILE, never from this file.
        # LEDGE_GITHUB_WEBHOOK_SECRET = (unset)
        # LEDGE_GITHUB_TOKEN = (unset)
        # LEDGE_JWT_KEYS = (unset)
        # LEDGE_ENCRYPTION_KEY = (unset)
        # LEDGE_VOYAGE_API_KEY = (unset)
        # LEDGE_OPENAI_API_KEY = (unset)
        # LEDGE_STRIPE_WEBHOOK_SECRET = (unset)
        # LEDGE_SMTP_PASSWORD = (unset)
    "##]].assert_eq(&config.render());
}

#[test]
fn secrets_render_as_stars_when_set_and_unset_when_not() {
    let unset = Workspace::empty().config(&[]).render();
    assert!(unset.contains("\n# LEDGE_GITHUB_WEBHOOK_SECRET = (unset)\n"), "{unset}");

    let set = Workspace::empty().config(&[("LEDGE_GITHUB_WEBHOOK_SECRET", "hunter2")]).render();
    assert!(set.contains("\n# LEDGE_GITHUB_WEBHOOK_SECRET = ***  (from the environment)\n"), "{set}");
    assert!(!set.contains("hunter2"));
}

#[test]
fn values_set_by_the_environment_name_their_variable() {
    let rendered = Workspace::with_config("[server]\nport = 9000\n")
        .config(&[("LEDGE_HOST", "0.0.0.0"), ("LEDGE_QUEUES__FILE_INDEXING__MAX_RETRIES", "7")])
        .render();
    assert!(rendered.contains("\nhost = \"0.0.0.0\"  # LEDGE_HOST\n"), "{rendered}");
    assert!(rendered.contains("\nport = 9000\n"), "a value from the file has no comment");
    assert!(
        rendered.contains("\nmax_retries = 7  # LEDGE_QUEUES__FILE_INDEXING__MAX_RETRIES\n"),
        "{rendered}"
    );
}

#[test]
fn the_rendered_text_loads_back_into_the_same_configuration() {
    let original = Workspace::with_config(
        "[server]\nport = 0\nbody_limit = 1000\nrequest_timeout = 1.5\nlog_filter = \"info,\\\"quoted\\\"\"\n\
         [queues.audit]\nmax_concurrency = 3\nretry_delay = \"250ms\"\n\
         [queues.file-indexing]\ndead_letter_queue = \"\"\n\
         [buckets.documents]\npath = \"/mnt/docs\"\n",
    )
    .config(&[("LEDGE_DATA_DIR", "/srv/ledge"), ("LEDGE_VECTOR_INDEX__CODE__METRIC", "euclidean")]);
    let rendered = original.render();
    let reloaded = Workspace::with_config(&rendered).config(&[]);
    let body = |text: &str| {
        text.lines()
            .skip(1)
            .map(|line| line.split("  # ").next().unwrap_or(line).to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(body(&reloaded.render()), body(&rendered));
    assert_eq!(reloaded.queues, original.queues);
    assert_eq!(reloaded.buckets, original.buckets);
    assert_eq!(reloaded.server, original.server);
}
