#!/usr/bin/env bash
# Instructions per request, exactly (callgrind): GET /tenants/{id} (cached) and POST
# /webhooks/message (ingest), for one server binary on one backend. Build the binary with
# `cargo build --profile profiling -p tenant-server --bin moltbot-saas` (release without LTO, with
# line tables) and the driver with `cargo build --profile profiling -p loaddriver`. Prints one
# JSON line. Interleave several binaries or settings (before/after, limits on/off) in one session
# for an A/B: docs/benchmarks.md#limits-and-metering.
#
# The warm-up creates the tenants (saving their API keys in the work dir) and warms the caches
# and prepared statements; each measured phase then reads the same tenants from that file, so it
# sends nothing but its own requests (no listing) and, with TENANT_KEYS=1, every read goes with
# its tenant's own API key: rate limited (per key and tenant) and metered.
#
# Only this process is counted: on PostgreSQL the database's own work (statements, indexes) is
# not in the figures.
#
# WRITES=1 counts the administrative writes instead, one phase after another in one driver run
# (dumped after each by the driver's --after-phase): create, channels, credentials, endpoints,
# endpoint-updates, keys — N tenants (500) at C connections (4), REQUESTS each at most.
#
# Usage: scripts/bench/callgrind.sh BIN LABEL sqlite|postgres [OUTDIR]
# Knobs: PG_ADMIN_URL (postgres://postgres@127.0.0.1:5432/postgres), PORT (3931), REQUESTS (4000),
# C (requests in flight, 4; 32 gives the ingest batches of the load benchmark), N tenants (200),
# DRIVER ($CARGO_TARGET_DIR/profiling/loaddriver, else …/release/loaddriver), TENANT_KEYS=1,
# SERVER_ENV (more VAR=value for the server, e.g. SAAS_RATE_LIMIT=false), SETUP_SQL (SQL run on
# the database after the server migrated it and before the warm-up, e.g. dropping an index),
# FUNCS (function-name patterns whose inclusive instructions per request are reported, see
# below). A plans file lifts the request limits so that nothing is refused; the limits cache
# lives an hour (valgrind's slowness would expire its 5 s between a tenant's requests) and the
# API-request counts are flushed hourly: a flush is one upsert per active tenant every 10 s
# whatever the request rate, which under valgrind's 50× slowdown would weigh 50× too much per
# request (measured: 5–17k instructions a read).
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=$1 LABEL=$2 BACKEND=$3 OUT=${4:-bench/results/callgrind}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PORT=${PORT:-3931}
REQUESTS=${REQUESTS:-4000}
C=${C:-4}
N=${N:-200}
TARGET=${CARGO_TARGET_DIR:-target}
if [ -z "${DRIVER:-}" ]; then
  DRIVER=$TARGET/profiling/loaddriver
  [ -x "$DRIVER" ] || DRIVER=$TARGET/release/loaddriver
fi
TENANT_KEYS=${TENANT_KEYS:-0}
SETUP_SQL=${SETUP_SQL:-}
# What the metering and the rate limits cost, inclusive: the ingest batch's counter upserts
# (SQLite; on PostgreSQL a CTE of the batch statement, outside this process) and quota
# judgement, and the request path's check and count.
FUNCS=${FUNCS:-tenant_store::usage::add_messages tenant_store::usage::counters_in_period tenant_service::usage::check_quotas tenant_service::usage::judge_counters tenant_service::control_plane::limits::<impl tenant_service::control_plane::ControlPlane>::rate_limit tenant_service::usage::meter::UsageMeter::count_request tenant_server::http::rate_limit::add_headers}
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
    URL="${PG_ADMIN_URL%/*}/$DB"
    sql() { psql -qAt "$URL" -v ON_ERROR_STOP=1 -c "$1"; } ;;
  sqlite)
    URL="sqlite://$WORK/callgrind.db"
    sql() { sqlite3 -bail "$WORK/callgrind.db" "$1"; } ;;
  *) echo "backend: sqlite or postgres" >&2; exit 2 ;;
esac
cat > "$WORK/plans.json" <<'EOF'
{"free": {"requestsPerMinutePerKey": 1000000, "requestsPerMinutePerTenant": 1000000, "requestBurst": 100000}}
EOF
KEYS=()
if [ "$TENANT_KEYS" = 1 ]; then KEYS=(--tenant-keys); fi
env DATABASE_URL="$URL" SAAS_API_PORT=$PORT SAAS_WORKERS=1 SAAS_MIGRATE_ON_START=true \
  SAAS_DATA_DIR="$WORK" SAAS_PLANS_FILE="$WORK/plans.json" SAAS_LIMITS_CACHE_TTL_MS=3600000 \
  SAAS_USAGE_FLUSH_MS=3600000 \
  SAAS_WEBHOOK_DISPATCHER=false RUST_LOG=warn "${SERVER_ENV[@]}" \
  taskset -c 0 valgrind --tool=callgrind \
  --callgrind-out-file="$OUT/callgrind.$LABEL.$BACKEND.%p" "$BIN" \
  >"$OUT/server.$LABEL.$BACKEND.log" 2>&1 &
