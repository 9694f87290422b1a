//! Namespaces, stubs and the actor that runs one live object.
//!
//! Each live object is one tokio task draining one mailbox, so its events never interleave (the
//! input gate, stricter than the edge platform, which lets events interleave while storage is not
//! being awaited). After each event the actor commits the event's write set in one
//! [`DurableStorage::commit`](crate::DurableStorage::commit) and only then releases the reply (the
//! output gate). A failed commit drops the instance; the constructor runs again on the next event.
//!
//! The map of live actors is locked while an event is put in a mailbox and while an idle actor
//! removes itself, so an event is never sent to an actor that has decided to end.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

use crate::backend::{AlarmRecord, AlarmWrite, ObjectAddress};
use crate::host::{HostShared, HostState};
use crate::storage::{AlarmChange, EventWrites};
use crate::{BackendError, DurableObject, Error, ObjectContext, ObjectId, Result, Storage};

type Factory<O> = Box<dyn Fn(ObjectId) -> O + Send + Sync>;

/// Lets the alarm scheduler deliver to a namespace without knowing its object class.
pub(crate) trait AlarmTarget: Send + Sync {
    fn deliver_alarm(self: Arc<Self>, id: ObjectId, record: AlarmRecord);
}

enum Event<O: DurableObject> {
    Call { request: O::Request, reply: oneshot::Sender<Result<O::Response>> },
    Alarm(AlarmRecord),
}

struct ActorHandle<O: DurableObject> {
    mailbox: mpsc::UnboundedSender<Event<O>>,
    /// Calls waiting in the mailbox (alarms are not counted).
    queued: Arc<AtomicUsize>,
    generation: u64,
}

pub(crate) struct NamespaceCore<O: DurableObject> {
    name: Arc<str>,
    host: Arc<HostShared>,
    factory: Factory<O>,
    actors: Mutex<HashMap<ObjectId, ActorHandle<O>>>,
    generations: AtomicU64,
}

impl<O: DurableObject> NamespaceCore<O> {
    pub(crate) fn new(name: Arc<str>, host: Arc<HostShared>, factory: Factory<O>) -> NamespaceCore<O> {
        NamespaceCore {
            name,
            host,
            factory,
            actors: Mutex::new(HashMap::new()),
            generations: AtomicU64::new(0),
        }
    }

    fn actors(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectId, ActorHandle<O>>> {
        self.actors.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts `event` in the object's mailbox, starting its actor if it is not live.
    fn enqueue(self: &Arc<Self>, id: ObjectId, mut event: Event<O>) -> Result<()> {
        let state = self.host.state();
        match *state {
            HostState::Built => return Err(Error::NotStarted),
            HostState::Stopping | HostState::Stopped => return Err(Error::Closed),
            HostState::Running => {}
        }
        let runtime = self.host.runtime.get().ok_or(Error::NotStarted)?;
        let counted = matches!(event, Event::Call { .. });
        let mut actors = self.actors();
        // A mailbox is closed only if its actor panicked outside an event; then start a new one.
        for _ in 0..2 {
            let handle = actors.entry(id).or_insert_with(|| self.spawn_actor(id, runtime));
            if counted {
                let queued = handle.queued.load(Ordering::SeqCst);
                if queued >= self.host.config.mailbox_capacity {
                    return Err(Error::Overloaded { queued });
                }
                handle.queued.fetch_add(1, Ordering::SeqCst);
            }
            match handle.mailbox.send(event) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::SendError(returned)) => {
                    if counted {
                        handle.queued.fetch_sub(1, Ordering::SeqCst);
                    }
                    actors.remove(&id);
                    event = returned;
                }
            }
        }
        Err(Error::Reset)
    }

