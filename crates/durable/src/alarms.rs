//! The host's alarm scheduler: an in-memory mirror of the stored alarms of every registered
//! namespace, and the task that hands each due alarm to its object's mailbox.
//!
//! Storage is the truth. The scheduler is loaded from [`DurableStorage::pending_alarms`] when a
//! namespace is registered (so alarms survive a restart) and kept in step by the actors after each
//! commit. An entry may be stale (its alarm replaced or deleted meanwhile): the actor compares the
//! delivered [`AlarmRecord`] with the stored one and ignores a mismatch.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use crate::ObjectId;
use crate::backend::AlarmRecord;
use crate::host::HostShared;

type ObjectKey = (Arc<str>, ObjectId);

#[derive(Default)]
struct Queue {
    by_time: BTreeSet<(i64, Arc<str>, ObjectId)>,
    by_object: HashMap<ObjectKey, (i64, AlarmRecord)>,
    to_load: Vec<Arc<str>>,
}

impl Queue {
    fn remove(&mut self, key: &ObjectKey) {
        if let Some((fire_at, _)) = self.by_object.remove(key) {
            self.by_time.remove(&(fire_at, key.0.clone(), key.1));
        }
    }
}

/// An alarm whose time has come, to deliver.
struct DueAlarm {
    namespace: Arc<str>,
    id: ObjectId,
    record: AlarmRecord,
}

/// Pending alarms of every registered namespace, ordered by when they fire.
#[derive(Default)]
pub(crate) struct AlarmScheduler {
    queue: Mutex<Queue>,
    changed: Notify,
}

impl AlarmScheduler {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fires `record` for the object at `fire_at_ms` (epoch ms), replacing what was scheduled for it.
    pub(crate) fn schedule(&self, namespace: &Arc<str>, id: ObjectId, fire_at_ms: i64, record: AlarmRecord) {
        let key = (namespace.clone(), id);
        let mut queue = self.queue();
        queue.remove(&key);
        queue.by_time.insert((fire_at_ms, namespace.clone(), id));
        queue.by_object.insert(key, (fire_at_ms, record));
        drop(queue);
        self.changed.notify_one();
    }

    fn schedule_if_absent(&self, namespace: &Arc<str>, id: ObjectId, record: AlarmRecord) {
        let key = (namespace.clone(), id);
        let mut queue = self.queue();
        if !queue.by_object.contains_key(&key) {
            queue.by_time.insert((record.due_ms, namespace.clone(), id));
            queue.by_object.insert(key, (record.due_ms, record));
        }
    }

    /// Forgets the object's alarm.
    pub(crate) fn cancel(&self, namespace: &Arc<str>, id: ObjectId) {
        self.queue().remove(&(namespace.clone(), id));
    }

    /// Asks the scheduler task to load the stored alarms of `namespace`.
    pub(crate) fn request_load(&self, namespace: Arc<str>) {
        self.queue().to_load.push(namespace);
        self.changed.notify_one();
    }

    /// The alarms due at `now_ms` (removed from the queue), and when the next one is due.
    fn take_due(&self, now_ms: i64) -> (Vec<DueAlarm>, Option<i64>) {
        let mut queue = self.queue();
        let mut due = Vec::new();
        while let Some(first) = queue.by_time.first().cloned() {
            if first.0 > now_ms {
                return (due, Some(first.0));
            }
            queue.by_time.pop_first();
            if let Some((_, record)) = queue.by_object.remove(&(first.1.clone(), first.2)) {
                due.push(DueAlarm { namespace: first.1, id: first.2, record });
            }
        }
        (due, None)
    }
}

/// The scheduler task: loads namespaces' stored alarms, delivers due ones, sleeps until the next.
/// Ends when the host starts shutting down.
pub(crate) async fn run(host: Arc<HostShared>) {
    let mut stopping = host.stopping.subscribe();
    // How long to wait at most, so a far-away alarm never needs a huge timer.
    const MAX_WAIT: Duration = Duration::from_secs(3600);
    loop {
        if *stopping.borrow_and_update() {
            return;
        }
        let loads = std::mem::take(&mut host.alarms.queue().to_load);
        let mut load_failed = false;
        for namespace in loads {
            match host.storage.pending_alarms(&namespace).await {
                Ok(pending) => {
                    for (id, record) in pending {
                        host.alarms.schedule_if_absent(&namespace, id, record);
                    }
                }
                Err(error) => {
                    tracing::warn!(%namespace, %error, "cannot load the stored alarms; will retry");
                    host.alarms.queue().to_load.push(namespace);
                    load_failed = true;
                }
            }
        }
        let (due, next) = host.alarms.take_due(ledge_sqlite::now_ms());
        for DueAlarm { namespace, id, record } in due {
            match host.namespace_target(&namespace) {
                Some(target) => target.deliver_alarm(id, record),
                None => tracing::warn!(%namespace, "alarm for an unregistered namespace"),
            }
        }
        let mut wait = match next {
            Some(at) => {
                Duration::from_millis(u64::try_from(at - ledge_sqlite::now_ms()).unwrap_or(0)).min(MAX_WAIT)
            }
            None => MAX_WAIT,
        };
        if load_failed {
            wait = wait.min(host.config.alarm_retry_base);
        }
        tokio::select! {
            _ = stopping.changed() => {}
            _ = host.alarms.changed.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