PID=$!
up=0
for _ in $(seq 1 1500); do
  if curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then up=1; break; fi
  sleep 0.2
done
if [ "$up" != 1 ]; then echo "the server did not start: $OUT/server.$LABEL.$BACKEND.log" >&2; exit 1; fi
if [ -n "$SETUP_SQL" ]; then sql "$SETUP_SQL" >/dev/null; fi
drive() { taskset -c 1 "$DRIVER" --base-url "http://127.0.0.1:$PORT" -c "$C" --timeout 300 "$@"; }
count() { python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["count"])'; }
# The mean ingest batch, from the server's own histogram (`write_path="ingest"`): sum and count.
batches() {
  curl -fsS -H "Authorization: Bearer $SAAS_ADMIN_TOKEN" "http://127.0.0.1:$PORT/metrics" \
    | awk '/^moltbot_saas_write_batch_requests_(sum|count)\{.*write_path="ingest"/ {printf "%s ", $2} END {print ""}'
}
file() { echo "$OUT/callgrind.$LABEL.$BACKEND.$PID.$1"; }
totals() { grep -h '^totals:\|^summary:' "$(file "$1")" | head -1 | awk '{print $2}'; }
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
# Warm up (tenants and their keys, caches, prepared statements), then count each phase alone.
# Ten reads and ten ingests a tenant, so that no tenant's first request (its limits read from the
# database into the cache) falls in a measured phase.
drive --phases create,reads,ingest "${KEYS[@]}" -n "$N" -d 600 --max-requests $((N * 10)) \
  --save-tenants "$WORK/tenants.jsonl" >/dev/null
callgrind_control -z "$PID" >/dev/null
reads=$(drive --phases reads "${KEYS[@]}" --load-tenants "$WORK/tenants.jsonl" -n "$N" -d 600 \
  --max-requests "$REQUESTS" | count)
callgrind_control -d "$PID" >/dev/null
before=$(batches)
ingests=$(drive --phases ingest --load-tenants "$WORK/tenants.jsonl" -n "$N" -d 600 \
  --max-requests "$REQUESTS" | count)
callgrind_control -d "$PID" >/dev/null
after=$(batches)
# Inclusive instructions of each FUNCS pattern, per dump: "pattern<TAB>reads<TAB>ingest".
inclusive() {
  local f
  for f in $FUNCS; do
    printf '%s\t%s\t%s\n' "$f" \
      "$(callgrind_annotate --inclusive=yes --threshold=100 "$(file 1)" 2>/dev/null | awk -v f="$f" 'index($0, f) {gsub(",", "", $1); s += $1} END {print s + 0}')" \
      "$(callgrind_annotate --inclusive=yes --threshold=100 "$(file 2)" 2>/dev/null | awk -v f="$f" 'index($0, f) {gsub(",", "", $1); s += $1} END {print s + 0}')"
  done
}
python3 - "$LABEL" "$BACKEND" "$C" "$reads" "$(totals 1)" "$ingests" "$(totals 2)" "$before" "$after" "$(inclusive)" <<'PY'
import json, sys
label, backend, c, reads, read_ir, ingests, ingest_ir, before, after, funcs = sys.argv[1:]
reads, ingests = int(reads), int(ingests)
line = {"build": label, "backend": backend, "concurrency": int(c),
        "reads": reads, "read_instructions_per_request": round(int(read_ir) / reads),
        "ingests": ingests, "ingest_instructions_per_request": round(int(ingest_ir) / ingests)}
b, a = before.split(), after.split()
if len(b) == 2 and len(a) == 2 and float(a[1]) > float(b[1]):
    line["ingest_batches"] = round(float(a[1]) - float(b[1]))
    line["ingest_mean_batch"] = round((float(a[0]) - float(b[0])) / (float(a[1]) - float(b[1])), 1)
# Inclusive instructions per request of each function (a recursive or inlined function may be
# counted twice or not at all: read them with callgrind_annotate before quoting them).
inclusive = {}
for row in funcs.splitlines():
    name, r, i = row.split("\t")
    inclusive[name.rsplit("::", 1)[-1]] = {"per_read": round(int(r) / reads), "per_ingest": round(int(i) / ingests)}
line["inclusive"] = inclusive
print(json.dumps(line))
PY
