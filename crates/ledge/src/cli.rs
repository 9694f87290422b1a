//! The command line, parsed into a typed [`Command`].

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// ledge: self-hostable code intelligence. One binary; bindings on SQLite and local disk by default.
#[derive(Debug, Parser)]
#[command(name = "ledge", version, about, propagate_version = true)]
pub struct Cli {
    /// The configuration file (default: ./ledge.toml if it exists; env LEDGE_CONFIG).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Where the embedded drivers keep their data (env LEDGE_DATA_DIR; default ./.ledge).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log lines as human-readable text or as JSON objects (env LEDGE_LOG_FORMAT).
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API and the queue consumers until SIGINT or SIGTERM.
    Serve {
        /// Address to listen on (env LEDGE_HOST; default 127.0.0.1).
        #[arg(long)]
        host: Option<String>,
        /// Port to listen on, 0 for any free port (env LEDGE_PORT, else PORT; default 8787).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the resolved configuration (secrets masked), or each error with its line and column
    /// (exit code 2).
    Check,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("ledge").chain(args.iter().copied()))
    }

    #[test]
    fn serve_takes_host_and_port_and_global_options_anywhere() {
        let cli = parse(&["serve", "--port", "0", "--host", "0.0.0.0", "--data-dir", "/tmp/x"]).unwrap();
        assert!(matches!(cli.command, Command::Serve { port: Some(0), host: Some(ref h) } if h == "0.0.0.0"));
        assert_eq!(cli.data_dir, Some(PathBuf::from("/tmp/x")));
        let cli = parse(&["--log-format", "json", "serve"]).unwrap();
        assert_eq!(cli.log_format, Some(LogFormatArg::Json));
    }

    #[test]
    fn config_check_parses() {
        let cli = parse(&["--config", "ledge.toml", "config", "check"]).unwrap();
        assert!(matches!(cli.command, Command::Config { command: ConfigCommand::Check }));
        assert_eq!(cli.config, Some(PathBuf::from("ledge.toml")));
    }

    #[test]
    fn bad_input_is_refused() {
        for args in [&["serve", "--port", "70000"][..], &["serve", "--port", "x"], &["frobnicate"], &[]] {
            assert!(parse(args).is_err(), "{args:?} should not parse");
        }
    }
}
