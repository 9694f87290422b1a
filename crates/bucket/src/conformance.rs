//! The bucket conformance suite: every Bucket row of bindings.md §7, as cases any driver must
//! pass. Each case takes a fresh, empty bucket and panics on a violation.
//!
//! Run it with [`bucket_conformance!`](crate::bucket_conformance), which expands to one
//! `#[tokio::test]` per case (the calling crate needs `tokio` with `macros` and `rt`):
//!
//! ```text
//! ledge_bucket::bucket_conformance!(driver: fresh_bucket(), heap: &HEAP);
//! ```
//!
//! `driver` is an expression evaluated once per case to a future of something that
//! dereferences to a bucket (`Arc<dyn Bucket>`, or a fixture that also keeps a temporary
//! directory alive). `heap` is a `&'static` [`HeapProbe`] backed by a counting global allocator
//! of the test binary, for the streaming case. Drivers are expected to honour their own
//! [`Limits`]; multipart cases size their parts with `limits().min_part_bytes`, so a driver
//! under test can lower it to keep them small.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use md5::{Digest, Md5};

use crate::{
    Body, Bucket, Checksum, ChecksumAlgorithm, Conditional, Error, EtagCondition, GetOptions, GetOutcome,
    HttpMetadata, Include, ListOptions, Listing, MultipartOptions, Object, PutOptions, Range, ServedRange,
    UploadedPart, http_date,
};

/// The heap use of the whole test process, from a counting `#[global_allocator]`.
pub trait HeapProbe: Sync {
    /// Bytes allocated now.
    fn current(&self) -> usize;
    /// The most bytes allocated at once since the last [`HeapProbe::reset_peak`].
    fn peak(&self) -> usize;
    /// Starts a new peak measurement from the current allocation.
    fn reset_peak(&self);
}

/// Expands to one `#[tokio::test]` per conformance case, each on a fresh driver.
///
/// `bucket_conformance!(driver: <future of a fresh driver>, heap: <&'static dyn HeapProbe>)`
#[macro_export]
macro_rules! bucket_conformance {
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let driver = $factory.await;
                $crate::conformance::$case(&*driver).await;
            }
        )*
    };
    (driver: $factory:expr, heap: $heap:expr $(,)?) => {
        $crate::bucket_conformance!(@cases $factory;
            head_and_get_of_a_missing_key_are_none,
            get_returns_what_put_stored,
            get_with_a_failed_condition_returns_the_object_without_its_body,
            conditional_request_headers_apply_in_rfc_7232_order,
            range_offset_and_length_are_honoured,
            range_suffix_returns_the_last_bytes,
            range_past_the_end_returns_fewer_bytes,
            empty_ranges_are_rejected,
            conditional_put_that_fails_returns_none_and_changes_nothing,
            conditional_put_that_holds_replaces_the_object,
            single_part_put_reports_its_md5_as_checksum_and_etag,
            a_matching_checksum_is_accepted_and_reported,
            a_mismatched_checksum_rejects_the_put_and_stores_nothing,
            delete_removes_every_listed_key,
            delete_of_more_keys_than_the_limit_is_rejected,
            list_is_in_lexicographic_utf8_byte_order,
            list_pages_with_a_cursor_only_when_truncated,
            list_rolls_keys_up_into_delimited_prefixes,
            list_includes_metadata_only_when_asked,
            list_limit_out_of_range_is_rejected,
            http_and_custom_metadata_round_trip,
            every_upload_gets_a_new_version,
            multipart_upload_completes_into_a_readable_object,
            multipart_part_size_rules_are_enforced,
            multipart_part_numbers_out_of_range_are_rejected,
            completing_with_a_wrong_part_list_fails_and_keeps_the_upload,
            reuploading_a_part_replaces_it,
            calls_on_an_aborted_upload_fail,
            calls_on_a_completed_upload_fail,
            keys_over_the_limit_or_empty_are_rejected,
            custom_metadata_over_the_limit_is_rejected,
            keys_are_names_and_never_escape_the_bucket,
            a_completed_write_or_delete_is_visible_to_the_next_read_and_list,
            racing_writers_last_to_finish_wins,
            reads_during_overwrites_see_whole_versions,
            a_reader_of_a_replaced_version_finishes_its_stream,
            a_failing_body_stream_stores_nothing,
        );
        #[tokio::test]
        async fn a_100_mb_object_streams_through_in_bounded_memory() {
            let driver = $factory.await;
            $crate::conformance::a_100_mb_object_streams_through_in_bounded_memory(&*driver, $heap).await;
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// Deterministic pseudo-random content.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = vec![0u8; len];
    for chunk in out.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    out
}

fn md5_of(bytes: &[u8]) -> Vec<u8> {
    Md5::digest(bytes).to_vec()
}

fn digest_of(algorithm: ChecksumAlgorithm, bytes: &[u8]) -> Vec<u8> {
    match algorithm {
        ChecksumAlgorithm::Md5 => md5_of(bytes),
        ChecksumAlgorithm::Sha1 => sha1::Sha1::digest(bytes).to_vec(),
        ChecksumAlgorithm::Sha256 => sha2::Sha256::digest(bytes).to_vec(),
        ChecksumAlgorithm::Sha384 => sha2::Sha384::digest(bytes).to_vec(),
        ChecksumAlgorithm::Sha512 => sha2::Sha512::digest(bytes).to_vec(),
    }
}

async fn put(bucket: &dyn Bucket, key: &str, content: impl Into<Body>) -> Object {
    put_with(bucket, key, content, PutOptions::default())
        .await
        .expect("an unconditional put stores the object")
}

async fn put_with(
    bucket: &dyn Bucket,
    key: &str,
    content: impl Into<Body>,
    options: PutOptions,
) -> Option<Object> {
    match bucket.put(key, content.into(), options).await {
        Ok(stored) => stored,
        Err(e) => panic!("put {key:?} failed: {e}"),
    }
}

async fn get_with(bucket: &dyn Bucket, key: &str, options: GetOptions) -> Option<GetOutcome> {
    match bucket.get(key, options).await {
        Ok(found) => found,
        Err(e) => panic!("get {key:?} failed: {e}"),
    }
}

/// The object, the range served and the bytes of a `get` that must find the object and pass.
async fn read(bucket: &dyn Bucket, key: &str, options: GetOptions) -> (Object, ServedRange, Vec<u8>) {
    match get_with(bucket, key, options).await {
        Some(GetOutcome::Found(found)) => {
            let bytes = found.body.bytes().await.expect("the body streams");
            (found.object, found.range, bytes.to_vec())
        }
        Some(GetOutcome::ConditionFailed(_)) => panic!("get {key:?}: the condition unexpectedly failed"),
        None => panic!("get {key:?}: the object is unexpectedly absent"),
    }
}

/// The content of `key`, or `None` if it is absent.
async fn content(bucket: &dyn Bucket, key: &str) -> Option<Vec<u8>> {
    match get_with(bucket, key, GetOptions::default()).await {
        Some(GetOutcome::Found(found)) => Some(found.body.bytes().await.expect("the body streams").to_vec()),
        Some(GetOutcome::ConditionFailed(_)) => panic!("get {key:?} without condition failed its condition"),
        None => None,
    }
}

async fn head(bucket: &dyn Bucket, key: &str) -> Option<Object> {
    match bucket.head(key).await {
        Ok(found) => found,
        Err(e) => panic!("head {key:?} failed: {e}"),
    }
}

async fn list(bucket: &dyn Bucket, options: ListOptions) -> Listing {
    match bucket.list(options).await {
        Ok(listing) => listing,
        Err(e) => panic!("list failed: {e}"),
    }
}

/// Every key, following cursors.
async fn all_keys(bucket: &dyn Bucket, prefix: Option<&str>) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor = None;
    loop {
        let page =
            list(bucket, ListOptions { prefix: prefix.map(str::to_owned), cursor, ..Default::default() })
                .await;
        keys.extend(page.objects.into_iter().map(|o| o.key));
        if !page.truncated {
            return keys;
        }
        cursor = page.cursor;
    }
}

