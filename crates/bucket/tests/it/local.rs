//! What the embedded driver promises beyond the conformance suite: content files named by
//! version id inside the bucket's directory, no garbage after replaces, deletes and failures,
//! limits, persistence, one owner per directory, and recovery from crashes at open.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream;
use ledge_bucket::{
    Body, Bucket, Error, Limits, ListOptions, LocalBucket, LocalOptions, MultipartOptions, PutOptions,
};

use crate::{temp_bucket, test_options};

/// Every file under `dir`, recursively, relative to it.
fn files_under(dir: &Path) -> BTreeSet<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.insert(path.strip_prefix(root).expect("under the root").to_path_buf());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

/// The file names under `dir` (recursively).
fn names_under(dir: &Path) -> BTreeSet<String> {
    files_under(dir)
        .iter()
        .map(|p| p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned())
        .collect()
}

async fn versions(bucket: &LocalBucket) -> BTreeSet<String> {
    let listing = bucket.list(ListOptions::default()).await.expect("list");
    assert!(!listing.truncated);
    listing.objects.into_iter().map(|o| o.version).collect()
}

async fn put(bucket: &LocalBucket, key: &str, content: impl Into<Body>) -> ledge_bucket::Object {
    bucket.put(key, content.into(), PutOptions::default()).await.expect("put").expect("stored")
}

#[tokio::test]
async fn content_files_are_named_by_version_and_nothing_lands_outside_the_bucket() {
    let bucket = temp_bucket().await;
    let keys =
        ["../outside", "../../../../tmp/x", "/abs/file", "objects/aa/bb", "tmp/x", "index.sqlite3", "LOCK"];
    for key in keys {
        put(&bucket, key, key).await;
    }
    let root_entries: Vec<_> =
        std::fs::read_dir(bucket.dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(root_entries, vec!["bucket"], "nothing is written beside the bucket's directory");
    assert_eq!(names_under(&bucket.dir().join("objects")), versions(&bucket).await);
    assert!(files_under(&bucket.dir().join("tmp")).is_empty());
    for key in keys {
        assert_eq!(bucket.head(key).await.unwrap().unwrap().size, key.len() as u64);
    }
}

#[tokio::test]
async fn replaced_deleted_and_completed_content_leaves_no_files_behind() {
    let bucket = temp_bucket().await;
    let objects = bucket.dir().join("objects");
    put(&bucket, "k", "v1").await;
    let v2 = put(&bucket, "k", "v2").await;
    assert_eq!(
        names_under(&objects),
        BTreeSet::from([v2.version.clone()]),
        "the replaced version's file is gone"
    );

    let upload = bucket.create_multipart_upload("k", MultipartOptions::default()).await.unwrap();
    let first = bucket.upload_part(&upload, 1, Body::from(vec![1u8; 32 * 1024])).await.unwrap();
    bucket.upload_part(&upload, 2, Body::from("replaced")).await.unwrap();
    let second = bucket.upload_part(&upload, 2, Body::from("tail")).await.unwrap();
    bucket.upload_part(&upload, 3, Body::from("never used")).await.unwrap();
    assert_eq!(files_under(&bucket.dir().join("parts")).len(), 3, "a re-uploaded part replaces its file");
    let v3 = bucket.complete_multipart_upload(&upload, &[first, second]).await.unwrap();
    assert!(files_under(&bucket.dir().join("parts")).is_empty(), "complete removes every part, used or not");
    assert_eq!(names_under(&objects), BTreeSet::from([v3.version]));

    let aborted = bucket.create_multipart_upload("other", MultipartOptions::default()).await.unwrap();
    bucket.upload_part(&aborted, 1, Body::from("x")).await.unwrap();
    bucket.abort_multipart_upload(&aborted).await.unwrap();
    assert!(files_under(&bucket.dir().join("parts")).is_empty(), "abort removes the parts");

    bucket.delete(&["k".to_owned()]).await.unwrap();
    assert!(names_under(&objects).is_empty(), "a deleted object's file is gone");
    assert!(files_under(&bucket.dir().join("tmp")).is_empty());
}

#[tokio::test]
async fn bodies_over_the_object_or_part_limit_are_rejected_and_leave_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { max_object_bytes: 1000, max_part_bytes: 100, ..test_options().limits };
    let bucket = LocalBucket::open(dir.path(), LocalOptions { limits, ..test_options() }).await.unwrap();
    let chunks =
        |n: usize| Body::from_stream(stream::iter((0..n).map(|_| Ok(Bytes::from_static(&[7u8; 100])))));

    let exact = bucket.put("exact", chunks(10), PutOptions::default()).await.unwrap().unwrap();
    assert_eq!(exact.size, 1000);
    let over = bucket.put("over", chunks(11), PutOptions::default()).await;
    assert!(matches!(over, Err(Error::TooLarge { what: "object size", limit: 1000 })), "{over:?}");
    assert!(bucket.head("over").await.unwrap().is_none());

    let upload = bucket.create_multipart_upload("parts", MultipartOptions::default()).await.unwrap();
    bucket.upload_part(&upload, 1, chunks(1)).await.expect("a part of exactly the limit");
    let over = bucket.upload_part(&upload, 2, chunks(2)).await;
    assert!(matches!(over, Err(Error::TooLarge { what: "part size", limit: 100 })), "{over:?}");

    assert!(files_under(&dir.path().join("tmp")).is_empty());
    assert_eq!(files_under(&dir.path().join("parts")).len(), 1);
    assert_eq!(names_under(&dir.path().join("objects")), versions(&bucket).await);
}

