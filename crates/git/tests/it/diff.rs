//! Diffing two commits of a mirror: additions, modifications, removals, and renames with and without edits.

use ledge_git::{Change, FileMode, Want};

use crate::support::{TestMirror, fixture, module_source};

#[test]
fn diff_reports_added_modified_removed_and_renamed_files() {
    let fixture = fixture();
    let repo = &fixture.repo;
    repo.write("src/added.rs", "pub fn added() {}\n");
    repo.write("src/lib.rs", format!("{}\npub fn one_more() {{}}\n", module_source("lib")));
    repo.remove("docs/old.md");
    repo.rename("src/nested/deep/mod.rs", "src/deep.rs");
    repo.rename("src/big_module.rs", "src/renamed_module.rs");
    repo.write("src/renamed_module.rs", module_source("big").replace("input * 3 + 1", "input * 3 + 2"));
    let second = repo.commit("second");

    let mirror = TestMirror::new();
    mirror.fetch(&repo.source(), &Want::Commit(fixture.initial), None).expect("fetch initial");
    mirror.fetch(&repo.source(), &Want::Commit(second), None).expect("fetch second");
    let changes = mirror.diff(fixture.initial, second).expect("diff");

    let summary: Vec<String> = changes
        .iter()
        .map(|change| match change {
            Change::Added { file } => format!("added {}", file.path),
            Change::Modified { file } => format!("modified {}", file.path),
            Change::Removed { path } => format!("removed {path}"),
            Change::Renamed { from, to, modified } => {
                format!("renamed {from} -> {} (modified: {modified})", to.path)
            }
        })
        .collect();
    assert_eq!(
        summary,
        [
            "removed docs/old.md",
            "added src/added.rs",
            "renamed src/nested/deep/mod.rs -> src/deep.rs (modified: false)",
            "modified src/lib.rs",
            "renamed src/big_module.rs -> src/renamed_module.rs (modified: true)",
        ]
    );

    let Some(Change::Added { file }) = changes.iter().find(|change| change.path() == "src/added.rs") else {
        panic!("src/added.rs was added");
    };
    assert_eq!(file.blob_id.to_hex(), repo.blob_id(second, "src/added.rs"));
    assert_eq!(file.size, "pub fn added() {}\n".len() as u64);
    assert_eq!(file.mode, FileMode::Regular);
    assert_eq!(mirror.read(file.blob_id).expect("read"), b"pub fn added() {}\n");
}

#[test]
fn renames_below_the_similarity_threshold_are_a_removal_and_an_addition() {
    let fixture = fixture();
    let repo = &fixture.repo;
    repo.rename("src/big_module.rs", "src/rewritten.rs");
    repo.write("src/rewritten.rs", module_source("entirely_different_names"));
    let second = repo.commit("rewrite");

    let mirror = TestMirror::new();
    mirror.fetch(&repo.source(), &Want::Commit(fixture.initial), None).expect("fetch");
    mirror.fetch(&repo.source(), &Want::Commit(second), None).expect("fetch");
    let changes = mirror.diff(fixture.initial, second).expect("diff");
    let kinds: Vec<(&str, bool)> =
        changes.iter().map(|change| (change.path(), matches!(change, Change::Added { .. }))).collect();
    assert_eq!(kinds, [("src/big_module.rs", false), ("src/rewritten.rs", true)]);
    assert!(matches!(&changes[0], Change::Removed { .. }));
}

#[test]
fn links_and_submodules_never_appear_and_a_file_turned_symlink_is_removed() {
    let fixture = fixture();
    let repo = &fixture.repo;
    std::fs::remove_file(repo.path().join("README.md")).expect("remove");
    repo.symlink("README.md", "docs/old.md");
    repo.symlink("another-link", "README.md");
    repo.make_executable("src/lib.rs");
    let second = repo.commit("links");

    let mirror = TestMirror::new();
    mirror.fetch(&repo.source(), &Want::Commit(fixture.initial), None).expect("fetch");
    mirror.fetch(&repo.source(), &Want::Commit(second), None).expect("fetch");
    let changes = mirror.diff(fixture.initial, second).expect("diff");

    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!(changes[0], Change::Removed { path: "README.md".into() });
    let Change::Modified { file } = &changes[1] else { panic!("{changes:?}") };
    assert_eq!((file.path.as_str(), file.mode), ("src/lib.rs", FileMode::Executable));
}

#[test]
fn diffing_against_a_commit_the_mirror_lacks_is_missing_object() {
    let fixture = fixture();
    let repo = &fixture.repo;
    repo.write("new.rs", "fn new() {}\n");
    let second = repo.commit("second");
    let mirror = TestMirror::new();
    mirror.fetch(&repo.source(), &Want::Commit(second), None).expect("fetch only the new commit");

    let err = mirror.diff(fixture.initial, second).expect_err("old commit missing");
    assert!(
        matches!(&err, ledge_git::Error::MissingObject { id } if *id == fixture.initial.to_hex()),
        "{err:?}"
    );
}

#[test]
fn diff_of_a_commit_with_itself_is_empty() {
    let fixture = fixture();
    let mirror = TestMirror::new();
    mirror.fetch(&fixture.repo.source(), &Want::Head, None).expect("fetch");
    assert_eq!(mirror.diff(fixture.initial, fixture.initial).expect("diff"), []);
}