    /// Called with the actor map locked and the host state read-locked (so shutdown counts it).
    fn spawn_actor(self: &Arc<Self>, id: ObjectId, runtime: &Handle) -> ActorHandle<O> {
        let (mailbox, inbox) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        let guard = LiveActor::new(&self.host);
        let actor = Actor {
            namespace: self.clone(),
            id,
            address: ObjectAddress { namespace: self.name.clone(), id },
            instance: None,
            stored_alarm: None,
            queued: queued.clone(),
        };
        runtime.spawn(actor.run(inbox, generation, guard));
        ActorHandle { mailbox, queued, generation }
    }

    /// Ends an idle actor unless an event arrived meanwhile. True if the actor must end.
    fn evict_if_idle(
        &self,
        id: ObjectId,
        generation: u64,
        inbox: &mpsc::UnboundedReceiver<Event<O>>,
    ) -> bool {
        let mut actors = self.actors();
        if !inbox.is_empty() {
            return false;
        }
        if actors.get(&id).is_some_and(|h| h.generation == generation) {
            actors.remove(&id);
        }
        true
    }
}

impl<O: DurableObject> AlarmTarget for NamespaceCore<O> {
    fn deliver_alarm(self: Arc<Self>, id: ObjectId, record: AlarmRecord) {
        if let Err(error) = self.enqueue(id, Event::Alarm(record)) {
            tracing::debug!(namespace = %self.name, %id, %error, "alarm not delivered");
        }
    }
}

/// Counts a live actor in the host until dropped (also when the actor's task panics).
struct LiveActor {
    host: Arc<HostShared>,
}

impl LiveActor {
    fn new(host: &Arc<HostShared>) -> LiveActor {
        host.live_actors.send_modify(|n| *n += 1);
        LiveActor { host: host.clone() }
    }
}

