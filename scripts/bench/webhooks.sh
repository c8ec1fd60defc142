#!/usr/bin/env bash
# The webhook delivery benchmark (`just bench` runs it last; alone: scripts/bench/webhooks.sh):
# the release `webhook_bench` example on a fresh database per run and backend — throughput to one
# endpoint and to ten, latency at a steady rate, and the fairness scenario (a healthy tenant's
# latency beside 0, 1 and 10 tenants whose endpoints accept connections and never answer). See
# docs/benchmarks.md#webhook-fairness.
#
# Knobs (environment): RUNS (3), BACKENDS ("sqlite postgres"), COUNT deliveries for throughput
# (20000), RATE events/s and SECONDS for latency (500, 20), HANGING ("0,1,10"), FAIR_RATE events/s
# per tenant (50) and FAIR_SECONDS (40), PG_ADMIN_URL (postgres://postgres@127.0.0.1:5432/postgres),
# RESULTS (bench/results/<UTC time>); JSON lines go to $RESULTS/webhooks.jsonl.
set -euo pipefail

cd "$(dirname "$0")/../.."
RUNS=${RUNS:-3}
BACKENDS=${BACKENDS:-sqlite postgres}
COUNT=${COUNT:-20000}
RATE=${RATE:-500}
SECONDS_=${SECONDS_:-20}
HANGING=${HANGING:-0,1,10}
FAIR_RATE=${FAIR_RATE:-50}
FAIR_SECONDS=${FAIR_SECONDS:-40}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
RESULTS=${RESULTS:-bench/results/$(date -u +%Y%m%dT%H%M%SZ)}
TARGET=${CARGO_TARGET_DIR:-target}

case "$PG_ADMIN_URL" in
  postgres://*@127.0.0.1[:/]*|postgresql://*@127.0.0.1[:/]*) ;;
  *) echo "PG_ADMIN_URL must point at 127.0.0.1" >&2; exit 2 ;;
esac

mkdir -p "$RESULTS"
WORK=$(mktemp -d /tmp/moltbot-whbench.XXXXXX)
PG_DB=
cleanup() {
  if [ -n "$PG_DB" ]; then
    psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
log() { echo "[webhook bench $(date -u +%H:%M:%S)] $*" >&2; }

log "building the release webhook_bench into $TARGET"
nice cargo build --release -q -p tenant-server --example webhook_bench
BIN="$TARGET/release/examples/webhook_bench"

for run in $(seq 1 "$RUNS"); do
  for backend in $BACKENDS; do
    if [ "$backend" = sqlite ]; then
      url="sqlite://$WORK/whbench-$run.db"
    else
      PG_DB="whbench_${run}_$$"
      psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" -c "CREATE DATABASE $PG_DB" >/dev/null
      url="${PG_ADMIN_URL%/*}/$PG_DB"
    fi
    log "run $run on $backend"
    load=$(cut -d' ' -f1 /proc/loadavg)
    "$BIN" "$url" "$COUNT" "$RATE" "$SECONDS_" "$HANGING" "$FAIR_RATE" "$FAIR_SECONDS" |
      python3 -c '
import json, sys
for line in sys.stdin:
    rec = json.loads(line)
    rec.update(backend=sys.argv[1], run=int(sys.argv[2]), load_avg_1m=float(sys.argv[3]))
    print(json.dumps(rec), flush=True)
' "$backend" "$run" "$load" | tee -a "$RESULTS/webhooks.jsonl"
    if [ "$backend" = postgres ]; then
      psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null
      PG_DB=
    fi
  done
done

# Medians and ranges over the runs.
python3 - "$RESULTS/webhooks.jsonl" <<'PY'
import json, statistics, sys
from collections import defaultdict
groups = defaultdict(list)
for line in open(sys.argv[1]):
    if line.strip():
        r = json.loads(line)
        groups[(r["backend"], r["phase"], r.get("hanging", ""))].append(r)
def fmt(vals, d):
    if not vals:
        return "—"
    f = f"{{:,.{d}f}}"
    med = f.format(statistics.median(vals))
    return med if len(vals) == 1 else f"{med} [{f.format(min(vals))}–{f.format(max(vals))}]"
print("| backend | phase | hanging | runs | deliveries/s | p50 ms | p99 ms | max ms | sent twice |")
print("|---|---|---|---|---|---|---|---|---|")
for (backend, phase, hanging), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], str(kv[0][2]))):
    get = lambda k: [r[k] for r in rs if k in r]
    print(f"| {backend} | {phase} | {hanging} | {len(rs)} | {fmt(get('perSecond'), 0)} | "
          f"{fmt(get('p50Ms'), 1)} | {fmt(get('p99Ms'), 1)} | {fmt(get('maxMs'), 1)} | {fmt(get('duplicates'), 0)} |")
PY
