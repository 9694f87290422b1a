//! The trait a durable-object class implements, and the context its events run with.

use std::time::SystemTime;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{ObjectError, ObjectId, Result, Storage};

/// A durable-object class. The host builds an instance with the namespace's factory on the first
/// event after the object was created, evicted or reset, and delivers events to it one at a time.
///
/// Requests and responses are serializable so that a distributed host can forward a call to the
/// node that runs the object; the embedded host passes them in memory.
#[async_trait]
pub trait DurableObject: Send + 'static {
    type Request: Serialize + DeserializeOwned + Send + 'static;
    type Response: Serialize + DeserializeOwned + Send + 'static;

    /// Answers one call. Writes made through `ctx` are committed before the answer is released,
    /// whether the handler returns `Ok` or `Err` (use [`Storage::transaction`] to undo on error).
    async fn handle(
        &mut self,
        ctx: &mut ObjectContext,
        request: Self::Request,
    ) -> Result<Self::Response, ObjectError>;

    /// Runs when the object's alarm is due. `retry_count` is 0 on the first attempt and `n` on the
    /// `n`-th retry after a failure. Returning `Err` schedules a retry (exponential backoff) unless
    /// the handler set or deleted the alarm itself, or the retries are used up.
    async fn alarm(&mut self, ctx: &mut ObjectContext, retry_count: u32) -> Result<(), ObjectError> {
        let _ = (ctx, retry_count);
        Ok(())
    }
}

/// What an event runs with: the object's id and its storage.
#[derive(Debug)]
pub struct ObjectContext {
    id: ObjectId,
    storage: Storage,
}

impl ObjectContext {
    pub(crate) fn new(id: ObjectId, storage: Storage) -> ObjectContext {
        ObjectContext { id, storage }
    }

    pub(crate) fn into_storage(self) -> Storage {
        self.storage
    }

    /// The object's id.
    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// The object's storage.
    pub fn storage(&mut self) -> &mut Storage {
        &mut self.storage
    }

    /// Sets the alarm (see [`Storage::set_alarm`]).
    pub fn set_alarm(&mut self, at: SystemTime) {
        self.storage.set_alarm(at)
    }

    /// When the alarm is due, if set (see [`Storage::get_alarm`]).
    pub async fn get_alarm(&mut self) -> Result<Option<SystemTime>> {
        self.storage.get_alarm().await
    }

    /// Removes the alarm (see [`Storage::delete_alarm`]).
    pub fn delete_alarm(&mut self) {
        self.storage.delete_alarm()
    }
}
