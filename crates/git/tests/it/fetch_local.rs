//! Fetching from repositories on disk: first and incremental fetches, wants, shallow history, and the
//! typed errors for what cannot be fetched.

use ledge_git::{BlobId, CommitId, Error, ErrorKind, MirrorOptions, Source, Want};

use crate::support::{TestMirror, TestRepo, big_text, fixture};

#[test]
fn first_fetch_creates_the_mirror_with_the_commit_and_its_whole_tree() {
    let fixture = fixture();
    let mirror = TestMirror::new();
    assert!(!mirror.exists());

    let fetched = mirror.fetch(&fixture.repo.source(), &Want::branch("main"), None).expect("fetch");

    assert_eq!(fetched.commit, fixture.initial);
    assert!(fetched.created_mirror);
    assert!(mirror.exists());
    assert_eq!(fetched.received_objects, fixture.repo.objects_in_snapshot(fixture.initial));
    let stats = mirror.stats().expect("stats");
    // `big.txt` (1.5 MiB) is streamed into a loose object; everything else comes in one pack.
    assert_eq!(
        (stats.packs, stats.packed_objects, stats.loose_objects),
        (1, fetched.received_objects - 1, 1)
    );
    assert!(mirror.contains(fixture.initial).expect("contains"));
}

#[test]
fn file_urls_and_plain_paths_fetch_the_same_commit() {
    let fixture = fixture();
    let url = format!("file://{}", fixture.repo.path().display());
    let by_url = TestMirror::new();
    let by_path = TestMirror::new();

    let via_url = by_url.fetch(&Source::parse(&url).expect("url"), &Want::Head, None).expect("fetch url");
    let plain = Source::parse(&fixture.repo.path().display().to_string()).expect("path");
    let via_path = by_path.fetch(&plain, &Want::Head, None).expect("fetch path");

    assert_eq!(via_url.commit, fixture.initial);
    assert_eq!(via_path.commit, fixture.initial);
    assert_eq!(via_url.received_objects, via_path.received_objects);
}

#[test]
fn a_working_tree_its_git_dir_and_a_bare_clone_are_all_sources() {
    let fixture = fixture();
    let bare = tempfile::tempdir().expect("temp dir");
    let bare_path = bare.path().join("bare.git");
    fixture.repo.git(&["clone", "--quiet", "--bare", ".", &bare_path.display().to_string()]);

    for path in [fixture.repo.path().to_path_buf(), fixture.repo.path().join(".git"), bare_path] {
        let mirror = TestMirror::new();
        let fetched = mirror.fetch(&Source::local(&path), &Want::branch("main"), None).expect("fetch");
        assert_eq!(fetched.commit, fixture.initial, "{}", path.display());
    }
}

#[test]
fn a_second_fetch_reuses_the_mirror_and_brings_only_received_objects() {
    let fixture = fixture();
    let repo = &fixture.repo;
    let mirror = TestMirror::new();
    let first = mirror.fetch(&repo.source(), &Want::branch("main"), None).expect("first fetch");

    repo.write("src/added.rs", "pub fn added() {}\n");
    repo.write("src/lib.rs", "pub fn changed() {}\n");
    let second_commit = repo.commit("second");
    let second = mirror.fetch(&repo.source(), &Want::branch("main"), None).expect("second fetch");

    assert_eq!(second.commit, second_commit);
    assert!(!second.created_mirror);
    // The new commit, the root and `src` trees, and two new blobs: nothing the mirror already had.
    assert_eq!(second.received_objects, repo.objects_between(fixture.initial, second_commit));
    assert_eq!(second.received_objects, 5);
    let stats = mirror.stats().expect("stats");
    assert_eq!(stats.packs, 2);
    assert_eq!(stats.packed_objects + stats.loose_objects, first.received_objects + second.received_objects);

    let again = mirror.fetch(&repo.source(), &Want::branch("main"), None).expect("third fetch");
    assert_eq!((again.commit, again.received_objects), (second_commit, 0));
    assert_eq!(mirror.stats().expect("stats").packs, 2, "nothing new, no new pack");
}

