#!/usr/bin/env bash
# Benchmarks `ledge serve` against the Hono peers with the shared peer harness
# (../shared/bench/peer-compare.sh): cold start, idle RSS, GET /health and signed
# POST /webhooks/github throughput and latency, medians of RUNS runs, same machine, same run.
#
# usage: scripts/bench-peers.sh            (RUNS=3, PEERS="hono-node hono-workerd-plain", LEDGE_BIN)
# Needs wrk (apt-get install -y wrk) and Node for the peers.
set -euo pipefail
cd "$(dirname "$0")/.."
bench=${LEDGE_BENCH_DIR:-../shared/bench}
# LEDGE_BIN: a ledge binary built already (else target/release/ledge, built now).
bin=${LEDGE_BIN:-}
unset LEDGE_BIN # ledge refuses LEDGE_* variables it does not know
if [ -z "$bin" ]; then
  cargo build --release -p ledge >&2
  bin=$(pwd)/target/release/ledge
fi
# The harness exports PORT and GITHUB_WEBHOOK_SECRET; ledge reads PORT itself and its secret from
# LEDGE_GITHUB_WEBHOOK_SECRET. Each run gets a fresh data directory (no process spawned for it, so
# the cold start measures ledge alone); `exec` leaves ledge as the only process of the tree.
export PEERS=${PEERS:-"hono-node hono-workerd-plain"} RUNS=${RUNS:-3}
exec "$bench/peer-compare.sh" ledge -- sh -c \
  "LEDGE_GITHUB_WEBHOOK_SECRET=\"\$GITHUB_WEBHOOK_SECRET\" LEDGE_DATA_DIR=/tmp/ledge-bench-\$\$ LEDGE_LOG=warn exec $bin serve"
