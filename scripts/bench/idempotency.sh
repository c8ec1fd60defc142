#!/usr/bin/env bash
# The cost of `Idempotency-Key` on `POST /tenants`: the loaddriver's `create` phase (no key) and
# `create-keyed` phase (a key per create), each on a fresh database and a fresh server pinned to
# CPU 0 (the driver on CPU 1), interleaved RUNS times per backend, the order swapped every other
# run. JSON lines in $RESULTS/results.jsonl, a table of medians on stdout. Release binaries are
# built first (as `scripts/bench/run.sh` does). See docs/benchmarks.md.
#
# Knobs: RUNS (3), N creates per phase (2000), C concurrency (32), BACKENDS ("postgres sqlite"),
# PG_ADMIN_URL (postgres://postgres@127.0.0.1:5432/postgres), PORT (3910), RESULTS.
set -euo pipefail

cd "$(dirname "$0")/../.."
RUNS=${RUNS:-3}
N=${N:-2000}
C=${C:-32}
BACKENDS=${BACKENDS:-postgres sqlite}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PORT=${PORT:-3910}
RESULTS=${RESULTS:-bench/results/idempotency-$(date -u +%Y%m%dT%H%M%SZ)}
TARGET=${CARGO_TARGET_DIR:-target}
export SAAS_ADMIN_TOKEN="bench-operator-token-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"

case "$PG_ADMIN_URL" in
  postgres://*@127.0.0.1[:/]*|postgresql://*@127.0.0.1[:/]*) ;;
  *) echo "PG_ADMIN_URL must point at 127.0.0.1" >&2; exit 2 ;;
esac

mkdir -p "$RESULTS"
WORK=$(mktemp -d /tmp/moltbot-bench-idem.XXXXXX)
SERVER_PID=
PG_DBS=()
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
log() { echo "[bench $(date -u +%H:%M:%S)] $*" >&2; }

nice cargo build --release -q -p tenant-server --bin moltbot-saas -p loaddriver --bins
SERVER_BIN="$TARGET/release/moltbot-saas"
DRIVER_BIN="$TARGET/release/loaddriver"

fresh_db() {
  local backend=$1 name=$2
  if [ "$backend" = sqlite ]; then
    echo "sqlite://$WORK/$name.db"
  else
    local db="bench_${name//[^a-z0-9]/_}_$$"
    psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
    PG_DBS+=("$db")
    echo "${PG_ADMIN_URL%/*}/$db"
  fi
}

start_server() {
  DATABASE_URL="$1" SAAS_API_PORT=$PORT SAAS_WORKERS=1 SAAS_MIGRATE_ON_START=true \
    SAAS_DATA_DIR="$WORK" RUST_LOG=info SAAS_LOG_FORMAT=json \
    taskset -c 0 "$SERVER_BIN" >"$RESULTS/server-$2.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    if curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then log "server exited; see $RESULTS/server-$2.log"; exit 1; fi
    sleep 0.1
  done
  log "server did not answer /health within 30 s"; exit 1
}

for run in $(seq 1 "$RUNS"); do
  for backend in $BACKENDS; do
    phases="create create-keyed"
    if [ $((run % 2)) = 0 ]; then phases="create-keyed create"; fi
    for phase in $phases; do
      start_server "$(fresh_db "$backend" "idem_${backend}_${run}_${phase}")" "$backend-$run-$phase"
      log "$phase on $backend, run $run"
      taskset -c 1 "$DRIVER_BIN" --base-url "http://127.0.0.1:$PORT" --server-pid "$SERVER_PID" \
        --phase-timeout 600 --phases "$phase" -n "$N" -c "$C" --strict \
        --tag backend="$backend" --tag run="$run" >> "$RESULTS/results.jsonl"
      stop_server
    done
  done
done

python3 - "$RESULTS/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| backend | phase | runs | req/s (median) | server CPU µs/req (median) [range] | errors |")
print("|---|---|---|---|---|---|")
for backend in sorted({r["backend"] for r in rows}):
    for phase in ("create", "create-keyed"):
        rs = [r for r in rows if r["backend"] == backend and r["phase"] == phase]
        if not rs:
            continue
        cpu = [r.get("server_cpu_us_per_req") for r in rs if r.get("server_cpu_us_per_req") is not None]
        rps = [r["rps"] for r in rs]
        rng = f"[{min(cpu):.0f}–{max(cpu):.0f}]" if cpu else ""
        med = f"{statistics.median(cpu):.0f}" if cpu else "n/a"
        print(f"| {backend} | {phase} | {len(rs)} | {statistics.median(rps):,.0f} | {med} {rng} | {sum(r['errors'] for r in rs)} |")
PY
