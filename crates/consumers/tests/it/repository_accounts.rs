//! The indexing pipeline over the platform's repository records, end to end: a repository's stored
//! access token reaches the git transport (and is written nowhere in clear), the server's
//! `LEDGE_GITHUB_TOKEN` is the fallback, and a job that would take the organization past its plan's
//! indexed files fails with the reason in its status and a `usage_limit.reached` notification.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ledge_auth::SealingKeys;
use ledge_config::LoadOptions;
use ledge_consumers::Consumers;
use ledge_env::{Env, QueueBinding};
use ledge_indexing::{
    JobState, MESSAGE_VERSION, Pipeline, PipelineOptions, Progress, RepoRef, RepositoryJob, RepositoryTask,
};
use ledge_platform::{
    Access, NewPreferences, NewRepository, NotificationEvent, Platform, Principal, TargetPolicy,
};
use ledge_queue::{MessageBody, SendOptions};

use crate::notifications::{eventually, receiver};

const ENCRYPTION_KEY: &str = "e1:an-encryption-key-of-at-least-32-bytes";
const REPO_TOKEN: &str = "ghs_the_repository_token";

struct World {
    env: Arc<Env>,
    platform: Platform,
    ada: Principal,
    octo: Access,
    dir: tempfile::TempDir,
}

/// An env with `vars` (and the sealing key), its platform, and Ada owning the organization `octo`.
async fn world(vars: &[(&str, &str)]) -> World {
    let dir = tempfile::tempdir().unwrap();
    let mut env_vars: Vec<(String, String)> = vec![
        ("LEDGE_ENCRYPTION_KEY".into(), ENCRYPTION_KEY.into()),
        ("LEDGE_QUEUES__REPOSITORY_INDEXING__MAX_RETRIES".into(), "0".into()),
        ("LEDGE_QUEUES__REPOSITORY_INDEXING__MAX_BATCH_TIMEOUT".into(), "0".into()),
        ("LEDGE_QUEUES__FILE_INDEXING__MAX_BATCH_TIMEOUT".into(), "0".into()),
        ("LEDGE_QUEUES__NOTIFICATIONS__MAX_BATCH_TIMEOUT".into(), "0".into()),
        ("LEDGE_NOTIFICATIONS__ALLOW_PRIVATE_TARGETS".into(), "true".into()),
    ];
    env_vars.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = ledge_config::load(LoadOptions {
        data_dir: Some(dir.path().join("data")),
        env: env_vars.into_iter().collect(),
        working_dir: Some(dir.path().to_path_buf()),
        ..LoadOptions::default()
    })
    .unwrap();
    let env = Arc::new(Env::open(Arc::new(config)).unwrap());
    let platform =
        crate::support::platform(&env, Some(SealingKeys::parse_list(ENCRYPTION_KEY).unwrap())).await;
    platform.signup("ada@example.com", "a long enough passphrase", None, "127.0.0.1").await.unwrap();
    let tokens = platform.login("ada@example.com", "a long enough passphrase", "127.0.0.1").await.unwrap();
    let ada = platform.authenticate(format!("Bearer {}", tokens.access_token).as_bytes()).await.unwrap();
    let Principal::User { user, .. } = &ada else { panic!("a user") };
    let octo = platform.create_organization(user, "Octo", Some("octo")).await.unwrap().organization;
    let octo = platform.access(&ada, &octo.id).await.unwrap();
    World { env, platform, ada, octo, dir }
}

impl World {
    async fn connect(&self, name: &str, access_token: Option<&str>) {
        let url = format!("https://github.com/{name}");
        let new = NewRepository { git_url: &url, access_token, ..NewRepository::default() };
        self.platform.connect_repository(&self.octo, &new).await.unwrap();
    }

    /// Queues an index job of `name` in `octo` from `clone_url`, as the repository routes do.
    async fn index(&self, name: &str, clone_url: &str, order: i64) {
        let task = RepositoryTask::Index { clone_url: clone_url.into(), commit: None, before: None };
        self.job(name, task, order).await;
    }

