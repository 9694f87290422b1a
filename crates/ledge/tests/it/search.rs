//! `ledge search` through the real binary, over a data directory filled by `ledge index`: human and
//! JSON output, the organization chosen when there is one and asked for when there are several, and bad
//! input as one line on stderr with a failing exit code.

use std::path::Path;
use std::process::{Command, Output};

use crate::harness::ledge;

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A one-file git repository.
fn repo(file: &str, text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "--quiet", "--initial-branch=main"]);
    std::fs::create_dir_all(dir.path().join(file).parent().unwrap()).unwrap();
    std::fs::write(dir.path().join(file), text).unwrap();
    git(dir.path(), &["add", "--all"]);
    git(dir.path(), &["commit", "--quiet", "-m", "c"]);
    dir
}

fn run(data: &Path, args: &[&str]) -> Output {
    ledge().arg("--data-dir").arg(data).args(args).output().expect("ledge runs")
}

fn index(data: &Path, repo: &Path, name: &str) {
    let out = run(data, &["index", repo.to_str().unwrap(), "--name", name]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn ledge_search_prints_hits_and_json_and_refuses_bad_input_in_one_line() {
    let data = tempfile::tempdir().unwrap();
    let out = run(data.path(), &["search", "anything"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("ledge: nothing is indexed in "), "{stderr}");

    let acme = repo(
        "src/lib.rs",
        "/// Adds two numbers.\npub fn add_numbers(a: i32, b: i32) -> i32 {\n    a + b\n}\n",
    );
    index(data.path(), acme.path(), "acme/math");

    let out = run(data.path(), &["search", "add numbers"]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.starts_with("acme/math src/lib.rs:1-4 add_numbers  score "), "{stdout}");
    assert!(stdout.contains("     2 │ pub fn add_numbers(a: i32, b: i32) -> i32 {"), "{stdout}");
    assert!(stdout.contains("1 results, keyword mode"), "{stdout}");
    assert!(stderr.contains("no embedding model is installed"), "the keyword-only notice: {stderr}");

    let out = run(data.path(), &["search", "sym:add", "--json"]);
    assert!(out.status.success());
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(results["mode"], "symbol");
    assert_eq!(results["hits"][0]["symbol"], "add_numbers");

    let globex = repo("lib/secret.rs", "pub fn secret_sauce() {}\n");
    index(data.path(), globex.path(), "globex/sauce");
    let out = run(data.path(), &["search", "secret"]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "ledge: several organizations are indexed (acme, globex); choose one with --org\n"
    );
    let out = run(data.path(), &["search", "secret", "--org", "acme", "--json"]);
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results["hits"], serde_json::json!([]), "acme does not see globex's code");

    for (args, expected) in [
        (&["search", "foo:bar", "--org", "acme"][..], "ledge: the query has an unknown filter `foo:`"),
        (&["search", "x", "--org", "acme", "--mode", "fast"], "ledge: --mode \"fast\" is not one of"),
        (&["search", "x", "--org", "acme", "--limit", "0"], "ledge: --limit 0 is not within 1..=100"),
        (
            &["search", "fn (", "--org", "acme", "--mode", "regex"],
            "ledge: the query is not a valid regular expression",
        ),
    ] {
        let out = run(data.path(), args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with(expected), "{args:?}: {stderr}");
    }
}
