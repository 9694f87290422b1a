//! Behaviour of the embedded host that does not depend on the storage driver: lifecycle,
//! registration, overload, panics, typed values.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use ledge_durable::{
    DurableHost, DurableObject, Error, HostConfig, ObjectContext, ObjectError, ObjectErrorKind, SqliteStorage,
};
use serde::{Deserialize, Serialize};

const PANIC_IN_ALARM: &str = "panic-in-alarm";
const WRITTEN_BEFORE_PANIC: &str = "written-before-panic";

#[derive(Debug, Serialize, Deserialize)]
enum Ask {
    Count,
    Panic,
    Sleep(u64),
    PutText(String),
    PutNumber(String),
    GetNumber(String),
    SetAlarmIn(u64),
    AlarmSet,
}

struct Worker {
    count: u64,
    alarms: Arc<AtomicUsize>,
}

#[async_trait]
impl DurableObject for Worker {
    type Request = Ask;
    type Response = Option<u64>;

    async fn handle(&mut self, ctx: &mut ObjectContext, ask: Ask) -> Result<Option<u64>, ObjectError> {
        match ask {
            Ask::Count => {
                self.count += 1;
                Ok(Some(self.count))
            }
            Ask::Panic => panic!("the handler panics on purpose"),
            Ask::Sleep(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(None)
            }
            Ask::PutText(key) => {
                ctx.storage().put(key, "not a number")?;
                Ok(None)
            }
            Ask::PutNumber(key) => {
                ctx.storage().put(key, &1)?;
                Ok(None)
            }
            Ask::GetNumber(key) => Ok(ctx.storage().get::<u64>(&key).await?),
            Ask::SetAlarmIn(ms) => {
                ctx.set_alarm(SystemTime::now() + Duration::from_millis(ms));
                Ok(None)
            }
            Ask::AlarmSet => Ok(ctx.get_alarm().await?.map(|_| 1)),
        }
    }

    async fn alarm(&mut self, ctx: &mut ObjectContext, retry_count: u32) -> Result<(), ObjectError> {
        self.alarms.fetch_add(1, Ordering::SeqCst);
        if retry_count == 0 && ctx.storage().get::<u64>(PANIC_IN_ALARM).await?.is_some() {
            ctx.storage().put(WRITTEN_BEFORE_PANIC, &1)?;
            panic!("the alarm handler panics on purpose");
        }
        Ok(())
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    host: DurableHost,
    alarms: Arc<AtomicUsize>,
}

fn setup(config: HostConfig) -> Setup {
    let dir = tempfile::tempdir().expect("temporary directory");
    let storage = SqliteStorage::open(dir.path().join("durable.db"), Default::default()).expect("open");
    Setup {
        _dir: dir,
        host: DurableHost::new(Arc::new(storage), config),
        alarms: Arc::new(AtomicUsize::new(0)),
    }
}

impl Setup {
    fn workers(&self, name: &str) -> Result<ledge_durable::Namespace<Worker>, Error> {
        let alarms = self.alarms.clone();
        self.host.namespace(name, move |_| Worker { count: 0, alarms: alarms.clone() })
    }
}

#[tokio::test]
async fn a_panicking_handler_resets_its_object_and_the_caller_gets_reset() {
    let s = setup(HostConfig::default());
    let workers = s.workers("W").unwrap();
    let run = s.host.start(std::future::pending()).unwrap();
    let stub = workers.stub_for_name("a");
    let other = workers.stub_for_name("b");
    assert_eq!(stub.call(Ask::Count).await.unwrap(), Some(1));
    assert_eq!(other.call(Ask::Count).await.unwrap(), Some(1));
    assert!(matches!(stub.call(Ask::Panic).await, Err(Error::Reset)));
    assert_eq!(stub.call(Ask::Count).await.unwrap(), Some(1), "a fresh instance after the panic");
    assert_eq!(other.call(Ask::Count).await.unwrap(), Some(2), "other objects are untouched");
    run.shutdown().await;
}

#[tokio::test]
async fn a_full_mailbox_refuses_calls_with_overloaded() {
    let s = setup(HostConfig { mailbox_capacity: 3, ..HostConfig::default() });
    let workers = s.workers("W").unwrap();
    let run = s.host.start(std::future::pending()).unwrap();
    let stub = workers.stub_for_name("busy");
    let running = stub.call(Ask::Sleep(300));
    tokio::time::sleep(Duration::from_millis(50)).await; // the sleeping call has left the mailbox
    let waiting: Vec<_> = (0..3).map(|_| stub.call(Ask::Count)).collect();
    assert!(matches!(stub.call(Ask::Count).await, Err(Error::Overloaded { queued: 3 })));
    running.await.unwrap();
    for (i, call) in waiting.into_iter().enumerate() {
        assert_eq!(call.await.unwrap(), Some(i as u64 + 1));
    }
    assert_eq!(stub.call(Ask::Count).await.unwrap(), Some(4), "accepted again once drained");
    run.shutdown().await;
}

#[tokio::test]
async fn a_namespace_name_is_registered_once_and_not_empty() {
    let s = setup(HostConfig::default());
    s.workers("W").unwrap();
    assert!(matches!(s.workers("W"), Err(Error::InvalidInput { field: "namespace", .. })));
    assert!(matches!(s.workers(""), Err(Error::InvalidInput { field: "namespace", .. })));
}

#[tokio::test]
async fn a_host_starts_once() {
    let s = setup(HostConfig::default());
    let run = s.host.start(std::future::pending()).unwrap();
    assert!(matches!(s.host.start(std::future::pending()), Err(Error::InvalidInput { field: "host", .. })));
    run.shutdown().await;
    assert!(matches!(s.workers("late"), Err(Error::Closed)), "no registration after shutdown");
}

#[test]
fn starting_outside_a_runtime_is_an_error_not_a_panic() {
    let s = setup(HostConfig::default());
    assert!(matches!(s.host.start(std::future::pending()), Err(Error::InvalidInput { field: "host", .. })));
}

#[tokio::test]
async fn the_shutdown_future_stops_the_host_and_dropping_the_run_handle_does_not() {
    let s = setup(HostConfig::default());
    let workers = s.workers("W").unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = s
        .host
        .start(async move {
            let _ = stopped.await;
        })
        .unwrap();
    let stub = workers.stub_for_name("a");
    assert_eq!(stub.call(Ask::Count).await.unwrap(), Some(1));
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), run.wait()).await.expect("the host stops");
    assert!(matches!(stub.call(Ask::Count).await, Err(Error::Closed)));

    let s = setup(HostConfig::default());
    let workers = s.workers("W").unwrap();
    drop(s.host.start(std::future::pending()).unwrap());
    assert_eq!(workers.stub_for_name("a").call(Ask::Count).await.unwrap(), Some(1), "still running");
}

