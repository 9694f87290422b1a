//! The queue conformance suite, instantiated for the embedded SQLite driver.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use ledge_queue::conformance::QueueHarness;
use ledge_queue::{QueueBackend, QueueConfig, QueueError, SqliteQueueOptions, SqliteQueues};

/// The embedded driver over a database in a directory of its own.
pub struct EmbeddedHarness {
    dir: PathBuf,
    /// Deleted when the harness that created it is dropped; `None` in the crash child.
    _owned: Option<tempfile::TempDir>,
}

impl EmbeddedHarness {
    pub async fn fresh() -> EmbeddedHarness {
        let dir = tempfile::tempdir().expect("a temporary directory");
        EmbeddedHarness { dir: dir.path().to_owned(), _owned: Some(dir) }
    }

    pub async fn attach(locator: String) -> EmbeddedHarness {
        EmbeddedHarness { dir: PathBuf::from(locator), _owned: None }
    }
}

#[async_trait]
impl QueueHarness for EmbeddedHarness {
    async fn open(&self, config: QueueConfig) -> Result<Arc<dyn QueueBackend>, QueueError> {
        let queues = SqliteQueues::open(self.dir.join("queues.db"), SqliteQueueOptions::new(config))?;
        Ok(queues)
    }

    fn locator(&self) -> String {
        self.dir.display().to_string()
    }
}

ledge_queue::queue_conformance_suite!(fresh: EmbeddedHarness::fresh(), attach: EmbeddedHarness::attach);