impl Drop for LiveActor {
    fn drop(&mut self) {
        self.host.live_actors.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// One live object: its instance (built lazily) and what it knows of its stored alarm.
struct Actor<O: DurableObject> {
    namespace: Arc<NamespaceCore<O>>,
    id: ObjectId,
    address: ObjectAddress,
    instance: Option<O>,
    /// The stored alarm, once read (`Some(None)`: none). Only this actor writes it.
    stored_alarm: Option<Option<AlarmRecord>>,
    queued: Arc<AtomicUsize>,
}

impl<O: DurableObject> Actor<O> {
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Event<O>>, generation: u64, _live: LiveActor) {
        let host = self.namespace.host.clone();
        let mut stopping = host.stopping.subscribe();
        loop {
            if *stopping.borrow_and_update() {
                break;
            }
            tokio::select! {
                biased;
                event = inbox.recv() => match event {
                    Some(event) => self.process(event).await,
                    None => return,
                },
                _ = stopping.changed() => {}
                _ = tokio::time::sleep(host.config.idle_timeout) => {
                    if self.namespace.evict_if_idle(self.id, generation, &inbox) {
                        return;
                    }
                }
            }
        }
        // Shutting down: run what was accepted; nothing more can arrive.
        inbox.close();
        while let Some(event) = inbox.recv().await {
            self.process(event).await;
        }
    }

    async fn process(&mut self, event: Event<O>) {
        match event {
            Event::Call { request, reply } => {
                self.queued.fetch_sub(1, Ordering::SeqCst);
                let answer = self.run_call(request).await;
                let _ = reply.send(answer);
            }
            Event::Alarm(record) => self.run_alarm(record).await,
        }
    }

    fn storage(&self, alarm_running: bool) -> Storage {
        Storage::new(
            self.namespace.host.storage.clone(),
            self.address.clone(),
            self.namespace.host.config.limits,
            self.stored_alarm,
            alarm_running,
        )
    }

    fn reset(&mut self) {
        self.instance = None;
        self.stored_alarm = None;
    }

    async fn run_call(&mut self, request: O::Request) -> Result<O::Response> {
        let mut ctx = ObjectContext::new(self.id, self.storage(false));
        let id = self.id;
        let factory = &self.namespace.factory;
        let instance = self.instance.get_or_insert_with(|| factory(id));
        let Ok(answer) = CatchUnwind(instance.handle(&mut ctx, request)).await else {
            tracing::error!(namespace = %self.address.namespace, %id, "object handler panicked; object reset");
            self.reset();
            return Err(Error::Reset);
        };
        let writes = ctx.into_storage().finish();
        let alarm = match writes.alarm_change {
            Some(AlarmChange::Set(due_ms)) => AlarmWrite::Set(AlarmRecord { due_ms, retry_count: 0 }),
            Some(AlarmChange::Delete) => AlarmWrite::Delete,
            None => AlarmWrite::Keep,
        };
        self.commit(writes, alarm).await.map_err(Error::WriteFailed)?;
        answer.map_err(Error::Object)
    }

    async fn run_alarm(&mut self, record: AlarmRecord) {
        let host = self.namespace.host.clone();
        let stored = match self.stored_alarm {
            Some(stored) => stored,
            None => match host.storage.get_alarm(&self.address).await {
                Ok(stored) => {
                    self.stored_alarm = Some(stored);
                    stored
                }
                Err(error) => {
                    tracing::warn!(namespace = %self.address.namespace, id = %self.id, %error,
                        "cannot read the alarm; will retry");
                    self.retry_later(record);
                    return;
                }
            },
        };
        if stored != Some(record) {
            return; // replaced or deleted since it was scheduled
        }
        let mut ctx = ObjectContext::new(self.id, self.storage(true));
        let id = self.id;
        let factory = &self.namespace.factory;
        let instance = self.instance.get_or_insert_with(|| factory(id));
        let (outcome, writes) = match CatchUnwind(instance.alarm(&mut ctx, record.retry_count)).await {
            Ok(outcome) => (outcome.map_err(|e| e.to_string()), ctx.into_storage().finish()),
            Err(()) => {
                // As for a call: a panicked event's writes are dropped with the instance.
                self.reset();
                let nothing = self.storage(true).finish();
                (Err("the alarm handler panicked; object reset".to_string()), nothing)
            }
        };
        let alarm = match writes.alarm_change {
            Some(AlarmChange::Set(due_ms)) => AlarmWrite::Set(AlarmRecord { due_ms, retry_count: 0 }),
            Some(AlarmChange::Delete) => AlarmWrite::Delete,
            None => match &outcome {
                Ok(()) => AlarmWrite::Delete,
                Err(error) if record.retry_count < host.config.alarm_max_retries => {
                    let delay = backoff(host.config.alarm_retry_base, record.retry_count);
                    tracing::warn!(namespace = %self.address.namespace, %id, retry_count = record.retry_count,
                        %error, ?delay, "alarm handler failed; retrying");
                    AlarmWrite::Set(AlarmRecord {
                        due_ms: ledge_sqlite::now_ms().saturating_add(millis(delay)),
                        retry_count: record.retry_count + 1,
                    })
                }
                Err(error) => {
                    tracing::error!(namespace = %self.address.namespace, %id, retry_count = record.retry_count,
                        %error, "alarm handler failed; out of retries, alarm dropped");
                    AlarmWrite::Delete
                }
            },
        };
        if let Err(error) = self.commit(writes, alarm).await {
            tracing::warn!(namespace = %self.address.namespace, %id, %error,
                "cannot commit the alarm's writes; object reset, will retry");
            self.retry_later(record);
        }
    }

    /// Fires the same alarm again after the base delay (storage still holds it unchanged).
    fn retry_later(&self, record: AlarmRecord) {
        let host = &self.namespace.host;
        let at = ledge_sqlite::now_ms().saturating_add(millis(host.config.alarm_retry_base));
        host.alarms.schedule(&self.address.namespace, self.id, at, record);
    }

    /// Commits an event's writes (with `alarm`), then updates the alarm scheduler. On failure the
    /// instance is dropped.
    async fn commit(&mut self, writes: EventWrites, alarm: AlarmWrite) -> Result<(), BackendError> {
        if let Some(stored) = writes.stored_alarm {
            self.stored_alarm = Some(stored);
        }
        let mut batch = writes.batch;
        batch.alarm = alarm;
        if batch.is_empty() {
            return Ok(());
        }
        let host = self.namespace.host.clone();
        if let Err(error) = host.storage.commit(&self.address, batch).await {
            self.reset();
            return Err(error);
        }
        match alarm {
            AlarmWrite::Keep => {}
            AlarmWrite::Set(record) => {
                self.stored_alarm = Some(Some(record));
                host.alarms.schedule(&self.address.namespace, self.id, record.due_ms, record);
            }
            AlarmWrite::Delete => {
                self.stored_alarm = Some(None);
                host.alarms.cancel(&self.address.namespace, self.id);
            }
        }
        Ok(())
    }
}

/// Delay before retry `retry_count + 1`: `base · 2^retry_count`.
fn backoff(base: Duration, retry_count: u32) -> Duration {
    base.saturating_mul(2u32.saturating_pow(retry_count))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Turns a panic inside a handler's future into `Err(())`, so one broken event resets its object
/// instead of killing the actor (and the alarm it was running).
struct CatchUnwind<'a, T>(Pin<Box<dyn Future<Output = T> + Send + 'a>>);

impl<T> Future for CatchUnwind<'_, T> {
    type Output = Result<T, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

/// A namespace: one durable-object class registered on a host. Cheap to clone.
pub struct Namespace<O: DurableObject> {
    core: Arc<NamespaceCore<O>>,
}

impl<O: DurableObject> Clone for Namespace<O> {
    fn clone(&self) -> Self {
        Namespace { core: self.core.clone() }
    }
}

impl<O: DurableObject> std::fmt::Debug for Namespace<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace").field("name", &self.core.name).finish()
    }
}

