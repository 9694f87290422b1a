//! ledge-search's integration tests: real repositories made with `git`, indexed by the real pipeline
//! (chunker, keyword index, the test embedding model, vector index), then searched in every mode; and
//! the quality harness of `examples/eval` on a small pinned corpus.

// The harness is shared with the `eval` example; not every function of it is used here.
#[allow(dead_code)]
#[path = "../../examples/eval/harness.rs"]
mod harness;
mod merged;
mod quality;
mod search;
mod support;
