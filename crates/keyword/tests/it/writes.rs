//! Staging and committing: replacing a file is idempotent, empty removes, repositories delete, bad input is
//! refused with the field at fault, one writer per directory.

use ledge_keyword::{KeywordError, KeywordIndex, KeywordOptions, MIN_WRITER_MEMORY_BYTES};

use crate::support::{chunk, ids, open, search};

fn two_chunks(org: &str, repo: &str, path: &str) -> Vec<ledge_keyword::ChunkDoc> {
    vec![
        chunk(org, repo, path, &format!("{path}#1"), Some("parse_json"), "fn parse_json(s: &str) {}"),
        chunk(org, repo, path, &format!("{path}#2"), Some("write_json"), "fn write_json(v: &Value) {}"),
    ]
}

#[test]
fn replacing_a_file_twice_with_the_same_docs_keeps_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path());
    for _ in 0..2 {
        index.replace_file("acme", "api", "src/json.rs", two_chunks("acme", "api", "src/json.rs")).unwrap();
        index.commit().unwrap();
        assert_eq!(index.num_docs(), 2);
    }
    // Twice before one commit: the second replaces the first's staged documents too.
    index.replace_file("acme", "api", "src/json.rs", two_chunks("acme", "api", "src/json.rs")).unwrap();
    index.replace_file("acme", "api", "src/json.rs", two_chunks("acme", "api", "src/json.rs")).unwrap();
    index.commit().unwrap();
    assert_eq!(index.num_docs(), 2);
    assert_eq!(search(&index, "acme", "json").len(), 2);
}

#[test]
fn replacing_a_file_drops_its_old_chunks_and_leaves_other_files_alone() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path());
    index.replace_file("acme", "api", "src/json.rs", two_chunks("acme", "api", "src/json.rs")).unwrap();
    index.replace_file("acme", "api", "src/yaml.rs", two_chunks("acme", "api", "src/yaml.rs")).unwrap();
    index.commit().unwrap();
    assert_eq!(index.num_docs(), 4);

    let new = chunk("acme", "api", "src/json.rs", "new", Some("decode"), "fn decode(s: &str) {}");
    index.replace_file("acme", "api", "src/json.rs", vec![new]).unwrap();
    index.commit().unwrap();
    assert_eq!(index.num_docs(), 3);
    assert_eq!(ids(&search(&index, "acme", "decode")), ["new"]);
    assert_eq!(ids(&search(&index, "acme", "parse_json")), ["src/yaml.rs#1"]);
}

#[test]
fn replacing_a_file_with_nothing_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path());
    index.replace_file("acme", "api", "src/json.rs", two_chunks("acme", "api", "src/json.rs")).unwrap();
    index.commit().unwrap();
    index.replace_file("acme", "api", "src/json.rs", Vec::new()).unwrap();
    index.commit().unwrap();
    assert_eq!(index.num_docs(), 0);
    assert!(search(&index, "acme", "json").is_empty());
    // Removing what is not there is fine (idempotent).
    index.replace_file("acme", "api", "src/json.rs", Vec::new()).unwrap();
    index.commit().unwrap();
}

#[test]
fn a_path_that_prefixes_another_is_a_different_file() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path());
    index.replace_file("acme", "api", "src/a", two_chunks("acme", "api", "src/a")).unwrap();
    index.replace_file("acme", "api", "src/ab", two_chunks("acme", "api", "src/ab")).unwrap();
    index.replace_file("acme", "api-v2", "src/a", two_chunks("acme", "api-v2", "src/a")).unwrap();
    index.commit().unwrap();
    index.replace_file("acme", "api", "src/a", Vec::new()).unwrap();
    index.commit().unwrap();
    assert_eq!(index.num_docs(), 4);
}

#[test]
fn deleting_a_repository_removes_only_its_documents() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path());
    index.replace_file("acme", "api", "src/json.rs", two_chunks("acme", "api", "src/json.rs")).unwrap();
    index.replace_file("acme", "api", "src/yaml.rs", two_chunks("acme", "api", "src/yaml.rs")).unwrap();
    index.replace_file("acme", "web", "src/json.rs", two_chunks("acme", "web", "src/json.rs")).unwrap();
    index.replace_file("other", "api", "src/json.rs", two_chunks("other", "api", "src/json.rs")).unwrap();
    index.commit().unwrap();
    assert_eq!(index.num_docs(), 8);

    index.delete_repo("acme", "api").unwrap();
    index.commit().unwrap();
    assert_eq!(index.num_docs(), 4);
    let hits = search(&index, "acme", "json");
    let repos: Vec<(&str, &str)> = hits.iter().map(|h| (h.doc.org.as_str(), h.doc.repo.as_str())).collect();
    assert_eq!(repos, [("acme", "web"); 2]);
    assert_eq!(search(&index, "other", "json").len(), 2);
}

