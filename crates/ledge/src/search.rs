//! `ledge search "<query>"`: searches the code indexed in the local data directory with the same
//! engine as `GET /search`, printing `repo path:lines symbol score` and a snippet per hit (or `--json`).

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use anyhow::{Context, bail};
use ledge_config::Config;
use ledge_env::Env;
use ledge_search::{Mode, SearchHit, SearchOptions, SearchRequest, SearchResults, Searcher};

/// The command's arguments.
#[derive(Debug)]
pub struct Args<'a> {
    pub query: &'a str,
    pub org: Option<&'a str>,
    pub mode: Option<&'a str>,
    pub limit: Option<usize>,
    pub json: bool,
}

/// Runs one search and prints it; an error is one line for the caller to print.
pub async fn run(config: Arc<Config>, args: Args<'_>) -> anyhow::Result<()> {
    let mode = args
        .mode
        .map(str::parse::<Mode>)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--mode {}", e.reason()))?;
    let data_dir = config.data_dir.clone();
    let env = Env::open(config).context("cannot open the data directory")?;
    let keyword = env.keyword_index().await.context("cannot open the keyword index")?;
    let org = match args.org {
        Some(org) => org.trim().to_ascii_lowercase(),
        None => {
            let orgs = keyword.orgs().context("cannot read the keyword index")?;
            match orgs.as_slice() {
                [] => bail!("nothing is indexed in {}; run `ledge index <path>` first", data_dir.display()),
                [one] => one.clone(),
                several => {
                    bail!("several organizations are indexed ({}); choose one with --org", several.join(", "))
                }
            }
        }
    };
    let vectors = env.vector_index().await.context("cannot open the vector index")?;
    let embedder = env.embedder().await.context("cannot load the embedding model")?;
    let mut searcher = Searcher::new(keyword, vectors, embedder, SearchOptions::default());
    if let Some(cache) =
        ledge_indexing::EmbeddingCache::for_queries(&env).await.context("cannot open the embedding cache")?
    {
        searcher = searcher.with_query_cache(cache);
    }
    let request = SearchRequest { mode, limit: args.limit, ..SearchRequest::new(org, args.query) };
    let results = searcher.search(&request).await.map_err(|error| match error.field() {
        Some("q") => anyhow::anyhow!("the query {}", error.reason()),
        Some("limit") => anyhow::anyhow!("--limit {}", error.reason()),
        Some(field) => anyhow::anyhow!("{field} {}", error.reason()),
        None => anyhow::Error::new(error).context("the search failed"),
    })?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &results)?;
        writeln!(out)?;
    } else {
        for notice in &results.notices {
            eprintln!("note: {notice}");
        }
        print_human(&mut out, &results, std::io::stdout().is_terminal())?;
    }
    Ok(())
}

fn print_human(out: &mut impl Write, results: &SearchResults, color: bool) -> std::io::Result<()> {
    if results.hits.is_empty() {
        writeln!(out, "no results ({} mode)", results.mode)?;
        return Ok(());
    }
    for hit in &results.hits {
        print_hit(out, hit, color)?;
    }
    let more = if results.next_cursor.is_some() { ", more with --limit" } else { "" };
    writeln!(out, "{} results, {} mode, {:.1} ms{more}", results.hits.len(), results.mode, results.took_ms)
}

fn print_hit(out: &mut impl Write, hit: &SearchHit, color: bool) -> std::io::Result<()> {
    // A chunk merged from several small definitions has no one symbol: show its names.
    let symbol = match (&hit.symbol, hit.symbols.as_slice()) {
        (Some(symbol), _) => format!(" {symbol}"),
        (None, []) => String::new(),
        (None, names) => format!(" {}", names.join(", ")),
    };
    writeln!(
        out,
        "{} {}:{}-{}{symbol}  score {:.4}",
        hit.repo, hit.path, hit.start_line, hit.end_line, hit.score
    )?;
    let text = &hit.snippet.text;
    let mut marked = String::with_capacity(text.len() + 16);
    let mut at = 0;
    for &[start, end] in &hit.snippet.highlights {
        if start < at || end > text.len() || !text.is_char_boundary(start) || !text.is_char_boundary(end) {
            continue;
        }
        marked.push_str(&text[at..start]);
        if color {
            marked.push_str("\x1b[1;31m");
            marked.push_str(&text[start..end]);
            marked.push_str("\x1b[0m");
        } else {
            marked.push_str(&text[start..end]);
        }
        at = end;
    }
    marked.push_str(&text[at..]);
    for (i, line) in marked.lines().enumerate() {
        writeln!(out, "{:>6} │ {line}", u64::from(hit.snippet.start_line) + i as u64)?;
    }
    writeln!(out)
}
