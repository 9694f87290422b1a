//! What the embedded SQLite driver promises beyond the conformance suite: persistence across
//! reopening, bounded purge of expired rows, configured limits, chunked snapshot streaming.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use ledge_kv::{
    Clock, Error, GetOptions, KvLimits, KvNamespaceExt, ListOptions, ManualClock, PutOptions, SqliteKv,
    SqliteKvOptions,
};
use ledge_sqlite::rusqlite;
use serde_json::json;

fn open(path: &Path, clock: &Arc<ManualClock>, configure: impl FnOnce(&mut SqliteKvOptions)) -> SqliteKv {
    let mut options = SqliteKvOptions { clock: clock.clone(), ..SqliteKvOptions::default() };
    configure(&mut options);
    SqliteKv::open(path, options).expect("open the store")
}

fn stored_rows(path: &Path) -> i64 {
    let conn = rusqlite::Connection::open(path).expect("open the database file");
    conn.query_row("SELECT count(*) FROM kv_entries", [], |row| row.get(0)).expect("count rows")
}

fn ttl(secs: u64) -> PutOptions {
    PutOptions { expiration_ttl: Some(secs), ..PutOptions::default() }
}

#[tokio::test]
async fn entries_survive_reopening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/kv.db");
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    {
        let kv = open(&path, &clock, |_| {});
        let options = PutOptions {
            expiration_ttl: Some(900),
            metadata: Some(json!({"user": 7})),
            ..Default::default()
        };
        kv.namespace("sessions").put("s:1", Bytes::from_static(b"alive"), options).await.unwrap();
        kv.namespace("embedding-cache")
            .put("m:h", Bytes::from_static(b"[1]"), PutOptions::default())
            .await
            .unwrap();
    }
    let kv = open(&path, &clock, |_| {});
    let session = kv.namespace("sessions").get_with_metadata("s:1", GetOptions::default()).await.unwrap();
    let session = session.expect("the session survived");
    assert_eq!(session.value, Bytes::from_static(b"alive"));
    assert_eq!(session.metadata, Some(json!({"user": 7})));
    let listed = kv.namespace("sessions").list(ListOptions::default()).await.unwrap();
    assert_eq!(listed.keys[0].expiration, Some(1_800_000_000 + 900), "the expiration survived too");
    assert_eq!(
        kv.namespace("embedding-cache").get_text("m:h", GetOptions::default()).await.unwrap().as_deref(),
        Some("[1]")
    );
}

#[tokio::test]
async fn expired_rows_are_purged_by_later_writes_in_bounded_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let kv = open(&path, &clock, |o| o.purge_batch = 10);
    let ns = kv.namespace("embedding-cache");
    for i in 0..30 {
        ns.put(&format!("k{i}"), Bytes::from_static(b"v"), ttl(3600)).await.unwrap();
    }
    // Other namespaces' expired rows are purged too.
    kv.namespace("sessions").put("s", Bytes::from_static(b"v"), ttl(60)).await.unwrap();
    assert_eq!(stored_rows(&path), 31);

    clock.advance(Duration::from_secs(3601));
    assert_eq!(stored_rows(&path), 31, "reads filter expired rows; only writes purge them");
    assert!(ns.list(ListOptions::default()).await.unwrap().keys.is_empty());

    ns.put("live", Bytes::from_static(b"v"), PutOptions::default()).await.unwrap();
    assert_eq!(stored_rows(&path), 31 - 10 + 1, "one write purges at most purge_batch rows");
    ns.delete("absent").await.unwrap();
    ns.delete("absent").await.unwrap();
    assert_eq!(stored_rows(&path), 1 + 1, "21 expired rows, 10 per write");
    ns.delete("absent").await.unwrap();
    assert_eq!(stored_rows(&path), 1, "later writes purge the rest");
    assert_eq!(ns.get_text("live", GetOptions::default()).await.unwrap().as_deref(), Some("v"));
}

#[tokio::test]
async fn configured_limits_replace_the_contract_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let limits = KvLimits {
        max_key_bytes: 8,
        max_value_bytes: 10,
        max_metadata_bytes: 16,
        min_expiration_ttl_secs: 5,
        min_cache_ttl_secs: 1,
        max_bulk_get_keys: 2,
        max_list_limit: 3,
    };
    let kv = open(&dir.path().join("kv.db"), &clock, |o| o.limits = limits);
    let ns = kv.namespace("small");

    let too_large = |r: Result<(), Error>, field: &str| {
        assert!(matches!(r, Err(Error::TooLarge { field: f, .. }) if f == field), "{field}");
    };
    too_large(ns.put("123456789", Bytes::from_static(b"v"), PutOptions::default()).await, "key");
    too_large(ns.put("k", Bytes::from_static(b"01234567890"), PutOptions::default()).await, "value");
    let metadata = PutOptions { metadata: Some(json!("0123456789abcdef")), ..Default::default() };
    too_large(ns.put("k", Bytes::from_static(b"v"), metadata).await, "metadata");

    ns.put("12345678", Bytes::from_static(b"0123456789"), ttl(5)).await.unwrap();
    assert!(ns.put("k", Bytes::from_static(b"v"), ttl(4)).await.is_err());
    ns.get("12345678", GetOptions { cache_ttl: Some(1) }).await.unwrap();
    assert!(ns.get_many(&["a", "b", "c"], GetOptions::default()).await.is_err());

    for key in ["a", "b", "c", "d"] {
        ns.put(key, Bytes::from_static(b"v"), PutOptions::default()).await.unwrap();
    }
    let page = ns.list(ListOptions::default()).await.unwrap();
    assert_eq!(page.keys.len(), 3, "the configured maximum is also the default page size");
    assert!(!page.list_complete);
    assert!(ns.list(ListOptions { limit: Some(4), ..Default::default() }).await.is_err());
}

