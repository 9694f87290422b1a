#!/usr/bin/env bash
# Search latency through HTTP: starts `ledge serve` on an indexed data directory (for the 10,000-file
# corpus: the data/ directory that scripts/bench-index.sh leaves in its work directory), then
#   1. times the first GET /search after start (it builds the search module: opens the keyword and vector
#      indexes and loads the model — the lazy load a first user pays);
#   2. runs a fixed list of realistic queries ROUNDS times over one keep-alive connection (after one
#      warm-up round) and prints p50 / p95 / max per mode;
#   3. prints the serving process's resident memory (VmRSS) and peak (VmHWM) from /proc.
# Search needs a caller: the script signs a bench user up (LEDGE_JWT_KEYS is set to a throwaway key if
# unset), creates the organization ORG (or finds it on a rerun) and searches with an API key of it
# holding `search:read`.
#
# usage: scripts/bench-search.sh <data-dir>
# env:   LEDGE_BIN (default target/release/ledge, built if missing), ORG (default: bench, the organization
#        of bench-index.sh's `bench/corpus`), ROUNDS (default 20), MODES (default "hybrid keyword")
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

data=${1:?usage: scripts/bench-search.sh <data-dir>}
[ -d "$data/keyword" ] || { echo "bench-search: $data has no keyword index (run scripts/bench-index.sh)" >&2; exit 2; }
ledge=${LEDGE_BIN:-$root/target/release/ledge}
if [ ! -x "$ledge" ]; then
    cargo build --release -p ledge >&2
fi

exec python3 - "$ledge" "$data" "${ORG:-bench}" "${ROUNDS:-20}" "${MODES:-hybrid keyword}" <<'EOF'
import http.client, json, os, socket, subprocess, sys, time, urllib.parse

ledge, data, org, rounds, modes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5].split()

# What people type into a code search box over a Rust dependency tree: identifiers, words, questions.
QUERIES = [
    "parse json", "HashMap insert", "spawn_blocking", "serialize struct to string", "read file to string",
    "utf8 validation", "fn new", "error handling with Result", "async read buffer", "sha256 digest",
    "base64 encode", "compile regular expression", "thread pool worker", "lock a mutex", "percent decode url",
    "TcpStream connect timeout", "sqlite prepare statement", "memchr", "parse integer from string",
    "how are http headers parsed", "lang:rust Deserialize", "path:crates/tokio spawn", "sym:from_str",
    "retry with exponential backoff", "\"impl Display for\"", "-test iterator adapter",
]

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port

def rss(pid):
    status = open(f"/proc/{pid}/status").read()
    field = lambda name: int(next(l.split()[1] for l in status.splitlines() if l.startswith(name + ":")))
    return field("VmRSS") / 1024, field("VmHWM") / 1024

