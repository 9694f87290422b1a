//! The conformance suite for durable objects: every storage driver runs these cases through the
//! host, so a driver passes when objects behave as `bindings.md` §4 says on top of it.
//!
//! A driver provides a [`StorageFixture`]: a fresh, empty store whose [`StorageFixture::open`] can
//! be called again to open a second handle on the same data (as a restarted process would). Then
//!
//! ```text
//! ledge_durable::durable_object_conformance!(async { MyFixture::new().await });
//! ```
//!
//! expands to one `#[tokio::test]` per case (the calling crate needs `tokio` with `macros` and
//! `rt-multi-thread`). The cases, by row of the §7 checklist:
//!
//! | row | cases |
//! |---|---|
//! | ids | `ids_from_the_same_name_are_equal`, `unique_ids_are_distinct`, `ids_round_trip_through_their_string_form`, `invalid_id_strings_are_refused`, `a_stub_does_no_io_and_the_first_call_creates_the_object` |
//! | ordering | `calls_on_one_stub_arrive_in_order`, `concurrent_increments_through_many_stubs_lose_no_update` (one instance per id) |
//! | input gate | `concurrent_increments_through_many_stubs_lose_no_update` |
//! | output gate | `the_reply_waits_until_the_write_is_durable`, `a_failed_write_resets_the_object`, `the_writes_of_one_event_commit_together`, `an_event_reads_its_own_writes`, `handler_errors_reach_the_caller_and_keep_earlier_writes` |
//! | storage | `batches_take_at_most_128_keys`, `entries_over_the_size_limit_are_refused`, `get_many_leaves_out_missing_keys`, `delete_reports_whether_keys_existed`, `list_is_in_byte_order`, `list_honours_bounds_prefix_and_limit`, `objects_and_namespaces_do_not_share_storage` |
//! | transactions | `transactions_roll_back_on_error` |
//! | delete_all | `delete_all_clears_data_and_keeps_the_alarm` |
//! | alarms | `an_object_has_one_alarm_and_set_replaces_it`, `an_alarm_in_the_past_fires_at_once`, `a_replaced_alarm_fires_only_at_its_new_time`, `failing_alarms_are_retried_with_backoff_and_their_count`, `an_alarm_that_recovers_stops_retrying` |
//! | eviction | `eviction_drops_memory_keeps_storage_and_reruns_the_constructor`, `an_alarm_wakes_an_evicted_object` |
//! | restart | `alarms_survive_a_host_restart`, `shutdown_finishes_accepted_events_and_refuses_new_calls` |

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::storage::{epoch_ms, from_epoch_ms};
use crate::{
    AlarmRecord, BackendError, DurableHost, DurableObject, DurableStorage, Error, HostConfig, HostRun,
    ListOptions, Namespace, ObjectAddress, ObjectContext, ObjectError, ObjectErrorKind, ObjectId, Storage,
    Stub, TxnFuture, WriteBatch,
};

/// A fresh store for one case. Each [`open`](StorageFixture::open) returns a new handle over the
/// same data, as a restarted process would get.
#[async_trait]
pub trait StorageFixture: Send + Sync + 'static {
    async fn open(&self) -> Arc<dyn DurableStorage>;
}

/// Expands to one `#[tokio::test]` per conformance case, each with a fresh fixture from `$fixture`
/// (an expression of a future resolving to a [`StorageFixture`]).
#[macro_export]
macro_rules! durable_object_conformance {
    ($fixture:expr) => {
        $crate::durable_object_conformance!(@cases $fixture;
            ids_from_the_same_name_are_equal,
            unique_ids_are_distinct,
            ids_round_trip_through_their_string_form,
            invalid_id_strings_are_refused,
            a_stub_does_no_io_and_the_first_call_creates_the_object,
            calls_on_one_stub_arrive_in_order,
            concurrent_increments_through_many_stubs_lose_no_update,
            the_reply_waits_until_the_write_is_durable,
            a_failed_write_resets_the_object,
            the_writes_of_one_event_commit_together,
            an_event_reads_its_own_writes,
            handler_errors_reach_the_caller_and_keep_earlier_writes,
            batches_take_at_most_128_keys,
            entries_over_the_size_limit_are_refused,
            get_many_leaves_out_missing_keys,
            delete_reports_whether_keys_existed,
            list_is_in_byte_order,
            list_honours_bounds_prefix_and_limit,
            objects_and_namespaces_do_not_share_storage,
            transactions_roll_back_on_error,
            delete_all_clears_data_and_keeps_the_alarm,
            an_object_has_one_alarm_and_set_replaces_it,
            an_alarm_in_the_past_fires_at_once,
            a_replaced_alarm_fires_only_at_its_new_time,
            failing_alarms_are_retried_with_backoff_and_their_count,
            an_alarm_that_recovers_stops_retrying,
            eviction_drops_memory_keeps_storage_and_reruns_the_constructor,
            an_alarm_wakes_an_evicted_object,
            alarms_survive_a_host_restart,
            shutdown_finishes_accepted_events_and_refuses_new_calls,
        );
    };
    (@cases $fixture:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture = $fixture.await;
                $crate::conformance::$case(fixture).await;
            }
        )*
    };
}

// ---------------------------------------------------------------------------------------------
// A storage wrapper that injects failures and delays, and counts what reaches the driver.

/// Wraps a driver to fail or delay commits on demand and count the calls that reach it.
pub struct FaultyStorage {
    inner: Arc<dyn DurableStorage>,
    failing_commits: AtomicUsize,
    commit_delay_ms: AtomicU64,
    commits: AtomicUsize,
    object_calls: AtomicUsize,
}

impl FaultyStorage {
    pub fn new(inner: Arc<dyn DurableStorage>) -> Arc<FaultyStorage> {
        Arc::new(FaultyStorage {
            inner,
            failing_commits: AtomicUsize::new(0),
            commit_delay_ms: AtomicU64::new(0),
            commits: AtomicUsize::new(0),
            object_calls: AtomicUsize::new(0),
        })
    }

    /// The next `n` commits fail without reaching the driver.
    pub fn fail_next_commits(&self, n: usize) {
        self.failing_commits.store(n, Ordering::SeqCst);
    }