#[test]
fn nothing_is_searchable_before_commit() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path());
    index.replace_file("acme", "api", "src/json.rs", two_chunks("acme", "api", "src/json.rs")).unwrap();
    assert_eq!(index.num_docs(), 0);
    assert!(search(&index, "acme", "json").is_empty());
    index.commit().unwrap();
    assert_eq!(index.num_docs(), 2);
    // A commit with nothing staged changes nothing.
    index.commit().unwrap();
    assert_eq!(index.num_docs(), 2);
}

#[test]
fn documents_of_another_file_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path());
    let mut docs = two_chunks("acme", "api", "src/json.rs");
    docs[1].org = "other".into();
    let error = index.replace_file("acme", "api", "src/json.rs", docs).unwrap_err();
    assert!(
        matches!(error, KeywordError::InvalidDoc { index: 1, field: "org", .. }),
        "a document of another org is refused: {error}"
    );

    let docs = two_chunks("acme", "api", "src/json.rs");
    let error = index.replace_file("acme", "api", "src/other.rs", docs).unwrap_err();
    assert!(matches!(error, KeywordError::InvalidDoc { index: 0, field: "path", .. }), "{error}");

    let mut docs = two_chunks("acme", "api", "src/json.rs");
    docs[1].chunk_id = docs[0].chunk_id.clone();
    let error = index.replace_file("acme", "api", "src/json.rs", docs).unwrap_err();
    assert!(matches!(error, KeywordError::InvalidDoc { index: 1, field: "chunk_id", .. }), "{error}");

    let mut docs = two_chunks("acme", "api", "src/json.rs");
    (docs[0].start_line, docs[0].end_line) = (9, 3);
    let error = index.replace_file("acme", "api", "src/json.rs", docs).unwrap_err();
    assert!(matches!(error, KeywordError::InvalidDoc { index: 0, field: "end_line", .. }), "{error}");

    // Nothing of a refused call was staged.
    index.commit().unwrap();
    assert_eq!(index.num_docs(), 0);
}

#[test]
fn empty_or_nul_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path());
    let error = index.replace_file("", "api", "x", Vec::new()).unwrap_err();
    assert!(matches!(error, KeywordError::InvalidArgument { field: "org", .. }), "{error}");
    let error = index.replace_file("acme", "a\0b", "x", Vec::new()).unwrap_err();
    assert!(matches!(error, KeywordError::InvalidArgument { field: "repo", .. }), "{error}");
    let error = index.replace_file("acme", "api", "", Vec::new()).unwrap_err();
    assert!(matches!(error, KeywordError::InvalidArgument { field: "path", .. }), "{error}");
    let error = index.delete_repo("acme", "").unwrap_err();
    assert!(matches!(error, KeywordError::InvalidArgument { field: "repo", .. }), "{error}");
}

#[test]
fn a_writer_budget_below_tantivys_minimum_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let options = KeywordOptions { writer_memory_bytes: MIN_WRITER_MEMORY_BYTES - 1, ..Default::default() };
    let error = KeywordIndex::open(dir.path(), options).unwrap_err();
    assert!(matches!(error, KeywordError::InvalidArgument { field: "writer_memory_bytes", .. }), "{error}");
    let options = KeywordOptions { writer_memory_bytes: MIN_WRITER_MEMORY_BYTES, ..Default::default() };
    KeywordIndex::open(dir.path(), options).unwrap();
}

#[test]
fn one_index_per_directory_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path());
    let error = KeywordIndex::open(dir.path(), KeywordOptions::default()).unwrap_err();
    assert!(matches!(error, KeywordError::Locked { .. }), "{error}");
    drop(index);
    open(dir.path());
}

#[test]
fn the_index_is_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<KeywordIndex>();

    let dir = tempfile::tempdir().unwrap();
    let index = std::sync::Arc::new(open(dir.path()));
    std::thread::scope(|scope| {
        for t in 0..4 {
            let index = index.clone();
            scope.spawn(move || {
                for f in 0..10 {
                    let path = format!("src/t{t}/f{f}.rs");
                    index.replace_file("acme", "api", &path, two_chunks("acme", "api", &path)).unwrap();
                    // Some threads replace the same file again: still one copy.
                    index.replace_file("acme", "api", &path, two_chunks("acme", "api", &path)).unwrap();
                    if f % 5 == 0 {
                        index.commit().unwrap();
                    }
                }
            });
        }
    });
    index.commit().unwrap();
    assert_eq!(index.num_docs(), 4 * 10 * 2);
}
