//! The KV conformance suite: every driver of `KvNamespace` passes these cases (bindings.md §2 and
//! the KV rows of §7).
//!
//! Each case is a `pub async fn` taking a fresh [`KvUnderTest`]; [`kv_conformance_tests!`]
//! expands to one `#[tokio::test]` per case for a driver, given an async factory expression:
//!
//! ```
//! use std::sync::Arc;
//! use ledge_kv::conformance::KvUnderTest;
//! use ledge_kv::{ManualClock, SqliteKv, SqliteKvOptions};
//!
//! async fn embedded() -> KvUnderTest {
//!     let dir = tempfile::tempdir().unwrap();
//!     let clock = Arc::new(ManualClock::new(1_800_000_000_000));
//!     let options = SqliteKvOptions { clock: clock.clone(), ..SqliteKvOptions::default() };
//!     let kv = SqliteKv::open(dir.path().join("kv.db"), options).unwrap();
//!     KvUnderTest::new(kv.namespace("a"), kv.namespace("b"), clock).keeping(dir)
//! }
//!
//! ledge_kv::kv_conformance_tests!(embedded());
//! # fn main() {}
//! ```
//!
//! The driver under test must use the contract's default [`KvLimits`](crate::KvLimits) and read
//! "now" from the given [`ManualClock`], so that expiry is tested without waiting.
//!
//! [`kv_conformance_tests!`]: crate::kv_conformance_tests

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;

use crate::clock::{Clock, ManualClock};
use crate::error::{Error, Result};
use crate::namespace::{
    GetOptions, KvNamespace, KvNamespaceExt, ListOptions, ListResult, PutOptions, ValueStream,
    ValueWithMetadata,
};

/// A fresh driver for one case.
pub struct KvUnderTest {
    /// An empty namespace.
    pub namespace: Arc<dyn KvNamespace>,
    /// Another empty namespace of the same store, to check that namespaces are isolated.
    pub sibling: Arc<dyn KvNamespace>,
    /// The clock both namespaces read "now" from.
    pub clock: Arc<ManualClock>,
    _keep_alive: Vec<Box<dyn Any + Send + Sync>>,
}

impl KvUnderTest {
    pub fn new(
        namespace: Arc<dyn KvNamespace>,
        sibling: Arc<dyn KvNamespace>,
        clock: Arc<ManualClock>,
    ) -> Self {
        KvUnderTest { namespace, sibling, clock, _keep_alive: Vec::new() }
    }

    /// Keeps `resource` (a temporary directory, a server handle) alive as long as the case runs.
    pub fn keeping(mut self, resource: impl Any + Send + Sync) -> Self {
        self._keep_alive.push(Box::new(resource));
        self
    }
}

