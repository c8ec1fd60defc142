#!/usr/bin/env bash
# The cost of rate limiting and metering (issue 15, docs/benchmarks.md#limits-and-metering): the
# same build with rate limits off (SAAS_RATE_LIMIT=false), in memory, and in Redis, interleaved,
# optionally against a base build without them (BASE_BIN). Per variant and run, a fresh SQLite
# database (or PostgreSQL with BACKEND=postgres), the server with one worker pinned to CPU 0 and
# the driver to CPU 1: tenants created, then `GET /tenants/{id}` with each tenant's own API key
# (so every request is checked and metered) and `POST /webhooks/message` (metered messages),
# at concurrency C; then the reads again at concurrency 1 for the latency a check adds.
# The plans file lifts the request limits so that nothing is refused: what is measured is the
# check, not cheaper 429s.
#
# Knobs: RUNS (3), N tenants (300), C (32), DURATION seconds (4), BACKEND (sqlite), BIN
# ($TARGET/profiling/moltbot-saas), BASE_BIN (none), REDIS_URL (redis://127.0.0.1:6379/),
# PORT (3950), RESULTS (bench/results/limits-<UTC time>). Build first:
#   cargo build --profile profiling -p tenant-server --bin moltbot-saas -p loaddriver
set -euo pipefail
cd "$(dirname "$0")/../.."

RUNS=${RUNS:-3}
N=${N:-300}
C=${C:-32}
DURATION=${DURATION:-4}
BACKEND=${BACKEND:-sqlite}
TARGET=${CARGO_TARGET_DIR:-target}
BIN=${BIN:-$TARGET/profiling/moltbot-saas}
DRIVER=${DRIVER:-$TARGET/profiling/loaddriver}
BASE_BIN=${BASE_BIN:-}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PORT=${PORT:-3950}
RESULTS=${RESULTS:-bench/results/limits-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$RESULTS"
WORK=$(mktemp -d /tmp/moltbot-limits-bench.XXXXXX)
export SAAS_ADMIN_TOKEN="bench-operator-token-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export SAAS_GATEWAY_TOKEN="bench-gateway-token-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
PREFIX="bench-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n'):"
SERVER_PID=
PG_DBS=()

cat > "$WORK/plans.json" <<'EOF'
{"free": {"requestsPerMinutePerKey": 1000000, "requestsPerMinutePerTenant": 1000000, "requestBurst": 100000}}
EOF

stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
cleanup() {
  stop_server
  for db in "${PG_DBS[@]}"; do
    psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

fresh_db() {
  local name=$1
  if [ "$BACKEND" = postgres ]; then
    psql -q "$PG_ADMIN_URL" -c "CREATE DATABASE $name" >/dev/null
    PG_DBS+=("$name")
    echo "${PG_ADMIN_URL%/*}/$name"
  else
    echo "sqlite://$WORK/$name.db"
  fi
}

# start_server LABEL BIN URL [VAR=value…]
start_server() {
  local label=$1 bin=$2 url=$3
  shift 3
  env DATABASE_URL="$url" SAAS_API_PORT="$PORT" SAAS_WORKERS=1 SAAS_MIGRATE_ON_START=true \
    SAAS_DATA_DIR="$WORK/data-$label" SAAS_PLANS_FILE="$WORK/plans.json" SAAS_LOG_FORMAT=json \
    RUST_LOG=warn "$@" taskset -c 0 "$bin" serve >"$RESULTS/server-$label.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "server $label did not start" >&2
  exit 1
}

drive() {
  taskset -c 1 "$DRIVER" --base-url "http://127.0.0.1:$PORT" --server-pid "$SERVER_PID" "$@" \
    | tee -a "$RESULTS/results.jsonl"
}

variants=(off memory redis)
if [ -n "$BASE_BIN" ]; then variants=(base "${variants[@]}"); fi
for run in $(seq 1 "$RUNS"); do
  for v in "${variants[@]}"; do
    bin=$BIN
    extra=()
    case $v in
      base) bin=$BASE_BIN ;;
      off) extra=(SAAS_RATE_LIMIT=false) ;;
      memory) ;;
      redis) extra=(SAAS_REDIS_URL="$REDIS_URL" SAAS_REDIS_KEY_PREFIX="$PREFIX") ;;
    esac
    url=$(fresh_db "limits_${BACKEND}_${run}_$v")
    start_server "$v-$run" "$bin" "$url" "${extra[@]}"
    tags=(--tag variant="$v" --tag run="$run" --tag backend="$BACKEND")
    drive --phases create,reads,ingest --tenant-keys -n "$N" -c "$C" -d "$DURATION" "${tags[@]}" \
      --tag concurrency="$C"
    drive --phases create,reads --tenant-keys -n 20 -c 1 -d "$DURATION" "${tags[@]}" \
      --tag concurrency=1
    stop_server
  done
done
echo "results: $RESULTS/results.jsonl"