#[test]
fn a_commit_already_in_the_mirror_is_not_fetched_again() {
    let fixture = fixture();
    let mirror = TestMirror::new();
    mirror.fetch(&fixture.repo.source(), &Want::Commit(fixture.initial), None).expect("fetch");
    // The source is gone: a present commit needs no source at all.
    let gone = Source::local("/nonexistent/ledge/repo");
    let again = mirror.fetch(&gone, &Want::Commit(fixture.initial), None).expect("no-op fetch");
    assert_eq!((again.commit, again.received_objects), (fixture.initial, 0));
}

#[test]
fn wants_resolve_refs_tags_and_commits() {
    let fixture = fixture();
    let repo = &fixture.repo;
    repo.git(&["tag", "-a", "v1", "-m", "release one"]);
    repo.git(&["tag", "light"]);
    repo.git(&["checkout", "--quiet", "-b", "feature"]);
    repo.write("feature.rs", "pub fn feature() {}\n");
    let feature = repo.commit("feature work");
    repo.git(&["checkout", "--quiet", "main"]);

    let mirror = TestMirror::new();
    let fetch = |want: Want| mirror.fetch(&repo.source(), &want, None).expect("fetch").commit;
    assert_eq!(fetch(Want::Head), fixture.initial);
    assert_eq!(fetch(Want::Ref("main".into())), fixture.initial);
    assert_eq!(fetch(Want::Ref("refs/heads/feature".into())), feature);
    assert_eq!(fetch(Want::Ref("refs/tags/v1".into())), fixture.initial, "annotated tags are peeled");
    assert_eq!(fetch(Want::Ref("refs/tags/light".into())), fixture.initial);
    assert_eq!(fetch(Want::Commit(feature)), feature);
}