/// Expands to one `#[tokio::test]` per conformance case, each calling `$factory.await` for a fresh
/// [`KvUnderTest`](crate::conformance::KvUnderTest).
#[macro_export]
macro_rules! kv_conformance_tests {
    ($factory:expr) => {
        $crate::__kv_conformance_cases!($factory;
            get_of_a_missing_key_is_none,
            get_returns_the_bytes_put,
            get_text_decodes_utf8_and_rejects_other_bytes,
            get_json_parses_the_value_and_rejects_other_json,
            get_stream_yields_the_value_in_order,
            get_with_metadata_returns_value_and_metadata,
            get_with_metadata_of_a_key_put_without_metadata_has_none,
            cache_ttl_is_validated_and_otherwise_ignored,
            reads_and_deletes_validate_the_key,
            a_put_replaces_value_metadata_and_expiration,
            a_write_is_visible_to_the_next_read,
            get_many_maps_every_key_with_none_for_missing_ones,
            get_many_accepts_100_keys_and_rejects_101,
            get_many_validates_every_key,
            put_rejects_an_empty_key,
            put_rejects_dot_and_dot_dot_keys,
            put_accepts_512_byte_keys_and_rejects_longer,
            put_accepts_25_mib_values_and_rejects_larger,
            put_accepts_1024_bytes_of_metadata_and_rejects_more,
            put_rejects_an_expiration_less_than_60_seconds_ahead,
            put_rejects_an_expiration_ttl_under_60_seconds,
            put_rejects_both_expiration_forms,
            a_rejected_put_changes_nothing,
            an_expired_key_reads_as_absent,
            an_expired_key_is_not_listed,
            an_absolute_expiration_is_honoured,
            list_reports_expirations_in_epoch_seconds,
            re_putting_with_a_ttl_slides_the_expiration,
            an_expired_key_can_be_put_again,
            delete_of_an_absent_key_succeeds,
            delete_removes_the_key_from_get_and_list,
            list_is_in_utf8_byte_order,
            list_defaults_to_pages_of_1000_keys,
            list_rejects_a_limit_of_0_or_over_1000,
            list_cursor_pages_through_every_key_once,
            list_complete_is_authoritative,
            list_filters_by_prefix,
            list_pages_within_a_prefix,
            list_rejects_a_cursor_it_did_not_issue,
            list_reports_metadata,
            namespaces_are_isolated,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __kv_conformance_cases {
    ($factory:expr; $($case:ident),+ $(,)?) => {
        $(
            #[::tokio::test]
            async fn $case() {
                $crate::conformance::$case($factory.await).await;
            }
        )+
    };
}

// ---------------------------------------------------------------------------------------------
// Helpers

const MIB: usize = 1024 * 1024;

fn no_get() -> GetOptions {
    GetOptions::default()
}

fn plain() -> PutOptions {
    PutOptions::default()
}

fn ttl(secs: u64) -> PutOptions {
    PutOptions { expiration_ttl: Some(secs), ..PutOptions::default() }
}

fn at(epoch_secs: i64) -> PutOptions {
    PutOptions {
        expiration: Some(u64::try_from(epoch_secs).expect("a positive epoch")),
        ..PutOptions::default()
    }
}

fn with_metadata(metadata: serde_json::Value) -> PutOptions {
    PutOptions { metadata: Some(metadata), ..PutOptions::default() }
}

async fn put(ns: &dyn KvNamespace, key: &str, value: &str, options: PutOptions) {
    ns.put(key, Bytes::copy_from_slice(value.as_bytes()), options)
        .await
        .unwrap_or_else(|e| panic!("put {key:?} failed: {e}"));
}

async fn text(ns: &dyn KvNamespace, key: &str) -> Option<String> {
    ns.get_text(key, no_get()).await.unwrap_or_else(|e| panic!("get {key:?} failed: {e}"))
}

async fn list(ns: &dyn KvNamespace, options: ListOptions) -> ListResult {
    ns.list(options).await.unwrap_or_else(|e| panic!("list failed: {e}"))
}

/// Every key name, following cursors to the end, with a page size of `limit`.
async fn list_all(ns: &dyn KvNamespace, prefix: Option<&str>, limit: Option<usize>) -> Vec<String> {
    let mut names = Vec::new();
    let mut cursor = None;
    for _ in 0..10_000 {
        let page =
            list(ns, ListOptions { prefix: prefix.map(str::to_owned), limit, cursor: cursor.take() }).await;
        assert!(page.keys.len() <= limit.unwrap_or(1000), "a page holds at most `limit` keys");
        names.extend(page.keys.into_iter().map(|k| k.name));
        if page.list_complete {
            assert_eq!(page.cursor, None, "a complete listing has no cursor");
            return names;
        }
        cursor = Some(page.cursor.expect("an incomplete listing has a cursor"));
    }
    panic!("listing never completed");
}

async fn collect(stream: ValueStream) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut chunks = stream;
    while let Some(chunk) = chunks.next().await {
        bytes.extend_from_slice(&chunk.expect("a chunk of the value"));
    }
    bytes
}

#[track_caller]
fn assert_invalid<T: Debug>(result: Result<T>, field: &str) {
    match result {
        Err(Error::InvalidInput { field: f, .. }) if f == field => {}
        other => panic!("expected InvalidInput naming {field:?}, got {other:?}"),
    }
}

#[track_caller]
fn assert_too_large<T: Debug>(result: Result<T>, field: &str, size: usize) {
    match result {
        Err(Error::TooLarge { field: f, size: s, .. }) if f == field && s == size => {}
        other => panic!("expected TooLarge naming {field:?} at {size} bytes, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// get / get_with_metadata: missing → None, type conversion, metadata None if unset

pub async fn get_of_a_missing_key_is_none(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    assert_eq!(ns.get("missing", no_get()).await.unwrap(), None);
    assert_eq!(ns.get_text("missing", no_get()).await.unwrap(), None);
    assert_eq!(ns.get_json::<serde_json::Value>("missing", no_get()).await.unwrap(), None);
    assert!(ns.get_stream("missing", no_get()).await.unwrap().is_none());
    assert_eq!(ns.get_with_metadata("missing", no_get()).await.unwrap(), None);
}

pub async fn get_returns_the_bytes_put(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    let binary = Bytes::from_static(&[0, 1, 0xFF, 0xFE, b'\n', 0]);
    ns.put("binary", binary.clone(), plain()).await.unwrap();
    ns.put("empty", Bytes::new(), plain()).await.unwrap();
    assert_eq!(ns.get("binary", no_get()).await.unwrap(), Some(binary));
    assert_eq!(ns.get("empty", no_get()).await.unwrap(), Some(Bytes::new()), "an empty value is not absent");
    assert_eq!(ns.get_text("empty", no_get()).await.unwrap(), Some(String::new()));
}

pub async fn get_text_decodes_utf8_and_rejects_other_bytes(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    put(ns, "greeting", "héllo, wörld €😀", plain()).await;
    assert_eq!(text(ns, "greeting").await.as_deref(), Some("héllo, wörld €😀"));
    ns.put("latin1", Bytes::from_static(&[b'h', 0xE9]), plain()).await.unwrap();
    match ns.get_text("latin1", no_get()).await {
        Err(Error::Decode { key, .. }) => assert_eq!(key, "latin1"),
        other => panic!("expected a Decode error, got {other:?}"),
    }
}

pub async fn get_json_parses_the_value_and_rejects_other_json(kv: KvUnderTest) {
    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Session {
        user_id: u64,
        roles: Vec<String>,
    }
    let ns = &*kv.namespace;
    put(ns, "session", r#"{"user_id": 42, "roles": ["admin"]}"#, plain()).await;
    let session: Option<Session> = ns.get_json("session", no_get()).await.unwrap();
    assert_eq!(session, Some(Session { user_id: 42, roles: vec!["admin".into()] }));
    let any: Option<serde_json::Value> = ns.get_json("session", no_get()).await.unwrap();
    assert_eq!(any, Some(json!({"user_id": 42, "roles": ["admin"]})));

    put(ns, "not-json", "{user_id: 42", plain()).await;
    assert!(matches!(
        ns.get_json::<serde_json::Value>("not-json", no_get()).await,
        Err(Error::Decode { .. })
    ));
    put(ns, "wrong-shape", r#"{"user_id": "forty-two"}"#, plain()).await;
    assert!(matches!(ns.get_json::<Session>("wrong-shape", no_get()).await, Err(Error::Decode { .. })));
}

pub async fn get_stream_yields_the_value_in_order(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    // Not a multiple of any plausible chunk size, and every byte position distinguishable.
    let value: Vec<u8> = (0..MIB + 17).map(|i| (i % 251) as u8).collect();
    ns.put("large", Bytes::from(value.clone()), plain()).await.unwrap();
    let stream = ns.get_stream("large", no_get()).await.unwrap().expect("the value exists");
    assert_eq!(stream.size(), value.len() as u64);
    assert!(collect(stream).await == value, "the streamed bytes are the value's, in order");

    ns.put("empty", Bytes::new(), plain()).await.unwrap();
    let stream = ns.get_stream("empty", no_get()).await.unwrap().expect("an empty value exists");
    assert_eq!(stream.size(), 0);
    assert!(collect(stream).await.is_empty());
}

pub async fn get_with_metadata_returns_value_and_metadata(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    let metadata = json!({"model": "static-384", "hash": "ab12", "dims": 384, "nested": {"ok": true}});
    put(ns, "vec:ab12", "[0.1, 0.2]", with_metadata(metadata.clone())).await;
    let got = ns.get_with_metadata("vec:ab12", no_get()).await.unwrap();
    assert_eq!(
        got,
        Some(ValueWithMetadata { value: Bytes::from_static(b"[0.1, 0.2]"), metadata: Some(metadata) })
    );
}

pub async fn get_with_metadata_of_a_key_put_without_metadata_has_none(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    put(ns, "plain", "v", plain()).await;
    put(ns, "null", "v", with_metadata(serde_json::Value::Null)).await;
    for key in ["plain", "null"] {
        let got = ns.get_with_metadata(key, no_get()).await.unwrap().expect("the key exists");
        assert_eq!(got.value, Bytes::from_static(b"v"));
        assert_eq!(got.metadata, None, "{key}: metadata is None when unset");
    }
}

pub async fn cache_ttl_is_validated_and_otherwise_ignored(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    put(ns, "k", "v", plain()).await;
    let short = GetOptions { cache_ttl: Some(59) };
    assert_invalid(ns.get("k", short).await, "cache_ttl");
    assert_invalid(ns.get_with_metadata("k", short).await, "cache_ttl");
    assert_invalid(ns.get_stream("k", short).await, "cache_ttl");
    assert_invalid(ns.get_many(&["k"], short).await, "cache_ttl");

    let minute = GetOptions { cache_ttl: Some(60) };
    assert_eq!(ns.get("k", minute).await.unwrap(), Some(Bytes::from_static(b"v")));
    put(ns, "k", "v2", plain()).await;
    assert_eq!(
        ns.get("k", GetOptions { cache_ttl: Some(3600) }).await.unwrap(),
        Some(Bytes::from_static(b"v2")),
        "a cache_ttl never serves a stale value"
    );
}

pub async fn reads_and_deletes_validate_the_key(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    for key in ["", ".", ".."] {
        assert_invalid(ns.get(key, no_get()).await, "key");
        assert_invalid(ns.get_with_metadata(key, no_get()).await, "key");
        assert_invalid(ns.get_stream(key, no_get()).await, "key");
        assert_invalid(ns.delete(key).await, "key");
    }
    let long = "k".repeat(513);
    assert_too_large(ns.get(&long, no_get()).await, "key", 513);
    assert_too_large(ns.delete(&long).await, "key", 513);
}

pub async fn a_put_replaces_value_metadata_and_expiration(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    let expiration = kv.clock.now_secs() + 3600;
    ns.put(
        "k",
        Bytes::from_static(b"first"),
        PutOptions { expiration: Some(expiration as u64), metadata: Some(json!({"v": 1})), ..plain() },
    )
    .await
    .unwrap();
    put(ns, "k", "second", plain()).await;
    let got = ns.get_with_metadata("k", no_get()).await.unwrap().expect("the key exists");
    assert_eq!(got, ValueWithMetadata { value: Bytes::from_static(b"second"), metadata: None });
    let page = list(ns, ListOptions::default()).await;
    assert_eq!(page.keys.len(), 1);
    assert_eq!(page.keys[0].expiration, None, "the second put has no expiration");
    kv.clock.set_ms((expiration + 1) * 1000);
    assert_eq!(
        text(ns, "k").await.as_deref(),
        Some("second"),
        "the first put's expiration no longer applies"
    );
}

pub async fn a_write_is_visible_to_the_next_read(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    for round in 0..20 {
        let value = format!("value {round}");
        put(ns, "k", &value, plain()).await;
        assert_eq!(text(ns, "k").await, Some(value), "round {round}: put then get");
        assert_eq!(list(ns, ListOptions::default()).await.keys.len(), 1);
        ns.delete("k").await.unwrap();
        assert_eq!(text(ns, "k").await, None, "round {round}: delete then get");
        assert!(list(ns, ListOptions::default()).await.keys.is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// bulk get: ≤ 100 keys → map, missing keys None

pub async fn get_many_maps_every_key_with_none_for_missing_ones(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    put(ns, "a", "1", plain()).await;
    put(ns, "c", "3", plain()).await;
    let got = ns.get_many(&["a", "b", "c"], no_get()).await.unwrap();
    let expected: BTreeMap<String, Option<Bytes>> = [
        ("a".to_owned(), Some(Bytes::from_static(b"1"))),
        ("b".to_owned(), None),
        ("c".to_owned(), Some(Bytes::from_static(b"3"))),
    ]
    .into();
    assert_eq!(got, expected);
    assert!(ns.get_many(&[], no_get()).await.unwrap().is_empty());
}

pub async fn get_many_accepts_100_keys_and_rejects_101(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    let names: Vec<String> = (0..101).map(|i| format!("key-{i:03}")).collect();
    for name in names.iter().step_by(2) {
        put(ns, name, name, plain()).await;
    }
    let keys: Vec<&str> = names.iter().map(String::as_str).collect();
    let got = ns.get_many(&keys[..100], no_get()).await.unwrap();
    assert_eq!(got.len(), 100);
    for (i, name) in names[..100].iter().enumerate() {
        let expected = (i % 2 == 0).then(|| Bytes::copy_from_slice(name.as_bytes()));
        assert_eq!(got[name], expected, "{name}");
    }
    assert_invalid(ns.get_many(&keys, no_get()).await, "keys");
}

pub async fn get_many_validates_every_key(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    put(ns, "a", "1", plain()).await;
    assert_invalid(ns.get_many(&["a", ""], no_get()).await, "key");
    assert_invalid(ns.get_many(&["..", "a"], no_get()).await, "key");
    let long = "k".repeat(513);
    assert_too_large(ns.get_many(&["a", &long], no_get()).await, "key", 513);
}

// ---------------------------------------------------------------------------------------------
// put validation: bad key, value > 25 MiB, metadata > 1024 B, expiry < 60 s ahead → error

pub async fn put_rejects_an_empty_key(kv: KvUnderTest) {
    assert_invalid(kv.namespace.put("", Bytes::from_static(b"v"), plain()).await, "key");
}

pub async fn put_rejects_dot_and_dot_dot_keys(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    assert_invalid(ns.put(".", Bytes::from_static(b"v"), plain()).await, "key");
    assert_invalid(ns.put("..", Bytes::from_static(b"v"), plain()).await, "key");
    for key in ["...", ".a", "a.", "./x", "../x"] {
        put(ns, key, "v", plain()).await;
        assert_eq!(text(ns, key).await.as_deref(), Some("v"), "{key:?} is an ordinary key");
    }
}

pub async fn put_accepts_512_byte_keys_and_rejects_longer(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    // Lengths are UTF-8 bytes, not characters.
    let longest = "é".repeat(256); // 512 bytes
    put(ns, &longest, "v", plain()).await;
    assert_eq!(text(ns, &longest).await.as_deref(), Some("v"));
    let too_long = "€".repeat(171); // 513 bytes, 171 characters
    assert_too_large(ns.put(&too_long, Bytes::from_static(b"v"), plain()).await, "key", 513);
    assert_too_large(ns.put(&"k".repeat(1000), Bytes::from_static(b"v"), plain()).await, "key", 1000);
}

pub async fn put_accepts_25_mib_values_and_rejects_larger(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    ns.put("largest", Bytes::from(vec![7u8; 25 * MIB]), plain()).await.unwrap();
    let stream = ns.get_stream("largest", no_get()).await.unwrap().expect("the value exists");
    assert_eq!(stream.size(), (25 * MIB) as u64);
    assert_eq!(collect(stream).await.len(), 25 * MIB);
    let result = ns.put("too-large", Bytes::from(vec![7u8; 25 * MIB + 1]), plain()).await;
    assert_too_large(result, "value", 25 * MIB + 1);
    assert_eq!(ns.get("too-large", no_get()).await.unwrap(), None);
}

pub async fn put_accepts_1024_bytes_of_metadata_and_rejects_more(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    // A JSON string of n characters serializes to n + 2 bytes (its quotes).
    let largest = json!("m".repeat(1022));
    put(ns, "k", "v", with_metadata(largest.clone())).await;
    let got = ns.get_with_metadata("k", no_get()).await.unwrap().expect("the key exists");
    assert_eq!(got.metadata, Some(largest));
    let too_large = ns.put("k2", Bytes::from_static(b"v"), with_metadata(json!("m".repeat(1023)))).await;
    assert_too_large(too_large, "metadata", 1025);
    let nested = json!({"tags": vec!["0123456789"; 100]}); // 1310 bytes
    assert!(matches!(
        ns.put("k3", Bytes::from_static(b"v"), with_metadata(nested)).await,
        Err(Error::TooLarge { field: "metadata", .. })
    ));
}

pub async fn put_rejects_an_expiration_less_than_60_seconds_ahead(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    let now = kv.clock.now_secs();
    for expiration in [now + 59, now + 1, now, now - 3600, 0] {
        let result = ns.put("k", Bytes::from_static(b"v"), at(expiration)).await;
        assert_invalid(result, "expiration");
    }
    assert_eq!(ns.get("k", no_get()).await.unwrap(), None);
    put(ns, "k", "v", at(now + 60)).await;
    assert_eq!(text(ns, "k").await.as_deref(), Some("v"));
}

pub async fn put_rejects_an_expiration_ttl_under_60_seconds(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    for secs in [0, 1, 59] {
        assert_invalid(ns.put("k", Bytes::from_static(b"v"), ttl(secs)).await, "expiration_ttl");
    }
    assert_eq!(ns.get("k", no_get()).await.unwrap(), None);
    put(ns, "k", "v", ttl(60)).await;
    assert_eq!(text(ns, "k").await.as_deref(), Some("v"));
}

pub async fn put_rejects_both_expiration_forms(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    let both = PutOptions {
        expiration: Some((kv.clock.now_secs() + 3600) as u64),
        expiration_ttl: Some(3600),
        ..plain()
    };
    assert_invalid(ns.put("k", Bytes::from_static(b"v"), both).await, "expiration");
    assert_eq!(ns.get("k", no_get()).await.unwrap(), None);
}

pub async fn a_rejected_put_changes_nothing(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    put(ns, "k", "original", with_metadata(json!({"v": 1}))).await;
    let bad = [
        with_metadata(json!("m".repeat(2000))),
        ttl(10),
        at(kv.clock.now_secs()),
        PutOptions { expiration: Some(1), expiration_ttl: Some(120), ..plain() },
    ];
    for options in bad {
        assert!(ns.put("k", Bytes::from_static(b"replacement"), options).await.is_err());
    }
    assert!(ns.put("k", Bytes::from(vec![0u8; 25 * MIB + 1]), plain()).await.is_err());
    let got = ns.get_with_metadata("k", no_get()).await.unwrap().expect("the key still exists");
    assert_eq!(
        got,
        ValueWithMetadata { value: Bytes::from_static(b"original"), metadata: Some(json!({"v": 1})) }
    );
    assert_eq!(list(ns, ListOptions::default()).await.keys[0].expiration, None);
}

// ---------------------------------------------------------------------------------------------
// expiration: an expired key is absent from get and list

pub async fn an_expired_key_reads_as_absent(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    put(
        ns,
        "session",
        "data",
        PutOptions { expiration_ttl: Some(60), metadata: Some(json!({"u": 1})), ..plain() },
    )
    .await;
    put(ns, "forever", "data", plain()).await;
    let expiration = list(ns, ListOptions::default()).await.keys[1].expiration.expect("an expiration") as i64;

    kv.clock.set_ms(expiration * 1000 - 1);
    assert_eq!(text(ns, "session").await.as_deref(), Some("data"), "alive until its expiration");

    kv.clock.set_ms(expiration * 1000);
    assert_eq!(ns.get("session", no_get()).await.unwrap(), None);
    assert_eq!(ns.get_text("session", no_get()).await.unwrap(), None);
    assert_eq!(ns.get_with_metadata("session", no_get()).await.unwrap(), None);
    assert!(ns.get_stream("session", no_get()).await.unwrap().is_none());
    let many = ns.get_many(&["session", "forever"], no_get()).await.unwrap();
    assert_eq!(many["session"], None);
    assert_eq!(many["forever"], Some(Bytes::from_static(b"data")));
}

pub async fn an_expired_key_is_not_listed(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    put(ns, "a:forever", "v", plain()).await;
    put(ns, "a:short", "v", ttl(60)).await;
    put(ns, "a:long", "v", ttl(600)).await;
    assert_eq!(list_all(ns, None, None).await, ["a:forever", "a:long", "a:short"]);

    kv.clock.advance(std::time::Duration::from_secs(61));
    assert_eq!(list_all(ns, None, None).await, ["a:forever", "a:long"]);
    assert_eq!(list_all(ns, Some("a:s"), None).await, Vec::<String>::new());
    assert_eq!(list_all(ns, None, Some(1)).await, ["a:forever", "a:long"]);

    kv.clock.advance(std::time::Duration::from_secs(600));
    let page = list(ns, ListOptions::default()).await;
    assert_eq!(page.keys.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["a:forever"]);
    assert!(page.list_complete);
}

pub async fn an_absolute_expiration_is_honoured(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    let expiration = kv.clock.now_secs() + 120;
    put(ns, "k", "v", at(expiration)).await;
    kv.clock.set_ms(expiration * 1000 - 1);
    assert_eq!(text(ns, "k").await.as_deref(), Some("v"));
    kv.clock.set_ms(expiration * 1000);
    assert_eq!(text(ns, "k").await, None);
}

pub async fn list_reports_expirations_in_epoch_seconds(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    let now = kv.clock.now_secs();
    put(ns, "absolute", "v", at(now + 7200)).await;
    put(ns, "none", "v", plain()).await;
    put(ns, "ttl", "v", ttl(900)).await;
    let page = list(ns, ListOptions::default()).await;
    let expirations: Vec<_> = page.keys.iter().map(|k| (k.name.as_str(), k.expiration)).collect();
    assert_eq!(
        expirations,
        [("absolute", Some((now + 7200) as u64)), ("none", None), ("ttl", Some((now + 900) as u64))]
    );
}

pub async fn re_putting_with_a_ttl_slides_the_expiration(kv: KvUnderTest) {
    // The sessions binding's 15-minute sliding TTL: every request re-puts the session.
    let ns = &*kv.namespace;
    let start = kv.clock.now_ms();
    put(ns, "session", "s", ttl(900)).await;
    kv.clock.set_ms(start + 600_000);
    put(ns, "session", "s", ttl(900)).await;
    kv.clock.set_ms(start + 1_000_000);
    assert_eq!(text(ns, "session").await.as_deref(), Some("s"), "the second put extended the expiration");
    kv.clock.set_ms(start + 1_501_000);
    assert_eq!(text(ns, "session").await, None);
}

pub async fn an_expired_key_can_be_put_again(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    put(ns, "k", "old", ttl(60)).await;
    kv.clock.advance(std::time::Duration::from_secs(120));
    assert_eq!(text(ns, "k").await, None);
    put(ns, "k", "new", plain()).await;
    assert_eq!(text(ns, "k").await.as_deref(), Some("new"));
    let page = list(ns, ListOptions::default()).await;
    assert_eq!(page.keys.len(), 1);
    assert_eq!(page.keys[0].expiration, None);
}

// ---------------------------------------------------------------------------------------------
// delete: an absent key succeeds

pub async fn delete_of_an_absent_key_succeeds(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    ns.delete("never-put").await.unwrap();
    put(ns, "k", "v", plain()).await;
    ns.delete("k").await.unwrap();
    ns.delete("k").await.unwrap();
}

pub async fn delete_removes_the_key_from_get_and_list(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    put(ns, "a", "1", plain()).await;
    put(ns, "b", "2", with_metadata(json!({"m": true}))).await;
    ns.delete("b").await.unwrap();
    assert_eq!(ns.get("b", no_get()).await.unwrap(), None);
    assert_eq!(ns.get_with_metadata("b", no_get()).await.unwrap(), None);
    assert_eq!(list_all(ns, None, None).await, ["a"]);
}

// ---------------------------------------------------------------------------------------------
// list: byte order, limit ≤ 1000, cursor, list_complete authoritative

pub async fn list_is_in_utf8_byte_order(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    // U+FF61 (EF BD A1) sorts before U+1F600 (F0 9F 98 80) in UTF-8 but after it in UTF-16.
    let mut keys = ["z", "a", "B", "é", "e", "€", "\u{FF61}", "😀", "a-", "a0", "aa", "~", "A"];
    for key in keys {
        put(ns, key, "v", plain()).await;
    }
    keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(list_all(ns, None, None).await, keys);
    assert_eq!(list_all(ns, None, Some(2)).await, keys, "the order holds across pages");
}

pub async fn list_defaults_to_pages_of_1000_keys(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    let puts = (0..1001).map(|i| async move {
        ns.put(&format!("key-{i:04}"), Bytes::from_static(b"v"), plain()).await.expect("put")
    });
    futures::future::join_all(puts).await;
    let first = list(ns, ListOptions::default()).await;
    assert_eq!(first.keys.len(), 1000);
    assert!(!first.list_complete);
    assert_eq!(first.keys[999].name, "key-0999");
    let rest = list(ns, ListOptions { cursor: first.cursor, ..ListOptions::default() }).await;
    assert_eq!(rest.keys.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["key-1000"]);
    assert!(rest.list_complete);
    assert_eq!(rest.cursor, None);
}

pub async fn list_rejects_a_limit_of_0_or_over_1000(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    put(ns, "k", "v", plain()).await;
    for limit in [0, 1001, usize::MAX] {
        assert_invalid(ns.list(ListOptions { limit: Some(limit), ..ListOptions::default() }).await, "limit");
    }
    let page = list(ns, ListOptions { limit: Some(1000), ..ListOptions::default() }).await;
    assert_eq!(page.keys.len(), 1);
}

pub async fn list_cursor_pages_through_every_key_once(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    let keys: Vec<String> = (0..25).map(|i| format!("k{i:02}")).collect();
    for key in &keys {
        put(ns, key, "v", plain()).await;
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page =
            list(ns, ListOptions { limit: Some(7), cursor: cursor.take(), ..ListOptions::default() }).await;
        pages += 1;
        assert!(page.keys.len() <= 7);
        seen.extend(page.keys.into_iter().map(|k| k.name));
        if page.list_complete {
            assert_eq!(page.cursor, None);
            break;
        }
        cursor = Some(page.cursor.expect("an incomplete page has a cursor"));
        assert!(pages < 100, "paging never ends");
    }
    assert_eq!(seen, keys, "every key exactly once, in order");
}

pub async fn list_complete_is_authoritative(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    let empty = list(ns, ListOptions::default()).await;
    assert!(empty.keys.is_empty() && empty.list_complete && empty.cursor.is_none(), "{empty:?}");

    let keys = ["a", "b", "c", "d", "e"];
    for key in keys {
        put(ns, key, "v", plain()).await;
    }
    // Page sizes below, at and above the number of keys (exactly `limit` keys is the edge case):
    // a page may claim completeness only once every key has been returned.
    for limit in 1..=6 {
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page =
                list(ns, ListOptions { limit: Some(limit), cursor: cursor.take(), ..ListOptions::default() })
                    .await;
            seen.extend(page.keys.into_iter().map(|k| k.name));
            if page.list_complete {
                assert_eq!(page.cursor, None, "limit {limit}: a complete page has no cursor");
                break;
            }
            cursor = Some(page.cursor.expect("an incomplete page has a cursor"));
            assert!(seen.len() <= keys.len(), "limit {limit}: paging never ends");
        }
        assert_eq!(seen, keys, "limit {limit}: list_complete was true before every key was listed");
    }
}

pub async fn list_filters_by_prefix(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    for key in ["user:", "user:1", "user:2", "user;", "users", "use", "a", "üser:1", "ü", "üb"] {
        put(ns, key, "v", plain()).await;
    }
    assert_eq!(list_all(ns, Some("user:"), None).await, ["user:", "user:1", "user:2"]);
    assert_eq!(list_all(ns, Some("ü"), None).await, ["ü", "üb", "üser:1"]);
    assert_eq!(list_all(ns, Some(""), None).await.len(), 10);
    assert_eq!(list_all(ns, Some("nothing"), None).await, Vec::<String>::new());
}

pub async fn list_pages_within_a_prefix(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    for i in 0..10 {
        put(ns, &format!("org:1:{i}"), "v", plain()).await;
        put(ns, &format!("org:2:{i}"), "v", plain()).await;
    }
    let expected: Vec<String> = (0..10).map(|i| format!("org:2:{i}")).collect();
    assert_eq!(list_all(ns, Some("org:2:"), Some(3)).await, expected);
}

pub async fn list_rejects_a_cursor_it_did_not_issue(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    for cursor in ["not a cursor!", "xyz"] {
        let result = ns.list(ListOptions { cursor: Some(cursor.to_owned()), ..ListOptions::default() }).await;
        assert_invalid(result, "cursor");
    }
}

pub async fn list_reports_metadata(kv: KvUnderTest) {
    let ns = &*kv.namespace;
    put(ns, "with", "v", with_metadata(json!({"lang": "rust", "lines": [1, 20]}))).await;
    put(ns, "without", "v", plain()).await;
    let page = list(ns, ListOptions::default()).await;
    assert_eq!(page.keys[0].name, "with");
    assert_eq!(page.keys[0].metadata, Some(json!({"lang": "rust", "lines": [1, 20]})));
    assert_eq!(page.keys[1].name, "without");
    assert_eq!(page.keys[1].metadata, None);
}

pub async fn namespaces_are_isolated(kv: KvUnderTest) {
    let (ns, sibling) = (&*kv.namespace, &*kv.sibling);
    put(ns, "shared-name", "mine", plain()).await;
    assert_eq!(text(sibling, "shared-name").await, None);
    assert!(list(sibling, ListOptions::default()).await.keys.is_empty());
    put(sibling, "shared-name", "theirs", plain()).await;
    sibling.delete("shared-name").await.unwrap();
    assert_eq!(text(ns, "shared-name").await.as_deref(), Some("mine"));
    assert_eq!(list_all(ns, None, None).await, ["shared-name"]);
}
