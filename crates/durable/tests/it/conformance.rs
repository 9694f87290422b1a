//! The durable-object conformance suite, run on the embedded SQLite driver.

use std::sync::Arc;

use async_trait::async_trait;
use ledge_durable::conformance::StorageFixture;
use ledge_durable::{DurableStorage, SqliteStorage};

/// A fresh SQLite database file in its own temporary directory; each `open` opens it anew.
pub struct SqliteFixture {
    dir: tempfile::TempDir,
}

impl SqliteFixture {
    pub fn new() -> SqliteFixture {
        SqliteFixture { dir: tempfile::tempdir().expect("temporary directory") }
    }
}

#[async_trait]
impl StorageFixture for SqliteFixture {
    async fn open(&self) -> Arc<dyn DurableStorage> {
        let storage = SqliteStorage::open(self.dir.path().join("durable.db"), Default::default())
            .expect("open the SQLite durable storage");
        Arc::new(storage)
    }
}

ledge_durable::durable_object_conformance!(async { SqliteFixture::new() });
