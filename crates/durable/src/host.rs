//! The embedded durable-object host: configuration, namespace registration, start and shutdown.
//!
//! Lifecycle: [`DurableHost::new`] builds without starting anything; namespaces are registered with
//! [`DurableHost::namespace`]; [`DurableHost::start`] spawns the alarm scheduler and accepts calls
//! until its shutdown future resolves (or [`HostRun::shutdown`] is called). Shutting down refuses new
//! calls and alarms, lets every event already accepted run to its end, then returns.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::alarms::{self, AlarmScheduler};
use crate::backend::DurableStorage;
use crate::namespace::{AlarmTarget, Namespace, NamespaceCore};
use crate::{DurableObject, Error, ObjectId, Result, StorageLimits};

/// Settings of a [`DurableHost`]. The defaults are the contract's; tests shorten the timings.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// An object with no event for this long is evicted (its in-memory state dropped). Default 30 s.
    pub idle_timeout: Duration,
    /// Delay before the first retry of a failed alarm handler; doubled for each further retry. Default 2 s.
    pub alarm_retry_base: Duration,
    /// Retries of a failed alarm handler before the alarm is dropped. Default 6.
    pub alarm_max_retries: u32,
    /// Calls that may wait in one object's mailbox; one more is refused with [`Error::Overloaded`].
    /// Default 1000.
    pub mailbox_capacity: usize,
    /// Limits on storage calls.
    pub limits: StorageLimits,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            idle_timeout: Duration::from_secs(30),
            alarm_retry_base: Duration::from_secs(2),
            alarm_max_retries: 6,
            mailbox_capacity: 1000,
            limits: StorageLimits::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostState {
    Built,
    Running,
    Stopping,
    Stopped,
}

/// What the host's parts share: namespaces, actors and the scheduler hold an `Arc` of it.
pub(crate) struct HostShared {
    pub(crate) storage: Arc<dyn DurableStorage>,
    pub(crate) config: HostConfig,
    /// Read-locked while a call is enqueued, write-locked to change state: once shutdown has
    /// flipped it, no event can be accepted any more.
    pub(crate) state: RwLock<HostState>,
    pub(crate) runtime: OnceLock<Handle>,
    /// Becomes true when shutdown begins.
    pub(crate) stopping: watch::Sender<bool>,
    /// Number of actor tasks alive.
    pub(crate) live_actors: watch::Sender<usize>,
    pub(crate) alarms: AlarmScheduler,
    namespaces: Mutex<HashMap<Arc<str>, Arc<dyn AlarmTarget>>>,
}

impl HostShared {
    pub(crate) fn state(&self) -> std::sync::RwLockReadGuard<'_, HostState> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_state(&self, state: HostState) {
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = state;
    }

    pub(crate) fn namespace_target(&self, name: &str) -> Option<Arc<dyn AlarmTarget>> {
        self.namespaces.lock().unwrap_or_else(PoisonError::into_inner).get(name).cloned()
    }

    async fn shut_down(&self, scheduler: JoinHandle<()>) {
        self.set_state(HostState::Stopping);
        self.stopping.send_replace(true);
        if let Err(e) = scheduler.await {
            tracing::error!(error = %e, "the alarm scheduler ended abnormally");
        }
        let mut live = self.live_actors.subscribe();
        // The sender lives in `self`, so this only returns once every actor has ended.
        let _ = live.wait_for(|n| *n == 0).await;
        self.set_state(HostState::Stopped);
        // Namespaces hold the host; dropping them here breaks the cycle.
        self.namespaces.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

/// Runs durable objects in this process: one actor (a task and its mailbox) per live object,
/// storage through a [`DurableStorage`] backend. Cheap to clone.
#[derive(Clone)]
pub struct DurableHost {
    shared: Arc<HostShared>,
}

impl std::fmt::Debug for DurableHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableHost").field("config", &self.shared.config).finish_non_exhaustive()
    }
}

