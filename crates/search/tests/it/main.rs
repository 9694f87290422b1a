//! ledge-search's integration tests: real repositories made with `git`, indexed by the real pipeline
//! (chunker, keyword index, the test embedding model, vector index), then searched in every mode.

mod search;
mod support;