port = free_port()
# ledge refuses LEDGE_* variables it does not know (LEDGE_BIN is this script's).
env = {k: v for k, v in os.environ.items() if k not in ("LEDGE_BIN", "LEDGE_TEST_MODEL_WHEEL")}
env["LEDGE_LOG"] = "warn"
env.setdefault("LEDGE_JWT_KEYS", "bench:" + os.urandom(24).hex())
# The bench organization is on the free plan: lift its daily search quota for the run.
env.setdefault("LEDGE_PLANS__FREE__SEARCHES_PER_DAY", "unlimited")
server = subprocess.Popen([ledge, "--data-dir", data, "serve", "--port", str(port)], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
try:
    conn = None
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

    def call(method, path, body=None, token=None):
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = "Bearer " + token
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        r = conn.getresponse(); data = r.read()
        return r.status, json.loads(data) if data else None

    email, password = "bench@example.com", "quiet river stone lamp"
    status, answer = call("POST", "/auth/signup", {"email": email, "password": password})
    if status != 202:
        sys.exit(f"signup: {status} {answer}")
    status, tokens = call("POST", "/auth/login", {"email": email, "password": password})
    if status != 200:
        sys.exit(f"login: {status} {tokens}")
    access = tokens["access_token"]
    status, created = call("POST", "/organizations", {"name": org, "slug": org}, access)
    if status == 201:
        org_id = created["id"]
    else:
        _, mine = call("GET", "/organizations?limit=100", None, access)
        org_id = next((o["id"] for o in mine["items"] if o["slug"] == org), None)
        if org_id is None:
            sys.exit(f"cannot create or find the organization {org}: {status} {created}")
    # Each API key may make 300 requests at once, then 10 per second (the per-caller limit): the run
    # spreads its requests over enough keys to stay under it.
    keys = []
    for n in range(1 + (len(modes) * (rounds + 1) * len(QUERIES) + 1) // 250):
        status, key = call("POST", f"/organizations/{org_id}/api-keys",
                           {"name": f"bench-{n}", "scopes": ["search:read"]}, access)
        if status != 201:
            sys.exit(f"api key: {status} {key}")
        keys.append({"authorization": "Bearer " + key["secret"]})
    sent = [0]

    def search(q, mode):
        path = "/search?" + urllib.parse.urlencode({"org": org, "q": q, "mode": mode, "limit": 20})
        search_headers = keys[sent[0] % len(keys)]; sent[0] += 1
        t0 = time.perf_counter()
        conn.request("GET", path, headers=search_headers); r = conn.getresponse(); body = r.read()
        ms = (time.perf_counter() - t0) * 1e3
        if r.status != 200:
            sys.exit(f"GET {path}: {r.status} {body[:300]!r}")
        return ms, json.loads(body)

    ms, first = search(QUERIES[0], modes[0])
    print(f"first query after start (builds the search module): {ms:.1f} ms "
          f"({len(first['hits'])} hits, mode {first['mode']}, server took_ms {first['took_ms']:.1f})")
    for notice in first["notices"]:
        print(f"  notice: {notice}")

    def pct(values, p):
        values = sorted(values); return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]

    for mode in modes:
        for q in QUERIES:  # warm-up round
            search(q, mode)
        client, server_ms, hits = [], [], 0
        for _ in range(rounds):
            for q in QUERIES:
                ms, body = search(q, mode)
                client.append(ms); server_ms.append(body["took_ms"]); hits += len(body["hits"])
        print(f"{mode:8} {len(client)} requests ({len(QUERIES)} queries x {rounds}), "
              f"{hits / len(client):.1f} hits/query: HTTP p50 {pct(client, 50):.2f} ms, p95 {pct(client, 95):.2f} ms, "
              f"max {max(client):.2f} ms; in-process took_ms p50 {pct(server_ms, 50):.2f}, p95 {pct(server_ms, 95):.2f}")
    now, peak = rss(server.pid)
    print(f"serving process: RSS {now:.1f} MiB, peak (VmHWM) {peak:.1f} MiB")
    # Where it goes: resident MiB per kind of mapping (anonymous memory, the binary, the keyword
    # index's files by extension, other files).
    kinds, kind = {}, None
    for line in open(f"/proc/{server.pid}/smaps"):
        head = line.split()
        if "-" in head[0] and not head[0].endswith(":"):
            name = head[5] if len(head) > 5 else "anonymous"
            if name.startswith("/"):
                ext = name.rsplit(".", 1)[-1]
                name = ("keyword ." + ext) if "/keyword/" in name else ("binary" if name == os.path.realpath(ledge) else name.rsplit("/", 1)[-1])
            elif name == "[heap]":
                name = "anonymous"
            kind = name
        elif head[0] == "Rss:":
            kinds[kind] = kinds.get(kind, 0) + int(head[1])
    top = sorted(kinds.items(), key=lambda kv: -kv[1])[:8]
    print("  resident by mapping: " + ", ".join(f"{name} {kb / 1024:.1f}" for name, kb in top))
finally:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
EOF