fn only_if(condition: Conditional) -> GetOptions {
    GetOptions { only_if: Some(condition), range: None }
}

fn ranged(range: Range) -> GetOptions {
    GetOptions { only_if: None, range: Some(range) }
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| s.to_string()).collect()
}

/// A body that yields `first`, then waits for `release` before yielding `rest`.
fn gated_body(first: &'static str, rest: &'static str, release: tokio::sync::oneshot::Receiver<()>) -> Body {
    let head = stream::once(async move { Ok(Bytes::from_static(first.as_bytes())) });
    let tail = stream::once(async move {
        let _ = release.await;
        Ok(Bytes::from_static(rest.as_bytes()))
    });
    Body::from_stream(head.chain(tail))
}

fn assert_same_version(actual: &Object, expected: &Object) {
    assert_eq!(actual.key, expected.key);
    assert_eq!(actual.version, expected.version, "version of {:?}", expected.key);
    assert_eq!(actual.size, expected.size, "size of {:?}", expected.key);
    assert_eq!(actual.etag, expected.etag, "etag of {:?}", expected.key);
}

// ---------------------------------------------------------------------------------------------
// head / get

/// Bucket | head/get: a missing key is `None`, with or without a condition.
pub async fn head_and_get_of_a_missing_key_are_none(bucket: &dyn Bucket) {
    assert!(head(bucket, "missing").await.is_none());
    assert!(get_with(bucket, "missing", GetOptions::default()).await.is_none());
    let condition = Conditional { etag_matches: Some(EtagCondition::Any), ..Default::default() };
    assert!(get_with(bucket, "missing", only_if(condition)).await.is_none());
    assert!(get_with(bucket, "missing", ranged(Range::bytes(0, 10))).await.is_none());
    put(bucket, "present", "x").await;
    bucket.delete(&strings(&["present"])).await.expect("delete");
    assert!(head(bucket, "present").await.is_none(), "a deleted key is missing");
}

/// Bucket | head/get: put then get returns the same bytes and metadata.
pub async fn get_returns_what_put_stored(bucket: &dyn Bucket) {
    let before = SystemTime::now();
    let stored = put(bucket, "greeting", "hello world").await;
    let after = SystemTime::now();
    assert_eq!(stored.key, "greeting");
    assert_eq!(stored.size, 11);
    assert!(!stored.version.is_empty());
    let slack = Duration::from_secs(1); // drivers may keep upload times to the second
    assert!(
        stored.uploaded + slack >= before && stored.uploaded <= after + slack,
        "uploaded is the put's time"
    );

    let headed = head(bucket, "greeting").await.expect("head finds the object");
    assert_same_version(&headed, &stored);
    let (object, range, bytes) = read(bucket, "greeting", GetOptions::default()).await;
    assert_same_version(&object, &stored);
    assert_eq!(bytes, b"hello world");
    assert_eq!(range, ServedRange { offset: 0, length: 11 });

    let empty = put(bucket, "empty", Body::empty()).await;
    assert_eq!(empty.size, 0);
    assert_eq!(empty.etag, "d41d8cd98f00b204e9800998ecf8427e", "the MD5 of nothing");
    assert_eq!(content(bucket, "empty").await.as_deref(), Some(&b""[..]));

    let chunks = stream::iter(["str", "eam", "", "ed"].map(|s| Ok(Bytes::from_static(s.as_bytes()))));
    put(bucket, "chunked", Body::from_stream(chunks)).await;
    assert_eq!(content(bucket, "chunked").await.as_deref(), Some(&b"streamed"[..]));
}

/// Bucket | head/get: a failed condition answers the object without a body; a passing one
/// answers the body.
pub async fn get_with_a_failed_condition_returns_the_object_without_its_body(bucket: &dyn Bucket) {
    let stored = put(bucket, "doc", "content").await;
    let hour = Duration::from_secs(3600);
    let failing = [
        Conditional { etag_matches: Some(EtagCondition::tag("other")), ..Default::default() },
        Conditional { etag_does_not_match: Some(EtagCondition::tag(&stored.etag)), ..Default::default() },
        Conditional { etag_does_not_match: Some(EtagCondition::Any), ..Default::default() },
        Conditional { uploaded_before: Some(stored.uploaded - hour), ..Default::default() },
        Conditional { uploaded_after: Some(stored.uploaded + hour), ..Default::default() },
    ];
    for condition in failing {
        match get_with(bucket, "doc", only_if(condition.clone())).await {
            Some(GetOutcome::ConditionFailed(object)) => assert_same_version(&object, &stored),
            Some(GetOutcome::Found(_)) => panic!("{condition:?} should fail"),
            None => panic!("the object vanished"),
        }
    }
    let passing = [
        Conditional { etag_matches: Some(EtagCondition::tag(&stored.etag)), ..Default::default() },
        Conditional { etag_matches: Some(EtagCondition::tag(stored.http_etag())), ..Default::default() },
        Conditional { etag_matches: Some(EtagCondition::Any), ..Default::default() },
        Conditional { etag_does_not_match: Some(EtagCondition::tag("other")), ..Default::default() },
        Conditional { uploaded_before: Some(stored.uploaded + hour), ..Default::default() },
        Conditional { uploaded_after: Some(stored.uploaded - hour), ..Default::default() },
    ];
    for condition in passing {
        let (object, _, bytes) = read(bucket, "doc", only_if(condition)).await;
        assert_same_version(&object, &stored);
        assert_eq!(bytes, b"content");
    }
}

