//! `ledge index <path|git-url>`: runs the indexing pipeline in-process — the same consumers as
//! `ledge serve`, local sources allowed — until the job is finished, with progress on stderr and a
//! summary (or `--json`) on stdout.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use ledge_config::Config;
use ledge_consumers::Consumers;
use ledge_env::{Env, QueueBinding};
use ledge_indexing::{
    IndexStatus, JobState, MESSAGE_VERSION, Pipeline, PipelineOptions, RepoRef, RepositoryJob,
    RepositoryTask, org_of_owner,
};
use ledge_queue::{MessageBody, SendOptions};
use serde::Serialize;
use tokio::sync::watch;

/// How often the status is read.
const POLL: Duration = Duration::from_millis(100);
/// How often a progress line is written when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(2);

/// What `--json` prints, and what the text summary shows.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub org: String,
    pub repository: String,
    pub source: String,
    pub commit: Option<String>,
    pub state: JobState,
    pub files_total: u64,
    pub files_done: u64,
    pub files_failed: u64,
    pub chunks: u64,
    pub skipped: u64,
    pub skipped_by_reason: std::collections::BTreeMap<String, u64>,
    pub failures: Vec<ledge_indexing::FileFailure>,
    pub dead_letters: u64,
    /// The embedding model's id, or "keyword only".
    pub embeddings: String,
    pub duration_ms: u64,
}

/// Indexes `source` as `name`; `Ok(false)` when the job failed (the summary is printed anyway).
pub async fn run(config: Arc<Config>, source: &str, name: Option<&str>, json: bool) -> anyhow::Result<bool> {
    let started = Instant::now();
    let (clone_url, key) = resolve(source, name)?;
    let owner = key.split_once('/').map_or(key.as_str(), |(owner, _)| owner);
    let repo = RepoRef::new(&org_of_owner(owner), &key)
        .with_context(|| format!("{key:?} cannot name a repository; choose one with --name owner/repo"))?;
    let env = Arc::new(Env::open(config).context("cannot open the data directory")?);
    let options = PipelineOptions { allow_local_sources: true, ..PipelineOptions::default() };
    let consumers = Consumers::build_with(&env, options).await.context("cannot start the pipeline")?;
    let pipeline = consumers.pipeline().clone();
    let (stop, stopped) = watch::channel(false);
    let consumers = tokio::spawn(consumers.run(async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|s| *s).await;
    }));

    // Whatever the job's outcome, the pipeline is stopped and the env closed before returning: a
    // runtime dropped under a running pipeline cancels its tasks mid-step (and logs about it).
    let outcome = follow_job(&env, &pipeline, &repo, clone_url, source, started).await;
    let _ = stop.send(true);
    let stopped = consumers.await;
    env.close().await;
    let outcome = outcome?;
    stopped.context("the pipeline's task died")?.context("the pipeline failed")?;

    let summary = summarize(&outcome, source, started.elapsed());
    if json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print!("{}", render(&summary));
    }
    Ok(summary.state == JobState::Indexed)
}

/// Queues the index job and follows its status, with a progress bar, until it finished or failed.
async fn follow_job(
    env: &Env,
    pipeline: &Pipeline,
    repo: &RepoRef,
    clone_url: String,
    source: &str,
    started: Instant,
) -> anyhow::Result<IndexStatus> {
    let asked_ms = epoch_ms();
    let job = RepositoryJob {
        v: MESSAGE_VERSION,
        org: repo.org().to_owned(),
        repo: repo.key(),
        task: RepositoryTask::Index { clone_url, commit: None, before: None },
        order: asked_ms,
        delivery: None,
    };
    let queue = env.queue(QueueBinding::RepositoryIndexing).await?;
    queue
        .send(MessageBody::json_from(&job)?, SendOptions::default())
        .await
        .context("cannot queue the job")?;

    let mut bar = Progress::new();
    loop {
        tokio::time::sleep(POLL).await;
        let status = pipeline.index_status(repo).await.context("cannot read the job's status")?;
        if let Some(error) = status.progress.error.as_ref().filter(|e| e.at_ms >= asked_ms) {
            bar.clear();
            bail!("cannot index {source}: {}", error.reason);
        }
        bar.show(&status, started.elapsed());
        if status.finished {
            bar.clear();
            return Ok(status);
        }
    }
}

/// The clone URL and repository key of `source`.
fn resolve(source: &str, name: Option<&str>) -> anyhow::Result<(String, String)> {
    let (url, default_key) = if source.contains("://") {
        let path = source.split_once("://").map_or("", |(_, rest)| rest);
        let mut segments = path.trim_end_matches('/').rsplit('/').filter(|s| !s.is_empty());
        let repo = segments.next().map(|s| s.trim_end_matches(".git").to_owned());
        let owner = segments.next().map(str::to_owned);
        let key = match (owner, repo) {
            (Some(owner), Some(repo)) if !source.starts_with("file://") => format!("{owner}/{repo}"),
            (_, Some(repo)) => format!("local/{repo}"),
            _ => bail!("{source}: not a repository URL"),
        };
        (source.to_owned(), key)
    } else {
        let path = Path::new(source);
        if !path.is_dir() {
            bail!("{source}: no such directory");
        }
        let path = path.canonicalize().with_context(|| format!("{source}: cannot resolve the path"))?;
        if !path.join(".git").exists() && !path.join("HEAD").is_file() {
            bail!("{source}: not a git repository (no .git)");
        }
        let base = path.file_name().map(|n| n.to_string_lossy().trim_end_matches(".git").to_owned());
        let key = format!("local/{}", base.unwrap_or_default());
        (path.to_string_lossy().into_owned(), key)
    };
    Ok((url, name.map_or(default_key, str::to_owned)))
}

