#!/usr/bin/env bash
# Authenticated platform requests through HTTP: starts `ledge serve` on a fresh data directory, signs
# up 10 users (one organization, 9 invited members) and makes 40 API keys, then sends REQUESTS mixed
# authenticated GETs over one keep-alive connection (JWT and API-key callers spread so that no caller
# reaches the per-caller limit): /auth/me, /organizations/{org}, its members, its API keys. Prints
# the latency p50 / p99 / max, that no answer was an error, the process's resident memory (VmRSS) and
# peak (VmHWM), and which modules were built (the search and AI engines must not be).
# Then, at a constant rate (open loop, h2load --rps): the same GETs for DURATION seconds at RATE
# requests per second from 32 connections, half with a JWT and half with an API key, and their
# latency p50 / p99 / max. RATE defaults to what the Hono-on-Node peer (../shared/peers/hono-node)
# reaches on GET /health in this run (wrk -t2 -c32 -d10s), the issue's yardstick; the per-caller
# limit is lifted for this phase (LEDGE_SERVER__CALLER_BURST), as it would cap one caller far below.
#
# usage: scripts/bench-platform.sh
# env:   LEDGE_BIN (default target/release/ledge, built if missing), REQUESTS (default 10000),
#        RATE (default: measured on hono-node; 0 skips the phase), DURATION (default 10),
#        RATE_PATHS (the constant-rate phase's GETs: any of me, org, members, api-keys, comma-separated;
#        default all four)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
ledge=${LEDGE_BIN:-$root/target/release/ledge}
if [ ! -x "$ledge" ]; then
    cargo build --release -p ledge >&2
fi
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rate=${RATE:-}
if [ -z "$rate" ]; then
    command -v wrk >/dev/null && command -v h2load >/dev/null ||
        { echo "wrk and h2load are needed for the constant-rate phase: apt-get install -y wrk nghttp2-client (or RATE=0)" >&2; exit 1; }
    peer=$root/../shared/peers/hono-node/run.sh
    [ -x "$peer" ] || { echo "no Hono-on-Node peer at $peer to take the rate from; set RATE" >&2; exit 1; }
    port=$(free_port)
    PORT=$port GITHUB_WEBHOOK_SECRET=bench "$peer" >/dev/null 2>&1 &
    node=$!
    until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do
        kill -0 "$node" 2>/dev/null || { echo "the hono-node peer did not start" >&2; exit 1; }
        sleep 0.05
    done
    rate=$(wrk -t2 -c32 -d10s "http://127.0.0.1:$port/health" | awk '/^Requests\/sec:/ { printf "%d", $2 }')
    kill "$node"; wait "$node" 2>/dev/null || true
    echo "hono-node GET /health: $rate req/s (wrk -t2 -c32 -d10s) = the rate of the constant-rate phase"
fi

python3 - "$ledge" "$data" "${REQUESTS:-10000}" "$rate" "${DURATION:-10}" "${RATE_PATHS:-me,org,members,api-keys}" <<'EOF'
import http.client, json, os, socket, subprocess, sys, tempfile, time

ledge, data, total, rate, duration = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rate_paths = sys.argv[6].split(",")

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port

def rss(pid):
    status = open(f"/proc/{pid}/status").read()
    field = lambda name: int(next(l.split()[1] for l in status.splitlines() if l.startswith(name + ":")))
    return field("VmRSS") / 1024, field("VmHWM") / 1024

port = free_port()
env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGE_")}
env["LEDGE_LOG"] = "warn"
env["LEDGE_JWT_KEYS"] = "bench:" + os.urandom(24).hex()
if rate:
    # The 10,000 sequential requests stay under the default limit (they are spread over 50 callers);
    # the constant-rate phase sends `rate` per second from two callers.
    env["LEDGE_SERVER__CALLER_BURST"] = "1000000000"