impl<O: DurableObject> Namespace<O> {
    pub(crate) fn new(core: Arc<NamespaceCore<O>>) -> Namespace<O> {
        Namespace { core }
    }

    /// The name it was registered under.
    pub fn name(&self) -> &str {
        &self.core.name
    }

    /// The id for `name`: the same name always gives the same id in this namespace.
    pub fn id_from_name(&self, name: &str) -> ObjectId {
        ObjectId::from_name(&self.core.name, name)
    }

    /// A new random id, distinct from every other.
    pub fn new_unique_id(&self) -> ObjectId {
        ObjectId::new_unique(&self.core.name)
    }

    /// Parses an id's text form; fails unless it is an id of this namespace.
    pub fn id_from_string(&self, text: &str) -> Result<ObjectId> {
        ObjectId::parse(&self.core.name, text)
    }

    /// A stub for the object `id`. Does no I/O; the object is created by its first event.
    pub fn stub(&self, id: ObjectId) -> Stub<O> {
        Stub { core: self.core.clone(), id }
    }

    /// Shorthand for `stub(id_from_name(name))`.
    pub fn stub_for_name(&self, name: &str) -> Stub<O> {
        self.stub(self.id_from_name(name))
    }
}

/// A handle on one object. Cheap to clone; clones share nothing but the object.
pub struct Stub<O: DurableObject> {
    core: Arc<NamespaceCore<O>>,
    id: ObjectId,
}

impl<O: DurableObject> Clone for Stub<O> {
    fn clone(&self) -> Self {
        Stub { core: self.core.clone(), id: self.id }
    }
}

impl<O: DurableObject> std::fmt::Debug for Stub<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stub").field("namespace", &self.core.name).field("id", &self.id).finish()
    }
}

impl<O: DurableObject> Stub<O> {
    /// The object's id.
    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// Sends `request` to the object and resolves to its response.
    ///
    /// The request is queued when `call` is invoked, not when the future is first polled, so calls
    /// reach the object in the order `call` was invoked. Dropping the future does not cancel the
    /// call. The reply is released only once the event's writes are durable.
    pub fn call(&self, request: O::Request) -> impl Future<Output = Result<O::Response>> + Send + 'static {
        let (reply, answer) = oneshot::channel();
        let queued = self.core.enqueue(self.id, Event::Call { request, reply });
        async move {
            queued?;
            answer.await.unwrap_or(Err(Error::Reset))
        }
    }
}