/// Bucket | head/get, conditional put: `If-Match`, `If-None-Match`, `If-Modified-Since` and
/// `If-Unmodified-Since` headers, passed through as the HTTP layer receives them.
pub async fn conditional_request_headers_apply_in_rfc_7232_order(bucket: &dyn Bucket) {
    let stored = put(bucket, "page", "v1").await;
    let hour = Duration::from_secs(3600);
    let (etag, weak) = (stored.http_etag(), format!("W/{}", stored.http_etag()));
    let (earlier, later) =
        (http_date::format(stored.uploaded - hour), http_date::format(stored.uploaded + hour));
    let same_second = http_date::format(stored.uploaded);
    let (etag, weak, earlier, later, same_second) =
        (etag.as_str(), weak.as_str(), earlier.as_str(), later.as_str(), same_second.as_str());
    let cases: [(&[(&str, &str)], bool); 11] = [
        (&[("If-Match", etag)], true),
        (&[("If-Match", "\"nope\", \"other\"")], false),
        (&[("If-Match", weak)], false),
        (&[("If-None-Match", etag)], false),
        (&[("If-None-Match", weak)], false),
        (&[("If-None-Match", "\"other\"")], true),
        (&[("If-Modified-Since", later)], false),
        (&[("If-Modified-Since", earlier)], true),
        (&[("If-Unmodified-Since", earlier)], false),
        (&[("If-Unmodified-Since", same_second)], true),
        // A passing If-Match overrides If-Unmodified-Since.
        (&[("If-Match", etag), ("If-Unmodified-Since", earlier)], true),
    ];
    for (headers, holds) in cases {
        let condition = Conditional::from_headers(headers.iter().copied()).expect("valid headers");
        let outcome = get_with(bucket, "page", only_if(condition)).await.expect("the object exists");
        assert_eq!(matches!(outcome, GetOutcome::Found(_)), holds, "{headers:?}");
    }
    // A passing If-None-Match overrides If-Modified-Since.
    let condition =
        Conditional::from_headers([("If-None-Match", "\"other\""), ("If-Modified-Since", later)]).unwrap();
    assert!(matches!(get_with(bucket, "page", only_if(condition)).await, Some(GetOutcome::Found(_))));

    // Create-only put: If-None-Match: * on an existing key stores nothing.
    let create_only = Conditional::from_headers([("If-None-Match", "*")]).unwrap();
    let options = PutOptions { only_if: Some(create_only.clone()), ..Default::default() };
    assert!(put_with(bucket, "page", "v2", options.clone()).await.is_none());
    assert_eq!(content(bucket, "page").await.as_deref(), Some(&b"v1"[..]));
    assert!(put_with(bucket, "new-page", "v1", options).await.is_some(), "If-None-Match: * creates");
}

// ---------------------------------------------------------------------------------------------
// range

/// Bucket | range: `{offset, length}`, `{offset}` and `{length}` are honoured.
pub async fn range_offset_and_length_are_honoured(bucket: &dyn Bucket) {
    let data = pattern(1000, 1);
    put(bucket, "data", data.clone()).await;
    let cases = [
        (Range::bytes(10, 20), 10..30),
        (Range::from_offset(990), 990..1000),
        (Range::first(5), 0..5),
        (Range::bytes(0, 1000), 0..1000),
        (Range::bytes(999, 1), 999..1000),
    ];
    for (range, expected) in cases {
        let (object, served, bytes) = read(bucket, "data", ranged(range)).await;
        assert_eq!(object.size, 1000, "the object's size, not the range's");
        assert_eq!(
            served,
            ServedRange { offset: expected.start as u64, length: expected.len() as u64 },
            "{range:?}"
        );
        assert_eq!(bytes, data[expected].to_vec(), "{range:?}");
    }
}

/// Bucket | range: `{suffix}` returns the last bytes, all of them if it exceeds the size.
pub async fn range_suffix_returns_the_last_bytes(bucket: &dyn Bucket) {
    let data = pattern(1000, 2);
    put(bucket, "data", data.clone()).await;
    let (_, served, bytes) = read(bucket, "data", ranged(Range::suffix(10))).await;
    assert_eq!(served, ServedRange { offset: 990, length: 10 });
    assert_eq!(bytes, data[990..].to_vec());
    let (_, served, bytes) = read(bucket, "data", ranged(Range::suffix(5000))).await;
    assert_eq!(served, ServedRange { offset: 0, length: 1000 });
    assert_eq!(bytes, data);
}

/// Bucket | range: a range that runs past the end returns fewer bytes (none past the end).
pub async fn range_past_the_end_returns_fewer_bytes(bucket: &dyn Bucket) {
    let data = pattern(1000, 3);
    put(bucket, "data", data.clone()).await;
    let (_, served, bytes) = read(bucket, "data", ranged(Range::bytes(995, 100))).await;
    assert_eq!(served, ServedRange { offset: 995, length: 5 });
    assert_eq!(bytes, data[995..].to_vec());
    let (_, served, bytes) = read(bucket, "data", ranged(Range::first(5000))).await;
    assert_eq!(served, ServedRange { offset: 0, length: 1000 });
    assert_eq!(bytes, data);
    for offset in [1000, 5000] {
        let (_, served, bytes) = read(bucket, "data", ranged(Range::from_offset(offset))).await;
        assert_eq!(served, ServedRange { offset: 1000, length: 0 });
        assert!(bytes.is_empty());
    }
}