server = subprocess.Popen([ledge, "--data-dir", data, "serve", "--port", str(port)], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
try:
    started = time.perf_counter()
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("GET", "/health"); r = conn.getresponse(); r.read()
            if r.status == 200:
                break
        except OSError:
            time.sleep(0.005)
        if server.poll() is not None:
            sys.exit("ledge serve exited: " + server.stderr.read().decode())
        if time.perf_counter() - started > 30:
            sys.exit("ledge serve did not answer /health within 30 s")
    print(f"serving after {(time.perf_counter() - started) * 1e3:.0f} ms; RSS idle {rss(server.pid)[0]:.1f} MiB")

    def call(method, path, body=None, token=None, expect=None):
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = "Bearer " + token
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        r = conn.getresponse(); data = r.read()
        if expect is not None and r.status != expect:
            sys.exit(f"{method} {path}: {r.status} {data[:300]!r}")
        return json.loads(data) if data else None

    def sign_in(email):
        account = {"email": email, "password": "quiet river stone lamp"}
        call("POST", "/auth/signup", account, expect=202)
        return call("POST", "/auth/login", account, expect=200)["access_token"]

    owner = sign_in("owner@example.com")
    org = call("POST", "/organizations", {"name": "Bench"}, owner, expect=201)["id"]
    users = [owner]
    for n in range(9):
        email = f"member{n}@example.com"
        token = sign_in(email)
        invitation = call("POST", f"/organizations/{org}/invitations", {"email": email, "role": "admin"}, owner, expect=201)
        call("POST", "/invitations/accept", {"token": invitation["token"]}, token, expect=200)
        users.append(token)
    keys = [call("POST", f"/organizations/{org}/api-keys", {"name": f"k{n}", "scopes": ["admin", "repos:read"]},
                 owner, expect=201)["secret"] for n in range(40)]
    callers = users + keys
    named = {"me": "/auth/me", "org": f"/organizations/{org}", "members": f"/organizations/{org}/members?limit=20",
             "api-keys": f"/organizations/{org}/api-keys?limit=20"}
    unknown = [name for name in rate_paths if name not in named]
    if unknown:
        sys.exit(f"RATE_PATHS: unknown {', '.join(unknown)} (known: {', '.join(named)})")
    paths = list(named.values())
    print(f"set up {len(users)} users and {len(keys)} API keys; RSS {rss(server.pid)[0]:.1f} MiB")

    latencies, errors = [], 0
    for i in range(total):
        token = callers[i % len(callers)]
        path = paths[(i // len(callers)) % len(paths)]
        t0 = time.perf_counter()
        conn.request("GET", path, headers={"authorization": "Bearer " + token})
        r = conn.getresponse(); r.read()
        latencies.append((time.perf_counter() - t0) * 1e3)
        errors += r.status >= 400

    latencies.sort()
    pct = lambda p: latencies[min(len(latencies) - 1, int(round(p / 100 * (len(latencies) - 1))))]
    print(f"{total} authenticated GETs over one connection: p50 {pct(50):.2f} ms, p99 {pct(99):.2f} ms, "
          f"max {latencies[-1]:.2f} ms; error answers: {errors}")
    print(f"after them: RSS {rss(server.pid)[0]:.1f} MiB")
    if rate:
        connections = 32
        logs = []
        runs = []
        for token in (users[0], keys[0]):
            log = tempfile.NamedTemporaryFile(prefix="h2load-", suffix=".log", delete=False).name
            logs.append(log)
            per_client = max(1, rate // connections)  # each of two h2load processes: half the clients
            runs.append(subprocess.Popen(
                ["h2load", "--h1", "-t1", f"-c{connections // 2}", f"--rps={per_client}", f"-D{duration}",
                 "--warm-up-time=1", f"--log-file={log}", "-H", f"authorization: Bearer {token}"]
                + [f"http://127.0.0.1:{port}{named[name]}" for name in rate_paths],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        outputs = [run.communicate()[0].decode() for run in runs]
        for caller, output in zip(("JWT", "API key"), outputs):
            summary = [l.strip() for l in output.splitlines() if l.startswith(("finished in", "requests:"))]
            print(f"  h2load ({caller}): " + "; ".join(summary))
        rows = []
        for log in logs:
            for line in open(log):
                _, status, micros = line.split("\t")[:3]
                rows.append((int(status), int(micros) / 1e3))
            os.unlink(log)
        latencies = sorted(ms for _, ms in rows)
        failed = sum(status >= 400 or status == 0 for status, _ in rows)
        if not latencies:
            sys.exit("h2load made no requests:\n" + "\n".join(outputs))
        print(f"constant rate {rate} req/s for {duration} s (h2load --h1, {connections} connections, JWT and "
              f"API key, GET {' '.join(named[name] for name in rate_paths)}): {len(rows)} requests = {len(rows) / duration:.0f} req/s; p50 {pct(50):.2f} ms, "
              f"p99 {pct(99):.2f} ms, max {latencies[-1]:.2f} ms; error answers: {failed}")
    modules = call("GET", "/health/modules")
    built = [m["name"] for m in (modules["modules"] if isinstance(modules, dict) else modules) if m.get("loaded")]
    print(f"modules built: {', '.join(built)}")
    now, peak = rss(server.pid)
    print(f"serving process: RSS {now:.1f} MiB, peak (VmHWM) {peak:.1f} MiB")
finally:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
EOF
