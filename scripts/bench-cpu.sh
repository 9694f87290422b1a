#!/usr/bin/env bash
# CPU time ledge spends per request: GET /health in total, and per accepted webhook by thread (HTTP,
# queue writer, checkpointer, consumers, relational store), from /proc. Unlike throughput, CPU per
# request stays meaningful on a busy machine.
# usage: scripts/bench-cpu.sh     (DUR=6s; port 18799; needs wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
bench=${LEDGE_BENCH_DIR:-../shared/bench}; bench=$(cd "$bench" && pwd)
cargo build --release -p ledge >&2
bin=$(pwd)/target/release/ledge; dir=$(mktemp -d)
LEDGE_GITHUB_WEBHOOK_SECRET=bench-secret LEDGE_DATA_DIR=$dir LEDGE_LOG=warn PORT=18799 $bin serve 2>/dev/null &
pid=$!; sleep 0.5
snap() { for t in /proc/$pid/task/*; do echo "$(cat $t/comm | tr ' ' '_') $(awk '{print $14+$15}' $t/stat)"; done | awk '{a[$1]+=$2} END{for(k in a) print k, a[k]}' | sort; }
cpu() { awk '{print $14+$15}' /proc/$pid/stat; }
c0=$(cpu)
out=$(wrk -t2 -c32 -d${DUR:-6s} --latency http://127.0.0.1:18799/health)
c1=$(cpu)
n=$(echo "$out" | awk '/requests in/{print $1}')
echo "GET /health: $n requests, $(( (c1-c0)*10000000/n )) ns CPU/request; $(echo "$out" | grep Requests/sec)"
SIG=$(python3 $bench/peerbench.py sign $bench/push-event.json bench-secret)
# warm up (build the module, open bindings)
WEBHOOK_BODY=$bench/push-event.json WEBHOOK_SIG=$SIG wrk -t1 -c1 -d1s -s $bench/webhook.lua http://127.0.0.1:18799/webhooks/github >/dev/null
sleep 1.5
snap > $dir.s0
out=$(WEBHOOK_BODY=$bench/push-event.json WEBHOOK_SIG=$SIG wrk -t2 -c32 -d${DUR:-6s} --latency -s $bench/webhook.lua http://127.0.0.1:18799/webhooks/github)
sleep 2
snap > $dir.s1
n=$(echo "$out" | awk '/requests in/{print $1}')
echo "POST /webhooks/github: $n webhooks; $(echo "$out" | grep Requests/sec); CPU per webhook by thread:"
join $dir.s0 $dir.s1 | awk -v n=$n '{d=$3-$2; if (d>0) printf "%-22s %8d ns/request\n", $1, d*10000000/n}'
kill $pid; wait $pid 2>/dev/null || true; rm -rf $dir $dir.s0 $dir.s1
