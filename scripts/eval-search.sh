#!/usr/bin/env bash
# Search quality, CodeSearchNet style: MRR@10 and Recall@10 of keyword, semantic and hybrid search over
# crates of ledge's own dependency tree (at the versions Cargo.lock pins, read from cargo's registry
# cache; no network once the workspace has been built), with the local test model. See
# crates/search/examples/eval/harness.rs for the method.
# usage: scripts/eval-search.sh [--sweep] [crate…]   (default crates: regex-syntax serde_json http)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/fetch-test-model >/dev/null
exec cargo run --release --locked -p ledge-search --example eval -- "$@"