impl DurableHost {
    /// Builds a host over `storage`. Nothing runs until [`DurableHost::start`].
    pub fn new(storage: Arc<dyn DurableStorage>, config: HostConfig) -> DurableHost {
        DurableHost {
            shared: Arc::new(HostShared {
                storage,
                config,
                state: RwLock::new(HostState::Built),
                runtime: OnceLock::new(),
                stopping: watch::Sender::new(false),
                live_actors: watch::Sender::new(0),
                alarms: AlarmScheduler::default(),
                namespaces: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The host's settings.
    pub fn config(&self) -> &HostConfig {
        &self.shared.config
    }

    /// Registers the object class `O` under `name`, built by `factory` for each instance. The
    /// namespace's stored alarms are loaded once the host runs. A name can be registered once.
    pub fn namespace<O, F>(&self, name: &str, factory: F) -> Result<Namespace<O>>
    where
        O: DurableObject,
        F: Fn(ObjectId) -> O + Send + Sync + 'static,
    {
        if name.is_empty() {
            return Err(Error::InvalidInput {
                field: "namespace",
                message: "a namespace name is not empty".into(),
            });
        }
        if matches!(*self.shared.state(), HostState::Stopping | HostState::Stopped) {
            return Err(Error::Closed);
        }
        let mut namespaces = self.shared.namespaces.lock().unwrap_or_else(PoisonError::into_inner);
        if namespaces.contains_key(name) {
            return Err(Error::InvalidInput {
                field: "namespace",
                message: format!("{name:?} is already registered"),
            });
        }
        let name: Arc<str> = Arc::from(name);
        let core = Arc::new(NamespaceCore::new(name.clone(), self.shared.clone(), Box::new(factory)));
        namespaces.insert(name.clone(), core.clone());
        drop(namespaces);
        self.shared.alarms.request_load(name);
        Ok(Namespace::new(core))
    }

    /// Starts the host on the current tokio runtime: calls are accepted and alarms fire from now
    /// until `shutdown` resolves. Fails outside a runtime or if the host was already started.
    pub fn start(&self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<HostRun> {
        let runtime = Handle::try_current().map_err(|_| Error::InvalidInput {
            field: "host",
            message: "start must be called within a tokio runtime".into(),
        })?;
        {
            let mut state = self.shared.state.write().unwrap_or_else(PoisonError::into_inner);
            if *state != HostState::Built {
                return Err(Error::InvalidInput {
                    field: "host",
                    message: "the host was already started".into(),
                });
            }
            let _ = self.shared.runtime.set(runtime.clone());
            *state = HostState::Running;
        }
        let scheduler = runtime.spawn(alarms::run(self.shared.clone()));
        let (trigger, triggered) = oneshot::channel::<()>();
        let shared = self.shared.clone();
        let supervisor = runtime.spawn(async move {
            tokio::pin!(triggered);
            tokio::select! {
                _ = shutdown => {}
                // A dropped `HostRun` (Err) detaches the host instead of stopping it.
                Ok(()) = &mut triggered => {}
            }
            shared.shut_down(scheduler).await;
        });
        Ok(HostRun { supervisor, trigger: Some(trigger) })
    }
}

/// A started host. Dropping it leaves the host running until its shutdown future resolves.
#[derive(Debug)]
pub struct HostRun {
    supervisor: JoinHandle<()>,
    trigger: Option<oneshot::Sender<()>>,
}

impl HostRun {
    /// Shuts the host down now (as if its shutdown future had resolved) and waits until every
    /// event already accepted has finished.
    pub async fn shutdown(mut self) {
        if let Some(trigger) = self.trigger.take() {
            let _ = trigger.send(());
        }
        self.finished().await;
    }

    /// Waits until the host has shut down, after its shutdown future resolved.
    pub async fn wait(self) {
        self.finished().await;
    }

    async fn finished(self) {
        if let Err(e) = self.supervisor.await {
            tracing::error!(error = %e, "the durable-object host's supervisor ended abnormally");
        }
    }
}
