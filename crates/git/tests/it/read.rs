//! Reading blobs from a mirror, with a size cap enforced from the object header.

use ledge_git::{BlobId, Error, ErrorKind, MirrorOptions, Want};

use crate::support::{TestMirror, big_text, fixture};

#[test]
fn read_returns_the_blob_content() {
    let fixture = fixture();
    let mirror = TestMirror::new();
    mirror.fetch(&fixture.repo.source(), &Want::Head, None).expect("fetch");
    let listing = mirror.list_files(fixture.initial).expect("list");

    let readme = listing.file("README.md").expect("README");
    assert_eq!(mirror.read(readme.blob_id).expect("read"), b"# Fixture\n");
    let binary = listing.file("data/blob.dat").expect("binary");
    assert_eq!(mirror.read(binary.blob_id).expect("read"), b"header\0\x01\x02binary payload");
}

#[test]
fn a_blob_over_the_cap_is_too_large_with_its_real_size() {
    let fixture = fixture();
    let mirror = TestMirror::new();
    mirror.fetch(&fixture.repo.source(), &Want::Head, None).expect("fetch");
    let big = mirror.list_files(fixture.initial).expect("list").file("big.txt").expect("big").clone();

    let err = mirror.read(big.blob_id).expect_err("over the default cap");
    // The size is the blob's real size, known before loading it; the limit is the configured cap.
    assert!(
        matches!(err, Error::TooLarge { id, size, limit } if id == big.blob_id && size == big_text().len() as u64 && limit == 1024 * 1024),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::TooLarge);

    assert_eq!(
        mirror.read_with_limit(big.blob_id, 2 * 1024 * 1024).expect("within a larger cap").len(),
        big_text().len()
    );
    assert!(matches!(mirror.read_with_limit(big.blob_id, 0), Err(Error::TooLarge { .. })));
}

#[test]
fn the_read_cap_is_a_mirror_option() {
    let fixture = fixture();
    let mirror = TestMirror::with_options(MirrorOptions {
        allow_local_sources: true,
        max_blob_size: 4,
        ..MirrorOptions::default()
    });
    mirror.fetch(&fixture.repo.source(), &Want::Head, None).expect("fetch");
    let readme = mirror.list_files(fixture.initial).expect("list").file("README.md").expect("README").clone();
    assert!(matches!(mirror.read(readme.blob_id), Err(Error::TooLarge { size: 10, limit: 4, .. })));
}

#[test]
fn reading_a_tree_or_an_unknown_blob_is_a_typed_error() {
    let fixture = fixture();
    let mirror = TestMirror::new();
    mirror.fetch(&fixture.repo.source(), &Want::Head, None).expect("fetch");

    let tree: BlobId =
        fixture.repo.git(&["rev-parse", &format!("{}:src", fixture.initial)]).trim().parse().expect("id");
    let err = mirror.read(tree).expect_err("a tree");
    assert!(
        matches!(&err, Error::WrongObjectKind { expected: "blob", actual, .. } if actual == "tree"),
        "{err:?}"
    );

    let unknown: BlobId = "3333333333333333333333333333333333333333".parse().expect("id");
    assert!(matches!(mirror.read(unknown), Err(Error::MissingObject { .. })));
}
