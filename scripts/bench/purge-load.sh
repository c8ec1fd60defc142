#!/usr/bin/env bash
# Other tenants' requests while a big purge runs (issue 27, docs/benchmarks.md#purge): per
# backend, one tenant gets ROWS rows of history straight in the database (events of a typical
# `message.received` body, each with one delivered delivery and its attempt, dated 2026-01-01),
# then the server is run twice on that same database while the load driver sends other tenants'
# reads (`GET /tenants/{id}`) and writes (`POST /webhooks/message`) at once, for DURATION seconds
# each:
#   1. baseline — no purge (`SAAS_PURGE_INTERVAL=1d`, never due in the run);
#   2. purge — the server's own background purge removes the ROWS rows meanwhile: KIND=retention
#      (the default: `SAAS_RETENTION_EVENTS`/`_DELIVERIES` of 1 day, the first round 1 s after
#      the start) or KIND=delete (`DELETE /tenants/{id}` of the big tenant as the load starts;
#      its rows go in the background).
# Prints the purge's rows/s and, per phase, p50/p99/max of both runs; the raw driver lines are in
# RESULTS. The load should end after the purge: the script says when it did not (raise
# DURATION) or when the purge outlasted the load (lower it, or raise ROWS for longer overlap).
#
# Knobs: ROWS (1000000), BACKENDS ("sqlite postgres"), KIND (retention), DURATION (30), C (16,
# per driver), TENANTS (50, the driver's), BIN ($CARGO_TARGET_DIR/release/moltbot-saas), DRIVER
# ($CARGO_TARGET_DIR/release/loaddriver), PORT (3960), PG_ADMIN_URL, RESULTS
# (bench/results/purge-load-<UTC time>). Build first:
#   cargo build --release -p tenant-server --bin moltbot-saas -p loaddriver
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${ROWS:-1000000}
BACKENDS=${BACKENDS:-sqlite postgres}
KIND=${KIND:-retention}
DURATION=${DURATION:-30}
C=${C:-16}
TENANTS=${TENANTS:-50}
TARGET=${CARGO_TARGET_DIR:-target}
BIN=${BIN:-$TARGET/release/moltbot-saas}
DRIVER=${DRIVER:-$TARGET/release/loaddriver}
PORT=${PORT:-3960}
RESULTS=${RESULTS:-bench/results/purge-load-$(date -u +%Y%m%dT%H%M%SZ)}
case "$KIND" in retention|delete) ;; *) echo "KIND: retention or delete" >&2; exit 2 ;; esac
# shellcheck source=scripts/bench/lifecycle-common.sh
. scripts/bench/lifecycle-common.sh
EVENTS=$(( (ROWS + 2) / 3 ))
mkdir -p "$RESULTS"
export SAAS_ADMIN_TOKEN="bench-operator-token-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export SAAS_GATEWAY_TOKEN="bench-gateway-token-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"

# start_server LOG [VAR=value…]: the server without dispatcher, logging the purge's progress.
start_server() {
  local log=$1
  shift
  bench_start_server "$log" SAAS_WEBHOOK_DISPATCHER=false SAAS_LOG_FORMAT=json \
    RUST_LOG=warn,tenant_service::lifecycle=info "$@"
}

# load RUN: the reads and the writes at once, DURATION seconds each, one driver each.
load() {
  local tags=(--tag run="$1" --tag backend="$backend" --tag kind="$KIND")
  local common=(--base-url "http://127.0.0.1:$PORT" --server-pid "$SERVER_PID" -c "$C"
    -d "$DURATION" --load-tenants "$WORK/tenants.jsonl" -n "$TENANTS" "${tags[@]}")
  "$DRIVER" "${common[@]}" --phases reads >"$WORK/reads.jsonl" &
  local reads=$!
  "$DRIVER" "${common[@]}" --phases ingest >"$WORK/ingest.jsonl"
  wait "$reads"
  cat "$WORK/reads.jsonl" "$WORK/ingest.jsonl" | tee -a "$RESULTS/results.jsonl" >/dev/null
}

