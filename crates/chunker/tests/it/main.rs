//! Integration tests of `ledge-chunker`: one test binary, one module per behaviour.

mod concurrency;
mod determinism;
mod fallback;
mod fixtures;
mod language;
mod memory;
mod properties;
mod robustness;
mod size_rule;
mod support;
