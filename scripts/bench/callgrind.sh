#!/usr/bin/env bash
# Instructions per request, exactly (callgrind): GET /tenants/{id} (cached) and POST /events
# (ingest), for one server binary on one backend. Build the binary with
# `cargo build --profile profiling -p tenant-server --bin moltbot-saas` (release without LTO, with
# line tables) and the driver with `cargo build --release -p loaddriver`. Prints one JSON line.
# Interleave several binaries (before/after) in one session for an A/B: docs/benchmarks.md.
#
# WRITES=1 counts the administrative writes instead, one phase after another in one driver run
# (dumped after each by the driver's --after-phase): create, channels, credentials, endpoints,
# endpoint-updates, keys — N tenants (500) at C connections (4), REQUESTS each at most.
#
# Usage: scripts/bench/callgrind.sh BIN LABEL sqlite|postgres [OUTDIR]
# Knobs: PG_ADMIN_URL (postgres://postgres@127.0.0.1:5432/postgres), PORT (3931), REQUESTS (4000),
# DRIVER ($CARGO_TARGET_DIR/release/loaddriver), TENANT_KEYS=1 (reads with each tenant's own API
# key, so each is rate limited and metered; a plans file lifts the request limits, as
# scripts/bench/limits.sh does), SERVER_ENV (more VAR=value for the server, e.g.
# SAAS_RATE_LIMIT=false).
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=$1 LABEL=$2 BACKEND=$3 OUT=${4:-bench/results/callgrind}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PORT=${PORT:-3931}
REQUESTS=${REQUESTS:-4000}
DRIVER=${DRIVER:-${CARGO_TARGET_DIR:-target}/release/loaddriver}
TENANT_KEYS=${TENANT_KEYS:-0}
read -r -a SERVER_ENV <<<"${SERVER_ENV:-}"
WORK=$(mktemp -d /tmp/moltbot-callgrind.XXXXXX)
DB=
PID=
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  if [ -n "$DB" ]; then psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$OUT"
export SAAS_ADMIN_TOKEN="bench-operator-token-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export SAAS_GATEWAY_TOKEN="bench-gateway-token-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
case "$BACKEND" in
  postgres)
    DB="callgrind_${LABEL//[^a-z0-9]/_}_$$"
    psql -q "$PG_ADMIN_URL" -c "CREATE DATABASE $DB" >/dev/null
    URL="${PG_ADMIN_URL%/*}/$DB" ;;
  sqlite) URL="sqlite://$WORK/callgrind.db" ;;
  *) echo "backend: sqlite or postgres" >&2; exit 2 ;;
esac
cat > "$WORK/plans.json" <<'EOF'
{"free": {"requestsPerMinutePerKey": 1000000, "requestsPerMinutePerTenant": 1000000, "requestBurst": 100000}}
EOF
KEYS=()
if [ "$TENANT_KEYS" = 1 ]; then KEYS=(--tenant-keys); fi
env DATABASE_URL="$URL" SAAS_API_PORT=$PORT SAAS_WORKERS=1 SAAS_MIGRATE_ON_START=true \
  SAAS_DATA_DIR="$WORK" SAAS_PLANS_FILE="$WORK/plans.json" RUST_LOG=warn "${SERVER_ENV[@]}" \
  taskset -c 0 valgrind --tool=callgrind \
  --callgrind-out-file="$OUT/callgrind.$LABEL.$BACKEND.%p" "$BIN" \
  >"$OUT/server.$LABEL.$BACKEND.log" 2>&1 &
PID=$!
for _ in $(seq 1 600); do curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 0.2; done
drive() { taskset -c 1 "$DRIVER" --base-url "http://127.0.0.1:$PORT" -c "${C:-4}" --timeout 120 "$@"; }
count() { python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["count"])'; }
totals() { grep -h '^totals:\|^summary:' "$OUT/callgrind.$LABEL.$BACKEND.$PID.$1" | head -1 | awk '{print $2}'; }
if [ "${WRITES:-0}" = 1 ]; then
  # Warm up on tenants of their own (statements prepared, caches), then one phase per dump.
  drive --phases create,channels,endpoints,keys -n 50 -d 3 --max-requests 100 >/dev/null
  callgrind_control -z "$PID" >/dev/null
  PHASES=create,channels,credentials,endpoints,endpoint-updates,keys
  drive --phases "$PHASES" -n "${N:-500}" -d 120 --max-requests "$REQUESTS" \
    --after-phase "callgrind_control -d $PID >/dev/null" >"$WORK/writes.jsonl"
  cp "$WORK/writes.jsonl" "$OUT/writes.$LABEL.$BACKEND.jsonl"
  args=()
  k=0
  for phase in ${PHASES//,/ }; do
    k=$((k + 1))
    args+=("$phase" "$(totals "$k")")
  done
  python3 - "$LABEL" "$BACKEND" "$WORK/writes.jsonl" "${args[@]}" <<'PY'
import json, sys
label, backend, lines = sys.argv[1:4]
phases = {l["phase"]: l for l in map(json.loads, open(lines))}
rest = sys.argv[4:]
out = {"build": label, "backend": backend}
for phase, ir in zip(rest[::2], rest[1::2]):
    counts = phases[phase]["count"]
    out[phase] = counts
    if phases[phase]["errors"]:
        out[phase + "_errors"] = phases[phase].get("statuses")
    out[phase + "_instructions_per_request"] = round(int(ir) / max(counts, 1))
print(json.dumps(out))
PY
  exit 0
fi
# Warm up (tenants, caches, prepared statements), then count each phase alone.
drive --phases create,reads,ingest "${KEYS[@]}" -n 200 -d 3 >/dev/null
callgrind_control -z "$PID" >/dev/null
reads=$(drive --phases reads "${KEYS[@]}" -n 200 -d 60 --max-requests "$REQUESTS" | count)
callgrind_control -d "$PID" >/dev/null
ingests=$(drive --phases ingest -n 200 -d 60 --max-requests "$REQUESTS" | count)
callgrind_control -d "$PID" >/dev/null
python3 - "$LABEL" "$BACKEND" "$reads" "$(totals 1)" "$ingests" "$(totals 2)" <<'PY'
import json, sys
label, backend, reads, read_ir, ingests, ingest_ir = sys.argv[1:]
print(json.dumps({"build": label, "backend": backend,
                  "reads": int(reads), "read_instructions_per_request": round(int(read_ir) / int(reads)),
                  "ingests": int(ingests), "ingest_instructions_per_request": round(int(ingest_ir) / int(ingests))}))
PY