/// Bucket | range: asking for zero bytes is an error, as on the edge platform.
pub async fn empty_ranges_are_rejected(bucket: &dyn Bucket) {
    put(bucket, "data", "0123456789").await;
    for range in [Range::suffix(0), Range::bytes(3, 0)] {
        let result = bucket.get("data", ranged(range)).await;
        assert!(matches!(result, Err(Error::InvalidInput { field: "range", .. })), "{range:?}: {result:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// conditional put

/// Bucket | conditional put: a failed condition returns `None` and leaves the object as it was.
pub async fn conditional_put_that_fails_returns_none_and_changes_nothing(bucket: &dyn Bucket) {
    let original = put(bucket, "a", "one").await;
    let hour = Duration::from_secs(3600);
    let failing = [
        Conditional { etag_matches: Some(EtagCondition::tag("other")), ..Default::default() },
        Conditional { etag_does_not_match: Some(EtagCondition::Any), ..Default::default() },
        Conditional { etag_does_not_match: Some(EtagCondition::tag(&original.etag)), ..Default::default() },
        Conditional { uploaded_before: Some(original.uploaded - hour), ..Default::default() },
        Conditional { uploaded_after: Some(original.uploaded + hour), ..Default::default() },
    ];
    for condition in failing {
        let options = PutOptions {
            only_if: Some(condition.clone()),
            custom_metadata: BTreeMap::from([("changed".into(), "yes".into())]),
            ..Default::default()
        };
        assert!(put_with(bucket, "a", "two", options).await.is_none(), "{condition:?} should fail");
        let now = head(bucket, "a").await.expect("the object stays");
        assert_same_version(&now, &original);
        assert!(now.custom_metadata.is_empty());
        assert_eq!(content(bucket, "a").await.as_deref(), Some(&b"one"[..]));
    }
    // On an absent key, etag_matches and uploaded_after fail: nothing is created.
    for condition in [
        Conditional { etag_matches: Some(EtagCondition::Any), ..Default::default() },
        Conditional { uploaded_after: Some(original.uploaded - hour), ..Default::default() },
    ] {
        let options = PutOptions { only_if: Some(condition.clone()), ..Default::default() };
        assert!(put_with(bucket, "b", "new", options).await.is_none(), "{condition:?} should fail");
        assert!(head(bucket, "b").await.is_none());
    }
}

/// Bucket | conditional put: a condition that holds stores the new version.
pub async fn conditional_put_that_holds_replaces_the_object(bucket: &dyn Bucket) {
    let original = put(bucket, "a", "one").await;
    let options = PutOptions {
        only_if: Some(Conditional {
            etag_matches: Some(EtagCondition::tag(&original.etag)),
            ..Default::default()
        }),
        ..Default::default()
    };
    let replaced = put_with(bucket, "a", "two", options.clone()).await.expect("the etag matched");
    assert_ne!(replaced.version, original.version);
    assert_eq!(content(bucket, "a").await.as_deref(), Some(&b"two"[..]));
    // The same condition now fails: the etag it names is gone (compare-and-swap).
    assert!(put_with(bucket, "a", "three", options).await.is_none());
    assert_eq!(content(bucket, "a").await.as_deref(), Some(&b"two"[..]));

    let create_only = PutOptions {
        only_if: Some(Conditional { etag_does_not_match: Some(EtagCondition::Any), ..Default::default() }),
        ..Default::default()
    };
    assert!(put_with(bucket, "fresh", "first", create_only.clone()).await.is_some());
    assert!(put_with(bucket, "fresh", "second", create_only).await.is_none());
    assert_eq!(content(bucket, "fresh").await.as_deref(), Some(&b"first"[..]));
}

// ---------------------------------------------------------------------------------------------
// checksums

/// Bucket | checksums, metadata: a single-part object reports its MD5, its etag is that MD5
/// in hex, and its HTTP etag is the etag in quotes.
pub async fn single_part_put_reports_its_md5_as_checksum_and_etag(bucket: &dyn Bucket) {
    let data = pattern(3000, 4);
    let stored = put(bucket, "k", data.clone()).await;
    let md5 = md5_of(&data);
    assert_eq!(stored.checksums.md5.as_deref(), Some(md5.as_slice()));
    assert_eq!(stored.etag, hex::encode(&md5));
    assert_eq!(stored.http_etag(), format!("\"{}\"", hex::encode(&md5)));
    for algorithm in [ChecksumAlgorithm::Sha1, ChecksumAlgorithm::Sha256, ChecksumAlgorithm::Sha512] {
        assert_eq!(stored.checksums.get(algorithm), None, "{algorithm} was not asked for");
    }
    let headed = head(bucket, "k").await.expect("head");
    assert_eq!(headed.checksums, stored.checksums);
    assert_eq!(headed.http_etag(), stored.http_etag());
}

/// Bucket | checksums: each algorithm's correct digest is accepted and reported with the MD5.
/// (At most one checksum per put holds by construction: `PutOptions::checksum` is an `Option`.)
pub async fn a_matching_checksum_is_accepted_and_reported(bucket: &dyn Bucket) {
    let data = pattern(5000, 5);
    for algorithm in ChecksumAlgorithm::ALL {
        let digest = digest_of(algorithm, &data);
        let checksum = Checksum::new(algorithm, digest.clone()).expect("a digest of the right length");
        let key = format!("checked-{algorithm}");
        let options = PutOptions { checksum: Some(checksum), ..Default::default() };
        let stored = put_with(bucket, &key, data.clone(), options).await.expect("stored");
        assert_eq!(stored.checksums.get(algorithm), Some(digest.as_slice()), "{algorithm}");
        assert_eq!(stored.checksums.md5.as_deref(), Some(md5_of(&data).as_slice()));
        assert_eq!(head(bucket, &key).await.expect("head").checksums, stored.checksums);
    }
}

/// Bucket | checksums: a digest that does not match rejects the put; nothing is stored.
pub async fn a_mismatched_checksum_rejects_the_put_and_stores_nothing(bucket: &dyn Bucket) {
    let original = put(bucket, "k", "original").await;
    for algorithm in ChecksumAlgorithm::ALL {
        let wrong = Checksum::new(algorithm, digest_of(algorithm, b"something else")).unwrap();
        for key in ["k", "fresh"] {
            let options = PutOptions { checksum: Some(wrong.clone()), ..Default::default() };
            let result = bucket.put(key, Body::from("changed"), options).await;
            assert!(
                matches!(result, Err(Error::ChecksumMismatch { algorithm: a, .. }) if a == algorithm),
                "{algorithm} on {key}: {result:?}"
            );
        }
        assert_same_version(&head(bucket, "k").await.expect("kept"), &original);
        assert_eq!(content(bucket, "k").await.as_deref(), Some(&b"original"[..]));
        assert!(head(bucket, "fresh").await.is_none());
    }
}

// ---------------------------------------------------------------------------------------------
// delete

/// Bucket | delete: every listed key is absent afterwards; absent keys are fine.
pub async fn delete_removes_every_listed_key(bucket: &dyn Bucket) {
    for key in ["a", "b", "c", "d", "e"] {
        put(bucket, key, key).await;
    }
    bucket.delete(&strings(&["a", "c", "e", "never-existed"])).await.expect("delete");
    for key in ["a", "c", "e"] {
        assert!(head(bucket, key).await.is_none(), "{key} is deleted");
        assert!(content(bucket, key).await.is_none());
    }
    assert_eq!(all_keys(bucket, None).await, strings(&["b", "d"]));
    bucket.delete(&strings(&["b"])).await.expect("delete one");
    bucket.delete(&[]).await.expect("delete none");
    bucket.delete(&strings(&["absent"])).await.expect("delete of an absent key succeeds");
    assert_eq!(all_keys(bucket, None).await, strings(&["d"]));
}

/// Bucket | delete: at most `max_delete_keys` (1000) keys per call.
pub async fn delete_of_more_keys_than_the_limit_is_rejected(bucket: &dyn Bucket) {
    let max = bucket.limits().max_delete_keys;
    put(bucket, "keep", "x").await;
    let mut keys: Vec<String> = (0..max).map(|i| format!("k{i:05}")).collect();
    keys[0] = "keep".into();
    let mut too_many = keys.clone();
    too_many.push("one-more".into());
    let result = bucket.delete(&too_many).await;
    assert!(matches!(result, Err(Error::TooLarge { .. })), "{result:?}");
    assert!(head(bucket, "keep").await.is_some(), "a rejected delete deletes nothing");
    bucket.delete(&keys).await.expect("exactly the limit is fine");
    assert!(head(bucket, "keep").await.is_none());
}

// ---------------------------------------------------------------------------------------------
// list

/// Bucket | list: keys come in lexicographic order of their UTF-8 bytes.
pub async fn list_is_in_lexicographic_utf8_byte_order(bucket: &dyn Bucket) {
    let keys = ["b", "a", "B", "a/b", "a0", "é", "z", "~", "aa", "😀", "ab", "a-b", "Z9"];
    for key in keys {
        put(bucket, key, key).await;
    }
    let mut expected = strings(&keys);
    expected.sort_by(|x, y| x.as_bytes().cmp(y.as_bytes()));
    let page = list(bucket, ListOptions::default()).await;
    assert_eq!(page.objects.iter().map(|o| o.key.clone()).collect::<Vec<_>>(), expected);
    assert!(!page.truncated);
    assert_eq!(page.cursor, None, "no cursor on the last page");
    assert!(page.delimited_prefixes.is_empty());
    for object in &page.objects {
        assert_eq!(object.size, object.key.len() as u64);
    }
}

/// Bucket | list: `limit` pages, the cursor continues, and is present exactly when truncated;
/// `prefix` and `start_after` narrow.
pub async fn list_pages_with_a_cursor_only_when_truncated(bucket: &dyn Bucket) {
    let keys: Vec<String> = (0..25).map(|i| format!("k{i:02}")).collect();
    for key in keys.iter().rev() {
        put(bucket, key, "x").await;
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = Vec::new();
    loop {
        let page =
            list(bucket, ListOptions { limit: Some(10), cursor: cursor.clone(), ..Default::default() }).await;
        assert_eq!(page.truncated, page.cursor.is_some(), "cursor exactly when truncated");
        pages.push(page.objects.len());
        seen.extend(page.objects.into_iter().map(|o| o.key));
        if !page.truncated {
            break;
        }
        cursor = page.cursor;
    }
    assert_eq!(pages, vec![10, 10, 5]);
    assert_eq!(seen, keys);

    let whole = list(bucket, ListOptions { limit: Some(25), ..Default::default() }).await;
    assert_eq!(whole.objects.len(), 25);
    assert!(!whole.truncated, "a page that holds the rest is not truncated");
    assert_eq!(whole.cursor, None);

    let prefixed = list(bucket, ListOptions { prefix: Some("k1".into()), ..Default::default() }).await;
    assert_eq!(prefixed.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(), keys[10..20].to_vec());
    let after = list(bucket, ListOptions { start_after: Some("k21".into()), ..Default::default() }).await;
    assert_eq!(after.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(), ["k22", "k23", "k24"]);
    let none = list(bucket, ListOptions { prefix: Some("nothing".into()), ..Default::default() }).await;
    assert!(none.objects.is_empty() && !none.truncated && none.cursor.is_none());
}

/// Bucket | list: with a delimiter, keys that contain it after the prefix are rolled up into
/// distinct delimited prefixes, each counted once across pages.
pub async fn list_rolls_keys_up_into_delimited_prefixes(bucket: &dyn Bucket) {
    for key in [
        "photos/2024/a.jpg",
        "photos/2024/b.jpg",
        "photos/2025/c.jpg",
        "photos/readme",
        "docs/x",
        "docs/y/z",
        "top",
    ] {
        put(bucket, key, "x").await;
    }
    let slash = || Some("/".to_owned());
    let root = list(bucket, ListOptions { delimiter: slash(), ..Default::default() }).await;
    assert_eq!(root.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(), ["top"]);
    assert_eq!(root.delimited_prefixes, strings(&["docs/", "photos/"]));

    let photos = ListOptions { prefix: Some("photos/".into()), delimiter: slash(), ..Default::default() };
    let page = list(bucket, photos.clone()).await;
    assert_eq!(page.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(), ["photos/readme"]);
    assert_eq!(page.delimited_prefixes, strings(&["photos/2024/", "photos/2025/"]));

    // One entry per page: prefixes count towards the limit and are never repeated.
    let mut entries = Vec::new();
    let mut cursor = None;
    loop {
        let page =
            list(bucket, ListOptions { limit: Some(1), cursor: cursor.clone(), ..photos.clone() }).await;
        assert_eq!(page.objects.len() + page.delimited_prefixes.len(), 1, "{page:?}");
        entries.extend(page.delimited_prefixes);
        entries.extend(page.objects.into_iter().map(|o| o.key));
        assert_eq!(page.truncated, page.cursor.is_some());
        if !page.truncated {
            break;
        }
        cursor = page.cursor;
    }
    assert_eq!(entries, strings(&["photos/2024/", "photos/2025/", "photos/readme"]));

    let multi = list(bucket, ListOptions { delimiter: Some("/2".into()), ..Default::default() }).await;
    assert_eq!(multi.delimited_prefixes, strings(&["photos/2"]), "multi-byte delimiter");
}

/// Bucket | list: objects carry their http/custom metadata only when `include` asks.
pub async fn list_includes_metadata_only_when_asked(bucket: &dyn Bucket) {
    let http = HttpMetadata { content_type: Some("text/plain".into()), ..Default::default() };
    let custom = BTreeMap::from([("owner".to_owned(), "org-1".to_owned())]);
    let options =
        PutOptions { http_metadata: http.clone(), custom_metadata: custom.clone(), ..Default::default() };
    put_with(bucket, "k", "x", options).await.expect("stored");

    let bare = list(bucket, ListOptions::default()).await;
    assert_eq!(bare.objects[0].http_metadata, HttpMetadata::default());
    assert!(bare.objects[0].custom_metadata.is_empty());
    let full = list(bucket, ListOptions { include: Include::ALL, ..Default::default() }).await;
    assert_eq!(full.objects[0].http_metadata, http);
    assert_eq!(full.objects[0].custom_metadata, custom);
    let custom_only = Include { http_metadata: false, custom_metadata: true };
    let some = list(bucket, ListOptions { include: custom_only, ..Default::default() }).await;
    assert_eq!(some.objects[0].http_metadata, HttpMetadata::default());
    assert_eq!(some.objects[0].custom_metadata, custom);
}

/// Bucket | list: the limit is 1 to `max_list_limit` (1000).
pub async fn list_limit_out_of_range_is_rejected(bucket: &dyn Bucket) {
    let max = bucket.limits().max_list_limit;
    for limit in [0, max + 1] {
        let result = bucket.list(ListOptions { limit: Some(limit), ..Default::default() }).await;
        assert!(matches!(result, Err(Error::InvalidInput { field: "limit", .. })), "{limit}: {result:?}");
    }
    assert!(bucket.list(ListOptions { limit: Some(max), ..Default::default() }).await.is_ok());
}

// ---------------------------------------------------------------------------------------------
// metadata

/// Bucket | metadata: http and custom metadata round-trip through head, get and list; a new
/// put replaces them.
pub async fn http_and_custom_metadata_round_trip(bucket: &dyn Bucket) {
    let http = HttpMetadata {
        content_type: Some("video/webm".into()),
        content_language: Some("en-GB".into()),
        content_disposition: Some("attachment; filename=\"recording.webm\"".into()),
        content_encoding: Some("identity".into()),
        cache_control: Some("private, max-age=60".into()),
        cache_expiry: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000)),
    };
    let custom = BTreeMap::from([
        ("org".to_owned(), "42".to_owned()),
        ("unicode".to_owned(), "✓ naïve".to_owned()),
        ("empty".to_owned(), String::new()),
    ]);
    let options =
        PutOptions { http_metadata: http.clone(), custom_metadata: custom.clone(), ..Default::default() };
    let stored = put_with(bucket, "rec", "bytes", options).await.expect("stored");
    assert_eq!(stored.http_metadata, http);
    assert_eq!(stored.custom_metadata, custom);
    let headed = head(bucket, "rec").await.expect("head");
    assert_eq!(headed.http_metadata, http);
    assert_eq!(headed.custom_metadata, custom);
    let (object, _, _) = read(bucket, "rec", GetOptions::default()).await;
    assert_eq!(object.http_metadata, http);
    assert_eq!(object.custom_metadata, custom);

    put(bucket, "rec", "again").await;
    let replaced = head(bucket, "rec").await.expect("head");
    assert_eq!(replaced.http_metadata, HttpMetadata::default(), "metadata belongs to a version");
    assert!(replaced.custom_metadata.is_empty());
}

/// Bucket | metadata: every upload, even of the same bytes, gets a new version.
pub async fn every_upload_gets_a_new_version(bucket: &dyn Bucket) {
    let first = put(bucket, "k", "same").await;
    let second = put(bucket, "k", "same").await;
    assert_ne!(first.version, second.version);
    assert_eq!(first.etag, second.etag, "same bytes, same etag");
    assert_eq!(head(bucket, "k").await.expect("head").version, second.version);

    let upload = bucket.create_multipart_upload("k", MultipartOptions::default()).await.expect("create");
    let part = bucket.upload_part(&upload, 1, Body::from("same")).await.expect("part");
    let third = bucket.complete_multipart_upload(&upload, &[part]).await.expect("complete");
    assert!(third.version != first.version && third.version != second.version);
    assert_eq!(head(bucket, "k").await.expect("head").version, third.version);
}

// ---------------------------------------------------------------------------------------------
// multipart

/// Bucket | multipart: parts uploaded in any order, the last one smaller, complete into one
/// readable object with the upload's metadata, a multipart etag and no MD5; `resume` continues.
pub async fn multipart_upload_completes_into_a_readable_object(bucket: &dyn Bucket) {
    let part_size = bucket.limits().min_part_bytes as usize;
    let contents = [pattern(part_size, 10), pattern(part_size, 11), pattern(part_size / 2 + 1, 12)];
    let custom = BTreeMap::from([("kind".to_owned(), "recording".to_owned())]);
    let http = HttpMetadata { content_type: Some("video/webm".into()), ..Default::default() };
    let options = MultipartOptions { http_metadata: http.clone(), custom_metadata: custom.clone() };
    let upload = bucket.create_multipart_upload("big", options).await.expect("create");
    assert_eq!(upload.key, "big");
    assert!(!upload.upload_id.is_empty());

    let second = bucket.upload_part(&upload, 2, contents[1].clone().into()).await.expect("part 2");
    let first = bucket.upload_part(&upload, 1, contents[0].clone().into()).await.expect("part 1");
    assert_eq!((first.part_number, second.part_number), (1, 2));
    assert!(head(bucket, "big").await.is_none(), "nothing is visible before complete");
    let resumed = bucket.resume_multipart_upload("big", &upload.upload_id).await.expect("resume");
    assert_eq!(resumed, upload);
    let third = bucket.upload_part(&resumed, 3, contents[2].clone().into()).await.expect("part 3");

    let object = bucket.complete_multipart_upload(&upload, &[first, second, third]).await.expect("complete");
    let whole = contents.concat();
    assert_eq!(object.key, "big");
    assert_eq!(object.size, whole.len() as u64);
    let md5s: Vec<u8> = contents.iter().flat_map(|c| md5_of(c)).collect();
    assert_eq!(object.etag, format!("{}-3", hex::encode(md5_of(&md5s))));
    assert_eq!(object.checksums.md5, None, "no MD5 for a multipart object");
    assert_eq!(object.http_metadata, http);
    assert_eq!(object.custom_metadata, custom);
    assert_same_version(&head(bucket, "big").await.expect("visible after complete"), &object);
    assert!(content(bucket, "big").await.expect("readable") == whole, "the parts joined in order");
    let (_, _, across) = read(bucket, "big", ranged(Range::bytes(part_size as u64 - 3, 6))).await;
    assert_eq!(across, whole[part_size - 3..part_size + 3].to_vec(), "a range across a part boundary");
}

/// Bucket | multipart: every part but the last is at least the minimum size and all are equal;
/// the last is no larger; a lone part may be of any size.
pub async fn multipart_part_size_rules_are_enforced(bucket: &dyn Bucket) {
    let min = bucket.limits().min_part_bytes as usize;
    async fn attempt(bucket: &dyn Bucket, sizes: &[usize]) -> crate::Result<Object> {
        let upload = bucket.create_multipart_upload("sized", MultipartOptions::default()).await?;
        let mut parts = Vec::new();
        for (i, size) in sizes.iter().enumerate() {
            let number = i as u32 + 1;
            parts.push(bucket.upload_part(&upload, number, pattern(*size, u64::from(number)).into()).await?);
        }
        let result = bucket.complete_multipart_upload(&upload, &parts).await;
        if result.is_err() {
            bucket.abort_multipart_upload(&upload).await.expect("a rejected upload can still be aborted");
        }
        result
    }
    let too_small = attempt(bucket, &[min - 1, 1]).await;
    assert!(matches!(too_small, Err(Error::PartTooSmall { part_number: 1, .. })), "{too_small:?}");
    let unequal = attempt(bucket, &[min, min + 1, 1]).await;
    assert!(matches!(unequal, Err(Error::InvalidPart { part_number: 2, .. })), "{unequal:?}");
    let last_larger = attempt(bucket, &[min, min + 1]).await;
    assert!(matches!(last_larger, Err(Error::InvalidPart { part_number: 2, .. })), "{last_larger:?}");
    assert!(head(bucket, "sized").await.is_none(), "rejected uploads store nothing");

    assert_eq!(attempt(bucket, &[1]).await.expect("a lone small part").size, 1);
    assert_eq!(attempt(bucket, &[min, min]).await.expect("equal parts").size, 2 * min as u64);
    assert_eq!(
        attempt(bucket, &[min + 1, min + 1, min]).await.expect("parts above the minimum").size,
        3 * min as u64 + 2
    );
}

/// Bucket | multipart: part numbers run from 1 to `max_parts` (10 000).
pub async fn multipart_part_numbers_out_of_range_are_rejected(bucket: &dyn Bucket) {
    let upload = bucket.create_multipart_upload("k", MultipartOptions::default()).await.expect("create");
    let max = bucket.limits().max_parts;
    for number in [0, max + 1] {
        let result = bucket.upload_part(&upload, number, Body::from("x")).await;
        assert!(
            matches!(result, Err(Error::InvalidInput { field: "part_number", .. })),
            "{number}: {result:?}"
        );
    }
    let last = bucket.upload_part(&upload, max, Body::from("x")).await.expect("the highest part number");
    let object = bucket.complete_multipart_upload(&upload, &[last]).await.expect("complete");
    assert_eq!(object.size, 1);
}

/// Bucket | multipart: `complete` rejects unknown parts, wrong etags, unordered or empty lists,
/// and the upload stays usable.
pub async fn completing_with_a_wrong_part_list_fails_and_keeps_the_upload(bucket: &dyn Bucket) {
    let min = bucket.limits().min_part_bytes as usize;
    let upload = bucket.create_multipart_upload("k", MultipartOptions::default()).await.expect("create");
    let one = bucket.upload_part(&upload, 1, pattern(min, 1).into()).await.expect("part 1");
    let two = bucket.upload_part(&upload, 2, pattern(10, 2).into()).await.expect("part 2");
    let unknown = UploadedPart { part_number: 3, etag: two.etag.clone() };
    let wrong_etag = UploadedPart { part_number: 2, etag: one.etag.clone() };
    let cases: [(&str, Vec<UploadedPart>); 4] = [
        ("unknown part", vec![one.clone(), unknown]),
        ("wrong etag", vec![one.clone(), wrong_etag]),
        ("descending", vec![two.clone(), one.clone()]),
        ("repeated", vec![one.clone(), one.clone()]),
    ];
    for (what, parts) in cases {
        let result = bucket.complete_multipart_upload(&upload, &parts).await;
        assert!(matches!(result, Err(Error::InvalidPart { .. })), "{what}: {result:?}");
    }
    let empty = bucket.complete_multipart_upload(&upload, &[]).await;
    assert!(matches!(empty, Err(Error::InvalidInput { field: "parts", .. })), "{empty:?}");
    assert!(head(bucket, "k").await.is_none());
    let object =
        bucket.complete_multipart_upload(&upload, &[one, two]).await.expect("the right list completes");
    assert_eq!(object.size, min as u64 + 10);
}

/// Bucket | multipart: uploading a part number again replaces the part.
pub async fn reuploading_a_part_replaces_it(bucket: &dyn Bucket) {
    let upload = bucket.create_multipart_upload("k", MultipartOptions::default()).await.expect("create");
    let old = bucket.upload_part(&upload, 1, Body::from("old")).await.expect("part");
    let new = bucket.upload_part(&upload, 1, Body::from("new!")).await.expect("part again");
    assert_ne!(old.etag, new.etag);
    let stale = bucket.complete_multipart_upload(&upload, std::slice::from_ref(&old)).await;
    assert!(matches!(stale, Err(Error::InvalidPart { part_number: 1, .. })), "{stale:?}");
    bucket.complete_multipart_upload(&upload, &[new]).await.expect("complete");
    assert_eq!(content(bucket, "k").await.as_deref(), Some(&b"new!"[..]));
}

fn assert_no_such_upload<T: std::fmt::Debug>(what: &str, result: crate::Result<T>) {
    assert!(matches!(result, Err(Error::NoSuchUpload { .. })), "{what}: {result:?}");
}

/// Bucket | multipart: after `abort`, every call on the upload fails and nothing is stored.
pub async fn calls_on_an_aborted_upload_fail(bucket: &dyn Bucket) {
    let upload = bucket.create_multipart_upload("k", MultipartOptions::default()).await.expect("create");
    let part = bucket.upload_part(&upload, 1, Body::from("x")).await.expect("part");
    bucket.abort_multipart_upload(&upload).await.expect("abort");
    assert_no_such_upload("upload_part", bucket.upload_part(&upload, 2, Body::from("y")).await);
    assert_no_such_upload("complete", bucket.complete_multipart_upload(&upload, &[part]).await);
    assert_no_such_upload("abort again", bucket.abort_multipart_upload(&upload).await);
    assert_no_such_upload("resume", bucket.resume_multipart_upload("k", &upload.upload_id).await);
    assert!(head(bucket, "k").await.is_none());
}

/// Bucket | multipart: a completed upload is over too; an upload is reachable only under its
/// own key.
pub async fn calls_on_a_completed_upload_fail(bucket: &dyn Bucket) {
    let upload = bucket.create_multipart_upload("k", MultipartOptions::default()).await.expect("create");
    assert_no_such_upload(
        "resume under another key",
        bucket.resume_multipart_upload("other", &upload.upload_id).await,
    );
    assert_no_such_upload(
        "resume of an unknown id",
        bucket.resume_multipart_upload("k", "no-such-upload").await,
    );
    let part = bucket.upload_part(&upload, 1, Body::from("x")).await.expect("part");
    bucket.complete_multipart_upload(&upload, std::slice::from_ref(&part)).await.expect("complete");
    assert_no_such_upload("upload_part", bucket.upload_part(&upload, 2, Body::from("y")).await);
    assert_no_such_upload("complete again", bucket.complete_multipart_upload(&upload, &[part]).await);
    assert_no_such_upload("abort", bucket.abort_multipart_upload(&upload).await);
    assert_eq!(content(bucket, "k").await.as_deref(), Some(&b"x"[..]));
}

// ---------------------------------------------------------------------------------------------
// limits

/// Bucket | limits: a key over `max_key_bytes` (1024) or empty is rejected by every operation.
pub async fn keys_over_the_limit_or_empty_are_rejected(bucket: &dyn Bucket) {
    let max = bucket.limits().max_key_bytes;
    let longest = "k".repeat(max);
    put(bucket, &longest, "fits").await;
    assert_eq!(content(bucket, &longest).await.as_deref(), Some(&b"fits"[..]));
    let too_long = "é".repeat(max / 2 + 1); // counted in bytes, not characters
    assert!(too_long.chars().count() <= max);
    for key in [too_long.as_str(), ""] {
        let check = |what: &str, result: crate::Result<()>| match (key.is_empty(), &result) {
            (true, Err(Error::InvalidInput { field: "key", .. })) => {}
            (false, Err(Error::TooLarge { what: "key", .. })) => {}
            _ => panic!("{what} with a {}-byte key: {result:?}", key.len()),
        };
        check("put", bucket.put(key, Body::from("x"), PutOptions::default()).await.map(drop));
        check("head", bucket.head(key).await.map(drop));
        check("get", bucket.get(key, GetOptions::default()).await.map(drop));
        check("delete", bucket.delete(&[key.to_owned()]).await);
        check(
            "create_multipart_upload",
            bucket.create_multipart_upload(key, Default::default()).await.map(drop),
        );
    }
    assert_eq!(all_keys(bucket, None).await, vec![longest]);
}

/// Bucket | limits: custom metadata over `max_custom_metadata_bytes` (8192) is rejected.
pub async fn custom_metadata_over_the_limit_is_rejected(bucket: &dyn Bucket) {
    let max = bucket.limits().max_custom_metadata_bytes;
    let sized = |bytes: usize| BTreeMap::from([("key".to_owned(), "v".repeat(bytes - 3))]);
    let fits = PutOptions { custom_metadata: sized(max), ..Default::default() };
    put_with(bucket, "fits", "x", fits).await.expect("metadata of exactly the limit");
    let over = PutOptions { custom_metadata: sized(max + 1), ..Default::default() };
    let result = bucket.put("over", Body::from("x"), over).await;
    assert!(matches!(result, Err(Error::TooLarge { .. })), "{result:?}");
    assert!(head(bucket, "over").await.is_none());
    let multipart = MultipartOptions { custom_metadata: sized(max + 1), ..Default::default() };
    let result = bucket.create_multipart_upload("over", multipart).await;
    assert!(matches!(result, Err(Error::TooLarge { .. })), "{result:?}");
}

/// Bucket | limits: keys are opaque names: path-like keys neither collide with the paths they
/// "resolve" to nor reach anything outside the bucket.
pub async fn keys_are_names_and_never_escape_the_bucket(bucket: &dyn Bucket) {
    let keys = [
        "../escape",
        "../../../../../../etc/passwd",
        "a/../b",
        "b",
        "/abs",
        "abs",
        "./c",
        "c",
        "..",
        ".",
        "a//b",
        "a/b",
        "nul\0byte",
        "back\\slash",
        "C:\\windows",
        "%2e%2e%2f",
    ];
    for (i, key) in keys.iter().enumerate() {
        put(bucket, key, format!("content {i}")).await;
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(content(bucket, key).await, Some(format!("content {i}").into_bytes()), "{key:?}");
    }
    let mut expected = strings(&keys);
    expected.sort();
    assert_eq!(all_keys(bucket, None).await, expected);
    bucket.delete(&strings(&["a/../b", "../escape"])).await.expect("delete");
    assert_eq!(content(bucket, "b").await.as_deref(), Some(&b"content 3"[..]));
    assert!(head(bucket, "a/../b").await.is_none());
    assert_eq!(all_keys(bucket, Some("../")).await, strings(&["../../../../../../etc/passwd"]));
}

// ---------------------------------------------------------------------------------------------
// consistency

/// Bucket | strong consistency: a completed write or delete is visible to the next read and list.
pub async fn a_completed_write_or_delete_is_visible_to_the_next_read_and_list(bucket: &dyn Bucket) {
    for i in 0..20 {
        let key = format!("item/{i}");
        put(bucket, &key, format!("v1-{i}")).await;
        assert_eq!(content(bucket, &key).await, Some(format!("v1-{i}").into_bytes()));
        assert!(all_keys(bucket, Some("item/")).await.contains(&key));
        put(bucket, &key, format!("v2-{i}")).await;
        assert_eq!(content(bucket, &key).await, Some(format!("v2-{i}").into_bytes()));
        bucket.delete(std::slice::from_ref(&key)).await.expect("delete");
        assert!(head(bucket, &key).await.is_none());
        assert!(!all_keys(bucket, Some("item/")).await.contains(&key));
    }
}

/// Bucket | strong consistency: of two racing puts, the one that finishes last wins, even if it
/// started first.
pub async fn racing_writers_last_to_finish_wins(bucket: &dyn Bucket) {
    let (release, gate) = tokio::sync::oneshot::channel();
    let slow =
        bucket.put("race", gated_body("started first, ", "finished last", gate), PutOptions::default());
    let fast = async {
        let stored =
            bucket.put("race", Body::from("started second, finished first"), PutOptions::default()).await;
        let _ = release.send(());
        stored
    };
    let (slow, fast) = futures::join!(slow, fast);
    let slow = slow.expect("slow put").expect("stored");
    let fast = fast.expect("fast put").expect("stored");
    assert_ne!(slow.version, fast.version);
    assert_eq!(content(bucket, "race").await.as_deref(), Some(&b"started first, finished last"[..]));
    assert_eq!(head(bucket, "race").await.expect("head").version, slow.version);
}

/// Bucket | strong consistency: reads racing a stream of overwrites of the same key each see
/// one whole version, never a missing key or a mix.
pub async fn reads_during_overwrites_see_whole_versions(bucket: &dyn Bucket) {
    const VERSIONS: usize = 40;
    let version = |i: usize| pattern(20_000 + i, i as u64);
    put(bucket, "hot", version(0)).await;
    let done = std::sync::atomic::AtomicBool::new(false);
    let writer = async {
        for i in 1..VERSIONS {
            put(bucket, "hot", version(i)).await;
            tokio::task::yield_now().await;
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
    };
    let reader = async {
        let mut reads = 0;
        while !done.load(std::sync::atomic::Ordering::SeqCst) || reads == 0 {
            let bytes = content(bucket, "hot").await.expect("the key always exists");
            let i = bytes.len() - 20_000;
            assert!(i < VERSIONS && bytes == version(i), "read {reads} is not a whole version");
            reads += 1;
        }
        reads
    };
    let ((), reads) = futures::join!(writer, reader);
    assert!(reads > 0);
}

/// Bucket | strong consistency: a reader that started on a version finishes reading it, intact,
/// even though the key was overwritten and then deleted meanwhile.
pub async fn a_reader_of_a_replaced_version_finishes_its_stream(bucket: &dyn Bucket) {
    let old = pattern(512 * 1024, 20);
    put(bucket, "k", old.clone()).await;
    let Some(GetOutcome::Found(found)) = get_with(bucket, "k", GetOptions::default()).await else {
        panic!("the object is there");
    };
    let mut stream = found.body.into_stream();
    let mut received = stream.next().await.expect("a first chunk").expect("readable").to_vec();

    put(bucket, "k", "new version").await;
    assert_eq!(content(bucket, "k").await.as_deref(), Some(&b"new version"[..]));
    bucket.delete(&strings(&["k"])).await.expect("delete");
    assert!(head(bucket, "k").await.is_none());

    while let Some(chunk) = stream.next().await {
        received.extend_from_slice(&chunk.expect("the old version stays readable"));
    }
    assert!(received == old, "the reader got the old version whole");
}

/// Bucket | put: a body stream that fails stores nothing and leaves the previous version.
pub async fn a_failing_body_stream_stores_nothing(bucket: &dyn Bucket) {
    put(bucket, "k", "original").await;
    let failing = || {
        let chunks: Vec<io::Result<Bytes>> = vec![
            Ok(Bytes::from_static(b"partial ")),
            Err(io::Error::new(io::ErrorKind::ConnectionReset, "client left")),
        ];
        Body::from_stream(stream::iter(chunks))
    };
    for key in ["k", "new"] {
        let result = bucket.put(key, failing(), PutOptions::default()).await;
        assert!(matches!(result, Err(Error::Body(_))), "{key}: {result:?}");
    }
    assert_eq!(content(bucket, "k").await.as_deref(), Some(&b"original"[..]));
    assert!(head(bucket, "new").await.is_none());
}

// ---------------------------------------------------------------------------------------------
// streaming

/// Bucket | streaming: a 100 MB object goes in from a generated stream and comes back out with
/// the same MD5, while the process's heap never grows by more than a small fraction of it.
pub async fn a_100_mb_object_streams_through_in_bounded_memory(bucket: &dyn Bucket, heap: &dyn HeapProbe) {
    const SIZE: usize = 100 * 1024 * 1024;
    const CHUNK: usize = 256 * 1024;
    const HEAP_BUDGET: usize = 16 * 1024 * 1024;

    let sent = Arc::new(Mutex::new(Md5::new()));
    let hasher = sent.clone();
    let chunks = stream::iter(0..SIZE / CHUNK).map(move |i| {
        let chunk = pattern(CHUNK, i as u64 + 1);
        hasher.lock().unwrap_or_else(|p| p.into_inner()).update(&chunk);
        Ok(Bytes::from(chunk))
    });

    heap.reset_peak();
    let before_put = heap.current();
    let stored = put(bucket, "recording.webm", Body::from_stream(chunks)).await;
    let put_growth = heap.peak().saturating_sub(before_put);
    let sent_md5 = std::mem::take(&mut *sent.lock().unwrap_or_else(|p| p.into_inner())).finalize().to_vec();
    assert_eq!(stored.size, SIZE as u64);
    assert_eq!(stored.etag, hex::encode(&sent_md5), "the etag is the MD5 of what was sent");

    heap.reset_peak();
    let before_get = heap.current();
    let Some(GetOutcome::Found(found)) = get_with(bucket, "recording.webm", GetOptions::default()).await
    else {
        panic!("the recording is there");
    };
    let mut received = Md5::new();
    let mut size = 0usize;
    let mut body = found.body;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.expect("the body streams");
        size += chunk.len();
        received.update(&chunk);
    }
    let get_growth = heap.peak().saturating_sub(before_get);
    assert_eq!(size, SIZE);
    assert!(received.finalize().to_vec() == sent_md5, "the bytes read back are the bytes sent");
    assert!(put_growth < HEAP_BUDGET, "put of {SIZE} bytes grew the heap by {put_growth} bytes");
    assert!(get_growth < HEAP_BUDGET, "get of {SIZE} bytes grew the heap by {get_growth} bytes");
}