#[tokio::test]
async fn objects_and_multipart_uploads_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = LocalBucket::open(dir.path(), test_options()).await.unwrap();
    let stored = put(&bucket, "doc", "persisted").await;
    let upload = bucket.create_multipart_upload("big", MultipartOptions::default()).await.unwrap();
    let first = bucket.upload_part(&upload, 1, Body::from(vec![3u8; 32 * 1024])).await.unwrap();
    drop(bucket);

    let bucket = LocalBucket::open(dir.path(), test_options()).await.unwrap();
    assert_eq!(bucket.head("doc").await.unwrap().unwrap(), stored);
    let (_, found) = (stored, bucket.get("doc", Default::default()).await.unwrap().unwrap());
    assert_eq!(found.into_body().unwrap().body.text().await.unwrap(), "persisted");
    let resumed =
        bucket.resume_multipart_upload("big", &upload.upload_id).await.expect("the upload survived");
    let second = bucket.upload_part(&resumed, 2, Body::from("end")).await.unwrap();
    let object = bucket.complete_multipart_upload(&resumed, &[first, second]).await.unwrap();
    assert_eq!(object.size, 32 * 1024 + 3);
}

#[tokio::test]
async fn a_directory_has_one_bucket_open_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let first = LocalBucket::open(dir.path(), test_options()).await.unwrap();
    let second = LocalBucket::open(dir.path(), test_options()).await;
    assert!(matches!(second, Err(Error::InUse(ref path)) if path == dir.path()), "{second:?}");
    let clone = first.clone();
    drop(first);
    assert!(
        matches!(LocalBucket::open(dir.path(), test_options()).await, Err(Error::InUse(_))),
        "clones share the lock"
    );
    drop(clone);
    LocalBucket::open(dir.path(), test_options()).await.expect("free once every clone is gone");
}

#[tokio::test]
async fn multipart_uploads_past_their_expiry_are_aborted_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = LocalBucket::open(dir.path(), test_options()).await.unwrap();
    let upload = bucket.create_multipart_upload("k", MultipartOptions::default()).await.unwrap();
    bucket.upload_part(&upload, 1, Body::from("x")).await.unwrap();
    drop(bucket);

    let kept = LocalBucket::open(dir.path(), test_options()).await.unwrap();
    kept.resume_multipart_upload("k", &upload.upload_id).await.expect("not expired under the default expiry");
    drop(kept);
    let expiring = LocalOptions { multipart_expiry: Duration::ZERO, ..test_options() };
    let bucket = LocalBucket::open(dir.path(), expiring).await.unwrap();
    let resumed = bucket.resume_multipart_upload("k", &upload.upload_id).await;
    assert!(matches!(resumed, Err(Error::NoSuchUpload { .. })), "{resumed:?}");
    assert!(files_under(&dir.path().join("parts")).is_empty(), "its parts are removed");
}

#[tokio::test]
async fn a_put_dropped_midway_removes_its_temporary_file() {
    let bucket = temp_bucket().await;
    let (started, mut has_started) = tokio::sync::mpsc::channel::<()>(1);
    let endless = stream::unfold(started, |started| async move {
        let _ = started.send(()).await;
        Some((Ok(Bytes::from_static(&[1u8; 4096])), started))
    });
    let put = bucket.put("dropped", Body::from_stream(endless), PutOptions::default());
    tokio::select! {
        result = put => panic!("an endless body cannot finish: {result:?}"),
        _ = async { for _ in 0..10 { has_started.recv().await; } } => {}
    }
    assert!(files_under(&bucket.dir().join("tmp")).is_empty());
    assert!(bucket.head("dropped").await.unwrap().is_none());
}

