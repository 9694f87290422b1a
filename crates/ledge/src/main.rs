//! The `ledge` binary: glue. It parses the command line, loads the configuration, builds the env of
//! bindings and hands over to the libraries (`ledge-api` for HTTP, `ledge-consumers` for the
//! queue consumers).

mod cli;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use cli::{Cli, Command, ConfigCommand, LogFormatArg};
use ledge_config::{Config, LoadOptions, LogFormat};
use tokio::sync::watch;

/// Exit code for configuration errors (`ledge config check` and every command that loads it).
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let started = Instant::now();
    let cli = Cli::parse();
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
        Command::Serve { .. } => {
            init_tracing(&config);
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build();
            let result = runtime
                .context("cannot start the async runtime")
                .and_then(|rt| rt.block_on(serve(config, started)));
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
    if let Command::Serve { host, port } = &cli.command {
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

async fn serve(config: Config, started: Instant) -> anyhow::Result<()> {
    // Installed first, so a SIGTERM that arrives during start-up is a graceful stop too.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    let config = Arc::new(config);
    let env = Arc::new(ledge_env::Env::open(config.clone()).context("cannot open the data directory")?);
    let listener = tokio::net::TcpListener::bind((config.server.host.as_str(), config.server.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", config.server.host, config.server.port))?;
    let address = listener.local_addr()?;

    let (stop, stopped) = watch::channel(false);
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };

    let state = ledge_api::AppState::new(env.clone(), limits(&config.server));
    let server = tokio::spawn(ledge_api::serve(listener, ledge_api::app(state.clone()), until_stopped()));
    tracing::info!(%address, data_dir = %config.data_dir.display(),
        startup_ms = started.elapsed().as_secs_f64() * 1e3, "ledge is listening");

    // Consumers start after the listener: opening the queues must not delay the first answer.
    let consumers =
        ledge_consumers::Consumers::build(&env).await.context("cannot start the queue consumers")?;
    for (queue, stats) in consumers.stats() {
        state.metrics.register_consumer(queue, stats);
    }
    let consumers = tokio::spawn(consumers.run(until_stopped()));

    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
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
            served.context("the HTTP server panicked")?.context("the HTTP server failed")?;
            consumed.context("a queue consumer panicked")?.context("the queue consumers failed")?;
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

fn limits(server: &ledge_config::ServerConfig) -> ledge_api::Limits {
    ledge_api::Limits {
        body: usize::try_from(server.body_limit).unwrap_or(usize::MAX),
        webhook_body: usize::try_from(server.webhook_body_limit).unwrap_or(usize::MAX),
        request_timeout: server.request_timeout,
    }
}
