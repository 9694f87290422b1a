//! Integration tests of ledge-indexing: the IndexingCoordinator run by the embedded durable-object
//! host on SQLite storage, with a manual clock.

mod coordinator;