/// Plants what a crash leaves at each step of an upload, and checks it is invisible, then gone
/// after the next open, while committed content stays.
#[tokio::test]
async fn files_orphaned_by_a_crash_are_invisible_and_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = LocalBucket::open(dir.path(), test_options()).await.unwrap();
    let kept = put(&bucket, "kept", "committed").await;
    let kept_file = dir.path().join("objects").join(&kept.version[..2]).join(&kept.version);
    assert!(kept_file.is_file());
    let shard = &kept.version[..2];
    let orphans = [
        dir.path().join("tmp").join("0123456789abcdef0123456789abcdef"), // crashed while receiving
        dir.path().join("objects/ab/abababababababababababababababab"), // crashed after publishing, before the commit
        dir.path().join("objects").join(shard).join(format!("{shard}000000000000000000000000000000")),
        dir.path().join("parts/cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"), // a part whose commit never happened
    ];
    for orphan in &orphans {
        std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
        std::fs::write(orphan, b"half an upload").unwrap();
    }
    let listing = bucket.list(ListOptions::default()).await.unwrap();
    assert_eq!(listing.objects, vec![bucket.head("kept").await.unwrap().unwrap()], "orphans are invisible");
    drop(bucket);

    let bucket = LocalBucket::open(dir.path(), test_options()).await.unwrap();
    for orphan in &orphans {
        assert!(!orphan.exists(), "{} is removed at open", orphan.display());
    }
    assert!(kept_file.is_file(), "referenced content is kept");
    let found = bucket.get("kept", Default::default()).await.unwrap().unwrap();
    assert_eq!(found.into_body().unwrap().body.text().await.unwrap(), "committed");
}

/// Set in the child process of the crash test: the bucket directory to crash in.
const CRASH_CHILD_DIR: &str = "LEDGE_BUCKET_CRASH_CHILD_DIR";

/// A child process (this test binary, running only this test) is killed with SIGKILL while it
/// streams a put: nothing of that put is visible afterwards and its file is gone at open.
#[tokio::test]
async fn a_put_killed_midway_is_invisible_and_cleaned_at_open() {
    if let Ok(dir) = std::env::var(CRASH_CHILD_DIR) {
        // The child: stream a big upload until killed (64 MiB at most, should the kill not come).
        let limits = Limits { max_object_bytes: 64 * 1024 * 1024, ..Limits::default() };
        let bucket =
            LocalBucket::open(dir, LocalOptions { limits, ..LocalOptions::default() }).await.unwrap();
        let endless = stream::repeat_with(|| Ok(Bytes::from(vec![9u8; 64 * 1024])));
        let result = bucket.put("interrupted", Body::from_stream(endless), PutOptions::default()).await;
        panic!("the child should have been killed mid-put, but the put ended: {result:?}");
    }

    let dir = tempfile::tempdir().unwrap();
    let bucket = LocalBucket::open(dir.path(), test_options()).await.unwrap();
    put(&bucket, "kept", "committed").await;
    drop(bucket);

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "local::a_put_killed_midway_is_invisible_and_cleaned_at_open", "--test-threads=1"])
        .env(CRASH_CHILD_DIR, dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the child starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    let partial = loop {
        let written = files_under(&dir.path().join("tmp"))
            .into_iter()
            .map(|f| dir.path().join("tmp").join(f))
            .find(|f| std::fs::metadata(f).map(|m| m.len() >= 1024 * 1024).unwrap_or(false));
        if let Some(file) = written {
            break file;
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("the child never got 1 MiB into its put");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    assert!(partial.is_file(), "the crash left the partial upload behind");

    let bucket = LocalBucket::open(dir.path(), test_options()).await.unwrap();
    assert!(bucket.head("interrupted").await.unwrap().is_none());
    let listing = bucket.list(ListOptions::default()).await.unwrap();
    assert_eq!(listing.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(), ["kept"]);
    assert!(!partial.exists(), "the partial upload is removed at open");
    assert!(files_under(&dir.path().join("tmp")).is_empty());
    assert_eq!(names_under(&dir.path().join("objects")), versions(&bucket).await);
}
