//! Listing a commit's files and selecting the ones to index, with a reason for every skip.

use ledge_git::{BlobId, FileFilter, FileMode, SkipReason, Want};

use crate::support::{TestMirror, big_text, fixture};

#[test]
fn list_files_reports_files_with_ids_sizes_and_modes_and_skips_links_and_submodules() {
    let fixture = fixture();
    let mirror = TestMirror::new();
    mirror.fetch(&fixture.repo.source(), &Want::Head, None).expect("fetch");

    let listing = mirror.list_files(fixture.initial).expect("list");

    let paths: Vec<&str> = listing.files.iter().map(|file| file.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            ".gitignore",
            "Cargo.lock",
            "README.md",
            "assets/logo.png",
            "big.txt",
            "build/output.txt",
            "data/blob.dat",
            "debug.log",
            "docs/old.md",
            "gen/api.pb.go",
            "gen/client.go",
            "generated_at_root.rs",
            "important.log",
            "scripts/run.sh",
            "src/.gitignore",
            "src/big_module.rs",
            "src/generated_schema.rs",
            "src/lib.rs",
            "src/nested/deep/mod.rs",
            "vendor/dep/lib.go",
            "web/app.min.js",
            "web/node_modules/left-pad/index.js",
        ]
    );
    let readme = listing.file("README.md").expect("README");
    assert_eq!(readme.size, "# Fixture\n".len() as u64);
    assert_eq!(readme.mode, FileMode::Regular);
    let readme_id: BlobId = fixture.repo.blob_id(fixture.initial, "README.md").parse().expect("id");
    assert_eq!(readme.blob_id, readme_id);
    assert_eq!(listing.file("big.txt").expect("big").size, big_text().len() as u64);
    assert_eq!(listing.file("scripts/run.sh").expect("script").mode, FileMode::Executable);

    assert_eq!(listing.skip_reason("link-to-readme"), Some(SkipReason::Symlink));
    assert_eq!(listing.skip_reason("libs/sub"), Some(SkipReason::Submodule));
    assert_eq!(listing.skipped.len(), 2);
}

#[test]
fn select_files_skips_each_kind_of_file_with_its_reason() {
    let fixture = fixture();
    let mirror = TestMirror::new();
    mirror.fetch(&fixture.repo.source(), &Want::Head, None).expect("fetch");

    let selection = mirror.select_files(fixture.initial, &FileFilter::default()).expect("select");

    let selected: Vec<&str> = selection.files.iter().map(|file| file.path.as_str()).collect();
    assert_eq!(
        selected,
        [
            ".gitignore",
            "README.md",
            "docs/old.md",
            "generated_at_root.rs",
            "important.log",
            "scripts/run.sh",
            "src/.gitignore",
            "src/big_module.rs",
            "src/lib.rs",
            "src/nested/deep/mod.rs",
        ]
    );
    let reasons: Vec<(&str, &str)> =
        selection.skipped.iter().map(|skipped| (skipped.path.as_str(), skipped.reason.as_str())).collect();
    assert_eq!(
        reasons,
        [
            ("Cargo.lock", "generated"),
            ("assets/logo.png", "binary"),
            ("big.txt", "too_large"),
            ("build/output.txt", "ignored"),
            ("data/blob.dat", "binary"),
            ("debug.log", "ignored"),
            ("gen/api.pb.go", "generated"),
            ("gen/client.go", "generated"),
            ("libs/sub", "submodule"),
            ("link-to-readme", "symlink"),
            ("src/generated_schema.rs", "ignored"),
            ("vendor/dep/lib.go", "vendored"),
            ("web/app.min.js", "generated"),
            ("web/node_modules/left-pad/index.js", "vendored"),
        ]
    );
    assert_eq!(
        selection.skip_reason("big.txt"),
        Some(SkipReason::TooLarge { size: big_text().len() as u64, limit: 1024 * 1024 })
    );
}

#[test]
fn ignore_rules_come_from_the_commit_not_from_a_work_tree() {
    let fixture = fixture();
    let repo = &fixture.repo;
    let mirror = TestMirror::new();
    mirror.fetch(&repo.source(), &Want::Head, None).expect("fetch");
    // Uncommitted edits to .gitignore in the source's work tree change nothing.
    repo.write(".gitignore", "");

    let rules = mirror.ignore_rules(fixture.initial).expect("rules");
    assert_eq!(rules.file_count(), 2);
    assert!(rules.is_ignored("debug.log"));
    assert!(rules.is_ignored("src/generated_schema.rs"));
    assert!(!rules.is_ignored("important.log"));
}

#[test]
fn listing_a_commit_the_mirror_lacks_is_missing_object() {
    let fixture = fixture();
    let mirror = TestMirror::new();
    let err = mirror.list_files(fixture.initial).expect_err("no mirror yet");
    assert!(matches!(err, ledge_git::Error::MissingObject { .. }), "{err:?}");

    mirror.fetch(&fixture.repo.source(), &Want::Head, None).expect("fetch");
    let other: ledge_git::CommitId = "2222222222222222222222222222222222222222".parse().expect("id");
    let err = mirror.list_files(other).expect_err("unknown commit");
    assert!(matches!(err, ledge_git::Error::MissingObject { .. }), "{err:?}");
    assert_eq!(err.kind(), ledge_git::ErrorKind::NotFound);
}