    async fn job(&self, name: &str, task: RepositoryTask, order: i64) {
        let job = RepositoryJob {
            v: MESSAGE_VERSION,
            org: "octo".into(),
            repo: name.into(),
            task,
            order,
            delivery: None,
        };
        let queue = self.env.queue(QueueBinding::RepositoryIndexing).await.unwrap();
        queue.send(MessageBody::json_from(&job).unwrap(), SendOptions::default()).await.unwrap();
    }

    /// Builds the consumers with `options` (the platform's accounts wired in) and runs them.
    async fn run(&self, options: PipelineOptions) -> Running {
        let consumers = Consumers::build_with(&self.env, options).await.unwrap();
        let pipeline = consumers.pipeline().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(consumers.run(async move {
            let _ = stopped.await;
        }));
        Running { pipeline, stop, task }
    }
}

struct Running {
    pipeline: Arc<Pipeline>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), ledge_consumers::ConsumersError>>,
}

impl Running {
    /// Waits until the progress of `octo/<name>` satisfies `done`.
    async fn wait_for(&self, name: &str, done: impl Fn(&Progress) -> bool) -> Progress {
        let repo = RepoRef::new("octo", name).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let progress = self.pipeline.status(&repo).await.unwrap();
            if done(&progress) {
                return progress;
            }
            assert!(Instant::now() < deadline, "{name} did not settle: {progress:#?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn error_of(&self, name: &str) -> String {
        self.wait_for(name, |p| p.error.is_some()).await.error.unwrap().reason
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

/// A loopback HTTP server that wants credentials for everything: answers 401 with a Basic challenge
/// and records each request's `Authorization` header.
fn private_server() -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut authorization = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("authorization")
                {
                    authorization = Some(value.trim().to_string());
                }
            }
            recorded.lock().unwrap().push(authorization);
            let _ = stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\n\
                  Content-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (base, seen)
}

/// Whether any file under `dir` holds `needle`.
fn found_in_files(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path)
                && bytes.windows(needle.len()).any(|w| w == needle)
            {
                found.push(path);
            }
        }
    }
    found
}

