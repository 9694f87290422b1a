#!/usr/bin/env bash
# The indexing issue's "bad input" limits, measured: a repository of 100,000 files and one 50 MB file
# must be indexed within the 128 MB memory budget. Generates a git repository (no network) of
# FILES small source files (Rust, Python, JavaScript, Go; each with two or three functions and
# distinct identifiers, so that nothing is deduplicated) plus one 50 MB text file, in one commit made
# with `git fast-import`; then indexes it with scripts/bench-index.sh (BENCH_REPO), which prints
# files, chunks, the skip reasons (the 50 MB file: too_large), wall time and peak resident memory.
#
# usage: scripts/bench-index-limits.sh [work-dir]   (default: a new temporary directory, kept)
# env:   FILES (default 100000), BIG_MB (size of the big file, default 50; 0 for none),
#        LEDGE_BIN (default target/release/ledge, built if missing), LEDGE_TEST_MODEL_WHEEL
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=${1:-$(mktemp -d /tmp/ledge-bench-limits.XXXXXX)}
files=${FILES:-100000}
big=${BIG_MB:-50}
ledge=${LEDGE_BIN:-$root/target/release/ledge}
[ -x "$ledge" ] || cargo build --release -p ledge >&2
mkdir -p "$work"

repo=$work/repo-$files-$big
if [ ! -d "$repo" ]; then
    git init --quiet --bare --initial-branch=main "$repo.tmp"
    python3 - "$files" "$big" <<'EOF' | git -C "$repo.tmp" fast-import --quiet
import sys
files, big = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout.buffer
def blob(data):
    out.write(b"M 100644 inline %s\ndata %d\n%s\n" % (data[0].encode(), len(data[1]), data[1]))
def source(n):
    kind = n % 4
    if kind == 0:
        return f"src/m{n // 1000}/unit{n}.rs", (
            f"/// Parses record {n} from a line of text.\npub fn parse_record_{n}(line: &str) -> Option<u64> {{\n"
            f"    line.trim().strip_prefix(\"r{n}=\")?.parse().ok()\n}}\n\n"
            f"/// Formats record {n} for the log.\npub fn format_record_{n}(value: u64) -> String {{\n"
            f"    format!(\"r{n}={{value}}\")\n}}\n")
    if kind == 1:
        return f"py/p{n // 1000}/unit{n}.py", (
            f"def load_settings_{n}(path):\n    \"\"\"Loads the settings file {n}.\"\"\"\n"
            f"    with open(path) as handle:\n        return dict(line.split('=', 1) for line in handle)\n\n\n"
            f"class Cache{n}:\n    \"\"\"Keeps {n} entries.\"\"\"\n\n    def __init__(self):\n        self.items = {{}}\n\n"
            f"    def put_{n}(self, key, value):\n        self.items[key] = value\n")
    if kind == 2:
        return f"web/w{n // 1000}/unit{n}.js", (
            f"// Renders widget {n}.\nexport function renderWidget{n}(props) {{\n"
            f"  return `<div id=\"w{n}\">${{props.title}}</div>`;\n}}\n\n"
            f"export const widgetName{n} = 'widget-{n}';\n")
    return f"go/g{n // 1000}/unit{n}.go", (
        f"package g{n // 1000}\n\n// Sum{n} adds the values of batch {n}.\nfunc Sum{n}(values []int) int {{\n"
        f"\ttotal := 0\n\tfor _, v := range values {{\n\t\ttotal += v\n\t}}\n\treturn total\n}}\n")
out.write(b"commit refs/heads/main\ncommitter bench <bench@example.com> 1700000000 +0000\ndata 6\nlimits\n")
for n in range(files):
    path, text = source(n)
    blob((path, text.encode()))
# A database dump: 50 MB of rows whose payloads are pseudo-random hex (it compresses like real data,
# about 2:1, rather than to nothing).
import random
rng = random.Random(7)
rows, size, n = [], 0, 0
while size < big * 1024 * 1024:
    row = f"INSERT INTO events (id, kind, payload) VALUES ({n}, 'push', '{rng.getrandbits(256):064x}');\n".encode()
    rows.append(row); size += len(row); n += 1
if big:
    blob((f"data/dump-{big}mb.sql", b"".join(rows)[: big * 1024 * 1024]))
out.write(b"\n")
EOF
    mv "$repo.tmp" "$repo"
fi
echo "repository: $repo ($(git -C "$repo" ls-tree -r --name-only main | wc -l) files in git)"

# The full index, measured as scripts/bench-index.sh measures the corpus (fresh data directory, model
# installed, `ledge index`, wall time and peak RSS from /usr/bin/time -v).
BENCH_REPO=$repo LEDGE_BIN=$ledge exec "$root/scripts/bench-index.sh" "$work"