#[tokio::test]
async fn get_stream_yields_chunks_of_the_configured_size() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let kv = open(&dir.path().join("kv.db"), &clock, |o| o.stream_chunk_bytes = 1000);
    let ns = kv.namespace("blobs");
    let value: Vec<u8> = (0..2500u32).map(|i| (i % 256) as u8).collect();
    ns.put("v", Bytes::from(value.clone()), PutOptions::default()).await.unwrap();
    let stream = ns.get_stream("v", GetOptions::default()).await.unwrap().expect("the value exists");
    let chunks: Vec<Bytes> = stream.map(|c| c.expect("a chunk")).collect().await;
    assert_eq!(chunks.iter().map(Bytes::len).collect::<Vec<_>>(), [1000, 1000, 500]);
    assert_eq!(chunks.concat(), value);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_reads_the_value_as_it_was_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let kv = open(&dir.path().join("kv.db"), &clock, |o| o.stream_chunk_bytes = 1024);
    let ns = kv.namespace("blobs");
    ns.put("v", Bytes::from(vec![b'a'; 64 * 1024]), PutOptions::default()).await.unwrap();

    let mut stream = ns.get_stream("v", GetOptions::default()).await.unwrap().expect("the value exists");
    let first = stream.next().await.expect("a first chunk").expect("no error");
    // Overwritten, then deleted, while the stream is open: neither blocks nor tears the stream.
    ns.put("v", Bytes::from(vec![b'b'; 10]), PutOptions::default()).await.unwrap();
    assert_eq!(ns.get_text("v", GetOptions::default()).await.unwrap().as_deref(), Some("bbbbbbbbbb"));
    ns.delete("v").await.unwrap();

    let mut streamed = first.to_vec();
    while let Some(chunk) = stream.next().await {
        streamed.extend_from_slice(&chunk.expect("no error"));
    }
    assert_eq!(streamed, vec![b'a'; 64 * 1024]);
    assert_eq!(ns.get("v", GetOptions::default()).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_and_dropped_streams_do_not_hold_up_writes_or_reads() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let kv = open(&dir.path().join("kv.db"), &clock, |o| o.stream_chunk_bytes = 1024);
    let ns = kv.namespace("blobs");
    ns.put("v", Bytes::from(vec![1u8; 256 * 1024]), PutOptions::default()).await.unwrap();

    // More open streams than pooled readers, none of them read.
    let mut open_streams = Vec::new();
    for _ in 0..8 {
        open_streams.push(ns.get_stream("v", GetOptions::default()).await.unwrap().expect("exists"));
    }
    ns.put("w", Bytes::from_static(b"written"), PutOptions::default()).await.unwrap();
    assert_eq!(ns.get_text("w", GetOptions::default()).await.unwrap().as_deref(), Some("written"));

    for mut stream in open_streams {
        stream.next().await.expect("a chunk").expect("no error");
        drop(stream);
    }
    for _ in 0..20 {
        let stream = ns.get_stream("v", GetOptions::default()).await.unwrap().expect("exists");
        drop(stream);
    }
    ns.delete("v").await.unwrap();
    assert_eq!(ns.get("v", GetOptions::default()).await.unwrap(), None);
}

#[tokio::test]
async fn the_default_clock_is_the_system_clock() {
    let dir = tempfile::tempdir().unwrap();
    let kv = SqliteKv::open(dir.path().join("kv.db"), SqliteKvOptions::default()).unwrap();
    let ns = kv.namespace("sessions");
    let before = ledge_kv::SystemClock.now_secs();
    ns.put("s", Bytes::from_static(b"v"), ttl(900)).await.unwrap();
    let after = ledge_kv::SystemClock.now_secs();
    let expiration =
        ns.list(ListOptions::default()).await.unwrap().keys[0].expiration.expect("an expiration");
    assert!((before + 900..=after + 900).contains(&(expiration as i64)), "{before} {expiration} {after}");
}
