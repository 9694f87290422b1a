#!/usr/bin/env bash
# Contract test: runs schemathesis (PyPI, pinned) against GET /openapi.json of the real `ledge`
# binary. It starts `ledge serve` on a fresh data directory with every secret set, signs a user up,
# creates an organization and an API key with every scope (so the authenticated routes are
# exercised, not only their 401), then lets schemathesis call every documented operation with
# generated valid and invalid inputs. It fails on any 5xx, on any answer whose status, content
# type, headers or body the document does not describe, and on an input the document forbids that
# the server accepts.
#
#   ./scripts/contract-test.sh [--max-examples N]      (default 25 per operation)
#
# The document is first validated with openapi-spec-validator. Both tools are installed (pinned)
# into a venv under target/ (SCHEMATHESIS_VENV to change it).
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
VALIDATOR_VERSION=0.9.0
MAX_EXAMPLES=25
if [ "${1:-}" = "--max-examples" ]; then MAX_EXAMPLES=$2; fi

venv=$(realpath -m "${SCHEMATHESIS_VENV:-target/schemathesis}")
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION" ||
  ! "$venv/bin/openapi-spec-validator" --version 2>/dev/null | grep -qF "$VALIDATOR_VERSION"; then
  echo "contract-test: installing schemathesis $SCHEMATHESIS_VERSION and openapi-spec-validator into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "schemathesis==$SCHEMATHESIS_VERSION" "openapi-spec-validator==$VALIDATOR_VERSION"
fi

cargo build -p ledge --locked --quiet
bin=${CARGO_TARGET_DIR:-target}/debug/ledge

data=$(mktemp -d)
log="$data/serve.log"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$data"
}
trap cleanup EXIT

export LEDGE_JWT_KEYS="k1:contract-test-signing-key-of-32-bytes-or-more"
export LEDGE_ENCRYPTION_KEY="e1:contract-test-sealing-key-of-32-bytes-or-more"
export LEDGE_GITHUB_WEBHOOK_SECRET="contract-test-github-secret"
export LEDGE_STRIPE_WEBHOOK_SECRET="whsec_contract_test"
# Searches are what the test exercises most; the free plan's daily quota would turn them into 429s.
export LEDGE_PLANS__FREE__SEARCHES_PER_DAY=unlimited
LEDGE_DATA_DIR="$data/ledge" "$bin" serve --host 127.0.0.1 --port "$port" >"$log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  curl -fsS "$base/health" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "$base/health" >/dev/null || { cat "$log"; echo "contract-test: ledge did not start"; exit 1; }

# The document validates against the OpenAPI 3.1 specification's own schema.
curl -fsS "$base/openapi.json" >"$data/openapi.json"
"$venv/bin/openapi-spec-validator" --schema 3.1 "$data/openapi.json"

# A caller with every scope: sign up, log in, create an organization and a key.
json() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }
post() { curl -fsS -X POST -H 'content-type: application/json' "$@"; }
email=schemathesis@example.com password=long-enough-contract-password
post "$base/auth/signup" -d "{\"email\":\"$email\",\"password\":\"$password\"}" >/dev/null
token=$(post "$base/auth/login" -d "{\"email\":\"$email\",\"password\":\"$password\"}" | json "['access_token']")
org=$(post "$base/organizations" -H "authorization: Bearer $token" -d '{"name":"Contract","slug":"contract"}' |
  json "['id']")
key=$(post "$base/organizations/$org/api-keys" -H "authorization: Bearer $token" \
  -d '{"name":"contract","scopes":["search:read","chat:write","repos:read","repos:write","admin"]}' |
  json "['secret']")

# The organization's routes are called for this organization, not only for random ids (404).
cat >"$data/schemathesis.toml" <<EOF
[parameters]
"path.org" = "$org"
"query.org" = "contract"
EOF

# schemathesis, from the temporary directory (it keeps its cache, .schemathesis/, in the working
# directory), with the given credential and arguments.
schemathesis() {
  local credential=$1
  shift
  (cd "$data" && "$venv/bin/schemathesis" --config-file "$data/schemathesis.toml" run "$base/openapi.json" \
    --header "Authorization: Bearer $credential" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection \
    --max-examples "$MAX_EXAMPLES" \
    --seed "${CONTRACT_TEST_SEED:-20261206}" \
    --request-timeout 20 \
    --rate-limit 540/m \
    --workers 2 \
    --no-color "$@")
}

status=0
echo "contract-test: every operation, with an API key of every scope"
schemathesis "$key" || status=$?
# The routes only a signed-in user may call (an API key gets 403), with a fresh access token (it
# lives 5 minutes). Not logout or deleting the organization (they would end the run's session and
# organization), nor the notification targets (their checks resolve host names; tested in
# ledge-platform).
echo "contract-test: the signed-in user's routes, with an access token"
token=$(post "$base/auth/login" -d "{\"email\":\"$email\",\"password\":\"$password\"}" | json "['access_token']")
schemathesis "$token" \
  --include-operation-id-regex '^(me|create_organization|list_organizations|read_notification_preferences|accept_invitation|restore_organization)$' ||
  status=$?
if grep -qE 'panicked|ERROR' "$log"; then
  echo "contract-test: the server logged errors:"
  grep -E 'panicked|ERROR' "$log" | head -20
  status=1
fi
exit $status