export SAAS_ENV=development SAAS_DATA_DIR="$WORK"
for backend in $BACKENDS; do
  bench_database "$backend" purgeload
  big=$("$BIN" tenants create --name "Purge Load Big" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  seeded=$(date +%s.%N)
  seed_history "$DATABASE_URL" "$big" "$EVENTS"
  echo "$backend: seeded $((3 * EVENTS)) rows for one tenant in $(python3 -c "import time; print(round(time.time() - $seeded, 1))") s"

  # 1. Baseline: the driver's tenants, then the load with no purge due.
  start_server "$RESULTS/server-$backend-baseline.log" SAAS_PURGE_INTERVAL=1d
  "$DRIVER" --base-url "http://127.0.0.1:$PORT" --phases create -n "$TENANTS" -c 4 \
    --save-tenants "$WORK/tenants.jsonl" >/dev/null
  load baseline
  bench_stop_server

  # 2. The same load while the purge runs.
  log="$RESULTS/server-$backend-purge.log"
  if [ "$KIND" = retention ]; then
    start_server "$log" SAAS_PURGE_INTERVAL=1s SAAS_RETENTION_EVENTS=1d SAAS_RETENTION_DELIVERIES=1d
    purge_started=$(python3 -c 'import time; print(time.time() + 1)')
    done_msg="purge round done"
  else
    start_server "$log" SAAS_PURGE_INTERVAL=1s SAAS_RETENTION_EVENTS=3650d SAAS_RETENTION_DELIVERIES=3650d
    purge_started=$(python3 -c 'import time; print(time.time())')
    curl -sf -X DELETE -H "Authorization: Bearer $SAAS_ADMIN_TOKEN" \
      "http://127.0.0.1:$PORT/tenants/$big" >/dev/null
    done_msg="deleted tenant's rows purged"
  fi
  load purge
  load_ended=$(python3 -c 'import time; print(time.time())')
  purge_ended=
  for _ in $(seq 1 7200); do
    if grep -q "$done_msg" "$log"; then purge_ended=$(python3 -c 'import time; print(time.time())'); break; fi
    sleep 0.5
  done
  # Seen by polling; the figures below take the log line's own time.
  left=$(bench_sql "$DATABASE_URL" "SELECT count(*) FROM events WHERE tenant_id = '$big'")
  bench_stop_server
  python3 - "$backend" "$KIND" "$((3 * EVENTS))" "$purge_started" "${purge_ended:-}" "$load_ended" "$left" "$RESULTS/results.jsonl" "$log" <<'PY'
import json, sys
backend, kind, rows, started, ended, load_ended, left, results, log = sys.argv[1:]
rows, started, load_ended, left = int(rows), float(started), float(load_ended), int(left)
if ended:
    ended = float(ended)
    # The log line's own time, when it has one (JSON logs: "timestamp").
    for line in open(log):
        if "purge round done" in line or "deleted tenant's rows purged" in line:
            try:
                from datetime import datetime
                ts = json.loads(line)["timestamp"]
                ended = datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
            except Exception:
                pass
    t = ended - started
    print(f"{backend}: purge ({kind}) of {rows} rows took {t:.1f} s: {rows / t:,.0f} rows/s"
          + (f"; it ended {load_ended - ended:.1f} s before the load did" if ended < load_ended
             else f"; the load ended {ended - load_ended:.1f} s before it (the tail of the purge ran unloaded)"))
else:
    print(f"{backend}: the purge did not finish ({left} events of the tenant left)")
lines = [json.loads(l) for l in open(results) if l.strip()]
lines = [l for l in lines if l.get("backend") == backend and l.get("kind") == kind]
print(f"{'phase':8} {'run':9} {'requests':>9} {'errors':>6} {'rps':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
for phase in ("reads", "ingest"):
    for run in ("baseline", "purge"):
        for l in [l for l in lines if l["phase"] == phase and l["run"] == run][-1:]:
            print(f"{phase:8} {run:9} {l['count']:>9} {l['errors']:>6} {l['rps']:>8.0f} {l['p50_ms']:>8.2f} {l['p99_ms']:>8.2f} {l['max_ms']:>8.1f}")
PY
done
echo "results: $RESULTS/results.jsonl"
