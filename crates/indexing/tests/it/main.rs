//! Integration tests of ledge-indexing: the IndexingCoordinator run by the embedded durable-object
//! host on SQLite storage with a manual clock, and the pipeline's real consumers on an env over a
//! temporary data directory, indexing real git repositories created by the tests.

mod coordinator;
mod crash;
mod failures;
mod pipeline;
mod support;