#[tokio::test]
async fn a_stored_value_of_another_type_is_a_codec_error() {
    let s = setup(HostConfig::default());
    let workers = s.workers("W").unwrap();
    let run = s.host.start(std::future::pending()).unwrap();
    let stub = workers.stub_for_name("typed");
    stub.call(Ask::PutText("k".into())).await.unwrap();
    match stub.call(Ask::GetNumber("k".into())).await {
        Err(Error::Object(e)) => assert_eq!(e.kind, ObjectErrorKind::InvalidInput, "{e}"),
        other => panic!("expected a decoding failure, got {other:?}"),
    }
    run.shutdown().await;
}

#[tokio::test]
async fn a_namespace_registered_after_start_loads_its_stored_alarms() {
    let dir = tempfile::tempdir().unwrap();
    let open = || Arc::new(SqliteStorage::open(dir.path().join("durable.db"), Default::default()).unwrap());
    let alarms = Arc::new(AtomicUsize::new(0));
    let factory = |alarms: Arc<AtomicUsize>| move |_| Worker { count: 0, alarms: alarms.clone() };

    let first = DurableHost::new(open(), HostConfig::default());
    let workers = first.namespace("W", factory(alarms.clone())).unwrap();
    let run = first.start(std::future::pending()).unwrap();
    workers.stub_for_name("a").call(Ask::SetAlarmIn(300)).await.unwrap();
    assert_eq!(workers.stub_for_name("a").call(Ask::AlarmSet).await.unwrap(), Some(1));
    run.shutdown().await;

    let second = DurableHost::new(open(), HostConfig::default());
    let run = second.start(std::future::pending()).unwrap();
    let _workers = second.namespace("W", factory(alarms.clone())).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while alarms.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the stored alarm never fired");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(alarms.load(Ordering::SeqCst), 1);
    run.shutdown().await;
}

#[tokio::test]
async fn a_panicking_alarm_handler_is_retried_and_its_writes_dropped() {
    let s = setup(HostConfig { alarm_retry_base: Duration::from_millis(10), ..HostConfig::default() });
    let workers = s.workers("W").unwrap();
    let run = s.host.start(std::future::pending()).unwrap();
    let stub = workers.stub_for_name("a");
    stub.call(Ask::PutNumber(PANIC_IN_ALARM.into())).await.unwrap();
    stub.call(Ask::SetAlarmIn(0)).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while s.alarms.load(Ordering::SeqCst) < 2 {
        assert!(tokio::time::Instant::now() < deadline, "the alarm was not retried after the panic");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(stub.call(Ask::GetNumber(WRITTEN_BEFORE_PANIC.into())).await.unwrap(), None);
    assert_eq!(stub.call(Ask::AlarmSet).await.unwrap(), None, "the retry succeeded");
    assert_eq!(s.alarms.load(Ordering::SeqCst), 2);
    run.shutdown().await;
}
