#!/usr/bin/env bash
# Authenticated platform requests through HTTP: starts `ledge serve` on a fresh data directory, signs
# up 10 users (one organization, 9 invited members) and makes 40 API keys, then sends REQUESTS mixed
# authenticated GETs over one keep-alive connection (JWT and API-key callers spread so that no caller
# reaches the per-caller limit): /auth/me, /organizations/{org}, its members, its API keys. Prints
# the latency p50 / p99 / max, that no answer was an error, the process's resident memory (VmRSS) and
# peak (VmHWM), and which modules were built (the search and AI engines must not be).
#
# usage: scripts/bench-platform.sh
# env:   LEDGE_BIN (default target/release/ledge, built if missing), REQUESTS (default 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
ledge=${LEDGE_BIN:-$root/target/release/ledge}
if [ ! -x "$ledge" ]; then
    cargo build --release -p ledge >&2
fi
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT

python3 - "$ledge" "$data" "${REQUESTS:-10000}" <<'EOF'
import http.client, json, os, socket, subprocess, sys, time

ledge, data, total = sys.argv[1], sys.argv[2], int(sys.argv[3])

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
    print(f"serving after {(time.perf_counter() - started) * 1e3:.0f} ms; RSS idle {rss(server.pid)[0]:.1f} MB")

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
    paths = ["/auth/me", f"/organizations/{org}", f"/organizations/{org}/members?limit=20",
             f"/organizations/{org}/api-keys?limit=20"]
    print(f"set up {len(users)} users and {len(keys)} API keys; RSS {rss(server.pid)[0]:.1f} MB")

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
    modules = call("GET", "/health/modules")
    built = [m["name"] for m in (modules["modules"] if isinstance(modules, dict) else modules) if m.get("loaded")]
    print(f"modules built: {', '.join(built)}")
    now, peak = rss(server.pid)
    print(f"serving process: RSS {now:.1f} MB, peak (VmHWM) {peak:.1f} MB")
finally:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
EOF