fn plain_http() -> PipelineOptions {
    PipelineOptions { allow_plain_http: true, ..PipelineOptions::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repositorys_access_token_reaches_the_transport_and_is_written_nowhere_in_clear() {
    let (base, seen) = private_server();
    let world = world(&[]).await;
    world.connect("octo/private", Some(REPO_TOKEN)).await;
    world.connect("octo/public", None).await;
    let running = world.run(plain_http()).await;
    world.index("octo/private", &format!("{base}/octo/private.git"), 1).await;
    world.index("octo/public", &format!("{base}/octo/public.git"), 2).await;

    // gitoxide asked for credentials, got the repository's token, and (this being plain http in a
    // test) refused to send it in clear text; without a token, the server's 401 stands.
    let private = running.error_of("octo/private").await;
    assert!(private.contains("credentials are only sent over https"), "{private}");
    let public = running.error_of("octo/public").await;
    assert!(public.contains("authentication to") && public.contains("failed"), "{public}");
    assert!(seen.lock().unwrap().iter().all(Option::is_none), "nothing sent over plain http");
    running.stop().await;

    // Not in the mirrors, the queues, the store (sealed there) or the errors.
    let leaks = found_in_files(world.dir.path(), REPO_TOKEN.as_bytes());
    assert!(leaks.is_empty(), "the token is written in clear in {leaks:?}");
    assert!(!private.contains(REPO_TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_of_its_own_a_repository_is_fetched_with_the_servers() {
    let (base, _) = private_server();
    let world = world(&[("LEDGE_GITHUB_TOKEN", "ghs_the_server_token")]).await;
    world.connect("octo/public", None).await;
    let running = world.run(plain_http()).await;
    world.index("octo/public", &format!("{base}/octo/public.git"), 1).await;
    // An unconnected repository (a webhook's) gets the server's token too.
    world.index("octo/unknown", &format!("{base}/octo/unknown.git"), 2).await;
    for name in ["octo/public", "octo/unknown"] {
        let error = running.error_of(name).await;
        assert!(error.contains("credentials are only sent over https"), "{name}: {error}");
    }
    running.stop().await;
}

/// A git repository at `dir` holding `files` text files, committed.
fn git_repository(dir: &Path, files: usize) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .args(["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"])
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(output.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    git(&["init", "--quiet", "--initial-branch=main"]);
    for i in 0..files {
        std::fs::write(dir.join(format!("f{i}.py")), format!("def f{i}():\n    return {i}\n")).unwrap();
    }
    git(&["add", "--all"]);
    git(&["commit", "--quiet", "-m", "files"]);
    dir.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_past_the_plans_indexed_files_fails_with_the_reason_and_tells_the_organization() {
    let (at, received) = receiver().await;
    let world = world(&[("LEDGE_PLANS__FREE__INDEXED_FILES", "3")]).await;
    let Principal::User { user, .. } = &world.ada else { panic!() };
    let hook = format!("http://{at}/limits");
    let preferences = NewPreferences {
        email: None,
        webhook_url: Some(&hook),
        slack_webhook_url: None,
        events: vec![NotificationEvent::UsageLimitReached],
    };
    let open = TargetPolicy { allow_private: true };
    world.platform.set_notification_preferences(&world.octo, &user.id, &preferences, open).await.unwrap();
    world.connect("octo/first", None).await;
    world.connect("octo/second", None).await;
    let first = git_repository(&world.dir.path().join("first"), 2);
    let second = git_repository(&world.dir.path().join("second"), 2);
    let options = PipelineOptions { allow_local_sources: true, ..PipelineOptions::default() };
    let running = world.run(options).await;

    world.index("octo/first", &first, 1).await;
    let done = running.wait_for("octo/first", |p| p.state == JobState::Indexed).await;
    assert_eq!(done.files_done, 2);
    assert_eq!(world.platform.billing(&world.octo).await.unwrap().usage.indexed_files, 2);

    world.index("octo/second", &second, 2).await;
    let reason = running.error_of("octo/second").await;
    assert!(reason.contains("plan limit indexed_files"), "{reason}");
    assert!(
        reason.contains("allows 3 indexed files") && reason.contains("bring the organization to 4"),
        "{reason}"
    );
    let refused = running.wait_for("octo/second", |_| true).await;
    assert_eq!((refused.state, refused.files_total), (JobState::Idle, 0), "no job started");
    assert_eq!(world.platform.billing(&world.octo).await.unwrap().usage.indexed_files, 2, "nothing metered");

    eventually("the usage limit notification", || !received.to("limits").is_empty()).await;
    let notice = &received.to("limits")[0];
    assert_eq!(notice["event"], "usage_limit.reached");
    assert_eq!(notice["organization"]["slug"], "octo");
    assert_eq!(notice["data"]["limit"], "indexed_files");
    assert_eq!(
        (notice["data"]["allowed"].as_u64(), notice["data"]["would_hold"].as_u64()),
        (Some(3), Some(4))
    );

    // Removing the first repository's index gives its files back; the second then fits.
    world.job("octo/first", RepositoryTask::Remove, 3).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while world.platform.billing(&world.octo).await.unwrap().usage.indexed_files != 0 {
        assert!(Instant::now() < deadline, "the removal did not free the files");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    world.index("octo/second", &second, 4).await;
    running.wait_for("octo/second", |p| p.state == JobState::Indexed).await;
    assert_eq!(world.platform.billing(&world.octo).await.unwrap().usage.indexed_files, 2);
    assert_eq!(received.to("limits").len(), 1, "told once");
    running.stop().await;
}
