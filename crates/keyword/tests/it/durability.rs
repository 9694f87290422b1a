//! What survives: committed documents survive `kill -9` and dropping the index; staged ones do not; the
//! analyzers work the same after reopening.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ledge_keyword::{KeywordError, KeywordIndex, KeywordOptions};

use crate::support::{chunk, ids, open, search};

const CHILD_DIR: &str = "LEDGE_KEYWORD_TEST_CHILD_DIR";

/// Commits `committed.rs`, then stages `staged.rs` and the removal of `committed.rs`, without committing.
fn commit_then_stage(index: &KeywordIndex) {
    let committed = chunk("acme", "api", "src/committed.rs", "c", Some("parse_json"), "fn parse_json() {}");
    index.replace_file("acme", "api", "src/committed.rs", vec![committed]).unwrap();
    index.commit().unwrap();
    let staged = chunk("acme", "api", "src/staged.rs", "s", Some("write_json"), "fn write_json() {}");
    index.replace_file("acme", "api", "src/staged.rs", vec![staged]).unwrap();
    index.replace_file("acme", "api", "src/committed.rs", Vec::new()).unwrap();
}

fn assert_only_committed_survived(dir: &Path) {
    let index = open(dir);
    assert_eq!(index.num_docs(), 1);
    assert_eq!(ids(&search(&index, "acme", "json")), ["c"]);
    // The reopened index analyzes new documents as before: found by a part.
    let new = chunk("acme", "api", "src/new.rs", "n", Some("JsonWriter"), "struct JsonWriter;");
    index.replace_file("acme", "api", "src/new.rs", vec![new]).unwrap();
    index.commit().unwrap();
    assert_eq!(ids(&search(&index, "acme", "writer")), ["n"]);
}

/// Run by `committed_documents_survive_kill_9` in a child process; does nothing in a normal test run.
#[test]
fn child_commits_stages_and_waits_to_be_killed() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else { return };
    let dir = Path::new(&dir);
    let index = open(&dir.join("index"));
    commit_then_stage(&index);
    std::fs::write(dir.join("ready"), b"").unwrap();
    std::thread::sleep(Duration::from_secs(120));
    panic!("the parent did not kill this process");
}

#[test]
fn committed_documents_survive_kill_9_and_staged_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "durability::child_commits_stages_and_waits_to_be_killed", "--nocapture"])
        .env(CHILD_DIR, dir.path())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !dir.path().join("ready").exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the child exited before being killed: {status}");
        }
        assert!(Instant::now() < deadline, "the child never got ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_only_committed_survived(&dir.path().join("index"));
}

#[test]
fn dropping_the_index_loses_only_what_was_not_committed() {
    let dir = tempfile::tempdir().unwrap();
    commit_then_stage(&open(dir.path()));
    assert_only_committed_survived(dir.path());
}

#[test]
fn an_index_of_another_schema_is_refused() {
    use tantivy::schema::{STORED, Schema, TEXT};
    let dir = tempfile::tempdir().unwrap();
    let mut schema = Schema::builder();
    schema.add_text_field("body", TEXT | STORED);
    tantivy::Index::create_in_dir(dir.path(), schema.build()).unwrap();
    let error = KeywordIndex::open(dir.path(), KeywordOptions::default()).unwrap_err();
    assert!(matches!(error, KeywordError::SchemaMismatch { .. }), "{error}");
}