fn summarize(status: &IndexStatus, source: &str, elapsed: Duration) -> Summary {
    let p = &status.progress;
    let skipped = p.notes.as_ref().map(|n| n.skipped.clone()).unwrap_or_default();
    Summary {
        org: status.org.clone(),
        repository: status.repository.clone(),
        source: source.to_owned(),
        commit: p.commit.clone(),
        state: p.state,
        files_total: p.files_total,
        files_done: p.files_done,
        files_failed: p.files_failed,
        chunks: p.chunks,
        skipped: skipped.total,
        skipped_by_reason: skipped.by_reason,
        failures: p.failures.clone(),
        dead_letters: status.dead_letters(),
        embeddings: status.embeddings.clone().unwrap_or_else(|| ledge_indexing::KEYWORD_ONLY.to_owned()),
        duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
    }
}

fn render(s: &Summary) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let commit = s.commit.as_deref().map_or("-", |c| &c[..c.len().min(12)]);
    let verdict = match s.state {
        JobState::Indexed if s.files_failed > 0 => "indexed with failures",
        JobState::Indexed => "indexed",
        JobState::Failed => "FAILED",
        JobState::Running | JobState::Idle => "not finished",
    };
    let _ = writeln!(
        out,
        "{} ({}) at {commit}: {verdict} in {:.1} s",
        s.repository,
        s.source,
        s.duration_ms as f64 / 1e3
    );
    let _ = writeln!(
        out,
        "  files       {} indexed, {} failed, of {}",
        s.files_done, s.files_failed, s.files_total
    );
    let _ = writeln!(out, "  chunks      {}", s.chunks);
    let reasons: Vec<String> = s.skipped_by_reason.iter().map(|(r, n)| format!("{r} {n}")).collect();
    let reasons = if reasons.is_empty() { String::new() } else { format!(" ({})", reasons.join(", ")) };
    let _ = writeln!(out, "  skipped     {}{reasons}", s.skipped);
    let _ = writeln!(out, "  embeddings  {}", s.embeddings);
    if s.dead_letters > 0 {
        let _ = writeln!(
            out,
            "  dead letters {} (indexing queues; see GET /repositories/{{id}}/index-status)",
            s.dead_letters
        );
    }
    for failure in s.failures.iter().take(10) {
        let _ = writeln!(out, "  failed      {}: {}", failure.path, failure.reason);
    }
    out
}

/// Progress on stderr: a bar redrawn in place on a terminal, a line every few seconds otherwise.
struct Progress {
    tty: bool,
    last_line: Option<Instant>,
    drawn: bool,
}

impl Progress {
    fn new() -> Progress {
        Progress { tty: std::io::stderr().is_terminal(), last_line: None, drawn: false }
    }

    fn show(&mut self, status: &IndexStatus, elapsed: Duration) {
        let p = &status.progress;
        let embedding = status.queues.iter().find(|q| q.queue == QueueBinding::EmbeddingGeneration.name());
        let embedding_left = embedding.map_or(0, |q| q.ready + q.delayed + q.in_flight);
        let text = if p.state == JobState::Running || p.files_total > 0 {
            let done = p.files_done + p.files_failed;
            let stage = if embedding_left > 0 {
                format!(", embedding ({embedding_left} batches left)")
            } else {
                String::new()
            };
            format!("{done}/{} files, {} chunks{stage}", p.files_total, p.chunks)
        } else {
            "fetching and listing files".to_owned()
        };
        let mut err = std::io::stderr().lock();
        if self.tty {
            let (done, total) = (p.files_done + p.files_failed, p.files_total.max(1));
            let filled = usize::try_from(done * 30 / total).unwrap_or(30).min(30);
            let _ = write!(
                err,
                "\r\x1b[2K[{}{}] {text} {:.1}s",
                "#".repeat(filled),
                ".".repeat(30 - filled),
                elapsed.as_secs_f64()
            );
            let _ = err.flush();
            self.drawn = true;
        } else if self.last_line.is_none_or(|at| at.elapsed() >= PLAIN_EVERY) {
            let _ = writeln!(err, "ledge index: {text} ({:.1} s)", elapsed.as_secs_f64());
            self.last_line = Some(Instant::now());
        }
    }

    fn clear(&mut self) {
        if self.drawn {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
            self.drawn = false;
        }
    }
}

fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