#[test]
fn an_unknown_commit_is_commit_not_found() {
    let fixture = fixture();
    let mirror = TestMirror::new();
    let unknown: CommitId = "0000000000000000000000000000000000000001".parse().expect("id");
    let err = mirror.fetch(&fixture.repo.source(), &Want::Commit(unknown), None).expect_err("unknown commit");
    assert!(matches!(err, Error::CommitNotFound { commit, .. } if commit == unknown), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn an_unknown_ref_is_ref_not_found() {
    let fixture = fixture();
    let mirror = TestMirror::new();
    let err = mirror.fetch(&fixture.repo.source(), &Want::branch("nope"), None).expect_err("unknown ref");
    assert!(matches!(&err, Error::RefNotFound { name, .. } if name == "refs/heads/nope"), "{err:?}");
}

#[test]
fn an_empty_repository_has_no_head_to_fetch() {
    let empty = TestRepo::new();
    let mirror = TestMirror::new();
    let err = mirror.fetch(&empty.source(), &Want::Head, None).expect_err("unborn HEAD");
    assert!(matches!(err, Error::RefNotFound { .. }), "{err:?}");
}

#[test]
fn a_missing_path_is_unreachable_and_a_plain_directory_is_not_a_repository() {
    let mirror = TestMirror::new();
    let err =
        mirror.fetch(&Source::local("/nonexistent/ledge/repo"), &Want::Head, None).expect_err("missing");
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    assert!(err.is_retryable());

    let plain = tempfile::tempdir().expect("temp dir");
    let err = mirror.fetch(&Source::local(plain.path()), &Want::Head, None).expect_err("not a repo");
    assert!(matches!(err, Error::RepositoryNotFound { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn local_sources_must_be_allowed_explicitly() {
    let fixture = fixture();
    let mirror = TestMirror::with_options(MirrorOptions::default());
    let err = mirror.fetch(&fixture.repo.source(), &Want::Head, None).expect_err("not allowed");
    assert!(matches!(err, Error::InvalidInput { field: "source", .. }), "{err:?}");
    assert!(!mirror.exists(), "a refused fetch does not create the mirror");
}

#[test]
fn invalid_ref_names_are_rejected_before_anything_happens() {
    let fixture = fixture();
    let mirror = TestMirror::new();
    let err =
        mirror.fetch(&fixture.repo.source(), &Want::Ref("bad..name".into()), None).expect_err("invalid");
    assert!(matches!(err, Error::InvalidInput { field: "ref", .. }), "{err:?}");
}

fn linear_history(commits: usize) -> (TestRepo, Vec<CommitId>) {
    let repo = TestRepo::new();
    let ids = (0..commits)
        .map(|i| {
            repo.write(&format!("file-{i}.txt"), format!("content {i}\n"));
            repo.commit(&format!("commit {i}"))
        })
        .collect();
    (repo, ids)
}

#[test]
fn shallow_fetches_bring_only_the_wanted_commit_and_record_the_boundary() {
    let (repo, ids) = linear_history(3);
    let mirror = TestMirror::new();
    mirror.fetch(&repo.source(), &Want::Head, None).expect("fetch");

    assert!(mirror.contains(ids[2]).expect("contains"));
    assert!(!mirror.contains(ids[1]).expect("contains"), "depth 1 stops at the wanted commit");
    let shallow = std::fs::read_to_string(mirror.path().join("shallow")).expect("shallow file");
    assert_eq!(shallow.trim(), ids[2].to_hex());
}

#[test]
fn the_previous_commit_is_fetched_by_id_for_a_diff() {
    let (repo, ids) = linear_history(3);
    let mirror = TestMirror::new();
    mirror.fetch(&repo.source(), &Want::Commit(ids[2]), None).expect("fetch after");

    let before = mirror.fetch(&repo.source(), &Want::Commit(ids[0]), None).expect("fetch before");
    // Only what `ids[2]` did not already bring: the commit and its root tree (its blob is shared).
    assert_eq!(before.received_objects, 2);
    let changes = mirror.diff(ids[0], ids[2]).expect("diff");
    let paths: Vec<&str> = changes.iter().map(|change| change.path()).collect();
    assert_eq!(paths, ["file-1.txt", "file-2.txt"]);

    let shallow = std::fs::read_to_string(mirror.path().join("shallow")).expect("shallow file");
    let mut expected = vec![ids[2].to_hex()];
    expected.sort();
    assert_eq!(shallow.lines().collect::<Vec<_>>(), expected, "the root commit has no parents to miss");
}

#[test]
fn full_depth_fetches_all_history_and_deepens_a_shallow_mirror() {
    let (repo, ids) = linear_history(3);
    let path = tempfile::tempdir().expect("temp dir");
    let shallow_mirror = ledge_git::Mirror::new(
        path.path().join("m.git"),
        MirrorOptions { allow_local_sources: true, ..MirrorOptions::default() },
    );
    shallow_mirror.fetch(&repo.source(), &Want::Head, None).expect("shallow fetch");
    assert!(!shallow_mirror.contains(ids[0]).expect("contains"));

    let deep_mirror = ledge_git::Mirror::new(
        path.path().join("m.git"),
        MirrorOptions { allow_local_sources: true, depth: None, ..MirrorOptions::default() },
    );
    let deepened = deep_mirror.fetch(&repo.source(), &Want::Head, None).expect("deepen");
    // Two commits and their root trees; every blob is already there.
    assert_eq!(deepened.received_objects, 4);
    for id in &ids {
        assert!(deep_mirror.contains(*id).expect("contains"));
    }
    assert!(!deep_mirror.path().join("shallow").exists(), "no boundary left");
}

#[test]
fn the_mirror_is_a_repository_git_itself_accepts() {
    let fixture = fixture();
    let repo = &fixture.repo;
    let mirror = TestMirror::new();
    mirror.fetch(&repo.source(), &Want::branch("main"), None).expect("first fetch");
    repo.write("src/added.rs", "pub fn added() {}\n");
    let second = repo.commit("second");
    mirror.fetch(&repo.source(), &Want::Commit(second), None).expect("second fetch");

    let git = |args: &[&str]| {
        let output = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(mirror.path())
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("git runs");
        assert!(output.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).expect("utf-8")
    };
    git(&["fsck", "--strict", "--no-dangling"]);
    assert_eq!(git(&["rev-parse", "refs/heads/main"]).trim(), fixture.initial.to_hex());
    assert_eq!(git(&["rev-parse", &format!("refs/ledge/commits/{second}")]).trim(), second.to_hex());
    assert_eq!(git(&["rev-parse", "--is-shallow-repository"]).trim(), "true");
}

#[test]
fn a_commit_id_naming_another_kind_of_object_is_refused() {
    let fixture = fixture();
    let blob: CommitId = fixture.repo.blob_id(fixture.initial, "README.md").parse().expect("id");
    let fresh = TestMirror::new();
    let populated = TestMirror::new();
    populated.fetch(&fixture.repo.source(), &Want::Head, None).expect("fetch");
    // Resolved in the source by the fresh mirror, found already present by the populated one.
    for mirror in [&fresh, &populated] {
        let err = mirror.fetch(&fixture.repo.source(), &Want::Commit(blob), None).expect_err("a blob");
        assert!(matches!(err, Error::WrongObjectKind { expected: "commit", .. }), "{err:?}");
    }
}

#[test]
fn mirrors_and_errors_cross_threads() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<ledge_git::Mirror>();
    send_sync::<ledge_git::Error>();
    send_sync::<ledge_git::FileFilter>();
    send_sync::<ledge_git::IgnoreRules>();
}

/// Blobs over 1 MiB are copied into the mirror as a stream, whether the source keeps them loose, as a
/// whole pack entry or as a delta against another version; each reads back byte for byte.
#[test]
fn large_blobs_are_copied_whole_from_loose_packed_and_deltified_sources() {
    let content = big_text();
    for storage in ["loose", "packed", "deltified"] {
        let repo = TestRepo::new();
        repo.write("dump.sql", &content);
        repo.write("small.txt", "small\n");
        let commit = repo.commit("first");
        if storage == "deltified" {
            // git keeps the newest version whole and stores older ones as deltas against it.
            repo.write("dump.sql", format!("{content}one more line at the end\n"));
            repo.commit("second");
        }
        if storage != "loose" {
            repo.git(&["repack", "-a", "-d", "-f", "--quiet"]);
        }
        let blob: BlobId = repo.blob_id(commit, "dump.sql").parse().expect("blob id");
        if storage == "deltified" {
            let listing = repo.git(&["verify-pack", "-v", &pack_index(&repo)]);
            let line = listing.lines().find(|l| l.starts_with(&blob.to_hex())).expect("blob in the pack");
            assert_eq!(line.split_whitespace().count(), 7, "the blob is stored as a delta: {line}");
        }
        let mirror = TestMirror::new();
        let fetched = mirror.fetch(&repo.source(), &Want::Commit(commit), None).expect(storage);

        let read = mirror.read_with_limit(blob, u64::MAX).expect(storage);
        assert!(read == content.as_bytes(), "{storage}: the copy differs from the source");
        let stats = mirror.stats().expect("stats");
        assert_eq!(stats.loose_objects, 1, "{storage}: the large blob is a loose object");
        assert_eq!(stats.packed_objects + stats.loose_objects, fetched.received_objects, "{storage}");
    }
}

/// The path of the source's one pack index, after `git repack -a -d`.
fn pack_index(repo: &TestRepo) -> String {
    let dir = repo.path().join(".git/objects/pack");
    let index = std::fs::read_dir(&dir)
        .expect("pack dir")
        .map(|entry| entry.expect("entry").path())
        .find(|path| path.extension().is_some_and(|ext| ext == "idx"))
        .expect("a pack index");
    index.display().to_string()
}