    /// Every commit waits this long before reaching the driver.
    pub fn delay_commits(&self, delay: Duration) {
        self.commit_delay_ms.store(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// Commits the driver completed successfully.
    pub fn commits(&self) -> usize {
        self.commits.load(Ordering::SeqCst)
    }

    /// Calls about one object (get, list, get_alarm, commit) that reached this wrapper.
    pub fn object_calls(&self) -> usize {
        self.object_calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl DurableStorage for FaultyStorage {
    async fn get(
        &self,
        object: &ObjectAddress,
        keys: Vec<String>,
    ) -> Result<Vec<Option<Vec<u8>>>, BackendError> {
        self.object_calls.fetch_add(1, Ordering::SeqCst);
        self.inner.get(object, keys).await
    }

    async fn list(
        &self,
        object: &ObjectAddress,
        options: &ListOptions,
    ) -> Result<Vec<(String, Vec<u8>)>, BackendError> {
        self.object_calls.fetch_add(1, Ordering::SeqCst);
        self.inner.list(object, options).await
    }

    async fn get_alarm(&self, object: &ObjectAddress) -> Result<Option<AlarmRecord>, BackendError> {
        self.object_calls.fetch_add(1, Ordering::SeqCst);
        self.inner.get_alarm(object).await
    }

    async fn commit(&self, object: &ObjectAddress, batch: WriteBatch) -> Result<(), BackendError> {
        self.object_calls.fetch_add(1, Ordering::SeqCst);
        let delay = self.commit_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let failing =
            self.failing_commits.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if failing.is_ok() {
            return Err(BackendError::msg("injected commit failure"));
        }
        self.inner.commit(object, batch).await?;
        self.commits.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn pending_alarms(&self, namespace: &str) -> Result<Vec<(ObjectId, AlarmRecord)>, BackendError> {
        self.inner.pending_alarms(namespace).await
    }
}

// ---------------------------------------------------------------------------------------------
// The object class the cases drive.

/// One storage operation of a probe request.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Op {
    Get(String),
    GetMany(Vec<String>),
    Put(String, Value),
    PutMany(Vec<(String, Value)>),
    Delete(String),
    DeleteMany(Vec<String>),
    List(ListOptions),
    DeleteAll,
    /// Read-modify-write with awaits in between.
    Increment(String),
    SetAlarm(i64),
    GetAlarm,
    DeleteAlarm,
    /// Runs `ops` in a transaction; `fail` makes it return an error after them (→ `RolledBack`).
    Txn {
        ops: Vec<Op>,
        fail: bool,
    },
    /// The handler fails here.
    Fail(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Out {
    Value(Option<Value>),
    Map(BTreeMap<String, Value>),
    Done,
    Existed(bool),
    Count(usize),
    Entries(Vec<(String, Value)>),
    Number(u64),
    Alarm(Option<i64>),
    Many(Vec<Out>),
    RolledBack,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Request {
    Ops(Vec<Op>),
    /// Bumps and returns the in-memory counter.
    Remember,
    /// Bumps the in-memory counter and stores it under the key.
    RememberAndPut(String),
    /// Appends to the in-memory sequence, awaiting storage on the way.
    Record(u64),
    Seen,
    Sleep {
        ms: u64,
        then: Vec<Op>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Response {
    Outs(Vec<Out>),
    Number(u64),
    Seen(Vec<u64>),
}

/// Storage key holding how many alarm attempts fail (attempts with `retry_count` below it).
const FAILING_ALARM_ATTEMPTS: &str = "probe:failing-alarm-attempts";

#[derive(Debug, Clone)]
struct AlarmFired {
    id: ObjectId,
    retry_count: u32,
    at_ms: i64,
    /// What `get_alarm` answered inside the handler.
    seen_alarm: Option<i64>,
    constructions: usize,
}

struct ProbeLog {
    constructions: AtomicUsize,
    fired: mpsc::UnboundedSender<AlarmFired>,
}

struct Probe {
    memory: u64,
    seen: Vec<u64>,
    log: Arc<ProbeLog>,
}

fn apply(storage: &mut Storage, op: Op) -> TxnFuture<'_, Result<Out, ObjectError>> {
    Box::pin(async move {
        Ok(match op {
            Op::Get(key) => Out::Value(storage.get(&key).await?),
            Op::GetMany(keys) => Out::Map(storage.get_many(keys).await?),
            Op::Put(key, value) => {
                storage.put(key, &value)?;
                Out::Done
            }
            Op::PutMany(entries) => {
                storage.put_many(entries)?;
                Out::Done
            }
            Op::Delete(key) => Out::Existed(storage.delete(&key).await?),
            Op::DeleteMany(keys) => Out::Count(storage.delete_many(keys).await?),
            Op::List(options) => Out::Entries(storage.list(options).await?),
            Op::DeleteAll => {
                storage.delete_all();
                Out::Done
            }
            Op::Increment(key) => {
                let n: u64 = storage.get(&key).await?.unwrap_or(0);
                tokio::task::yield_now().await;
                storage.put(key, &(n + 1))?;
                Out::Number(n + 1)
            }
            Op::SetAlarm(ms) => {
                storage.set_alarm(from_epoch_ms(ms));
                Out::Done
            }
            Op::GetAlarm => Out::Alarm(storage.get_alarm().await?.map(epoch_ms)),
            Op::DeleteAlarm => {
                storage.delete_alarm();
                Out::Done
            }
            Op::Txn { ops, fail } => {
                let outcome = storage
                    .transaction(|txn| {
                        Box::pin(async move {
                            let mut outs = Vec::new();
                            for op in ops {
                                outs.push(apply(txn, op).await?);
                            }
                            if fail { Err(ObjectError::conflict("rolled back on purpose")) } else { Ok(outs) }
                        })
                    })
                    .await;
                match outcome {
                    Ok(outs) => Out::Many(outs),
                    Err(e) if fail && e.kind == ObjectErrorKind::Conflict => Out::RolledBack,
                    Err(e) => return Err(e),
                }
            }
            Op::Fail(message) => return Err(ObjectError::conflict(message)),
        })
    })
}

#[async_trait]
impl DurableObject for Probe {
    type Request = Request;
    type Response = Response;

    async fn handle(&mut self, ctx: &mut ObjectContext, request: Request) -> Result<Response, ObjectError> {
        match request {
            Request::Ops(ops) => {
                let mut outs = Vec::new();
                for op in ops {
                    outs.push(apply(ctx.storage(), op).await?);
                }
                Ok(Response::Outs(outs))
            }
            Request::Remember => {
                self.memory += 1;
                Ok(Response::Number(self.memory))
            }
            Request::RememberAndPut(key) => {
                self.memory += 1;
                ctx.storage().put(key, &self.memory)?;
                Ok(Response::Number(self.memory))
            }
            Request::Record(seq) => {
                let _: Option<Value> = ctx.storage().get("probe:anything").await?;
                tokio::task::yield_now().await;
                self.seen.push(seq);
                Ok(Response::Number(seq))
            }
            Request::Seen => Ok(Response::Seen(self.seen.clone())),
            Request::Sleep { ms, then } => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                let mut outs = Vec::new();
                for op in then {
                    outs.push(apply(ctx.storage(), op).await?);
                }
                Ok(Response::Outs(outs))
            }
        }
    }

    async fn alarm(&mut self, ctx: &mut ObjectContext, retry_count: u32) -> Result<(), ObjectError> {
        let seen_alarm = ctx.get_alarm().await?.map(epoch_ms);
        let _ = self.log.fired.send(AlarmFired {
            id: ctx.id(),
            retry_count,
            at_ms: ledge_sqlite::now_ms(),
            seen_alarm,
            constructions: self.log.constructions.load(Ordering::SeqCst),
        });
        let failing: u32 = ctx.storage().get(FAILING_ALARM_ATTEMPTS).await?.unwrap_or(0);
        if retry_count < failing {
            return Err(ObjectError::internal("failing on purpose"));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Harness.

const PROBES: &str = "PROBES";
/// How long a case waits for something that must happen before it fails.
const PATIENCE: Duration = Duration::from_secs(10);

fn test_config() -> HostConfig {
    HostConfig { alarm_retry_base: Duration::from_millis(10), ..HostConfig::default() }
}

struct Harness {
    host: DurableHost,
    run: HostRun,
    probes: Namespace<Probe>,
    log: Arc<ProbeLog>,
    fired: mpsc::UnboundedReceiver<AlarmFired>,
}

fn register(
    host: &DurableHost,
    name: &str,
) -> (Namespace<Probe>, Arc<ProbeLog>, mpsc::UnboundedReceiver<AlarmFired>) {
    let (tx, fired) = mpsc::unbounded_channel();
    let log = Arc::new(ProbeLog { constructions: AtomicUsize::new(0), fired: tx });
    let for_factory = log.clone();
    let namespace = host
        .namespace(name, move |_id| {
            for_factory.constructions.fetch_add(1, Ordering::SeqCst);
            Probe { memory: 0, seen: Vec::new(), log: for_factory.clone() }
        })
        .expect("register the probe namespace");
    (namespace, log, fired)
}

fn start(storage: Arc<dyn DurableStorage>, config: HostConfig) -> Harness {
    let host = DurableHost::new(storage, config);
    let (probes, log, fired) = register(&host, PROBES);
    let run = host.start(std::future::pending()).expect("start the host");
    Harness { host, run, probes, log, fired }
}

impl Harness {
    fn constructions(&self) -> usize {
        self.log.constructions.load(Ordering::SeqCst)
    }

    async fn next_alarm(&mut self) -> AlarmFired {
        tokio::time::timeout(PATIENCE, self.fired.recv())
            .await
            .expect("an alarm should have fired")
            .expect("the alarm log is open")
    }

    async fn no_alarm_for(&mut self, quiet: Duration) {
        no_alarm_for(&mut self.fired, quiet).await;
    }
}

async fn no_alarm_for(fired: &mut mpsc::UnboundedReceiver<AlarmFired>, quiet: Duration) {
    if let Ok(Some(fired)) = tokio::time::timeout(quiet, fired.recv()).await {
        panic!("no alarm should have fired, got {fired:?}");
    }
}

async fn call(stub: &Stub<Probe>, ops: Vec<Op>) -> Result<Vec<Out>, Error> {
    match stub.call(Request::Ops(ops)).await? {
        Response::Outs(outs) => Ok(outs),
        other => panic!("unexpected response {other:?}"),
    }
}

async fn ok(stub: &Stub<Probe>, ops: Vec<Op>) -> Vec<Out> {
    call(stub, ops).await.expect("the call should succeed")
}

async fn one(stub: &Stub<Probe>, op: Op) -> Out {
    ok(stub, vec![op]).await.remove(0)
}

async fn number(stub: &Stub<Probe>, request: Request) -> u64 {
    match stub.call(request).await.expect("the call should succeed") {
        Response::Number(n) => n,
        other => panic!("unexpected response {other:?}"),
    }
}

fn put(key: &str, value: Value) -> Op {
    Op::Put(key.into(), value)
}

fn get(key: &str) -> Op {
    Op::Get(key.into())
}

fn keys(names: &[&str]) -> Vec<String> {
    names.iter().map(|k| k.to_string()).collect()
}

fn entries(out: Out) -> Vec<String> {
    match out {
        Out::Entries(entries) => entries.into_iter().map(|(k, _)| k).collect(),
        other => panic!("expected entries, got {other:?}"),
    }
}

fn assert_object_error(result: Result<Vec<Out>, Error>, kind: ObjectErrorKind) {
    match result {
        Err(Error::Object(e)) => assert_eq!(e.kind, kind, "{e}"),
        other => panic!("expected an object error of kind {kind:?}, got {other:?}"),
    }
}

fn address(id: ObjectId) -> ObjectAddress {
    ObjectAddress { namespace: Arc::from(PROBES), id }
}

fn in_ms(delta: i64) -> i64 {
    ledge_sqlite::now_ms() + delta
}

// ---------------------------------------------------------------------------------------------
// ids

/// Same name, same id (and same object); different name or namespace, different id.
pub async fn ids_from_the_same_name_are_equal<F: StorageFixture>(fixture: F) {
    let h = start(fixture.open().await, test_config());
    let id = h.probes.id_from_name("repo:42");
    assert_eq!(id, h.probes.id_from_name("repo:42"));
    assert_ne!(id, h.probes.id_from_name("repo:43"));
    let (others, _, _) = register(&h.host, "OTHERS");
    assert_ne!(others.id_from_name("repo:42"), id, "ids are per namespace");

    ok(&h.probes.stub(id), vec![put("k", json!("v"))]).await;
    let again = h.probes.stub_for_name("repo:42");
    assert_eq!(one(&again, get("k")).await, Out::Value(Some(json!("v"))));
    h.run.shutdown().await;
}

/// Unique ids never collide, with each other or with named ids, and name separate objects.
pub async fn unique_ids_are_distinct<F: StorageFixture>(fixture: F) {
    let h = start(fixture.open().await, test_config());
    let ids: HashSet<ObjectId> = (0..1000).map(|_| h.probes.new_unique_id()).collect();
    assert_eq!(ids.len(), 1000);
    let mut two = ids.iter().take(2);
    let (a, b) = (h.probes.stub(*two.next().unwrap()), h.probes.stub(*two.next().unwrap()));
    ok(&a, vec![put("k", json!(1))]).await;
    assert_eq!(one(&b, get("k")).await, Out::Value(None));
    h.run.shutdown().await;
}

/// An id's string form parses back to the same id, which reaches the same object.
pub async fn ids_round_trip_through_their_string_form<F: StorageFixture>(fixture: F) {
    let h = start(fixture.open().await, test_config());
    for id in [h.probes.id_from_name("chat:7"), h.probes.new_unique_id()] {
        let text = id.to_string();
        assert_eq!(text.len(), 64);
        assert!(text.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)), "{text}");
        assert_eq!(h.probes.id_from_string(&text).expect("parse own id"), id);
    }
    let id = h.probes.new_unique_id();
    ok(&h.probes.stub(id), vec![put("k", json!(7))]).await;
    let parsed = h.probes.id_from_string(&id.to_string()).expect("parse");
    assert_eq!(one(&h.probes.stub(parsed), get("k")).await, Out::Value(Some(json!(7))));
    h.run.shutdown().await;
}

/// Malformed text, a mistyped digit or another namespace's id is refused.
pub async fn invalid_id_strings_are_refused<F: StorageFixture>(fixture: F) {
    let h = start(fixture.open().await, test_config());
    let good = h.probes.id_from_name("x").to_string();
    let mut flipped = good.clone().into_bytes();
    flipped[10] = if flipped[10] == b'a' { b'b' } else { b'a' };
    let flipped = String::from_utf8(flipped).expect("ascii");
    let (others, _, _) = register(&h.host, "OTHERS");
    let foreign = others.id_from_name("x").to_string();
    let too_long = format!("{good}0");
    let not_hex = "z".repeat(64);
    for bad in ["", "abc", &good[..63], &too_long, &not_hex, &flipped, &foreign] {
        match h.probes.id_from_string(bad) {
            Err(Error::InvalidId { .. }) => {}
            other => panic!("{bad:?} should be refused, got {other:?}"),
        }
    }
    h.run.shutdown().await;
}

/// Getting a stub touches nothing; the first call constructs the object.
pub async fn a_stub_does_no_io_and_the_first_call_creates_the_object<F: StorageFixture>(fixture: F) {
    let storage = FaultyStorage::new(fixture.open().await);
    let h = start(storage.clone(), test_config());
    let stub = h.probes.stub(h.probes.id_from_name("lazy"));
    let _another = h.probes.stub(h.probes.new_unique_id());
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(storage.object_calls(), 0, "a stub does no I/O");
    assert_eq!(h.constructions(), 0, "no object before the first call");
    assert_eq!(number(&stub, Request::Remember).await, 1);
    assert_eq!(h.constructions(), 1);
    h.run.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// ordering and the input gate

/// Calls made on one stub are delivered in the order they were made, even when their futures
/// are awaited in another order.
pub async fn calls_on_one_stub_arrive_in_order<F: StorageFixture>(fixture: F) {
    let h = start(fixture.open().await, test_config());
    let stub = h.probes.stub(h.probes.id_from_name("ordered"));
    let calls: Vec<_> = (0..200).map(|i| stub.call(Request::Record(i))).collect();
    for (i, pending) in calls.into_iter().enumerate().rev() {
        assert_eq!(pending.await.expect("record"), Response::Number(i as u64));
    }
    let seen = stub.call(Request::Seen).await.expect("seen");
    assert_eq!(seen, Response::Seen((0..200).collect()));
    h.run.shutdown().await;
}

/// Many tasks, each with its own stub of one id, increment a stored counter with awaits between
/// read and write: no update is lost, every increment sees a distinct value, and one instance ran.
pub async fn concurrent_increments_through_many_stubs_lose_no_update<F: StorageFixture>(fixture: F) {
    let h = start(fixture.open().await, test_config());
    let (tasks, per_task) = (20u64, 10u64);
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let probes = h.probes.clone();
        handles.push(tokio::spawn(async move {
            let stub = probes.stub(probes.id_from_name("counter"));
            let mut seen = Vec::new();
            for _ in 0..per_task {
                match one(&stub, Op::Increment("n".into())).await {
                    Out::Number(n) => seen.push(n),
                    other => panic!("unexpected {other:?}"),
                }
            }
            seen
        }));
    }
    let mut all = Vec::new();
    for handle in handles {
        all.extend(handle.await.expect("task"));
    }
    all.sort_unstable();
    assert_eq!(all, (1..=tasks * per_task).collect::<Vec<_>>(), "every increment saw a distinct value");
    let stub = h.probes.stub_for_name("counter");
    assert_eq!(one(&stub, get("n")).await, Out::Value(Some(json!(tasks * per_task))));
    assert_eq!(h.constructions(), 1, "one instance per id");
    h.run.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// the output gate

/// The reply comes only after the commit finished, and a second handle on the store sees the value.
pub async fn the_reply_waits_until_the_write_is_durable<F: StorageFixture>(fixture: F) {
    let storage = FaultyStorage::new(fixture.open().await);
    storage.delay_commits(Duration::from_millis(150));
    let h = start(storage.clone(), test_config());
    let id = h.probes.id_from_name("gate");
    let started = Instant::now();
    ok(&h.probes.stub(id), vec![put("k", json!("durable"))]).await;
    assert!(started.elapsed() >= Duration::from_millis(150), "the reply waited for the commit");
    assert_eq!(storage.commits(), 1, "the commit completed before the reply");

    let reopened = fixture.open().await;
    let stored = reopened.get(&address(id), keys(&["k"])).await.expect("read back");
    let value: Value = serde_json::from_slice(stored[0].as_deref().expect("stored")).expect("json");
    assert_eq!(value, json!("durable"));
    h.run.shutdown().await;
}

/// A failed commit fails the call, stores nothing of the event, and resets the object: its
/// in-memory state is gone and the constructor runs again.
pub async fn a_failed_write_resets_the_object<F: StorageFixture>(fixture: F) {
    let storage = FaultyStorage::new(fixture.open().await);
    let h = start(storage.clone(), test_config());
    let stub = h.probes.stub(h.probes.id_from_name("fragile"));
    assert_eq!(number(&stub, Request::Remember).await, 1);
    assert_eq!(number(&stub, Request::Remember).await, 2, "memory lives while the object does");
    storage.fail_next_commits(1);
    match stub.call(Request::RememberAndPut("k".into())).await {
        Err(Error::WriteFailed(_)) => {}
        other => panic!("a failed commit must fail the call, got {other:?}"),
    }
    assert_eq!(number(&stub, Request::Remember).await, 1, "in-memory state was reset");
    assert_eq!(h.constructions(), 2, "the constructor ran again");
    assert_eq!(one(&stub, get("k")).await, Out::Value(None), "nothing of the failed event is stored");
    h.run.shutdown().await;
}

/// All writes of one event reach storage in one commit; if it fails, none of them is stored; an
/// event that only reads commits nothing.
pub async fn the_writes_of_one_event_commit_together<F: StorageFixture>(fixture: F) {
    let storage = FaultyStorage::new(fixture.open().await);
    let h = start(storage.clone(), test_config());
    let stub = h.probes.stub(h.probes.id_from_name("atomic"));
    ok(&stub, vec![put("x", json!(0))]).await;
    let before = storage.commits();
    ok(
        &stub,
        vec![
            put("a", json!(1)),
            put("b", json!(2)),
            Op::PutMany(vec![("c".into(), json!(3)), ("d".into(), json!(4))]),
            Op::Delete("x".into()),
            Op::SetAlarm(in_ms(3_600_000)),
        ],
    )
    .await;
    assert_eq!(storage.commits(), before + 1, "one commit per event");
    ok(&stub, vec![get("a"), Op::List(ListOptions::new())]).await;
    assert_eq!(storage.commits(), before + 1, "a read-only event commits nothing");

    storage.fail_next_commits(1);
    assert!(matches!(
        call(&stub, vec![put("e", json!(5)), put("f", json!(6))]).await,
        Err(Error::WriteFailed(_))
    ));
    let outs = ok(&stub, vec![get("e"), get("f"), get("a"), get("x")]).await;
    assert_eq!(outs, vec![Out::Value(None), Out::Value(None), Out::Value(Some(json!(1))), Out::Value(None)]);
    h.run.shutdown().await;
}

/// Within an event, reads (get, get_many, list) see the event's own puts and deletes.
pub async fn an_event_reads_its_own_writes<F: StorageFixture>(fixture: F) {
    let h = start(fixture.open().await, test_config());
    let stub = h.probes.stub(h.probes.id_from_name("ryw"));
    ok(&stub, vec![Op::PutMany((1..=5).map(|i| (format!("k{i}"), json!(i))).collect())]).await;
    let outs = ok(
        &stub,
        vec![
            put("a", json!(1)),
            get("a"),
            Op::Delete("a".into()),
            get("a"),
            Op::Delete("k2".into()),
            put("k6", json!(6)),
            Op::GetMany(keys(&["k1", "k2", "k6"])),
            Op::List(ListOptions::new().prefix("k").limit(3)),
            Op::List(ListOptions::new().prefix("k").reverse().limit(2)),
            Op::DeleteAll,
            get("k1"),
            Op::List(ListOptions::new()),
            put("z", json!(26)),
            Op::List(ListOptions::new()),
        ],
    )
    .await;
    assert_eq!(outs[1], Out::Value(Some(json!(1))));
    assert_eq!(outs[2], Out::Existed(true));
    assert_eq!(outs[3], Out::Value(None));
    assert_eq!(outs[4], Out::Existed(true));
    assert_eq!(outs[6], Out::Map(BTreeMap::from([("k1".into(), json!(1)), ("k6".into(), json!(6))])));
    assert_eq!(entries(outs[7].clone()), keys(&["k1", "k3", "k4"]));
    assert_eq!(entries(outs[8].clone()), keys(&["k6", "k5"]));
    assert_eq!(outs[10], Out::Value(None));
    assert_eq!(entries(outs[11].clone()), Vec::<String>::new());
    assert_eq!(entries(outs[13].clone()), keys(&["z"]));
    assert_eq!(
        entries(one(&stub, Op::List(ListOptions::new())).await),
        keys(&["z"]),
        "and so it was committed"
    );
    h.run.shutdown().await;
}

/// A handler's error reaches the caller as an object error; writes made before it are committed
/// (as on the edge platform; transactions are the way to undo).
pub async fn handler_errors_reach_the_caller_and_keep_earlier_writes<F: StorageFixture>(fixture: F) {
    let h = start(fixture.open().await, test_config());
    let stub = h.probes.stub(h.probes.id_from_name("failing"));
    assert_object_error(
        call(&stub, vec![put("a", json!(1)), Op::Fail("nope".into())]).await,
        ObjectErrorKind::Conflict,
    );
    assert_eq!(one(&stub, get("a")).await, Out::Value(Some(json!(1))));
    h.run.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// storage

/// get_many, put_many and delete_many take up to 128 keys; 129 is refused and writes nothing.
pub async fn batches_take_at_most_128_keys<F: StorageFixture>(fixture: F) {
    let h = start(fixture.open().await, test_config());
    let stub = h.probes.stub(h.probes.id_from_name("batches"));
    let names = |n: usize, prefix: &str| (0..n).map(|i| format!("{prefix}{i:03}")).collect::<Vec<_>>();
    let batch =
        |n: usize, prefix: &str| names(n, prefix).into_iter().map(|k| (k, json!(1))).collect::<Vec<_>>();

    ok(&stub, vec![Op::PutMany(batch(128, "k"))]).await;
    match one(&stub, Op::GetMany(names(128, "k"))).await {
        Out::Map(map) => assert_eq!(map.len(), 128),
        other => panic!("unexpected {other:?}"),
    }
    assert_object_error(call(&stub, vec![Op::GetMany(names(129, "k"))]).await, ObjectErrorKind::TooLarge);
    assert_object_error(call(&stub, vec![Op::PutMany(batch(129, "x"))]).await, ObjectErrorKind::TooLarge);
    assert_eq!(one(&stub, get("x000")).await, Out::Value(None), "a refused batch writes nothing");
    assert_object_error(call(&stub, vec![Op::DeleteMany(names(129, "k"))]).await, ObjectErrorKind::TooLarge);
    assert_eq!(one(&stub, Op::DeleteMany(names(128, "k"))).await, Out::Count(128));
    h.run.shutdown().await;
}

/// Key + encoded value may reach 2 MB (2 000 000 bytes) and not exceed it; a refused put_many
/// stores none of its entries.
pub async fn entries_over_the_size_limit_are_refused<F: StorageFixture>(fixture: F) {
    let h = start(fixture.open().await, test_config());
    let stub = h.probes.stub(h.probes.id_from_name("sizes"));
    let limit = 2_000_000;
    // Key "big" (3 bytes) + a JSON string of n characters (n + 2 bytes).
    let fitting = "x".repeat(limit - 3 - 2);
    let too_big = "x".repeat(limit - 3 - 2 + 1);
    ok(&stub, vec![put("big", json!(fitting))]).await;
    assert_object_error(call(&stub, vec![put("big", json!(too_big))]).await, ObjectErrorKind::TooLarge);
    assert_object_error(
        call(&stub, vec![Op::PutMany(vec![("small".into(), json!(1)), ("big".into(), json!(too_big))])])
            .await,
        ObjectErrorKind::TooLarge,
    );
    let outs = ok(&stub, vec![get("big"), get("small")]).await;
    assert_eq!(outs[0], Out::Value(Some(json!(fitting))), "the stored value is unchanged");
    assert_eq!(outs[1], Out::Value(None), "a refused put_many stores nothing");
    h.run.shutdown().await;
}

/// get_many returns present keys only.
pub async fn get_many_leaves_out_missing_keys<F: StorageFixture>(fixture: F) {
    let h = start(fixture.open().await, test_config());
    let stub = h.probes.stub(h.probes.id_from_name("many"));
    ok(&stub, vec![put("a", json!("A")), put("c", json!({"n": 3}))]).await;
    assert_eq!(
        one(&stub, Op::GetMany(keys(&["a", "b", "c"]))).await,
        Out::Map(BTreeMap::from([("a".into(), json!("A")), ("c".into(), json!({"n": 3}))]))
    );
    h.run.shutdown().await;
}

/// delete answers whether the key existed; delete_many counts the keys that existed.
pub async fn delete_reports_whether_keys_existed<F: StorageFixture>(fixture: F) {
    let h = start(fixture.open().await, test_config());
    let stub = h.probes.stub(h.probes.id_from_name("deletes"));
    assert_eq!(one(&stub, Op::Delete("a".into())).await, Out::Existed(false));
    ok(&stub, vec![put("a", json!(1)), put("b", json!(2))]).await;
    assert_eq!(one(&stub, Op::Delete("a".into())).await, Out::Existed(true));
    assert_eq!(one(&stub, Op::Delete("a".into())).await, Out::Existed(false));
    ok(&stub, vec![put("a", json!(1))]).await;
    assert_eq!(one(&stub, Op::DeleteMany(keys(&["a", "b", "missing", "a"]))).await, Out::Count(2));
    assert_eq!(one(&stub, Op::List(ListOptions::new())).await, Out::Entries(vec![]));
    h.run.shutdown().await;
}

/// list orders keys by their UTF-8 bytes (upper case before lower case, multi-byte characters
/// last), ascending or reversed.
pub async fn list_is_in_byte_order<F: StorageFixture>(fixture: F) {
    let h = start(fixture.open().await, test_config());
    let stub = h.probes.stub(h.probes.id_from_name("order"));
    let names = ["b", "a", "B", "ab", "aa", "a\u{0}", "é", "z", "~", "\u{7f}", "😀", "ê", "", "A"];
    ok(&stub, vec![Op::PutMany(names.iter().map(|k| (k.to_string(), json!(k))).collect())]).await;
    let mut expected: Vec<String> = names.iter().map(|k| k.to_string()).collect();
    expected.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(entries(one(&stub, Op::List(ListOptions::new())).await), expected);
    expected.reverse();
    assert_eq!(entries(one(&stub, Op::List(ListOptions::new().reverse())).await), expected);
    match one(&stub, Op::List(ListOptions::new().prefix("é"))).await {
        Out::Entries(found) => {
            assert_eq!(found, vec![("é".to_string(), json!("é"))], "values come with keys")
        }
        other => panic!("unexpected {other:?}"),
    }
    h.run.shutdown().await;
}

/// start is inclusive, start_after and end exclusive, prefix narrows, limit takes from the start
/// of the order (the high end when reversed); bad combinations are refused.
pub async fn list_honours_bounds_prefix_and_limit<F: StorageFixture>(fixture: F) {
    let h = start(fixture.open().await, test_config());
    let stub = h.probes.stub(h.probes.id_from_name("bounds"));
    let mut names: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
    names.extend(keys(&["j", "k", "ka", "l", "éa", "é", "ê"]));
    ok(&stub, vec![Op::PutMany(names.iter().map(|k| (k.clone(), json!(1))).collect())]).await;
    let list = |options: ListOptions| {
        let stub = stub.clone();
        async move { entries(one(&stub, Op::List(options)).await) }
    };
    assert_eq!(list(ListOptions::new().start("k3").end("k6")).await, keys(&["k3", "k4", "k5"]));
    assert_eq!(list(ListOptions::new().start_after("k3").end("k6")).await, keys(&["k4", "k5"]));
    assert_eq!(list(ListOptions::new().end("k")).await, keys(&["j"]));
    assert_eq!(
        list(ListOptions::new().prefix("k")).await,
        keys(&["k", "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "ka"])
    );
    assert_eq!(list(ListOptions::new().prefix("k").limit(3)).await, keys(&["k", "k0", "k1"]));
    assert_eq!(list(ListOptions::new().prefix("k").reverse().limit(2)).await, keys(&["ka", "k9"]));
    assert_eq!(
        list(ListOptions::new().start("k7").end("l").reverse()).await,
        keys(&["ka", "k9", "k8", "k7"])
    );
    assert_eq!(
        list(ListOptions::new().prefix("k").start("k5").end("k8").limit(2)).await,
        keys(&["k5", "k6"])
    );
    assert_eq!(list(ListOptions::new().prefix("é")).await, keys(&["é", "éa"]));
    assert_eq!(list(ListOptions::new().start("ka").end("ka")).await, Vec::<String>::new());

    for bad in [ListOptions::new().start("a").start_after("b"), ListOptions::new().limit(0)] {
        assert_object_error(call(&stub, vec![Op::List(bad)]).await, ObjectErrorKind::InvalidInput);
    }
    h.run.shutdown().await;
}

/// Objects — in one namespace or in two — never see each other's keys, deletes or alarms.
pub async fn objects_and_namespaces_do_not_share_storage<F: StorageFixture>(fixture: F) {
    let storage = fixture.open().await;
    let id = ObjectId::from_bytes([7; 32]);
    let (a, b) = (address(id), ObjectAddress { namespace: Arc::from("OTHERS"), id });
    let c = address(ObjectId::from_bytes([8; 32]));
    for (object, value) in [(&a, b"1"), (&b, b"2"), (&c, b"3")] {
        let batch = WriteBatch {
            delete_all: false,
            entries: vec![("k".into(), Some(value.to_vec()))],
            alarm: crate::AlarmWrite::Set(AlarmRecord { due_ms: in_ms(3_600_000), retry_count: 0 }),
        };
        storage.commit(object, batch).await.expect("commit");
    }
    let clear = WriteBatch { delete_all: true, alarm: crate::AlarmWrite::Delete, ..WriteBatch::default() };
    storage.commit(&a, clear).await.expect("clear a");
    assert_eq!(storage.get(&a, keys(&["k"])).await.expect("get"), vec![None]);
    assert_eq!(storage.get(&b, keys(&["k"])).await.expect("get"), vec![Some(b"2".to_vec())]);
    assert_eq!(storage.get(&c, keys(&["k"])).await.expect("get"), vec![Some(b"3".to_vec())]);
    assert_eq!(storage.list(&b, &ListOptions::new()).await.expect("list").len(), 1);
    assert!(storage.get_alarm(&a).await.expect("alarm").is_none());
    assert!(storage.get_alarm(&b).await.expect("alarm").is_some());
    let pending: Vec<ObjectId> =
        storage.pending_alarms(PROBES).await.expect("pending").into_iter().map(|(id, _)| id).collect();
    assert_eq!(pending, vec![c.id]);
}

// ---------------------------------------------------------------------------------------------
// transactions and delete_all

/// A transaction's writes (and alarm changes) are undone when it returns an error, kept when it
/// succeeds; nested transactions roll back alone.
pub async fn transactions_roll_back_on_error<F: StorageFixture>(fixture: F) {
    let h = start(fixture.open().await, test_config());
    let stub = h.probes.stub(h.probes.id_from_name("txn"));
    let outs = ok(
        &stub,
        vec![
            put("a", json!(1)),
            Op::Txn {
                ops: vec![put("b", json!(2)), Op::Delete("a".into()), get("a"), Op::SetAlarm(in_ms(60_000))],
                fail: true,
            },
            get("a"),
            get("b"),
            Op::GetAlarm,
        ],
    )
    .await;
    assert_eq!(outs[1], Out::RolledBack);
    assert_eq!(&outs[2..], &[Out::Value(Some(json!(1))), Out::Value(None), Out::Alarm(None)]);

    let outs = ok(
        &stub,
        vec![Op::Txn {
            ops: vec![
                put("c", json!(3)),
                Op::Txn { ops: vec![put("d", json!(4))], fail: true },
                get("c"),
                get("d"),
            ],
            fail: false,
        }],
    )
    .await;
    assert_eq!(
        outs[0],
        Out::Many(vec![Out::Done, Out::RolledBack, Out::Value(Some(json!(3))), Out::Value(None)])
    );
    let stored = ok(&stub, vec![get("a"), get("b"), get("c"), get("d"), Op::GetAlarm]).await;
    assert_eq!(
        stored,
        vec![
            Out::Value(Some(json!(1))),
            Out::Value(None),
            Out::Value(Some(json!(3))),
            Out::Value(None),
            Out::Alarm(None)
        ]
    );
    h.run.shutdown().await;
}

/// delete_all removes every key of the object and leaves its alarm in place.
pub async fn delete_all_clears_data_and_keeps_the_alarm<F: StorageFixture>(fixture: F) {
    let h = start(fixture.open().await, test_config());
    let id = h.probes.id_from_name("wipe");
    let stub = h.probes.stub(id);
    let due = in_ms(3_600_000);
    ok(&stub, vec![Op::PutMany((0..10).map(|i| (format!("k{i}"), json!(i))).collect()), Op::SetAlarm(due)])
        .await;
    ok(&stub, vec![Op::DeleteAll]).await;
    assert_eq!(
        ok(&stub, vec![Op::List(ListOptions::new()), Op::GetAlarm]).await,
        vec![Out::Entries(vec![]), Out::Alarm(Some(due))]
    );
    let reopened = fixture.open().await;
    assert_eq!(reopened.list(&address(id), &ListOptions::new()).await.expect("list"), vec![]);
    assert_eq!(reopened.get_alarm(&address(id)).await.expect("alarm").map(|a| a.due_ms), Some(due));
    h.run.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// alarms

/// get_alarm shows the one alarm; setting replaces it; delete removes it — in storage too.
pub async fn an_object_has_one_alarm_and_set_replaces_it<F: StorageFixture>(fixture: F) {
    let storage = fixture.open().await;
    let h = start(storage.clone(), test_config());
    let id = h.probes.id_from_name("alarmed");
    let stub = h.probes.stub(id);
    let (t1, t2) = (in_ms(3_600_000), in_ms(7_200_000));
    assert_eq!(one(&stub, Op::GetAlarm).await, Out::Alarm(None));
    assert_eq!(ok(&stub, vec![Op::SetAlarm(t1), Op::GetAlarm]).await[1], Out::Alarm(Some(t1)));
    ok(&stub, vec![Op::SetAlarm(t2)]).await;
    assert_eq!(one(&stub, Op::GetAlarm).await, Out::Alarm(Some(t2)));
    let pending = storage.pending_alarms(PROBES).await.expect("pending");
    assert_eq!(pending, vec![(id, AlarmRecord { due_ms: t2, retry_count: 0 })], "one alarm per object");
    ok(&stub, vec![Op::DeleteAlarm]).await;
    assert_eq!(one(&stub, Op::GetAlarm).await, Out::Alarm(None));
    assert!(storage.pending_alarms(PROBES).await.expect("pending").is_empty());
    h.run.shutdown().await;
}

/// An alarm set in the past fires at once, with retry count 0; inside the handler the running
/// alarm reads as absent, and once it succeeded the alarm is gone.
pub async fn an_alarm_in_the_past_fires_at_once<F: StorageFixture>(fixture: F) {
    let mut h = start(fixture.open().await, test_config());
    let id = h.probes.id_from_name("late");
    let stub = h.probes.stub(id);
    let set_at = Instant::now();
    ok(&stub, vec![Op::SetAlarm(in_ms(-3_600_000))]).await;
    let fired = h.next_alarm().await;
    assert!(set_at.elapsed() < Duration::from_secs(5), "fired at once");
    assert_eq!((fired.id, fired.retry_count, fired.seen_alarm), (id, 0, None));
    assert_eq!(one(&stub, Op::GetAlarm).await, Out::Alarm(None));
    h.no_alarm_for(Duration::from_millis(200)).await;
    h.run.shutdown().await;
}

/// Replacing an alarm cancels the first time: it fires once, not before its new time.
pub async fn a_replaced_alarm_fires_only_at_its_new_time<F: StorageFixture>(fixture: F) {
    let mut h = start(fixture.open().await, test_config());
    let stub = h.probes.stub(h.probes.id_from_name("moved"));
    ok(&stub, vec![Op::SetAlarm(in_ms(300))]).await;
    let t2 = in_ms(900);
    ok(&stub, vec![Op::SetAlarm(t2)]).await;
    let fired = h.next_alarm().await;
    assert!(fired.at_ms >= t2, "fired {} ms early", t2 - fired.at_ms);
    h.no_alarm_for(Duration::from_millis(300)).await;
    h.run.shutdown().await;
}

/// A handler that keeps failing runs 1 + 6 times, with retry counts 0..=6 and delays doubling from
/// the base; then the alarm is dropped.
pub async fn failing_alarms_are_retried_with_backoff_and_their_count<F: StorageFixture>(fixture: F) {
    let storage = fixture.open().await;
    let config = test_config();
    let base = config.alarm_retry_base;
    let mut h = start(storage.clone(), config);
    let id = h.probes.id_from_name("flaky");
    let stub = h.probes.stub(id);
    ok(&stub, vec![put(FAILING_ALARM_ATTEMPTS, json!(u32::MAX)), Op::SetAlarm(in_ms(0))]).await;
    let mut fired = Vec::new();
    for _ in 0..=6 {
        fired.push(h.next_alarm().await);
    }
    assert_eq!(fired.iter().map(|f| f.retry_count).collect::<Vec<_>>(), (0..=6).collect::<Vec<_>>());
    for retry in 1..=6usize {
        let gap = fired[retry].at_ms - fired[retry - 1].at_ms;
        let expected = base.as_millis() as i64 * (1 << (retry - 1));
        assert!(gap >= expected, "retry {retry} came after {gap} ms, before its backoff of {expected} ms");
    }
    h.no_alarm_for(base * 70).await;
    assert_eq!(one(&stub, Op::GetAlarm).await, Out::Alarm(None), "out of retries, the alarm is dropped");
    assert!(storage.pending_alarms(PROBES).await.expect("pending").is_empty());
    h.run.shutdown().await;
}

/// A handler that fails twice then succeeds is not retried again.
pub async fn an_alarm_that_recovers_stops_retrying<F: StorageFixture>(fixture: F) {
    let mut h = start(fixture.open().await, test_config());
    let stub = h.probes.stub(h.probes.id_from_name("recovering"));
    ok(&stub, vec![put(FAILING_ALARM_ATTEMPTS, json!(2)), Op::SetAlarm(in_ms(0))]).await;
    let counts = [h.next_alarm().await, h.next_alarm().await, h.next_alarm().await].map(|f| f.retry_count);
    assert_eq!(counts, [0, 1, 2]);
    h.no_alarm_for(Duration::from_millis(300)).await;
    assert_eq!(one(&stub, Op::GetAlarm).await, Out::Alarm(None));
    h.run.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// eviction, restart, shutdown

/// After `idle_timeout` without events the object is evicted: its memory is gone, its storage is
/// kept, and the constructor runs again on the next event.
pub async fn eviction_drops_memory_keeps_storage_and_reruns_the_constructor<F: StorageFixture>(fixture: F) {
    let config = HostConfig { idle_timeout: Duration::from_millis(50), ..test_config() };
    let h = start(fixture.open().await, config);
    let stub = h.probes.stub(h.probes.id_from_name("sleepy"));
    assert_eq!(number(&stub, Request::RememberAndPut("k".into())).await, 1);
    assert_eq!(h.constructions(), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(number(&stub, Request::Remember).await, 1, "in-memory state was dropped");
    assert_eq!(h.constructions(), 2, "the constructor ran again");
    assert_eq!(one(&stub, get("k")).await, Out::Value(Some(json!(1))), "storage was kept");
    h.run.shutdown().await;
}

/// An alarm due for an evicted object brings it back (the constructor runs again).
pub async fn an_alarm_wakes_an_evicted_object<F: StorageFixture>(fixture: F) {
    let config = HostConfig { idle_timeout: Duration::from_millis(50), ..test_config() };
    let mut h = start(fixture.open().await, config);
    let stub = h.probes.stub(h.probes.id_from_name("dormant"));
    ok(&stub, vec![Op::SetAlarm(in_ms(500))]).await;
    assert_eq!(h.constructions(), 1);
    let fired = h.next_alarm().await;
    assert_eq!(fired.constructions, 2, "the evicted object was constructed again for its alarm");
    h.run.shutdown().await;
}

/// Alarms are stored: a new host over the same store fires those the old one did not, including
/// one that fell due while no host ran.
pub async fn alarms_survive_a_host_restart<F: StorageFixture>(fixture: F) {
    let mut first = start(fixture.open().await, test_config());
    let (soon, later) = (first.probes.id_from_name("soon"), first.probes.id_from_name("later"));
    let (soon_due, later_due) = (in_ms(500), in_ms(1500));
    ok(&first.probes.stub(soon), vec![Op::SetAlarm(soon_due)]).await;
    ok(&first.probes.stub(later), vec![Op::SetAlarm(later_due)]).await;
    first.run.shutdown().await;
    // Wait until `soon` is due, with no host running.
    let until_due = u64::try_from(soon_due - ledge_sqlite::now_ms() + 100).unwrap_or(0);
    no_alarm_for(&mut first.fired, Duration::from_millis(until_due)).await;

    let mut second = start(fixture.open().await, test_config());
    let a = second.next_alarm().await;
    assert_eq!(a.id, soon, "the alarm that fell due while no host ran fires at once");
    let b = second.next_alarm().await;
    assert_eq!(b.id, later);
    assert!(b.at_ms >= later_due, "not early");
    second.run.shutdown().await;
}

/// Shutdown lets the running event and those already accepted finish (their writes durable), then
/// refuses calls; a host that was never started refuses calls too.
pub async fn shutdown_finishes_accepted_events_and_refuses_new_calls<F: StorageFixture>(fixture: F) {
    let host = DurableHost::new(fixture.open().await, test_config());
    let (probes, _log, _fired) = register(&host, PROBES);
    let id = probes.id_from_name("busy");
    let stub = probes.stub(id);
    assert!(matches!(stub.call(Request::Remember).await, Err(Error::NotStarted)));

    let run = host.start(std::future::pending()).expect("start");
    let slow = stub.call(Request::Sleep { ms: 300, then: vec![put("slow", json!(true))] });
    let queued = stub.call(Request::Ops(vec![put("queued", json!(true))]));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let shutdown = tokio::spawn(run.shutdown());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(matches!(stub.call(Request::Remember).await, Err(Error::Closed)), "no new calls while stopping");
    assert!(slow.await.is_ok(), "the running event finished");
    assert!(queued.await.is_ok(), "the accepted event ran");
    shutdown.await.expect("shutdown");
    assert!(matches!(stub.call(Request::Remember).await, Err(Error::Closed)));

    let reopened = fixture.open().await;
    let stored = reopened.get(&address(id), keys(&["slow", "queued"])).await.expect("read");
    assert!(stored.iter().all(Option::is_some), "both events' writes are durable");
}
